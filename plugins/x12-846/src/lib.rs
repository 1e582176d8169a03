//! millrace mapping plugin for X12 846 inventory inquiry/advice documents from third-party
//! warehouses.
//!
//! Every item, lot and place becomes one canonical `inventory-balance` (lines naming one are
//! added up): on hand (`QTY*17`, else the
//! quantity available `QTY*33`), blocked (`QTY*QH`, on hold) and allocated (what is on hand but
//! neither available nor on hold). The field mapping and the route configuration keys are
//! documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::decimal::{self, Decimal};
use millrace_sdk::prelude::*;
use millrace_sdk::x12::{self, Segment, TransactionSet};

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in x12::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "ISA15 is T")?;
        for set in interchange.transaction_sets_of("846", "an 846 inventory inquiry/advice") {
            let set = set?;
            let advice = Advice::read(set, &route)?;
            // The hash total, when sent, sums the on-hand quantities.
            let on_hand = set
                .segments
                .iter()
                .filter(|s| s.id == "QTY" && s.trimmed(1) == "17");
            x12::check_totals(set, "LIN", on_hand, 2)?;
            let transaction = interchange.source_transaction(set, advice.number);
            let balances = advice.balances(&route)?;
            events.extend(route.events(&advice.occurred_at, &transaction, balances));
        }
    }
    edi::mapped(events, "846 item line with a stock quantity")
}

/// One 846: its header facts and its item lines.
struct Advice<'a> {
    set: &'a TransactionSet<'a>,
    /// The advice's own number (`BIA03`).
    number: Option<&'a str>,
    occurred_at: String,
    /// The warehouse (`N1*WH`, else the ship-from `N1*SF`) party id, else its name.
    warehouse: Option<String>,
    /// Each line: the `LIN` segment and the segments after it up to the next line.
    lines: Vec<Vec<&'a Segment<'a>>>,
}

impl<'a> Advice<'a> {
    fn read(set: &'a TransactionSet<'a>, route: &edi::Route) -> Result<Self, MapError> {
        let bia = set.beginning("BIA", &set.segments)?;
        x12::refuse_withdrawn(bia, 1, "the inventory advice")?;
        let mut header = Vec::new();
        let mut lines: Vec<Vec<&Segment>> = Vec::new();
        for segment in &set.segments {
            match segment.id.as_ref() {
                "LIN" => lines.push(vec![segment]),
                "CTT" | "SE" => lines.push(Vec::new()),
                _ => match lines.last_mut().filter(|l| !l.is_empty()) {
                    Some(line) => line.push(segment),
                    None => header.push(segment),
                },
            }
        }
        lines.retain(|l| !l.is_empty());
        // As of: an effective date (DTM*007) with its time code, else the advice's date and time.
        let occurred_at = match header
            .iter()
            .find(|s| s.id == "DTM" && s.trimmed(1) == "007")
        {
            Some(dtm) => x12::dtm_timestamp(dtm, &route.utc_offset_text)
                .malformed_at(format!("{}, DTM effective date", dtm.at()))?,
            None => x12::timestamp(bia.element(4), bia.element(5), &route.utc_offset_text)
                .malformed_at(format!("{}, BIA04/05 date and time", bia.at()))?,
        };
        Ok(Self {
            set,
            number: Some(bia.trimmed(3)).filter(|n| !n.is_empty()),
            occurred_at,
            warehouse: x12::party(header.iter().copied(), &["WH", "SF"]),
            lines,
        })
    }

