//! millrace mapping plugin for X12 warehouse documents: 943 stock transfer shipment advice,
//! 944 stock transfer receipt advice, 945 warehouse shipping advice and 861 receiving advice.
//!
//! Every item line becomes one canonical `inventory-movement`. The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::prelude::*;
use millrace_sdk::x12::{self, Segment, TransactionSet};

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let offset = &route.utc_offset_text;
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    // The receiving advice lines that received nothing (only quantities returned or in
    // question): no event, and named when nothing else in the payload moves stock.
    let mut nothing_received: Vec<String> = Vec::new();
    for interchange in x12::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "ISA15 is T")?;
        for (_, set) in interchange.transaction_sets() {
            let document = match set.id.as_ref() {
                "943" => Document::read(set, "W06", 3, 2, "W04", MovementType::Transfer)?,
                "944" => Document::read(set, "W17", 2, 4, "W07", MovementType::Receipt)?,
                "945" => Document::read(set, "W06", 3, 2, "W12", MovementType::Issue)?,
                "861" => Document::read(set, "BRA", 2, 1, "RCD", MovementType::Receipt)?,
                other => {
                    return Err(MapError::unsupported(format!(
                        "transaction set {other} {} (segment {}) is not a 943, 944, 945 or 861",
                        set.control_number, set.position
                    )));
                }
            };
            let occurred_at = document.occurred_at(offset)?;
            // The envelope identity, then the document's own number: the one a clerk searches for.
            let transaction = interchange.source_transaction(set, document.number().as_deref());
            let movements = document.movements()?;
            nothing_received.extend(document.lines.iter().filter_map(Line::nothing_received));
            events.extend(route.events(&occurred_at, &transaction, movements));
        }
    }
    if events.is_empty() && !nothing_received.is_empty() {
        return Err(MapError::unsupported(format!(
            "the receiving advice records no receipt: its lines ({}) report only quantities \
             returned (RCD04) or in question (RCD06), none received (RCD02), so no stock moved",
            nothing_received.join("; ")
        )));
    }
    edi::mapped(events, "item line to map")
}

/// The receipt reports of a 944 (`W17`01, element 514) that book goods into stock: `F` full
/// detail, `P` production receipt and `C` customer return (each "full detail"). The others
/// report something else: `S` a physical inventory shortage, `O` an overage, `A` an inventory
/// adjustment, `B` a book transfer, `X` exceptions only (the lines that differ, not the
/// receipt), `N` no exceptions, `K` a simulation, `J`, `R`, `Y`, `Z`...
const RECEIPT_REPORTS: [(&str, &str); 3] = [
    ("F", "full detail"),
    ("P", "production receipt"),
    ("C", "customer return"),
];

/// Refuses a 944 whose `W17`01 reporting code is no receipt report ([`RECEIPT_REPORTS`]):
/// a shortage or adjustment is not stock arriving, and mapped as a receipt it would book stock
/// that never came.
fn refuse_non_receipt(w17: &Segment<'_>) -> Result<(), MapError> {
    let code = w17.trimmed(1);
    if RECEIPT_REPORTS.iter().any(|(receipt, _)| *receipt == code) {
        return Ok(());
    }
    let what = match code {
        "" => "W1701 (reporting code) is empty".to_owned(),
        "S" => "reporting code 'S' is a physical inventory shortage".to_owned(),
        "O" => "reporting code 'O' is a physical inventory overage".to_owned(),
        "A" => "reporting code 'A' is an inventory adjustment".to_owned(),
        "B" => "reporting code 'B' is a book transfer of inventory".to_owned(),
        "X" => "reporting code 'X' reports exceptions only".to_owned(),
        other => format!("reporting code '{other}' is no receipt report"),
    };
    let receipts = RECEIPT_REPORTS
        .iter()
        .map(|(code, name)| format!("{code} ({name})"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(MapError::unsupported(format!(
        "{}, W1701: {what}; only the receipt reports {receipts} book goods received, so the \
         944 is not mapped",
        w17.at()
    )))
}

/// One warehouse document: its beginning segment, its header and its item lines.
struct Document<'a> {
    set: &'a TransactionSet<'a>,
    begin: &'a Segment<'a>,
    date_element: usize,
    reference_element: usize,
    header: Vec<&'a Segment<'a>>,
    /// Each `LX` loop: the `LX` and the loop's own segments before its first line (`MAN`, `N9`).
    loops: Vec<Vec<&'a Segment<'a>>>,
    lines: Vec<Line<'a>>,
    movement: MovementType,
}

/// One item line: the item segment and the segments after it up to the next line.
struct Line<'a> {
    segments: Vec<&'a Segment<'a>>,
    /// The `LX` loop the line is in (an index into `loops`).
    in_loop: Option<usize>,
}

