//! millrace mapping plugin for EDIFACT RECADV receiving advices (D96A / D01B, EANCOM style).
//!
//! Every received `LIN` line becomes one canonical `inventory-movement` receipt, with its batch as
//! the lot and its expiry (`DTM` 36, else 361) as the expiry date, which `millrace:mapping@1.1.0`
//! added (the plugin targets 1.1.0 in plugin.toml). The field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::edifact::{self, Interchange, Message, Segment};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let interchange =
        edifact::parse(&msg.payload).map_err(|e| MapError::malformed(e.to_string()))?;
    let mut events = Vec::new();
    for message in &interchange.messages {
        if message.message_type != "RECADV" {
            return Err(MapError::unsupported(format!(
                "message {} (segment {}) is an {} message, not a RECADV receiving advice",
                message.reference, message.position, message.message_type
            )));
        }
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
    if events.is_empty() {
        return Err(edi::holds_nothing("received line"));
    }
    Ok(events)
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

fn find<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifier: &str,
) -> Option<&'a Segment<'b>> {
    segments
        .iter()
        .copied()
        .find(|s| s.tag == tag && s.value(1, 1) == qualifier)
}

fn receipts(
    interchange: &Interchange,
    message: &Message,
    offset: timestamp::UtcOffset,
    item_qualifier: Option<&str>,
) -> Result<(String, Option<String>, Vec<InventoryMovement>), MapError> {
    let all: Vec<&Segment> = message.segments.iter().collect();
    let header: Vec<&Segment> = all
        .iter()
        .copied()
        .take_while(|s| s.tag != "CPS" && s.tag != "LIN")
        .collect();
    let bgm = header
        .iter()
        .copied()
        .find(|s| s.tag == "BGM")
        .ok_or_else(|| {
            MapError::malformed(format!(
                "message {} (segment {}): there is no BGM segment",
                message.reference, message.position
            ))
        })?;
    let received = find(&header, "DTM", "50")
        .or_else(|| find(&header, "DTM", "137"))
        .ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither a goods receipt date (DTM 50) nor a document date (DTM 137)",
                bgm.at()
            ))
        })?;
    let occurred_at = edifact::dtm_timestamp(received, offset)?;
    let to_location = ["DP", "ST", "WH"]
        .iter()
        .find_map(|code| find(&header, "NAD", code))
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
    let header_reference = find(&header, "RFF", "ON")
        .or_else(|| find(&header, "RFF", "DQ"))
        .or_else(|| find(&header, "RFF", "AAK"))
        .map(|s| s.value(1, 2).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| Some(bgm.value(2, 1).trim().to_owned()).filter(|s| !s.is_empty()));

    let mut groups: Vec<Vec<&Segment>> = Vec::new();
    let mut in_line = false;
    for segment in all.iter().copied().skip(header.len()) {
        match segment.tag.as_ref() {
            "LIN" => {
                groups.push(vec![segment]);
                in_line = true;
            }
            "CPS" | "CNT" | "UNS" => in_line = false,
            _ if in_line => {
                if let Some(group) = groups.last_mut() {
                    group.push(segment);
                }
            }
            _ => {}
        }
    }
    let mut movements = Vec::new();
    for group in &groups {
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
    let (qty, status) = match find(segments, "QTY", "194") {
        Some(q) => (q, Some(StockStatus::Unrestricted)),
        None => match find(segments, "QTY", "48") {
            Some(q) => (q, None),
            None => return Ok(None),
        },
    };
    let amount = interchange.decimal(qty.value(1, 2)).malformed_at(format!(
        "{}, QTY {} quantity",
        qty.at(),
        qty.value(1, 1)
    ))?;
    if amount == "0" {
        return Ok(None);
    }
    if amount.starts_with('-') {
        return Err(MapError::malformed(format!(
            "{}, QTY {} quantity: '{}' is negative",
            qty.at(),
            qty.value(1, 1),
            qty.value(1, 2)
        )));
    }
    let uom = match qty.value(1, 3).trim() {
        "" => "PCE",
        unit if (1..=3).contains(&unit.len())
            && unit
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            unit
        }
        unit => {
            return Err(MapError::malformed(format!(
                "{}, QTY unit: '{unit}' is not a UN/ECE Recommendation 20 code",
                qty.at()
            )));
        }
    };
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB).
    let lot = edifact::line_batch(segments)?;
    // The lot's expiry (best-before) date: DTM 36 (expiry), else 361 (best before).
    let expiry_date = find(segments, "DTM", "36")
        .or_else(|| find(segments, "DTM", "361"))
        .map(|expiry| dtm(expiry).map(|(date, _)| timestamp::full_date(date)))
        .transpose()?;
    let serials = segments
        .iter()
        .filter(|s| s.tag == "GIN" && s.value(1, 1) == "BN")
        .flat_map(|s| (2..=6).map(move |n| s.value(n, 1).trim().to_owned()))
        .filter(|v| !v.is_empty())
        .collect();
    let reference_document = find(segments, "RFF", "ON")
        .map(|s| s.value(1, 2).trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| header_reference.clone());
    Ok(Some(InventoryMovement {
        to_location: to_location.clone(),
        lot,
        serials,
        stock_status: status,
        reference_document,
        expiry_date,
        ..InventoryMovement::new(MovementType::Receipt, item, Quantity::new(amount, uom))
    }))
}

millrace_sdk::export_mapper!(map);
