//! millrace mapping plugin for EDIFACT INVRPT inventory reports (D96A / D01B, EANCOM style) from
//! third-party warehouses.
//!
//! Every `LIN` item line with an actual stock quantity (`QTY+145`) becomes one canonical
//! `inventory-balance`, with its batch as the lot. The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified, qualified_once};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let mut events = Vec::new();
    let mut stated = Stated::default();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "UNB 0035 is 1")?;
        for message in interchange.messages_of("INVRPT", "an INVRPT inventory report") {
            let message = message?;
            let report = Report::read(&interchange, message, &route)?;
            let transaction = interchange.source_transaction(message, report.number);
            let balances = report.balances(&interchange, &route)?;
            let source = format!(
                "message {} (segment {}{}) of interchange {}",
                message.reference,
                message.position,
                report
                    .number
                    .map(|n| format!(", report {n}"))
                    .unwrap_or_default(),
                interchange.control_reference
            );
            let mut new = Vec::new();
            for balance in balances {
                if stated.add(&balance, &report.occurred_at, &source)? {
                    new.push(balance);
                }
            }
            events.extend(route.events(&report.occurred_at, &transaction, new));
        }
    }
    edi::mapped(events, "INVRPT message")
}

/// The balances the payload's messages stated so far, each with the message that stated it
/// first. A balance sets the stock of its item, batch and place at its instant, so two
/// messages stating different stock for one of them would each set it, the last one winning
/// without a word: within a message such lines are added up (`edi::Balances`), but across
/// messages (a report split into parts, a report sent twice in one payload) which figure holds
/// cannot be told.
#[derive(Default)]
struct Stated {
    /// By instant, item, batch and place: the balance and the message that stated it. A
    /// report may list thousands of lines: each is looked up, never compared with all the
    /// others.
    balances: std::collections::HashMap<StatedKey, (InventoryBalance, String)>,
}

/// The instant, item, batch and place a balance sets.
type StatedKey = (String, String, Option<String>, String);

