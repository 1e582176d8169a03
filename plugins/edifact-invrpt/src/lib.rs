//! millrace mapping plugin for EDIFACT INVRPT inventory reports (D96A / D01B, EANCOM style) from
//! third-party warehouses.
//!
//! Every `LIN` item line with an actual stock quantity (`QTY+145`) becomes one canonical
//! `inventory-balance`, with its batch as the lot. The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
        for message in interchange.messages_of("INVRPT", "an INVRPT inventory report") {
            let message = message?;
            let report = Report::read(message, &route)?;
            let transaction = interchange.source_transaction(message, report.number);
            let balances = report.balances(&interchange, &route)?;
            events.extend(route.events(&report.occurred_at, &transaction, balances));
        }
    }
    edi::mapped(events, "INVRPT message")
}

/// One INVRPT message: its header facts and its item lines.
struct Report<'a> {
    message: &'a Message<'a>,
    /// The report's own number (`BGM` C106).
    number: Option<&'a str>,
    occurred_at: String,
    /// The warehouse party (`NAD+WH`, else the inventory reporting party `NAD+GY`).
    warehouse: Option<String>,
    /// Each line: the `LIN` segment and the segments after it up to the next line.
    lines: Vec<Vec<&'a Segment<'a>>>,
}

impl<'a> Report<'a> {
    fn read(message: &'a Message<'a>, route: &edi::Route) -> Result<Self, MapError> {
        let header = message.header();
        let bgm = message.beginning(&header)?;
        edifact::refuse_withdrawn(bgm, "the inventory report")?;
        // The stock is as of the inventory report date (DTM 366), else the document date.
        let dtm = qualified(&header, "DTM", &["366", "137"]).ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither an inventory report date (DTM 366) nor a \
                     document date (DTM 137)",
                bgm.at()
            ))
        })?;
        let occurred_at = edifact::dtm_timestamp(dtm, route.utc_offset)?;
        let warehouse = qualified(&header, "NAD", &["WH", "GY"])
            .map(|nad| nad.value(2, 1).trim().to_owned())
            .filter(|s| !s.is_empty());
        Ok(Self {
            message,
            number: Some(bgm.value(2, 1).trim()).filter(|n| !n.is_empty()),
            occurred_at,
            warehouse,
            lines: message.lines()?,
        })
    }

    fn balances(
        &self,
        interchange: &Interchange,
        route: &edi::Route,
    ) -> Result<Vec<InventoryBalance>, MapError> {
        let mut balances = Vec::new();
        for line in &self.lines {
            balances.push(self.balance(line, interchange, route)?);
        }
        if balances.is_empty() {
            return Err(MapError::malformed(format!(
                "message {} (segment {}): the inventory report has no LIN line",
                self.message.reference, self.message.position
            )));
        }
        Ok(balances)
    }

    fn balance(
        &self,
        line: &[&Segment],
        interchange: &Interchange,
        route: &edi::Route,
    ) -> Result<InventoryBalance, MapError> {
        let item = edifact::line_item(line, route.item_qualifier.as_deref())?;
        let Some(lin) = line.first() else {
            return Err(MapError::malformed("an empty LIN group".to_owned()));
        };
        // One line, one balance: stock at several places (or counted twice) in one line is
        // refused rather than read as its first figure.
        for (tag, qualifier, what) in [
            ("QTY", "145", "stock quantities"),
            ("LOC", "18", "places of storage"),
        ] {
            let mut found = line
                .iter()
                .filter(|s| s.tag == tag && s.value(1, 1) == qualifier);
            if let (Some(first), Some(second)) = (found.next(), found.next()) {
                return Err(MapError::unsupported(format!(
                    "{}: the line gives two {what} ({tag} {qualifier} at {} and {}); one \
                     balance per line is read: send one line per place",
                    lin.at(),
                    first.at(),
                    second.at()
                )));
            }
        }
        let qty = edifact::line_qty(line, "145", "actual stock quantity")?;
        let quantity = interchange.stock_quantity(qty)?;
        // Where the stock lies: the line's place of storage (LOC 18), else the warehouse.
        let location = qualified(line, "LOC", &["18"])
            .map(|loc| loc.value(2, 1).trim().to_owned())
            .filter(|l| !l.is_empty())
            .or_else(|| self.warehouse.clone())
            .or_else(|| route.location.clone())
            .ok_or_else(|| {
                MapError::malformed(format!(
                    "{}: neither the line (LOC 18) nor the message (NAD WH or GY) says where the \
                     stock lies, and the route config has no 'location'",
                    lin.at()
                ))
            })?;
        Ok(InventoryBalance {
            lot: edifact::line_batch(line)?,
            ..InventoryBalance::new(item, location, quantity)
        })
    }
}

millrace_sdk::export_mapper!(map);