    fn balances(&self, route: &edi::Route) -> Result<Vec<InventoryBalance>, MapError> {
        let mut balances = edi::Balances::default();
        for line in &self.lines {
            // A warehouse named in the line (its own N1 loop) wins over the header's, and the
            // header's over the route's: only a line that none of them places is refused.
            let location = x12::party(line.iter().copied(), &["WH", "SF"])
                .or_else(|| self.warehouse.clone())
                .or_else(|| route.location.clone())
                .ok_or_else(|| {
                    MapError::malformed(format!(
                        "{} (transaction set 846 {}): no N1 party (WH or SF) names the line's \
                         warehouse, in its own N1 loop or the header, and the route config has no \
                         'location'",
                        line.first().map(|lin| lin.at()).unwrap_or_default(),
                        self.set.control_number
                    ))
                })?;
            let mut line_balances: Vec<InventoryBalance> = Vec::new();
            for stock in stocks(line) {
                let balance = balance(&stock, &location, route)?;
                if line_balances.iter().any(|b| b.lot == balance.lot) {
                    return Err(MapError::malformed(format!(
                        "{}: the line gives item {} more than one stock quantity of a kind \
                         without a lot apart for each (REF*LT in its QTY loop): one balance per \
                         item, lot and place",
                        line.first().map(|lin| lin.at()).unwrap_or_default(),
                        balance.item
                    )));
                }
                line_balances.push(balance);
            }
            for balance in line_balances {
                let at = line.first().map(|lin| lin.at()).unwrap_or_default();
                balances.add(balance, at)?;
            }
        }
        Ok(balances.into_vec())
    }
}

/// The stocks of one item line: one per `QTY` loop when the loop repeats (a `QTY*17` for each
/// lot, each with its `LS`/`REF*LT`/`LE`), else the line as a whole. A loop starts at a `QTY`
/// whose qualifier the loop before already has; the segments before the first `QTY` (the
/// `LIN`, its descriptions and references) belong to every stock, after the loop's own, so a
/// loop's `REF*LT` wins.
fn stocks<'s, 'a>(line: &[&'s Segment<'a>]) -> Vec<Vec<&'s Segment<'a>>> {
    let first_qty = line
        .iter()
        .position(|s| s.id == "QTY")
        .unwrap_or(line.len());
    let (head, rest) = line.split_at(first_qty);
    let mut loops: Vec<Vec<&Segment>> = Vec::new();
    for segment in rest {
        let repeats = segment.id == "QTY"
            && loops.last().is_none_or(|l| {
                l.iter()
                    .any(|s| s.id == "QTY" && s.trimmed(1) == segment.trimmed(1))
            });
        match loops.last_mut() {
            Some(current) if !repeats => current.push(segment),
            _ => loops.push(vec![segment]),
        }
    }
    let Some((lin, references)) = head.split_first().filter(|_| loops.len() > 1) else {
        return vec![line.to_vec()];
    };
    loops
        .into_iter()
        .map(|own| {
            let mut stock = vec![*lin];
            stock.extend(own);
            stock.extend(references);
            stock
        })
        .collect()
}

