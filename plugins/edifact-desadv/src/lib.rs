//! millrace mapping plugin for EDIFACT DESADV despatch advices (D96A / D01B, EANCOM style).
//!
//! Every DESADV message of an interchange becomes one canonical `shipment-notice`, with one line
//! per `LIN` item. The field mapping and the route configuration keys are documented in this
//! plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
use millrace_sdk::edifact::{self, Interchange, Message, Segment, qualified_once};
use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let (site, offset, item_qualifier) = (&route.site, route.utc_offset, &route.item_qualifier);
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in edifact::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "UNB 0035 is 1")?;
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
    // Each header statement once: a despatch date, delivery date or supplier stated twice with
    // different contents is refused (which one holds cannot be told), as two orders are.
    let bgm = match qualified_once(&header, "BGM", &["351"])? {
        Some(despatch_advice) => despatch_advice,
        None => message.beginning(&header)?,
    };
    edifact::refuse_not_original(bgm, "the despatch advice")?;
    let shipment_id = bgm.value(2, 1).trim();
    if shipment_id.is_empty() {
        return Err(MapError::malformed(format!(
            "{}: the document number (BGM C106) is empty",
            bgm.at()
        )));
    }
    let ship = qualified_once(&header, "DTM", &["11", "137"])?.ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the message has neither a despatch date (DTM 11) nor a document date (DTM 137)",
            bgm.at()
        ))
    })?;
    let ship_date = edifact::dtm_timestamp(ship, offset)?;
    let delivery = qualified_once(&header, "DTM", &["132", "17", "2"])?;
    let expected_delivery = delivery
        .map(|s| edifact::dtm_timestamp(s, offset))
        .transpose()?;
    if let Some(delivery) = delivery {
        warn_delivery_before_despatch(ship, delivery, offset);
    }
    let supplier = qualified_once(&header, "NAD", &["SU", "SE", "CZ"])?
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
    let orders = edifact::HeaderReference::of(&header, &["ON"]);
    let packaging = edifact::Packaging::read(message)?;
    let mut lines = Vec::new();
    for segments in interchange.item_lines(message)? {
        lines.push(line(
            &segments,
            &packaging,
            &orders,
            interchange,
            item_qualifier,
        )?);
    }
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

/// Logs a warning when the expected delivery is earlier than the despatch: a placeholder date
/// (`DTM+17:11110101:102`, as one partner sends when it has none) or a typing error. The date
/// is still published as sent: what the partner meant instead cannot be told, and no rule says
/// which dates are placeholders.
fn warn_delivery_before_despatch(ship: &Segment, delivery: &Segment, offset: timestamp::UtcOffset) {
    let instant = |dtm: &Segment| {
        edifact::zoned_date_time(dtm.value(1, 2), dtm.value(1, 3))
            .ok()
            .map(|read| {
                read.date
                    .with_time(read.time.unwrap_or(timestamp::Time::MIDNIGHT))
                    .assume_offset(read.offset.unwrap_or(offset))
            })
    };
    if let (Some(shipped), Some(expected)) = (instant(ship), instant(delivery))
        && expected < shipped
    {
        log::warn(
            "the expected delivery is earlier than the despatch; published as sent (a \
             placeholder date?)",
            &[
                ("delivery", &delivery.at()),
                ("delivery_date", delivery.value(1, 2)),
                ("despatch", &ship.at()),
                ("despatch_date", ship.value(1, 2)),
            ],
        );
    }
}

fn line(
    segments: &[&Segment],
    packaging: &edifact::Packaging,
    orders: &edifact::HeaderReference,
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
    // The batch, wherever the partner put it (GIN BX, PCI 36E, RFF BT, GIR BX, PIA NB), else
    // the one marked on the package the line lies in.
    let lot = packaging.batch(segments)?;
    // The order: the line's own, else the one marked on its package (or the nearest above),
    // else the header's.
    let purchase_order = orders.for_packed_line(segments, packaging, &["ON"])?;
    Ok(ShipmentLine {
        item,
        quantity,
        lot,
        serials: edifact::line_serials(segments)?,
        purchase_order,
        package_id: packaging.sscc(segments),
    })
}

millrace_sdk::export_mapper!(map);
