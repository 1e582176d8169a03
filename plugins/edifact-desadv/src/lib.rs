//! millrace mapping plugin for EDIFACT DESADV despatch advices (D96A / D01B, EANCOM style).
//!
//! Every DESADV message of an interchange becomes one canonical `shipment-notice`, with one line
//! per `LIN` item. The field mapping and the route configuration keys are documented in this
//! plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
        for message in interchange.messages_of("DESADV", "a DESADV despatch advice") {
            let message = message?;
            let notice = notice(&interchange, message, offset, item_qualifier.as_deref())?;
            events.push(CanonicalEvent {
                site: site.clone(),
                occurred_at: notice.ship_date.clone(),
                source_sequence: None,
                // The shipment id (BGM) is in the event already: the envelope identity suffices.
                source_transaction: Some(interchange.source_transaction(message, None)),
                data: EventData::ShipmentNotice(notice),
            });
        }
    }
    edi::mapped(events, "message")
}

fn notice(
    interchange: &Interchange,
    message: &Message,
    offset: timestamp::UtcOffset,
    item_qualifier: Option<&str>,
) -> Result<ShipmentNotice, MapError> {
    let header = message.header();
    let bgm = match qualified(&header, "BGM", &["351"]) {
        Some(despatch_advice) => despatch_advice,
        None => message.beginning(&header)?,
    };
    edifact::refuse_withdrawn(bgm, "the despatch advice")?;
    let shipment_id = bgm.value(2, 1).trim();
    if shipment_id.is_empty() {
        return Err(MapError::malformed(format!(
            "{}: the document number (BGM C106) is empty",
            bgm.at()
        )));
    }
    let ship = qualified(&header, "DTM", &["11", "137"]).ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the message has neither a despatch date (DTM 11) nor a document date (DTM 137)",
            bgm.at()
        ))
    })?;
    let ship_date = edifact::dtm_timestamp(ship, offset)?;
    let expected_delivery = qualified(&header, "DTM", &["132", "17", "2"])
        .map(|s| edifact::dtm_timestamp(s, offset))
        .transpose()?;
    let supplier = qualified(&header, "NAD", &["SU", "SE", "CZ"])
        .map(|nad| {
            let id = nad.value(2, 1).trim();
            if id.is_empty() {
                nad.value(4, 1).trim()
            } else {
                id
            }
            .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| interchange.sender.to_string());
    let header_po = qualified(&header, "RFF", &["ON"]).map(|s| s.value(1, 2).trim().to_owned());

    let mut lines = Vec::new();
    let mut package: Option<String> = None;
    let mut current: Option<Vec<&Segment>> = None;
    let flush = |segments: Option<Vec<&Segment>>,
                 package: &Option<String>,
                 lines: &mut Vec<ShipmentLine>|
     -> Result<(), MapError> {
        if let Some(segments) = segments {
            lines.push(line(
                &segments,
                package.clone(),
                header_po.clone(),
                interchange,
                item_qualifier,
            )?);
        }
        Ok(())
    };
    // A line its sub-lines break down is left to them, with the segments that follow it.
    let split = message.split_lines()?;
    let mut in_split_line = false;
    for segment in message.segments.iter().skip(header.len()) {
        match segment.tag.as_ref() {
            "CPS" => {
                flush(current.take(), &package, &mut lines)?;
                package = None;
                in_split_line = false;
            }
            "LIN" => {
                flush(current.take(), &package, &mut lines)?;
                in_split_line = split.contains(segment.value(1, 1).trim());
                if !in_split_line {
                    current = Some(vec![segment]);
                }
            }
            "CNT" | "UNS" => {
                flush(current.take(), &package, &mut lines)?;
                in_split_line = false;
            }
            _ if in_split_line => {}
            _ => match current.as_mut() {
                Some(line_segments) => line_segments.push(segment),
                None => {
                    // Packaging level: GIN+BJ carries the SSCC of the package.
                    if segment.tag == "GIN" && segment.value(1, 1) == "BJ" {
                        package = Some(segment.value(2, 1).trim().to_owned());
                    }
                }
            },
        }
    }
    flush(current.take(), &package, &mut lines)?;
    if lines.is_empty() {
        return Err(MapError::malformed(format!(
            "message {} (segment {}): the despatch advice has no LIN line",
            message.reference, message.position
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

fn line(
    segments: &[&Segment],
    package_id: Option<String>,
    header_po: Option<String>,
    interchange: &Interchange,
    item_qualifier: Option<&str>,
) -> Result<ShipmentLine, MapError> {
    let item = edifact::line_item(segments, item_qualifier)?;
    let qty = edifact::line_qty(segments, "12", "despatch quantity")?;
    // A line ships something: a negative or zero despatch quantity is refused, as an X12 856's
    // is, never published as a line of nothing.
    let quantity = interchange.stock_quantity(qty)?;
    if quantity.amount == "0" {
        return Err(MapError::malformed(format!(
            "{}, QTY 12 quantity: '{}' is not positive",
            qty.at(),
            qty.value(1, 2)
        )));
    }
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB).
    let lot = edifact::line_batch(segments)?;
    let purchase_order = qualified(segments, "RFF", &["ON"])
        .map(|s| s.value(1, 2).trim().to_owned())
        .or(header_po);
    Ok(ShipmentLine {
        item,
        quantity,
        lot,
        serials: edifact::line_serials(segments)?,
        purchase_order,
        package_id,
    })
}

millrace_sdk::export_mapper!(map);