/// One item line's balance.
fn balance(
    line: &[&Segment],
    location: &str,
    route: &edi::Route,
) -> Result<InventoryBalance, MapError> {
    let Some(lin) = line.first() else {
        return Err(MapError::malformed("an empty LIN loop".to_owned()));
    };
    let pairs = lin.pairs(2);
    let item = match route.item_qualifier.as_deref() {
        Some(q) => pairs.iter().find(|(k, _)| *k == q),
        None => pairs.iter().find(|(k, _)| x12::is_item_qualifier(k)),
    }
    .map(|(_, v)| (*v).to_owned())
    .ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the line has no product id{}",
            lin.at(),
            route
                .item_qualifier
                .as_deref()
                .map(|q| format!(" with qualifier '{q}' (route config item-qualifier)"))
                .unwrap_or_default()
        ))
    })?;
    // A lot (`LT`) or batch (`B8`) number: the same thing to a receiver.
    let lot = pairs
        .iter()
        .find(|(k, _)| *k == "LT")
        .or_else(|| pairs.iter().find(|(k, _)| *k == "B8"))
        .map(|(_, v)| (*v).to_owned())
        .or_else(|| {
            line.iter()
                .find(|s| s.id == "REF" && s.trimmed(1) == "LT")
                .map(|s| s.trimmed(2).to_owned())
        })
        .filter(|l| !l.is_empty());
    let mut unit: Option<(&str, &Segment)> = None;
    let mut quantity = |qualifier: &str| -> Result<Option<Decimal>, MapError> {
        let Some(qty) = line
            .iter()
            .copied()
            .find(|s| s.id == "QTY" && s.trimmed(1) == qualifier)
        else {
            return Ok(None);
        };
        let amount = decimal::parse(qty.element(2), '.')
            .malformed_at(format!("{}, QTY*{qualifier} quantity", qty.at()))?;
        if amount < Decimal::ZERO {
            return Err(MapError::malformed(format!(
                "{}, QTY*{qualifier} quantity: '{}' is negative",
                qty.at(),
                qty.trimmed(2)
            )));
        }
        let uom = unit_of(qty, line)?;
        match unit {
            Some((first, at)) if first != uom => {
                return Err(MapError::malformed(format!(
                    "{}: the line counts in {first} ({}) and {uom}; one balance needs one unit",
                    qty.at(),
                    at.at()
                )));
            }
            Some(_) => {}
            None => unit = Some((uom, qty)),
        }
        Ok(Some(amount))
    };
    let on_hand = quantity("17")?;
    let available = quantity("33")?;
    let on_hold = quantity("QH")?.unwrap_or(Decimal::ZERO);
    // Without an on-hand figure, what is available and what is on hold are on hand; nothing is
    // known to be committed to orders.
    let Some(on_hand) = on_hand.or(available.map(|available| available + on_hold)) else {
        return Err(MapError::malformed(format!(
            "{}: the line has no stock quantity (QTY*17 on hand or QTY*33 available)",
            lin.at()
        )));
    };
    // What is on hand but neither available nor on hold is committed to orders.
    let allocated = match available {
        Some(available) => on_hand - available - on_hold,
        None => Decimal::ZERO,
    };
    if allocated < Decimal::ZERO || on_hold > on_hand {
        return Err(MapError::malformed(format!(
            "{}: the line's quantities do not add up: {} on hand, {} available, {} on hold",
            lin.at(),
            decimal::to_wit(on_hand),
            available
                .map(decimal::to_wit)
                .unwrap_or_else(|| "-".to_owned()),
            decimal::to_wit(on_hold)
        )));
    }
    let uom = unit.map(|(u, _)| u).unwrap_or("EA");
    Ok(InventoryBalance {
        lot,
        allocated: decimal::quantity(allocated, uom),
        blocked: decimal::quantity(on_hold, uom),
        ..InventoryBalance::new(item, location, decimal::quantity(on_hand, uom))
    })
}

/// The Rec 20 unit of a `QTY`: its own (`QTY03`), else the one the `UIT` of its `QTY` loop gives
/// (`UIT01`; the 846's QTY loop carries a `UIT`, and partners give every quantity's unit there).
/// `line` holds the segments of the `QTY`'s line, the `QTY` among them.
fn unit_of<'s, 'a: 's>(
    qty: &'s Segment<'a>,
    line: &[&'s Segment<'a>],
) -> Result<&'static str, MapError> {
    let (code, at, element) = match qty.component(3, 1).trim() {
        "" => {
            // The QTY loop runs to the next QTY, the next N1 loop or the line's end.
            let uit = line
                .iter()
                .skip_while(|s| !std::ptr::eq(**s, qty))
                .skip(1)
                .take_while(|s| s.id != "QTY" && s.id != "N1" && s.id != "LIN")
                .find(|s| s.id == "UIT");
            match uit {
                Some(uit) => (uit.component(1, 1).trim(), *uit, "UIT01"),
                None => {
                    return Err(MapError::malformed(format!(
                        "{}, QTY03 unit: missing, and no UIT in the QTY loop gives one; the \
                         quantity needs a unit",
                        qty.at()
                    )));
                }
            }
        }
        code => (code, qty, "QTY03"),
    };
    x12::unit_to_rec20(code).ok_or_else(|| {
        MapError::malformed(format!(
            "{}, {element} unit: '{code}' is not a known X12 unit of measure",
            at.at()
        ))
    })
}

millrace_sdk::export_mapper!(map);
