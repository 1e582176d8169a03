//! millrace mapping plugin for X12 856 ship notices (advance ship notices, ASN).
//!
//! Every `856` transaction set of an interchange becomes one canonical `shipment-notice`, with one
//! line per item (or per pack below an item). The hierarchy, the field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::collections::HashMap;

use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
use millrace_sdk::prelude::*;
use millrace_sdk::x12::{self, Interchange, Segment, TransactionSet};

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in x12::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "ISA15 is T")?;
        for set in interchange.transaction_sets_of("856", "an 856 ship notice") {
            let set = set?;
            // CTT counts the HL levels (the standard's note) or only the item levels (as some
            // automotive guides have it) and, when it has a hash total, sums every SN1 (the
            // standard's note) or only the item levels' (where the packs under an item break
            // its quantity down).
            let levels = set.segments.iter().filter(|s| s.is("HL"));
            let items = levels.clone().filter(|s| s.trimmed(3) == "I").count();
            x12::check_totals_against(
                set,
                &[("HL", levels.count()), ("item-level HL", items)],
                &[
                    ("the item-level", item_quantities(set).collect()),
                    ("all", set.segments.iter().filter(|s| s.is("SN1")).collect()),
                ],
                2,
            )?;
            let notice = ship_notice(
                &interchange,
                set,
                &route.utc_offset_text,
                route.item_qualifier.as_deref(),
            )?;
            // The shipment id is in the event already: the envelope identity suffices.
            events.push(
                CanonicalEvent::new(&route.site, notice.ship_date.clone(), notice)
                    .with_transaction(interchange.source_transaction(set, None)),
            );
        }
    }
    edi::mapped(events, "transaction set")
}

/// The `SN1` segments of the item (`HL03` `I`) levels of a ship notice.
fn item_quantities<'a, 'b>(set: &'a TransactionSet<'b>) -> impl Iterator<Item = &'a Segment<'b>> {
    let mut level = "";
    set.segments.iter().filter(move |s| {
        if s.is("HL") {
            level = s.element(3);
        }
        s.is("SN1") && level.trim() == "I"
    })
}

/// One `HL` level with the segments that follow it up to the next `HL`.
struct Level<'a> {
    hl: &'a Segment<'a>,
    id: &'a str,
    /// The parent level's index in the hierarchy; none for the shipment level.
    parent: Option<usize>,
    code: &'a str,
    segments: &'a [Segment<'a>],
}

impl<'a> Level<'a> {
    fn find(&self, id: &str, qualifier: &str) -> Option<&'a Segment<'a>> {
        self.segments
            .iter()
            .find(|s| s.is(id) && s.trimmed(1) == qualifier)
    }

    fn first(&self, id: &str) -> Option<&'a Segment<'a>> {
        self.segments.iter().find(|s| s.is(id))
    }