impl Stated {
    /// Records `balance` of the message `source`, as of `occurred_at`: true when it is new,
    /// false when an earlier message stated the very same stock (a repeat, published once).
    /// Different stock for the same item, batch, place and instant is `rejected-by-rule`,
    /// naming both messages.
    fn add(
        &mut self,
        balance: &InventoryBalance,
        occurred_at: &str,
        source: &str,
    ) -> Result<bool, MapError> {
        let key = (
            occurred_at.to_owned(),
            balance.item.clone(),
            balance.lot.clone(),
            balance.location.clone(),
        );
        let (was, first) = match self.balances.entry(key) {
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert((balance.clone(), source.to_owned()));
                return Ok(true);
            }
            std::collections::hash_map::Entry::Occupied(earlier) => earlier.into_mut(),
        };
        if was.on_hand == balance.on_hand
            && was.allocated == balance.allocated
            && was.blocked == balance.blocked
        {
            return Ok(false);
        }
        Err(MapError::rejected(format!(
            "{source} states {} {} of item {}{} at {} as of {occurred_at}, {first} states {} {}: \
             one place holds one stock level at one instant, and which one holds cannot be told; \
             send each item, batch and place in one message (its lines are added up), or the \
             report again without the other",
            balance.on_hand.amount,
            balance.on_hand.uom,
            balance.item,
            balance
                .lot
                .as_deref()
                .map(|lot| format!(", batch {lot},"))
                .unwrap_or_default(),
            balance.location,
            was.on_hand.amount,
            was.on_hand.uom
        )))
    }
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
    fn read(
        interchange: &Interchange<'a>,
        message: &'a Message<'a>,
        route: &edi::Route,
    ) -> Result<Self, MapError> {
        let header = message.header();
        let bgm = message.beginning(&header)?;
        edifact::refuse_withdrawn(bgm, "the inventory report")?;
        // The stock is as of the inventory report date (DTM 366), else the document date.
        // Each header statement once: two report dates or warehouses with different contents
        // are refused (which one the stock is as of, or lies in, cannot be told).
        let dtm = qualified_once(&header, "DTM", &["366", "137"])?.ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither an inventory report date (DTM 366) nor a \
                     document date (DTM 137)",
                bgm.at()
            ))
        })?;
        let occurred_at = edifact::dtm_timestamp(dtm, route.utc_offset)?;
        let warehouse = qualified_once(&header, "NAD", &["WH", "GY"])?
            .map(|nad| nad.value(2, 1).trim().to_owned())
            .filter(|s| !s.is_empty());
        Ok(Self {
            message,
            number: Some(bgm.value(2, 1).trim()).filter(|n| !n.is_empty()),
            occurred_at,
            warehouse,
            // Sub-lines checked to add up to the lines they split.
            lines: interchange.item_lines(message)?,
        })
    }

    fn balances(
        &self,
        interchange: &Interchange,
        route: &edi::Route,
    ) -> Result<Vec<InventoryBalance>, MapError> {
        let mut balances = edi::Balances::default();
        for line in &self.lines {
            let at = line.first().map(|lin| lin.at()).unwrap_or_default();
            balances.add(self.balance(line, interchange, route)?, at)?;
        }
        if balances.is_empty() {
            return Err(MapError::malformed(format!(
                "message {} (segment {}): the inventory report has no LIN line",
                self.message.reference, self.message.position
            )));
        }
        Ok(balances.into_vec())
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
        // One line, one balance: stock counted twice in one line is refused rather than read
        // as its first figure.
        let mut stock = line
            .iter()
            .filter(|s| s.tag == "QTY" && s.value(1, 1) == "145");
        if let (Some(first), Some(second)) = (stock.next(), stock.next()) {
            return Err(MapError::unsupported(format!(
                "{}: the line gives two stock quantities (QTY 145 at {} and {}); one balance per \
                 line is read: send one line per place",
                lin.at(),
                first.at(),
                second.at()
            )));
        }
        let qty = edifact::line_qty(line, "145", "actual stock quantity")?;
        let quantity = interchange.stock_quantity(qty)?;
        // EANCOM's quantity group (SG11: QTY, then its INV, GIN, LOC, DTM): where and which
        // batch the stock is are said in the group of QTY 145, or in the line before its first
        // QTY; another quantity's group (in transit, QTY 198...) speaks of other goods.
        let first_qty = line
            .iter()
            .position(|s| s.tag == "QTY")
            .unwrap_or(line.len());
        let stock_at = line
            .iter()
            .position(|s| std::ptr::eq(*s, qty))
            .unwrap_or(first_qty);
        let group_end = line[stock_at + 1..]
            .iter()
            .position(|s| s.tag == "QTY")
            .map_or(line.len(), |n| stock_at + 1 + n);
        let scope: Vec<&Segment> = line[..first_qty]
            .iter()
            .chain(&line[stock_at..group_end])
            .copied()
            .collect();
        // The place of storage (LOC 18), else the location of goods (LOC 14).
        let mut places = scope
            .iter()
            .filter(|s| s.tag == "LOC" && matches!(s.value(1, 1), "18" | "14"));
        if let (Some(first), Some(second)) = (places.next(), places.next()) {
            return Err(MapError::unsupported(format!(
                "{}: the line gives two places for its stock (LOC at {} and {}); one balance per \
                 line is read: send one line per place",
                lin.at(),
                first.at(),
                second.at()
            )));
        }
        // Where the stock lies: the line's place, else the warehouse.
        let location = qualified(&scope, "LOC", &["18", "14"])
            .map(|loc| loc.value(2, 1).trim().to_owned())
            .filter(|l| !l.is_empty())
            .or_else(|| self.warehouse.clone())
            .or_else(|| route.location.clone())
            .ok_or_else(|| {
                MapError::malformed(format!(
                    "{}: neither the line (LOC 18 or 14) nor the message (NAD WH or GY) says \
                     where the stock lies, and the route config has no 'location'",
                    lin.at()
                ))
            })?;
        Ok(InventoryBalance {
            lot: edifact::line_batch(&scope)?,
            ..InventoryBalance::new(item, location, quantity)
        })
    }
}

millrace_sdk::export_mapper!(map);
