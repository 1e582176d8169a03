//! millrace mapping plugin for EDIFACT RECADV receiving advices (D96A / D01B, EANCOM style).
//!
//! Every received `LIN` line becomes one canonical `inventory-movement` receipt, with its batch as
//! the lot and its expiry (`DTM` 36, else 361) as the expiry date, which `millrace:mapping@1.1.0`
//! added (the plugin targets 1.1.0 in plugin.toml). The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
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

/// The day an expiry `DTM` names. A month (format `610`, `CCYYMM`, as best-before months are
/// printed) means its last day, as GS1's expiry date with day `00` does.
fn expiry_day(segment: &Segment) -> Result<timestamp::Date, MapError> {
    let (value, format) = (segment.value(1, 2).trim(), segment.value(1, 3).trim());
    if format != "610" {
        return dtm(segment).map(|(date, _)| date);
    }
    let month = value
        .get(..6)
        .filter(|_| value.len() == 6)
        .and_then(|month| timestamp::parse_date(&format!("{month}01")).ok());
    month
        .map(|first| {
            first
                .replace_day(first.month().length(first.year()))
                .unwrap_or(first)
        })
        .ok_or_else(|| {
            MapError::malformed(format!(
                "{}, DTM {}: '{value}' is not a month of format 610 (CCYYMM)",
                segment.at(),
                segment.value(1, 1)
            ))
        })
}

fn receipts(
    interchange: &Interchange,
    message: &Message,
    offset: timestamp::UtcOffset,
    item_qualifier: Option<&str>,
) -> Result<(String, Option<String>, Vec<InventoryMovement>), MapError> {
    let header = message.header();
    let bgm = message.beginning(&header)?;
    edifact::refuse_withdrawn(bgm, "the receiving advice")?;
    let received = qualified(&header, "DTM", &["50", "137"]).ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither a goods receipt date (DTM 50) nor a document date (DTM 137)",
                bgm.at()
            ))
        })?;
    let occurred_at = edifact::dtm_timestamp(received, offset)?;
    let to_location = qualified(&header, "NAD", &["DP", "ST", "WH"])
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
    let header_reference = qualified(&header, "RFF", &["ON", "DQ", "AAK"])
        .map(|s| s.value(1, 2).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| Some(bgm.value(2, 1).trim().to_owned()).filter(|s| !s.is_empty()));

    let mut movements = Vec::new();
    for group in &message.lines()? {
        if let Some(movement) = receipt(
            group,
            interchange,
            &to_location,
            &header_reference,
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

fn receipt(
    segments: &[&Segment],
    interchange: &Interchange,
    to_location: &Option<String>,
    header_reference: &Option<String>,
    item_qualifier: Option<&str>,
) -> Result<Option<InventoryMovement>, MapError> {
    if segments.is_empty() {
        return Ok(None);
    }
    let item = edifact::line_item(segments, item_qualifier)?;
    // 194 received and accepted: free stock; 48 received: status not stated.
    let (qty, status) = match qualified(segments, "QTY", &["194"]) {
        Some(q) => (q, Some(StockStatus::Unrestricted)),
        None => match qualified(segments, "QTY", &["48"]) {
            Some(q) => (q, None),
            None => return Ok(None),
        },
    };
    // A second quantity of the same kind: which one the line received cannot be told (INVRPT
    // refuses the same), and booking the first alone would lose the other.
    if let Some(other) = segments
        .iter()
        .filter(|s| s.tag == "QTY" && s.value(1, 1) == qty.value(1, 1))
        .nth(1)
    {
        return Err(MapError::malformed(format!(
            "{}: the line states QTY {} twice ({} and {}); one receipt books one quantity: send \
             one line (or sub-line) per batch",
            qty.at(),
            qty.value(1, 1),
            qty.value(1, 2),
            other.value(1, 2)
        )));
    }
    let quantity = interchange.stock_quantity(qty)?;
    if quantity.amount == "0" {
        return Ok(None);
    }
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB).
    let lot = edifact::line_batch(segments)?;
    // The lot's expiry (best-before) date: DTM 36 (expiry), else 361 (best before).
    let expiry_date = qualified(segments, "DTM", &["36", "361"])
        .map(|expiry| expiry_day(expiry).map(timestamp::full_date))
        .transpose()?;
    let reference_document = qualified(segments, "RFF", &["ON"])
        .map(|s| s.value(1, 2).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| header_reference.clone());
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

millrace_sdk::export_mapper!(map);