impl Line<'_> {
    /// Where the line is, when it is an 861 `RCD` that received nothing: no `RCD02` (units
    /// received or accepted), only units returned (`RCD04`) or in question (`RCD06`), which
    /// syntax note R020406 allows alone. Such a line moves no stock into the warehouse.
    fn nothing_received(&self) -> Option<String> {
        let rcd = self.segments.first().filter(|s| s.id == "RCD")?;
        let other = !rcd.trimmed(4).is_empty() || !rcd.trimmed(6).is_empty();
        (rcd.trimmed(2).is_empty() && other).then(|| rcd.at())
    }
}

impl<'a> Document<'a> {
    fn read(
        set: &'a TransactionSet<'a>,
        begin_id: &str,
        date_element: usize,
        reference_element: usize,
        line_id: &str,
        movement: MovementType,
    ) -> Result<Self, MapError> {
        let begin = set.beginning(begin_id, &set.segments)?;
        // BRA03, an 861's purpose: a cancelled receiving advice received nothing.
        if begin_id == "BRA" {
            x12::refuse_not_original(begin, 3, "the receiving advice")?;
        }
        if begin_id == "W17" {
            refuse_non_receipt(begin)?;
        }
        let mut header = Vec::new();
        let mut loops: Vec<Vec<&Segment>> = Vec::new();
        let mut lines: Vec<Line> = Vec::new();
        // The LX loop open, and whether a line is open (the segments after it are its own).
        let mut open_loop: Option<usize> = None;
        let mut line_open = false;
        for segment in &set.segments {
            if segment.id == line_id {
                lines.push(Line {
                    segments: vec![segment],
                    in_loop: open_loop,
                });
                line_open = true;
            } else if segment.id == "LX" {
                // An LX loop starts: what comes before its first line is the loop's own (the
                // 945's MAN and N9 of the loop), for every line of the loop.
                loops.push(vec![segment]);
                open_loop = Some(loops.len() - 1);
                line_open = false;
            } else if matches!(segment.id.as_ref(), "W03" | "W14" | "W76" | "CTT") {
                // Totals end the detail area.
                open_loop = None;
                line_open = false;
                header.push(segment);
            } else if let Some(line) = lines.last_mut().filter(|_| line_open) {
                line.segments.push(segment);
            } else if let Some(lx) = open_loop.and_then(|i| loops.get_mut(i)) {
                lx.push(segment);
            } else {
                header.push(segment);
            }
        }
        Ok(Self {
            set,
            begin,
            date_element,
            reference_element,
            header,
            loops,
            lines,
            movement,
        })
    }

