//! millrace mapping plugin for X12 856 ship notices (advance ship notices, ASN).
//!
//! Every `856` transaction set of an interchange becomes one canonical `shipment-notice`, with one
//! line per item (or per pack below an item). The hierarchy, the field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
use millrace_sdk::prelude::*;
use millrace_sdk::x12::{self, Interchange, Segment, TransactionSet};

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in x12::parse_all(&msg.payload)? {
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
    id: &'a str,
    parent: &'a str,
    code: &'a str,
    segments: &'a [Segment<'a>],
}

impl<'a> Level<'a> {
    fn find(&self, id: &str, qualifier: &str) -> Option<&'a Segment<'a>> {
        self.segments
            .iter()
            .find(|s| s.is(id) && s.trimmed(1) == qualifier)
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

fn ship_notice(
    interchange: &Interchange,
    set: &TransactionSet,
    offset: &str,
    item_qualifier: Option<&str>,
) -> Result<ShipmentNotice, MapError> {
    // The header is what comes before the first HL; each level runs up to the next HL.
    let mut runs = set.segments.split(|s| s.is("HL"));
    let header = runs.next().unwrap_or_default();
    let mut levels: Vec<Level> = Vec::new();
    for (hl, segments) in set.segments.iter().filter(|s| s.is("HL")).zip(runs) {
        if hl.trimmed(1).is_empty() || hl.trimmed(3).is_empty() {
            return Err(MapError::malformed(format!(
                "{}: HL01 (id) and HL03 (level code) are required",
                hl.at()
            )));
        }
        levels.push(Level {
            id: hl.trimmed(1),
            parent: hl.trimmed(2),
            code: hl.trimmed(3),
            segments,
        });
    }
    let bsn = set.beginning("BSN", header)?;
    x12::refuse_withdrawn(bsn, 1, "the ship notice")?;
    let shipment_id = bsn.trimmed(2);
    if shipment_id.is_empty() {
        return Err(MapError::malformed(format!(
            "{}: BSN02 (shipment id) is empty",
            bsn.at()
        )));
    }
    let shipment = levels.iter().find(|l| l.code == "S");
    // Dates and parties may sit in the header (version 2 documents) or in the shipment level.
    let shipment_segments = || {
        header
            .iter()
            .chain(shipment.into_iter().flat_map(|l| l.segments))
    };
    let dtm =
        |qualifier: &str| shipment_segments().find(|s| s.is("DTM") && s.trimmed(1) == qualifier);
    let ship_date = match dtm("011") {
        Some(d) => x12::dtm_timestamp(d, offset)
            .malformed_with(|| format!("{}, DTM02/03 ship date", d.at()))?,
        None => x12::timestamp(bsn.element(3), bsn.element(4), offset)
            .malformed_with(|| format!("{}, BSN03/04 date", bsn.at()))?,
    };
    let expected_delivery = dtm("017")
        .map(|d| {
            x12::dtm_timestamp(d, offset)
                .malformed_with(|| format!("{}, DTM02/03 expected delivery", d.at()))
        })
        .transpose()?;
    let supplier = x12::party(shipment_segments(), &["SF", "SU"])
        .unwrap_or_else(|| interchange.sender.to_string());

    let mut lines = Vec::new();
    for item in levels.iter().filter(|l| l.code == "I") {
        lines.extend(item_lines(item, &levels, item_qualifier)?);
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

/// The ancestors of a level, nearest first.
fn ancestors<'a, 'b>(level: &'b Level<'a>, levels: &'b [Level<'a>]) -> Vec<&'b Level<'a>> {
    let mut chain = Vec::new();
    let mut parent = level.parent;
    while !parent.is_empty() && chain.len() < levels.len() {
        match levels.iter().find(|l| l.id == parent) {
            Some(found) => {
                chain.push(found);
                parent = found.parent;
            }
            None => break,
        }
    }
    chain
}

fn item_lines(
    item: &Level,
    levels: &[Level],
    item_qualifier: Option<&str>,
) -> Result<Vec<ShipmentLine>, MapError> {
    let lin = item.segments.iter().find(|s| s.is("LIN")).ok_or_else(|| {
        MapError::malformed(format!(
            "HL {} (item level): there is no LIN segment",
            item.id
        ))
    })?;
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
    let up = ancestors(item, levels);
    let purchase_order = lin
        .pair_value(2, &["PO", "ON"])
        .or_else(|| item.first_ref("PO"))
        .or_else(|| {
            // The order reference of the item itself, else of the nearest level above it: the
            // standard allows PRF at any level.
            std::iter::once(item)
                .chain(up.iter().copied())
                .find_map(|l| {
                    l.segments
                        .iter()
                        .find(|s| s.is("PRF") && !s.trimmed(1).is_empty())
                        .map(|s| s.trimmed(1).to_owned())
                })
        });
    // A lot (`LT`) or batch (`B8`) number: the same thing to a receiver.
    let item_lot = lin
        .pair_value(2, &["LT", "B8"])
        .or_else(|| item.first_ref("LT"));
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
        .or_else(|| up.iter().find_map(|l| l.package_id()));

    let packs: Vec<&Level> = levels
        .iter()
        .filter(|l| l.code == "P" && l.parent == item.id && l.segments.iter().any(|s| s.is("SN1")))
        .collect();
    let line =
        |quantity: Quantity, lot: Option<String>, serials: Vec<String>, package_id| ShipmentLine {
            item: item_number.clone(),
            quantity,
            lot,
            serials,
            purchase_order: purchase_order.clone(),
            package_id,
        };
    if packs.is_empty() {
        let quantity = shipped(item)?;
        return Ok(vec![line(quantity, item_lot, item_serials, outer_package)]);
    }
    let mut lines = Vec::new();
    for pack in packs {
        let quantity = shipped(pack)?;
        let lot = pack.first_ref("LT").or_else(|| item_lot.clone());
        let serials = pack.refs("SE").map(str::to_owned).collect();
        let package_id = pack.package_id().or_else(|| outer_package.clone());
        lines.push(line(quantity, lot, serials, package_id));
    }
    Ok(lines)
}

/// The quantity shipped at a level: `SN1` 02 in the unit of `SN1` 03.
fn shipped(level: &Level) -> Result<Quantity, MapError> {
    let sn1 = level.segments.iter().find(|s| s.is("SN1")).ok_or_else(|| {
        MapError::malformed(format!(
            "HL {} (level {}): there is no SN1 quantity",
            level.id, level.code
        ))
    })?;
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
    Ok(decimal::quantity(amount, unit))
}

millrace_sdk::export_mapper!(map);
