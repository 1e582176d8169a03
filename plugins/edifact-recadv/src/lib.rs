//! millrace mapping plugin for EDIFACT RECADV receiving advices (D96A / D01B, EANCOM style).
//!
//! Every received `LIN` line becomes one canonical `inventory-movement` receipt, with its batch as
//! the lot and its expiry (`DTM` 36, else 361) as the expiry date, which `millrace:mapping@1.1.0`
//! added (the plugin targets 1.1.0 in plugin.toml). The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified_once};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "UNB 0035 is 1")?;
        for message in interchange.messages_of("RECADV", "a RECADV receiving advice") {
            let message = message?;
            let (occurred_at, document, movements) =
                receipts(&interchange, message, offset, item_qualifier.as_deref())?;
            // The envelope identity, then the advice's own number (BGM), the one a clerk searches.
            let transaction = interchange.source_transaction(message, document.as_deref());
            for movement in movements {
                events.push(CanonicalEvent {
                    site: site.clone(),
                    occurred_at: occurred_at.clone(),
                    source_sequence: None,
                    source_transaction: Some(transaction.clone()),
                    data: EventData::InventoryMovement(movement),
                });
            }
        }
    }
    edi::mapped(events, "received line")
}

/// Reads a `DTM` segment as a date and optional time (its zone, if any, does not change a date).
fn dtm(segment: &Segment) -> Result<(timestamp::Date, Option<timestamp::Time>), MapError> {
    edifact::date_time(segment.value(1, 2), segment.value(1, 3)).map_err(|e| {
        MapError::malformed(format!(
            "{}, DTM {}: {e}",
            segment.at(),
            segment.value(1, 1)
        ))
    })
}

/// The day an expiry (or best-before) `DTM` names. A month (format `610`, `CCYYMM`, as
/// best-before months are printed) means its last day, and so does day `00` of a date in format
/// `102` (`CCYYMM00`) or `101` (`YYMM00`, the exact form of a GS1 expiry or best-before date,
/// AI (17) and (15)), as GS1 says of day `00`. An error quotes the value as sent.
fn expiry_day(segment: &Segment) -> Result<timestamp::Date, MapError> {
    let (value, format) = (segment.value(1, 2).trim(), segment.value(1, 3).trim());
    let refused = |expected: &str| {
        MapError::malformed(format!(
            "{}, DTM {}: '{value}' is not {expected}",
            segment.at(),
            segment.value(1, 1)
        ))
    };
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    let (month, expected) = match (format, value.len()) {
        ("610", _) => (
            value
                .get(..6)
                .filter(|_| value.len() == 6 && digits)
                .and_then(|month| timestamp::parse_date(&format!("{month}01")).ok()),
            "a month of format 610 (CCYYMM)",
        ),
        // Day 00: the month's last day. The first of the month is read by the format's own
        // rule (the century of a two-digit year), then moved to the month's end.
        ("102" | "", 8) | ("101", 6) if digits && value.ends_with("00") => {
            let first = format!("{}01", &value[..value.len() - 2]);
            let (pattern, format) = if format == "101" {
                (
                    "a date of format 101 (YYMMDD; day 00 is the month's last day)",
                    "101",
                )
            } else {
                (
                    "a date of format 102 (CCYYMMDD; day 00 is the month's last day)",
                    "102",
                )
            };
            (
                edifact::date_time(&first, format)
                    .ok()
                    .map(|(date, _)| date),
                pattern,
            )
        }
        _ => {
            let (date, time) = dtm(segment)?;
            // An expiry is a day: one stated at 2400, its end, is that day, not the next
            // day's first instant the time is read as.
            let hour_at = if format == "201" { 6 } else { 8 };
            let end_of_day = time.is_some() && value.get(hour_at..hour_at + 2) == Some("24");
            return Ok(if end_of_day {
                date.previous_day().unwrap_or(date)
            } else {
                date
            });
        }
    };
    month
        .map(|first| {
            first
                .replace_day(first.month().length(first.year()))
                .unwrap_or(first)
        })
        .ok_or_else(|| refused(expected))
}