    /// The `REF` numbers with `qualifier`, in order.
    fn refs(&self, qualifier: &str) -> impl Iterator<Item = &'a str> {
        self.segments
            .iter()
            .filter(move |s| s.is("REF") && s.trimmed(1) == qualifier)
            .map(|s| s.trimmed(2))
            .filter(|number| !number.is_empty())
    }

    /// The first `REF` number with `qualifier`.
    fn first_ref(&self, qualifier: &str) -> Option<String> {
        self.refs(qualifier).next().map(str::to_owned)
    }

    /// The lot this level names: its `LIN` lot (`LT`) or batch (`B8`, the same thing to a
    /// receiver), its `REF*LT`. A line has one lot: two different ones at one level are an
    /// error (the quantity cannot be booked to both), a repeat of the same one is not.
    fn lot(&self) -> Result<Option<String>, MapError> {
        let mut named: Vec<(&str, String)> = Vec::new();
        if let Some(lin) = self.first("LIN") {
            for (qualifier, lot) in lin.pairs(2) {
                if matches!(qualifier, "LT" | "B8") {
                    named.push((lot, format!("{}, LIN {qualifier}", lin.at())));
                }
            }
        }
        for reference in self
            .segments
            .iter()
            .filter(|s| s.is("REF") && s.trimmed(1) == "LT" && !s.trimmed(2).is_empty())
        {
            named.push((reference.trimmed(2), reference.at()));
        }
        let Some((first, first_at)) = named.first() else {
            return Ok(None);
        };
        if let Some((other, other_at)) = named.iter().find(|(lot, _)| lot != first) {
            return Err(MapError::malformed(format!(
                "{}: two lots for one line, '{first}' ({first_at}) and '{other}' ({other_at}); \
                 send each lot in its own item or pack level",
                self.at()
            )));
        }
        Ok(Some((*first).to_owned()))
    }

    /// The purchase order this level names: `REF*PO`, else `PRF01`.
    fn purchase_order(&self) -> Option<String> {
        self.first_ref("PO").or_else(|| {
            self.first("PRF")
                .map(|prf| prf.trimmed(1))
                .filter(|po| !po.is_empty())
                .map(str::to_owned)
        })
    }

    /// The package id of a tare or pack level: an SSCC from `MAN*GM`, else its `REF*LS` label.
    fn package_id(&self) -> Option<String> {
        if let Some(man) = self.find("MAN", "GM") {
            return Some(sscc(man.trimmed(2)));
        }
        if matches!(self.code, "T" | "P") {
            return self.first_ref("LS");
        }
        None
    }

    /// Where the level stands, for an error: `HL 4 (level P, segment 12)`.
    fn at(&self) -> String {
        format!("HL {} (level {}, {})", self.id, self.code, self.hl.at())
    }
}

/// An SSCC written with its GS1 application identifier `00` (20 digits) loses the identifier.
fn sscc(text: &str) -> String {
    match text.strip_prefix("00") {
        Some(rest) if text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()) => {
            rest.to_owned()
        }
        _ => text.to_owned(),
    }
}

/// The segments before the first `HL` and the `HL` levels of a ship notice, checked as the
/// standard builds the hierarchy: no item (`LIN`) or quantity (`SN1`) before the first level,
/// the first level is the shipment (`S`, the only one), every
/// other names an earlier level as its parent (`HL02`), ids are unique, a level holds at most
/// one `LIN` and one `SN1`, an item (`LIN`) sits only at an item level (`I`) and a quantity
/// (`SN1`) only at an item level or a pack (`P`) right below one. A level this plugin would
/// pass over with an item or a quantity in it (a lower-case `i`, a component level `F`) is an
/// error, never a line less.
fn hierarchy<'a>(
    set: &'a TransactionSet<'a>,
) -> Result<(&'a [Segment<'a>], Vec<Level<'a>>), MapError> {
    let mut runs = set.segments.split(|s| s.is("HL"));
    let header = runs.next().unwrap_or_default();
    if let Some(stray) = header.iter().find(|s| s.is("LIN") || s.is("SN1")) {
        let what = if stray.is("LIN") {
            "an item"
        } else {
            "a quantity"
        };
        return Err(MapError::malformed(format!(
            "{}: {what} before the first HL level, outside an item level (HL03 'I')",
            stray.at()
        )));
    }
    let mut levels: Vec<Level> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (hl, segments) in set.segments.iter().filter(|s| s.is("HL")).zip(runs) {
        let (id, code) = (hl.trimmed(1), hl.trimmed(3));
        if id.is_empty() || code.is_empty() {
            return Err(MapError::malformed(format!(
                "{}: HL01 (id) and HL03 (level code) are required",
                hl.at()
            )));
        }
        if levels.is_empty() && code != "S" {
            return Err(MapError::malformed(format!(
                "{}: the first level is '{code}' (HL03), not the shipment 'S'",
                hl.at()
            )));
        }
        if !levels.is_empty() && code == "S" {
            return Err(MapError::malformed(format!(
                "{}: a second shipment level (HL03 'S'); one ship notice covers one shipment",
                hl.at()
            )));
        }
        let parent = match hl.trimmed(2) {
            "" if levels.is_empty() => None,
            "" => {
                return Err(MapError::malformed(format!(
                    "{}: HL02 (parent id) is empty; every level but the first names its parent",
                    hl.at()
                )));
            }
            parent => Some(*ids.get(&x12::number_key(parent)).ok_or_else(|| {
                MapError::malformed(format!(
                    "{}: HL02 parent id '{parent}' is not the id of an earlier HL level",
                    hl.at()
                ))
            })?),
        };
        if let Some(earlier) = ids.insert(x12::number_key(id), levels.len()) {
            let earlier = levels.get(earlier).map(|l| l.hl.at()).unwrap_or_default();
            return Err(MapError::malformed(format!(
                "{}: HL01 id '{id}' is the id of {earlier} already",
                hl.at()
            )));
        }
        let level = Level {
            hl,
            id,
            parent,
            code,
            segments,
        };
        for id in ["LIN", "SN1"] {
            let mut found = segments.iter().filter(|s| s.is(id));
            if let (Some(_), Some(second)) = (found.next(), found.next()) {
                return Err(MapError::malformed(format!(
                    "{}: a second {id} in one level ({}); the standard allows one",
                    level.at(),
                    second.at()
                )));
            }
        }
        let below_item = parent
            .and_then(|p| levels.get(p))
            .is_some_and(|p| p.code == "I");
        if let Some(lin) = level.first("LIN").filter(|_| code != "I") {
            return Err(MapError::malformed(format!(
                "{}: an item ({}) outside an item level (HL03 'I')",
                level.at(),
                lin.at()
            )));
        }
        if let Some(sn1) = level
            .first("SN1")
            .filter(|_| !(code == "I" || code == "P" && below_item))
        {
            return Err(MapError::malformed(format!(
                "{}: a quantity ({}) outside an item level (HL03 'I') or a pack (P) right below \
                 one",
                level.at(),
                sn1.at()
            )));
        }
        levels.push(level);
    }
    Ok((header, levels))
}

