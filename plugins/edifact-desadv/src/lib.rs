//! millrace mapping plugin for EDIFACT DESADV despatch advices (D96A / D01B, EANCOM style).
//!
//! Every DESADV message of an interchange becomes one canonical `shipment-notice`, with one line
//! per `LIN` item. The field mapping and the route configuration keys are documented in this
//! plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
use millrace_sdk::edifact::{self, Interchange, Message, Segment};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let interchange =
        edifact::parse(&msg.payload).map_err(|e| MapError::malformed(e.to_string()))?;
    let mut events = Vec::new();
    for message in &interchange.messages {
        if message.message_type != "DESADV" {
            return Err(MapError::unsupported(format!(
                "message {} (segment {}) is an {} message, not a DESADV despatch advice",
                message.reference, message.position, message.message_type
            )));
        }
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
    if events.is_empty() {
        return Err(edi::holds_nothing("message"));
    }
    Ok(events)
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

fn notice(
    interchange: &Interchange,
    message: &Message,
    offset: timestamp::UtcOffset,
    item_qualifier: Option<&str>,
) -> Result<ShipmentNotice, MapError> {
    let all: Vec<&Segment> = message.segments.iter().collect();
    let header: Vec<&Segment> = all
        .iter()
        .copied()
        .take_while(|s| s.tag != "CPS" && s.tag != "LIN")
        .collect();
    let bgm = find(&header, "BGM", "351")
        .or_else(|| header.iter().copied().find(|s| s.tag == "BGM"))
        .ok_or_else(|| {
            MapError::malformed(format!(
                "message {} (segment {}): there is no BGM segment",
                message.reference, message.position
            ))
        })?;
    let shipment_id = bgm.value(2, 1).trim();
    if shipment_id.is_empty() {
        return Err(MapError::malformed(format!(
            "{}: the document number (BGM C106) is empty",
            bgm.at()
        )));
    }
    let ship = find(&header, "DTM", "11")
        .or_else(|| find(&header, "DTM", "137"))
        .ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the message has neither a despatch date (DTM 11) nor a document date (DTM 137)",
                bgm.at()
            ))
        })?;
    let ship_date = edifact::dtm_timestamp(ship, offset)?;
    let expected_delivery = find(&header, "DTM", "132")
        .or_else(|| find(&header, "DTM", "17"))
        .or_else(|| find(&header, "DTM", "2"))
        .map(|s| edifact::dtm_timestamp(s, offset))
        .transpose()?;
    let supplier = ["SU", "SE", "CZ"]
        .iter()
        .find_map(|code| find(&header, "NAD", code))
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
    let header_po = find(&header, "RFF", "ON").map(|s| s.value(1, 2).trim().to_owned());

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
    for segment in all.iter().copied().skip(header.len()) {
        match segment.tag.as_ref() {
            "CPS" => {
                flush(current.take(), &package, &mut lines)?;
                package = None;
            }
            "LIN" => {
                flush(current.take(), &package, &mut lines)?;
                current = Some(vec![segment]);
            }
            "CNT" | "UNS" => {
                flush(current.take(), &package, &mut lines)?;
            }
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
    let Some(lin) = segments.first() else {
        return Err(MapError::malformed("an empty LIN group".to_owned()));
    };
    let qty = find(segments, "QTY", "12").ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the line has no despatch quantity (QTY 12)",
            lin.at()
        ))
    })?;
    let amount = interchange
        .decimal(qty.value(1, 2))
        .malformed_at(format!("{}, QTY 12 quantity", qty.at()))?;
    // EANCOM: without a unit the quantity counts pieces.
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
                "{}, QTY 12 unit: '{unit}' is not a UN/ECE Recommendation 20 code",
                qty.at()
            )));
        }
    };
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB).
    let lot = edifact::line_batch(segments)?;
    let serials = segments
        .iter()
        .filter(|s| s.tag == "GIN" && s.value(1, 1) == "BN")
        .flat_map(|s| (2..=6).map(move |n| s.value(n, 1).trim().to_owned()))
        .filter(|v| !v.is_empty())
        .collect();
    let purchase_order = find(segments, "RFF", "ON")
        .map(|s| s.value(1, 2).trim().to_owned())
        .or(header_po);
    Ok(ShipmentLine {
        item,
        quantity: Quantity {
            amount,
            uom: uom.to_owned(),
        },
        lot,
        serials,
        purchase_order,
        package_id,
    })
}

millrace_sdk::export_mapper!(map);
