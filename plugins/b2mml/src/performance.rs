//! `ProductionPerformance`: each `MaterialActual` of a `SegmentResponse` with `MaterialUse`
//! `Consumed` becomes a `material-consumption`, with `Produced` a `production-completion`.

use millrace_sdk::decimal::Decimal;
use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::quantity::{self, Amount};
use crate::xml;

/// Maps every `ProductionResponse` of a `ProductionPerformance`.
pub(crate) fn map(
    performance: Node<'_, '_>,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    for response in xml::children(performance, "ProductionResponse") {
        let id = xml::require(response, "ID")?;
        // The work order is the request the response answers; a response without one (as the
        // Courbon MES writes them) is identified by its own ID, which is then the order number.
        let work_order = xml::text(response, "ProductionRequestID").unwrap_or(id);
        let transaction = context.document_id.clone().unwrap_or_else(|| id.to_owned());
        for segment in xml::children(response, "SegmentResponse") {
            map_segment(segment, work_order, &transaction, context, events)?;
        }
    }
    Ok(())
}

/// Maps the material actuals of a segment response and of its nested segment responses.
fn map_segment(
    segment: Node<'_, '_>,
    work_order: &str,
    transaction: &str,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    let operation = xml::text(segment, "ProcessSegmentID").or_else(|| xml::text(segment, "ID"));
    for actual in xml::children(segment, "MaterialActual") {
        let data = match xml::text(actual, "MaterialUse") {
            Some("Consumed") => consumption(actual, work_order, operation)?,
            Some("Produced") => completion(actual, work_order, operation)?,
            Some(other) => {
                log::info(
                    "material actual not mapped",
                    &[
                        ("line", &xml::line(actual).to_string()),
                        ("material-use", other),
                    ],
                );
                continue;
            }
            None => {
                return Err(MapError::rejected(format!(
                    "{}: has no MaterialUse, so it cannot tell a consumption from a production",
                    xml::at(actual)
                )));
            }
        };
        events.push(CanonicalEvent {
            site: context.route.site(actual)?,
            occurred_at: occurred_at(actual, context)?,
            source_sequence: None,
            source_transaction: Some(transaction.to_owned()),
            data,
        });
    }
    for nested in xml::children(segment, "SegmentResponse") {
        map_segment(nested, work_order, transaction, context, events)?;
    }
    Ok(())
}

fn consumption(
    actual: Node<'_, '_>,
    work_order: &str,
    operation: Option<&str>,
) -> Result<EventData, MapError> {
    let amounts = quantity::amounts(actual)?;
    let amount = quantity::single(actual, &amounts, |_| false)?.ok_or_else(|| no_amount(actual))?;
    if amount.value <= Decimal::ZERO {
        return Err(MapError::rejected(format!(
            "{}: a consumption of {} is not posted; it must be greater than zero",
            xml::at(actual),
            amount.quantity().amount
        )));
    }
    Ok(EventData::MaterialConsumption(MaterialConsumption {
        work_order: work_order.to_owned(),
        operation: operation.map(str::to_owned),
        item: xml::require(actual, "MaterialDefinitionID")?.to_owned(),
        lot: xml::text(actual, "MaterialLotID").map(str::to_owned),
        quantity: amount.quantity(),
        location: xml::location(actual),
    }))
}

fn completion(
    actual: Node<'_, '_>,
    work_order: &str,
    operation: Option<&str>,
) -> Result<EventData, MapError> {
    let amounts = quantity::amounts(actual)?;
    let good =
        quantity::single(actual, &amounts, quantity::is_scrap)?.ok_or_else(|| no_amount(actual))?;
    let scrap = quantity::single(actual, &amounts, |amount| !quantity::is_scrap(amount))?
        .unwrap_or(Amount {
            value: Decimal::ZERO,
            uom: good.uom.clone(),
            key: None,
        });
    if scrap.uom != good.uom {
        return Err(MapError::rejected(format!(
            "{}: the scrap quantity is in {} but the good quantity in {}",
            xml::at(actual),
            scrap.uom,
            good.uom
        )));
    }
    if good.value < Decimal::ZERO || scrap.value < Decimal::ZERO {
        return Err(MapError::rejected(format!(
            "{}: a produced quantity may not be negative",
            xml::at(actual)
        )));
    }
    Ok(EventData::ProductionCompletion(ProductionCompletion {
        work_order: work_order.to_owned(),
        operation: operation.map(str::to_owned),
        item: xml::require(actual, "MaterialDefinitionID")?.to_owned(),
        lot: xml::text(actual, "MaterialLotID").map(str::to_owned),
        good_quantity: good.quantity(),
        scrap_quantity: scrap.quantity(),
        location: xml::location(actual),
    }))
}

fn no_amount(actual: Node<'_, '_>) -> MapError {
    MapError::rejected(format!(
        "{}: has no Quantity that is an amount (rates such as t/h are not quantities)",
        xml::at(actual)
    ))
}

/// The end of the innermost segment response that has one, else the response's end, else the
/// performance's publication date, else the document's creation time.
fn occurred_at(actual: Node<'_, '_>, context: &Context<'_, '_>) -> Result<String, MapError> {
    let candidates = actual
        .ancestors()
        .filter_map(|node| match node.tag_name().name() {
            "SegmentResponse" => Some(xml::child(node, "ActualEndTime")),
            "ProductionResponse" => Some(xml::child(node, "EndTime")),
            "ProductionPerformance" => Some(xml::child(node, "PublishedDate")),
            _ => None,
        })
        .collect();
    context.occurred_at(
        actual,
        candidates,
        "SegmentResponse/ActualEndTime, ProductionResponse/EndTime, PublishedDate",
    )
}
