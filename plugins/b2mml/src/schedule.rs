//! `ProductionSchedule`: each `ProductionRequest` becomes a `work-order-status` `released`, with
//! the item and planned quantity of its `Produced` material requirement.

use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::quantity::{self, Amount};
use crate::xml;

/// Maps every `ProductionRequest` of a `ProductionSchedule`.
pub(crate) fn map(
    schedule: Node<'_, '_>,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    for request in xml::children(schedule, "ProductionRequest") {
        let id = xml::require(request, "ID")?;
        let (item, planned) = produced(request)?;
        let occurred_at = context.occurred_at(
            request,
            vec![xml::child(schedule, "PublishedDate")],
            "ProductionSchedule/PublishedDate",
        )?;
        events.push(CanonicalEvent {
            site: context.route.site(request)?,
            occurred_at,
            source_sequence: None,
            source_transaction: Some(context.document_id.clone().unwrap_or_else(|| id.to_owned())),
            data: EventData::WorkOrderStatus(WorkOrderStatus {
                work_order: id.to_owned(),
                operation: None,
                state: WorkOrderState::Released,
                item,
                planned_quantity: planned.map(|amount| amount.quantity()),
                completed_quantity: None,
                scrapped_quantity: None,
            }),
        });
    }
    Ok(())
}

/// The item and planned amount of the request's `Produced` material requirements (at any
/// segment depth). Several requirements for one item in one unit are added up; co-products
/// (several items) or mixed units leave what cannot be stated as one figure out, with a warning.
fn produced(request: Node<'_, '_>) -> Result<(Option<String>, Option<Amount>), MapError> {
    let namespace = request.tag_name().namespace();
    let requirements = request.descendants().filter(|node| {
        node.is_element()
            && node.tag_name().name() == "MaterialRequirement"
            && node.tag_name().namespace() == namespace
            && xml::text(*node, "MaterialUse") == Some("Produced")
    });
    let mut items: Vec<Option<&str>> = Vec::new();
    let mut amounts: Vec<Option<Amount>> = Vec::new();
    for requirement in requirements {
        items.push(xml::text(requirement, "MaterialDefinitionID"));
        let all = quantity::amounts(requirement)?;
        amounts.push(quantity::single(requirement, &all, |_| false)?);
    }
    let Some(first_item) = items.first().copied().flatten() else {
        return Ok((None, None));
    };
    if items.iter().any(|item| *item != Some(first_item)) {
        log::warn(
            "production request produces several items; item and planned quantity left out",
            &[("line", &xml::line(request).to_string())],
        );
        return Ok((None, None));
    }
    let mut total: Option<Amount> = None;
    for amount in amounts {
        total = match (total, amount) {
            (_, None) => return Ok((Some(first_item.to_owned()), None)),
            (None, Some(amount)) => Some(amount),
            (Some(sum), Some(amount)) if sum.uom == amount.uom => Some(Amount {
                value: sum.value + amount.value,
                ..sum
            }),
            (Some(_), Some(_)) => {
                log::warn(
                    "produced requirements in different units; planned quantity left out",
                    &[("line", &xml::line(request).to_string())],
                );
                return Ok((Some(first_item.to_owned()), None));
            }
        };
    }
    Ok((Some(first_item.to_owned()), total))
}