fn ship_notice(
    interchange: &Interchange,
    set: &TransactionSet,
    offset: &str,
    item_qualifier: Option<&str>,
) -> Result<ShipmentNotice, MapError> {
    let (header, levels) = hierarchy(set)?;
    let bsn = set.beginning("BSN", header)?;
    x12::refuse_not_original(bsn, 1, "the ship notice")?;
    let shipment_id = bsn.trimmed(2);
    if shipment_id.is_empty() {
        return Err(MapError::malformed(format!(
            "{}: BSN02 (shipment id) is empty",
            bsn.at()
        )));
    }
    let shipment = levels.first();
    // Dates and parties may sit in the header (version 2 documents) or in the shipment level.
    let shipment_segments = || {
        header
            .iter()
            .chain(shipment.into_iter().flat_map(|l| l.segments))
    };
    // A date given twice must be the same time: two ship dates are an error, not the first.
    let dtm = |qualifier: &str, what: &str| {
        let dates = shipment_segments().filter(|s| s.is("DTM") && s.trimmed(1) == qualifier);
        x12::agreed(dates, &format!("DTM*{qualifier} {what}"), |d| {
            x12::dtm_timestamp(d, offset)
                .map(Some)
                .malformed_with(|| format!("{}, DTM02/03 {what}", d.at()))
        })
        .map(|date| date.map(|(date, _)| date))
    };
    let ship_date = match dtm("011", "ship date")? {
        Some(date) => date,
        None => x12::timestamp(bsn.element(3), bsn.element(4), offset)
            .malformed_with(|| format!("{}, BSN03/04 date", bsn.at()))?,
    };
    let expected_delivery = dtm("017", "expected delivery")?;
    let supplier = match x12::agreed_party(shipment_segments(), &["SF", "SU"])? {
        Some(supplier) => supplier,
        None => order_supplier(&levels)?.unwrap_or_else(|| interchange.sender.to_string()),
    };

    let mut lines = Vec::new();
    for (index, item) in levels.iter().enumerate().filter(|(_, l)| l.code == "I") {
        lines.extend(item_lines(index, item, &levels, item_qualifier)?);
    }
    if lines.is_empty() {
        return Err(MapError::malformed(format!(
            "transaction set 856 {} (segment {}): the ship notice has no item (HL level I) with a quantity",
            set.control_number, set.position
        )));
    }
    Ok(ShipmentNotice {
        shipment_id: shipment_id.to_owned(),
        supplier,
        ship_date,
        expected_delivery,
        lines,
    })
}

