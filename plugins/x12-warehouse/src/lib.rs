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
    for interchange in x12::parse_all(&msg.payload)? {
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
            events.extend(route.events(&occurred_at, &transaction, movements));
        }
    }
    edi::mapped(events, "item line to map")
}

/// One warehouse document: its beginning segment, its header and its item lines.
struct Document<'a> {
    set: &'a TransactionSet<'a>,
    begin: &'a Segment<'a>,
    date_element: usize,
    reference_element: usize,
    header: Vec<&'a Segment<'a>>,
    /// Each line: the item segment and the segments after it up to the next line.
    lines: Vec<Vec<&'a Segment<'a>>>,
    movement: MovementType,
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
        let mut header = Vec::new();
        let mut lines: Vec<Vec<&Segment>> = Vec::new();
        for segment in &set.segments {
            if segment.id == line_id {
                lines.push(vec![segment]);
            } else if matches!(segment.id.as_ref(), "LX" | "W03" | "W14" | "W76" | "CTT") {
                // Loop starts and totals end the current line.
                if lines.last().is_some_and(|last| !last.is_empty()) {
                    lines.push(Vec::new());
                }
                header.push(segment);
            } else if let Some(current) = lines.last_mut().filter(|l| !l.is_empty()) {
                current.push(segment);
            } else {
                header.push(segment);
            }
        }
        lines.retain(|l| !l.is_empty());
        Ok(Self {
            set,
            begin,
            date_element,
            reference_element,
            header,
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

    fn header_find(&self, id: &str, qualifier: &str) -> Option<&'a Segment<'a>> {
        self.header
            .iter()
            .copied()
            .find(|s| s.id == id && s.trimmed(1) == qualifier)
    }

    /// When the movement happened: a 944's receipt date and time (`W17`02, `W17`07: the
    /// standard's "date indicating the receipt of a delivery"; a `G62` there dates the shipment
    /// or the advice, not the receipt), else the `G62` shipped (11) or received (09) date, the
    /// `DTM` received date (050) of an 861, else the beginning segment's date.
    fn occurred_at(&self, offset: &str) -> Result<String, MapError> {
        let received = self.begin.id == "W17";
        if let Some(g62) = self
            .header_find("G62", "11")
            .or_else(|| self.header_find("G62", "09"))
            .filter(|_| !received)
        {
            // G62 05 is the time code: its zone, when it names one, before the route's offset.
            return x12::time_zone(g62.element(5), offset)
                .and_then(|offset| x12::timestamp(g62.element(2), g62.element(4), offset))
                .malformed_at(format!("{}, G62 date/time", g62.at()));
        }
        if let Some(dtm) = self.header_find("DTM", "050") {
            return x12::dtm_timestamp(dtm, offset)
                .malformed_at(format!("{}, DTM received date", dtm.at()));
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

    /// The first of the parties `codes` the header names, by its id, else its name.
    fn party(&self, codes: &[&str]) -> Option<String> {
        x12::party(self.header.iter().copied(), codes)
    }

    fn movements(&self) -> Result<Vec<InventoryMovement>, MapError> {
        let reference = Some(self.begin.trimmed(self.reference_element))
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let (from_location, to_location, status) = match self.set.id.as_ref() {
            "943" => (
                self.party(&["SF"]),
                self.party(&["WH", "ST"]),
                Some(StockStatus::InTransit),
            ),
            "945" => (self.party(&["WH", "SF"]), None, None),
            _ => (None, self.party(&["WH", "ST"]), None),
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
        let mut movements = Vec::new();
        let mut total = Decimal::ZERO;
        for line in &self.lines {
            let Some(movement) =
                self.movement(line, &reference, &from_location, &to_location, status)?
            else {
                continue;
            };
            total += decimal::parse(&movement.quantity.amount, '.').unwrap_or_default();
            movements.push(movement);
        }
        self.check_total(total)?;
        Ok(movements)
    }

    /// The total segment (`W03` 01 units shipped, `W14` 01 units received) must add up.
    fn check_total(&self, total: Decimal) -> Result<(), MapError> {
        let Some(totals) = self.header.iter().find(|s| s.id == "W03" || s.id == "W14") else {
            return Ok(());
        };
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
        Ok(())
    }

    fn movement(
        &self,
        line: &[&Segment],
        reference: &Option<String>,
        from_location: &Option<String>,
        to_location: &Option<String>,
        status: Option<StockStatus>,
    ) -> Result<Option<InventoryMovement>, MapError> {
        let Some(first) = line.first() else {
            return Ok(None);
        };
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
        let (item, lot_from_lin, po_from_lin) = if first.id == "RCD" {
            let lin = line.iter().find(|s| s.id == "LIN").ok_or_else(|| {
                MapError::malformed(format!("{}: the RCD loop has no LIN item", first.at()))
            })?;
            (
                lin.product_id(),
                lin.pair_value(2, &["LT"]),
                lin.pair_value(2, &["PO"]),
            )
        } else {
            let id = pairs
                .iter()
                .map(|&at| (first.trimmed(at), first.trimmed(at + 1)))
                .find(|(qualifier, id)| !id.is_empty() && x12::is_item_qualifier(qualifier))
                .map(|(_, id)| id)
                .or_else(|| Some(first.trimmed(upc_element)).filter(|upc| !upc.is_empty()));
            (id.map(str::to_owned), None, None)
        };
        let item = item.ok_or_else(|| {
            MapError::malformed(format!("{}: the line has no product id", first.at()))
        })?;
        let refs = |qualifier: &str| -> Vec<String> {
            line.iter()
                .filter(|s| (s.id == "N9" || s.id == "REF") && s.trimmed(1) == qualifier)
                .map(|s| s.trimmed(2).to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        };
        let lot = Some(first.trimmed(lot_element))
            .filter(|l| lot_element > 0 && !l.is_empty())
            .map(str::to_owned)
            .or(lot_from_lin)
            .or_else(|| refs("LT").into_iter().next());
        let reference_document = po_from_lin
            .or_else(|| refs("PO").into_iter().next())
            .or_else(|| {
                self.header
                    .iter()
                    .find(|s| s.id == "REF" && s.trimmed(1) == "PO")
                    .map(|s| s.trimmed(2).to_owned())
            })
            .or_else(|| reference.clone());
        Ok(Some(InventoryMovement {
            from_location: from_location.clone(),
            to_location: to_location.clone(),
            lot,
            serials: refs("SE"),
            stock_status: status,
            reference_document,
            ..InventoryMovement::new(self.movement, item, decimal::quantity(amount, unit))
        }))
    }
}

millrace_sdk::export_mapper!(map);