    /// The document's own number: the 944's warehouse receipt number (`W17`03), the 945's
    /// shipment id (`W06`04, else the depositor order `W06`02), the 943's depositor order
    /// (`W06`02), the 861's receiving advice number (`BRA`01).
    fn number(&self) -> Option<String> {
        let elements: &[usize] = match self.set.id.as_ref() {
            "944" => &[3],
            "945" => &[4, 2],
            "943" => &[2],
            _ => &[1],
        };
        elements
            .iter()
            .map(|n| self.begin.trimmed(*n))
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The header segments `id` with `qualifier`.
    fn header_all<'s>(
        &'s self,
        id: &'s str,
        qualifier: &'s str,
    ) -> impl Iterator<Item = &'a Segment<'a>> + 's {
        self.header
            .iter()
            .copied()
            .filter(move |s| s.id == id && s.trimmed(1) == qualifier)
    }

    /// The date and time of the header's `G62` with `qualifier` (its time code `G6205`, when it
    /// names a zone, before the route's offset); two that differ are an error.
    fn g62(&self, qualifier: &str, offset: &str) -> Result<Option<String>, MapError> {
        x12::agreed(
            self.header_all("G62", qualifier),
            &format!("G62*{qualifier} date/time"),
            |g62| {
                x12::time_zone(g62.element(5), offset)
                    .and_then(|offset| x12::timestamp(g62.element(2), g62.element(4), offset))
                    .map(Some)
                    .malformed_at(format!("{}, G62 date/time", g62.at()))
            },
        )
        .map(|found| found.map(|(at, _)| at))
    }

    /// When the movement happened: a 944's receipt date and time (`W17`02, `W17`07: the
    /// standard's "date indicating the receipt of a delivery"; a `G62` there dates the shipment
    /// or the advice, not the receipt), else the `G62` shipped (11) or received (09) date, the
    /// `DTM` received date (050) of an 861, else the beginning segment's date.
    fn occurred_at(&self, offset: &str) -> Result<String, MapError> {
        let received = self.begin.id == "W17";
        if !received {
            // A date given twice must be the same time, not the first of two.
            if let Some(at) = self.g62("11", offset)? {
                return Ok(at);
            }
            if let Some(at) = self.g62("09", offset)? {
                return Ok(at);
            }
        }
        let received_date = x12::agreed(
            self.header_all("DTM", "050"),
            "DTM*050 received date",
            |dtm| {
                x12::dtm_timestamp(dtm, offset)
                    .map(Some)
                    .malformed_at(format!("{}, DTM received date", dtm.at()))
            },
        )?;
        if let Some((at, _)) = received_date {
            return Ok(at);
        }
        let time_element = match self.begin.id.as_ref() {
            "BRA" => Some(5),
            "W17" => Some(7),
            _ => None,
        };
        let time = time_element.map_or("", |n| self.begin.element(n));
        let (id, date) = (&self.begin.id, self.date_element);
        x12::timestamp(self.begin.element(date), time, offset).malformed_with(|| {
            let at = self.begin.at();
            match time_element.filter(|_| !time.trim().is_empty()) {
                Some(n) => format!("{at}, {id}{date:02} date and {id}{n:02} time"),
                None => format!("{at}, {id}{date:02} date"),
            }
        })
    }

    /// The first of the parties `codes` the header names, by its id, else its name; a party
    /// named twice differently is an error.
    fn party(&self, codes: &[&str]) -> Result<Option<String>, MapError> {
        x12::agreed_party(self.header.iter().copied(), codes)
    }

    fn movements(&self) -> Result<Vec<InventoryMovement>, MapError> {
        let reference = Some(self.begin.trimmed(self.reference_element))
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let (from_location, to_location, status) = match self.set.id.as_ref() {
            "943" => (
                self.party(&["SF"])?,
                self.party(&["WH", "ST"])?,
                Some(StockStatus::InTransit),
            ),
            "945" => (self.party(&["WH", "SF"])?, None, None),
            _ => (None, self.party(&["WH", "ST"])?, None),
        };
        // Without a warehouse party, the route's own location is the side the plant owns.
        let (from_location, to_location) = match (from_location, to_location) {
            (None, None) => {
                let location = config::get("location").ok_or_else(|| {
                    MapError::malformed(format!(
                        "transaction set {} {} (segment {}): no N1 party (WH, SF or ST) names the \
                         warehouse, and the route config has no 'location'",
                        self.set.id, self.set.control_number, self.set.position
                    ))
                })?;
                if self.movement == MovementType::Issue {
                    (Some(location), None)
                } else {
                    (None, Some(location))
                }
            }
            known => known,
        };
        // The document's own purchase order: a header `N9*PO` (the 943, 944 and 945 carry their
        // header references in N9) or `REF*PO`, or the 943's and 945's `W06`06 (purchase order
        // number), the same in every one that gives it: two that differ are refused, never the
        // first taken.
        let w06_po = (self.begin.id == "W06").then_some(self.begin);
        let order = x12::agreed(
            w06_po.into_iter().chain(
                self.header
                    .iter()
                    .copied()
                    .filter(|s| (s.id == "N9" || s.id == "REF") && s.trimmed(1) == "PO"),
            ),
            "purchase order (N9*PO, REF*PO, W0606)",
            |s| {
                let po = if s.id == "W06" {
                    s.trimmed(6)
                } else {
                    s.trimmed(2)
                };
                Ok(Some(po.to_owned()).filter(|po| !po.is_empty()))
            },
        )?
        .map(|(po, _)| po);
        let reference = order.or(reference);
        let mut movements = Vec::new();
        let mut total = Decimal::ZERO;
        for line in &self.lines {
            let Some(movement) =
                self.movement(line, &reference, &from_location, &to_location, status)?
            else {
                continue;
            };
            let amount = decimal::parse(&movement.quantity.amount, '.').unwrap_or_default();
            total = decimal::checked_sum([total, amount]).ok_or_else(|| {
                let at = line.segments.first().map(|s| s.at()).unwrap_or_default();
                MapError::malformed(format!(
                    "{at}: its quantity {} takes the total of the lines past the largest decimal \
                     number",
                    movement.quantity.amount
                ))
            })?;
            movements.push(movement);
        }
        self.check_total(total)?;
        Ok(movements)
    }

    /// The total segments (`W03` 01 units shipped, `W14` 01 units received) must add up.
    fn check_total(&self, total: Decimal) -> Result<(), MapError> {
        for totals in self
            .header
            .iter()
            .filter(|s| s.id == "W03" || s.id == "W14")
        {
            let declared = decimal::parse(totals.element(1), '.').malformed_at(format!(
                "{}, {}01 total quantity",
                totals.at(),
                totals.id
            ))?;
            if declared != total {
                return Err(MapError::malformed(format!(
                    "{}: {}01 totals {} units, the lines add up to {}",
                    totals.at(),
                    totals.id,
                    decimal::to_wit(declared),
                    decimal::to_wit(total)
                )));
            }
        }
        Ok(())
    }

    fn movement(
        &self,
        line: &Line<'a>,
        reference: &Option<String>,
        from_location: &Option<String>,
        to_location: &Option<String>,
        status: Option<StockStatus>,
    ) -> Result<Option<InventoryMovement>, MapError> {
        let Some(first) = line.segments.first() else {
            return Ok(None);
        };
        if line.nothing_received().is_some() {
            return Ok(None);
        }
        if first.id == "RCD" && [2, 4, 6].iter().all(|&n| first.trimmed(n).is_empty()) {
            return Err(MapError::malformed(format!(
                "{}: RCD02 (received), RCD04 (returned) and RCD06 (in question) are all empty; \
                 the line gives no quantity",
                first.at()
            )));
        }
        // The LX loop's own segments, for every line of the loop (none outside a loop).
        let in_loop: &[&Segment] = line
            .in_loop
            .and_then(|i| self.loops.get(i))
            .map_or(&[], Vec::as_slice);
        // Where each line segment keeps quantity, unit, the product id pairs (each a qualifier
        // and its id), the U.P.C. and the lot: W04 and W07 (W0403 UPC, W0404-07 two pairs),
        // W12 (W1206 UPC, W1207-08 one pair). The elements after them (lot, weight, freight and
        // rate class, adjustment codes) are never taken for a product id.
        let (quantity_element, unit_element, pairs, upc_element, lot_element) =
            match first.id.as_ref() {
                "W04" => (1, 2, &[4, 6][..], 3, 0),
                "W07" => (1, 2, &[4, 6][..], 3, 8),
                "W12" => (3, 5, &[7][..], 6, 9),
                _ => (2, 3, &[][..], 0, 0), // RCD
            };
        let amount = decimal::parse(first.element(quantity_element), '.').malformed_at(format!(
            "{}, {}{quantity_element:02} quantity",
            first.at(),
            first.id
        ))?;
        if amount.is_zero() {
            // A line that shipped or received nothing moves no stock.
            return Ok(None);
        }
        if amount < Decimal::ZERO {
            return Err(MapError::malformed(format!(
                "{}, {}{quantity_element:02} quantity: '{}' is negative",
                first.at(),
                first.id,
                first.trimmed(quantity_element)
            )));
        }
        let unit = x12::unit_to_rec20(first.element(unit_element)).ok_or_else(|| {
            MapError::malformed(format!(
                "{}, {}{unit_element:02} unit: '{}' is not a known X12 unit of measure",
                first.at(),
                first.id,
                first.trimmed(unit_element)
            ))
        })?;
        // Every lot the line names itself, with where: a line has one.
        let mut lots: Vec<(&str, String)> = Vec::new();
        if lot_element > 0 && !first.trimmed(lot_element).is_empty() {
            lots.push((
                first.trimmed(lot_element),
                format!("{}, {}{lot_element:02}", first.at(), first.id),
            ));
        }
        let (item, po_from_lin) = if first.id == "RCD" {
            let lin = line
                .segments
                .iter()
                .find(|s| s.id == "LIN")
                .ok_or_else(|| {
                    MapError::malformed(format!("{}: the RCD loop has no LIN item", first.at()))
                })?;
            for (qualifier, lot) in lin.pairs(2) {
                if qualifier == "LT" {
                    lots.push((lot, format!("{}, LIN LT", lin.at())));
                }
            }
            (lin.product_id(), lin.pair_value(2, &["PO"]))
        } else {
            let id = pairs
                .iter()
                .map(|&at| (first.trimmed(at), first.trimmed(at + 1)))
                .find(|(qualifier, id)| !id.is_empty() && x12::is_item_qualifier(qualifier))
                .map(|(_, id)| id)
                .or_else(|| Some(first.trimmed(upc_element)).filter(|upc| !upc.is_empty()));
            (id.map(str::to_owned), None)
        };
        let item = item.ok_or_else(|| {
            MapError::malformed(format!("{}: the line has no product id", first.at()))
        })?;
        // The `N9` / `REF` numbers with a qualifier in `segments`, each with where it is.
        let refs = |segments: &[&'a Segment<'a>], qualifier: &str| -> Vec<(&'a str, String)> {
            segments
                .iter()
                .filter(|s| (s.id == "N9" || s.id == "REF") && s.trimmed(1) == qualifier)
                .filter(|s| !s.trimmed(2).is_empty())
                .map(|s| (s.trimmed(2), s.at()))
                .collect()
        };
        lots.extend(refs(&line.segments, "LT"));
        // The line's own lot, else its LX loop's.
        let lot = match one_lot(&lots, || format!("{}: two lots for one line", first.at()))? {
            Some(lot) => Some(lot),
            None => one_lot(&refs(in_loop, "LT"), || {
                let lx = in_loop.first().map(|s| s.at()).unwrap_or_default();
                format!("{lx}: two lots for the lines of one LX loop")
            })?,
        };
        let first_ref = |segments: &[&'a Segment<'a>], qualifier: &str| {
            refs(segments, qualifier)
                .into_iter()
                .next()
                .map(|(number, _)| number.to_owned())
        };
        let reference_document = po_from_lin
            .or_else(|| first_ref(&line.segments, "PO"))
            .or_else(|| first_ref(in_loop, "PO"))
            .or_else(|| reference.clone());
        let mut serials: Vec<String> = refs(&line.segments, "SE")
            .into_iter()
            .map(|(serial, _)| serial.to_owned())
            .collect();
        let loop_serials = refs(in_loop, "SE");
        if serials.is_empty() && !loop_serials.is_empty() {
            // The loop's serials are its line's when it has one; with several, whose is which?
            let in_this_loop = self
                .lines
                .iter()
                .filter(|l| l.in_loop.is_some() && l.in_loop == line.in_loop)
                .count();
            if in_this_loop > 1 {
                let lx = in_loop.first().map(|s| s.at()).unwrap_or_default();
                return Err(MapError::malformed(format!(
                    "{lx}: serials ({}) for the {in_this_loop} lines of one LX loop; name each \
                     line's serials (N9*SE) after its line",
                    loop_serials[0].1
                )));
            }
            serials = loop_serials
                .into_iter()
                .map(|(serial, _)| serial.to_owned())
                .collect();
        }
        Ok(Some(InventoryMovement {
            from_location: from_location.clone(),
            to_location: to_location.clone(),
            lot,
            serials,
            stock_status: status,
            reference_document,
            ..InventoryMovement::new(self.movement, item, decimal::quantity(amount, unit))
        }))
    }
}