/// The supplier the order levels name (`N1*SF`, else `N1*SU`), when the shipment level names
/// none: some partners write the ship-from party per order. Orders naming different suppliers
/// are an error, since a notice has one.
fn order_supplier(levels: &[Level]) -> Result<Option<String>, MapError> {
    let mut named: Option<(String, &Level)> = None;
    for order in levels.iter().filter(|l| l.code == "O") {
        let Some(supplier) = x12::agreed_party(order.segments, &["SF", "SU"])? else {
            continue;
        };
        match &named {
            Some((first, at)) if *first != supplier => {
                return Err(MapError::malformed(format!(
                    "{}: ships from '{supplier}', {} from '{first}'; one ship notice has one \
                     supplier",
                    order.at(),
                    at.at()
                )));
            }
            Some(_) => {}
            None => named = Some((supplier, order)),
        }
    }
    Ok(named.map(|(supplier, _)| supplier))
}

/// The levels above a level, nearest first.
fn ancestors<'l, 'a>(
    level: &'l Level<'a>,
    levels: &'l [Level<'a>],
) -> impl Iterator<Item = &'l Level<'a>> {
    std::iter::successors(level.parent.and_then(|p| levels.get(p)), |l| {
        l.parent.and_then(|p| levels.get(p))
    })
}

fn item_lines(
    index: usize,
    item: &Level,
    levels: &[Level],
    item_qualifier: Option<&str>,
) -> Result<Vec<ShipmentLine>, MapError> {
    let lin = item
        .first("LIN")
        .ok_or_else(|| MapError::malformed(format!("{}: there is no LIN segment", item.at())))?;
    let item_number = match item_qualifier {
        Some(q) => lin.pair_value(2, &[q]).ok_or_else(|| {
            MapError::malformed(format!(
                "{}: no product id with qualifier '{q}' (route config item-qualifier)",
                lin.at()
            ))
        })?,
        None => lin
            .product_id()
            .ok_or_else(|| MapError::malformed(format!("{}: LIN has no product id", lin.at())))?,
    };
    // The item's own references, else those of the nearest level above it (the standard
    // allows PRF and REF at any level: an order's PO, a pallet's lot).
    let nearest = || std::iter::once(item).chain(ancestors(item, levels));
    let purchase_order = lin
        .pair_value(2, &["PO", "ON"])
        .or_else(|| nearest().find_map(Level::purchase_order));
    // A lot (`LT`) or batch (`B8`) number, the same thing to a receiver: the item's own, else
    // that of the nearest level above it that names one (one lot per level).
    let mut item_lot = None;
    for level in nearest() {
        if let Some(lot) = level.lot()? {
            item_lot = Some(lot);
            break;
        }
    }
    let mut item_serials: Vec<String> = lin
        .pairs(2)
        .into_iter()
        .filter(|(q, _)| *q == "SN")
        .map(|(_, v)| (*v).to_owned())
        .collect();
    item_serials.extend(item.refs("SE").map(str::to_owned));
    item_serials.extend(item.refs("LS").map(str::to_owned));
    let outer_package = item
        .package_id()
        .or_else(|| ancestors(item, levels).find_map(|l| l.package_id()));

    let line =
        |quantity: Quantity, lot: Option<String>, serials: Vec<String>, package_id| ShipmentLine {
            item: item_number.clone(),
            quantity,
            lot,
            serials,
            purchase_order: purchase_order.clone(),
            package_id,
        };
    let packs: Vec<&Level> = levels
        .iter()
        .filter(|l| l.code == "P" && l.parent == Some(index))
        .collect();
    let counted: Vec<&Level> = packs
        .iter()
        .copied()
        .filter(|p| p.first("SN1").is_some())
        .collect();
    if counted.is_empty() {
        let (amount, unit) = shipped(item)?;
        return Ok(vec![line(
            decimal::quantity(amount, unit),
            item_lot,
            item_serials,
            outer_package,
        )]);
    }
    // The packs below the item break its quantity down: each becomes a line, and together they
    // must ship what the item says.
    if let Some(uncounted) = packs.iter().find(|p| p.first("SN1").is_none()) {
        return Err(MapError::malformed(format!(
            "{}: a pack below item {} without a quantity (SN1) where its other packs have one",
            uncounted.at(),
            item.id
        )));
    }
    if !item_serials.is_empty() && counted.len() > 1 {
        return Err(MapError::malformed(format!(
            "{}: serials at the item level while {} packs below it split its quantity; name each \
             pack's serials (REF*SE) at the pack",
            item.at(),
            counted.len()
        )));
    }
    let mut quantities = Vec::with_capacity(counted.len());
    for pack in &counted {
        quantities.push((*pack, shipped(pack)?));
    }
    if item.first("SN1").is_some() {
        check_packs_add_up(item, shipped(item)?, &quantities)?;
    }
    let mut lines = Vec::new();
    for (pack, (amount, unit)) in quantities {
        let lot = pack.lot()?.or_else(|| item_lot.clone());
        let mut serials: Vec<String> = pack.refs("SE").map(str::to_owned).collect();
        if serials.is_empty() {
            serials.clone_from(&item_serials);
        }
        let package_id = pack.package_id().or_else(|| outer_package.clone());
        lines.push(line(
            decimal::quantity(amount, unit),
            lot,
            serials,
            package_id,
        ));
    }
    Ok(lines)
}