fn receipts(
    interchange: &Interchange,
    message: &Message,
    offset: timestamp::UtcOffset,
    item_qualifier: Option<&str>,
) -> Result<(String, Option<String>, Vec<InventoryMovement>), MapError> {
    let header = message.header();
    let bgm = message.beginning(&header)?;
    edifact::refuse_not_original(bgm, "the receiving advice")?;
    // Each header statement once: a receipt date or delivery party stated twice with different
    // contents is refused (which one holds cannot be told), as two orders are.
    let received = qualified_once(&header, "DTM", &["50", "137"])?.ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither a goods receipt date (DTM 50) nor a document date (DTM 137)",
                bgm.at()
            ))
        })?;
    let occurred_at = edifact::dtm_timestamp(received, offset)?;
    let to_location = qualified_once(&header, "NAD", &["DP", "ST", "WH"])?
        .map(|nad| nad.value(2, 1).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| config::get("location"));
    if to_location.is_none() {
        return Err(MapError::malformed(format!(
            "message {} (segment {}): no delivery party (NAD DP, ST or WH) says where the goods \
             were received, and the route config has no 'location'",
            message.reference, message.position
        )));
    }
    let references = edifact::HeaderReference::of(&header, REFERENCES);
    let advice = Some(bgm.value(2, 1).trim().to_owned()).filter(|s| !s.is_empty());

    let packaging = edifact::Packaging::read(message)?;
    let mut movements = Vec::new();
    for group in &interchange.item_lines(message)? {
        if let Some(movement) = receipt(
            group,
            &packaging,
            interchange,
            &to_location,
            &references,
            &advice,
            item_qualifier,
        )? {
            movements.push(movement);
        }
    }
    if movements.is_empty() {
        return Err(MapError::malformed(format!(
            "message {} (segment {}): no LIN line with a received quantity (QTY 48 or 194)",
            message.reference, message.position
        )));
    }
    let document = Some(bgm.value(2, 1).trim().to_owned()).filter(|s| !s.is_empty());
    Ok((occurred_at, document, movements))
}

/// The references a receipt names, in this order: the order (`RFF+ON`), the delivery note
/// (`DQ`), the despatch advice (`AAK`); the line's own, else its package's (or the nearest
/// package's above), else the header's.
const REFERENCES: &[&str] = &["ON", "DQ", "AAK"];

fn receipt(
    segments: &[&Segment],
    packaging: &edifact::Packaging,
    interchange: &Interchange,
    to_location: &Option<String>,
    references: &edifact::HeaderReference,
    advice: &Option<String>,
    item_qualifier: Option<&str>,
) -> Result<Option<InventoryMovement>, MapError> {
    if segments.is_empty() {
        return Ok(None);
    }
    let item = edifact::line_item(segments, item_qualifier)?;
    let Some((quantity, status)) = received(segments, interchange)? else {
        return Ok(None);
    };
    if quantity.amount == "0" {
        return Ok(None);
    }
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB), else
    // the one marked on the package the line lies in.
    let lot = packaging.batch(segments)?;
    // The lot's expiry (best-before) date: DTM 36 (expiry), else 361 (best before).
    // Each once: of two expiry dates, which is the lot's cannot be told.
    let expiry = match edifact::sole(segments, "DTM", "36")? {
        Some(expiry) => Some(expiry),
        None => edifact::sole(segments, "DTM", "361")?,
    };
    let expiry_date = expiry
        .map(|expiry| expiry_day(expiry).map(timestamp::full_date))
        .transpose()?;
    let reference_document = references
        .for_packed_line(segments, packaging, REFERENCES)?
        .or_else(|| advice.clone());
    Ok(Some(InventoryMovement {
        to_location: to_location.clone(),
        lot,
        serials: edifact::line_serials(segments)?,
        stock_status: status,
        reference_document,
        expiry_date,
        ..InventoryMovement::new(MovementType::Receipt, item, quantity)
    }))
}

/// What a line received into stock, and its status: `QTY+194` (received and accepted) as free
/// stock, else `QTY+48` (received) less what it says was not accepted (`195` to be returned,
/// `196` to be destroyed), free stock too when any was refused, status not stated when none was.
/// Each quantity once: a second one of a kind is an error, since booking the first alone would
/// lose the other. `None` when the line states neither 194 nor 48.
fn received(
    segments: &[&Segment],
    interchange: &Interchange,
) -> Result<Option<(Quantity, Option<StockStatus>)>, MapError> {
    if let Some(accepted) = edifact::sole(segments, "QTY", "194")? {
        let accepted = interchange.stock_quantity(accepted)?;
        return Ok(Some((accepted, Some(StockStatus::Unrestricted))));
    }
    let Some(qty) = edifact::sole(segments, "QTY", "48")? else {
        return Ok(None);
    };
    let received = interchange.stock_quantity(qty)?;
    let mut accepted = decimal::parse(&received.amount, '.').malformed_at(qty.at())?;
    let mut refused = false;
    for qualifier in ["195", "196"] {
        let Some(not_accepted) = edifact::sole(segments, "QTY", qualifier)? else {
            continue;
        };
        let amount = interchange.stock_quantity(not_accepted)?;
        if amount.uom != received.uom {
            return Err(MapError::malformed(format!(
                "{}: QTY {qualifier} (not accepted) is in {}, the received QTY 48 in {}; what was \
                 accepted cannot be worked out",
                not_accepted.at(),
                amount.uom,
                received.uom
            )));
        }
        accepted -= decimal::parse(&amount.amount, '.').malformed_at(not_accepted.at())?;
        refused = true;
    }
    if accepted.is_sign_negative() {
        return Err(MapError::malformed(format!(
            "{}: the line refuses more (QTY 195/196) than it received (QTY 48 {})",
            qty.at(),
            qty.value(1, 2).trim()
        )));
    }
    if !refused {
        return Ok(Some((received, None)));
    }
    Ok(Some((
        decimal::quantity(accepted, &received.uom),
        Some(StockStatus::Unrestricted),
    )))
}

millrace_sdk::export_mapper!(map);