/// The one lot of `named` (each a lot and where it is named), when they agree; two different
/// lots are an error (`context` says for what: "segment 9 (W12) at line 9: two lots for one
/// line"), since the line's quantity cannot be booked to both.
fn one_lot(
    named: &[(&str, String)],
    context: impl FnOnce() -> String,
) -> Result<Option<String>, MapError> {
    let Some((first, first_at)) = named.first() else {
        return Ok(None);
    };
    if let Some((other, other_at)) = named.iter().find(|(lot, _)| lot != first) {
        return Err(MapError::malformed(format!(
            "{}, '{first}' ({first_at}) and '{other}' ({other_at}); send each lot as its own line",
            context()
        )));
    }
    Ok(Some((*first).to_owned()))
}

millrace_sdk::export_mapper!(map);

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 943 whose sender marks it as a test (`ISA15` `T`).
    const TEST_943: &[u8] = include_bytes!("../fixtures/stupidedi_004010_AR943_pass_1.edi");

    fn message(payload: &[u8]) -> RawMessage {
        RawMessage {
            subject: "raw.edi.plant1.x12-warehouse".to_owned(),
            headers: Vec::new(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn a_test_interchange_is_refused_unless_the_route_maps_them() {
        assert!(x12::parse_all(TEST_943).unwrap()[0].is_test());
        config::set_for_tests([("site", "PLANT1"), ("location", "GR-DEFAULT")]);
        let refused = map(message(TEST_943)).unwrap_err();
        assert_eq!(refused.kind(), "unsupported-document");
        assert!(refused.message().contains("ISA15 is T"), "{refused}");
        config::set_for_tests([
            ("site", "PLANT1"),
            ("location", "GR-DEFAULT"),
            ("test-interchanges", "map"),
        ]);
        assert!(!map(message(TEST_943)).unwrap().is_empty());
        // The same interchange marked for production maps without the setting.
        let production = String::from_utf8(TEST_943.to_vec())
            .unwrap()
            .replacen("*T*", "*P*", 1);
        config::set_for_tests([("site", "PLANT1"), ("location", "GR-DEFAULT")]);
        assert!(!map(message(production.as_bytes())).unwrap().is_empty());
    }
}