/// The packs' quantities add up to the item's own `SN1`, in its unit: a pack quantity the
/// sender got wrong must not change what was shipped without a word.
fn check_packs_add_up(
    item: &Level,
    (total, unit): (Decimal, &str),
    packs: &[(&Level, (Decimal, &str))],
) -> Result<(), MapError> {
    if let Some((pack, (_, other))) = packs.iter().find(|(_, (_, u))| *u != unit) {
        return Err(MapError::malformed(format!(
            "{}: the pack's quantity is in {other}, its item {} in {unit}: they cannot be \
             checked to add up",
            pack.at(),
            item.id
        )));
    }
    let sum = decimal::checked_sum(packs.iter().map(|(_, (amount, _))| *amount));
    if sum != Some(total) {
        return Err(MapError::malformed(format!(
            "{}: its packs ship {} {unit} in all, its SN1 {total} {unit}; they must add up",
            item.at(),
            sum.map_or_else(|| "too much".to_owned(), |s| s.normalize().to_string()),
        )));
    }
    Ok(())
}

/// The quantity shipped at a level: `SN1` 02 in the unit of `SN1` 03 (as a Rec 20 code).
fn shipped(level: &Level) -> Result<(Decimal, &'static str), MapError> {
    let sn1 = level
        .first("SN1")
        .ok_or_else(|| MapError::malformed(format!("{}: there is no SN1 quantity", level.at())))?;
    let amount = decimal::parse(sn1.element(2), '.')
        .malformed_with(|| format!("{}, SN102 quantity", sn1.at()))?;
    if amount <= Decimal::ZERO {
        return Err(MapError::malformed(format!(
            "{}, SN102 quantity: '{}' is not positive",
            sn1.at(),
            sn1.trimmed(2)
        )));
    }
    let unit = x12::unit_to_rec20(sn1.element(3)).ok_or_else(|| {
        MapError::malformed(format!(
            "{}, SN103 unit: '{}' is not a known X12 unit of measure",
            sn1.at(),
            sn1.trimmed(3)
        ))
    })?;
    Ok((amount, unit))
}

millrace_sdk::export_mapper!(map);
