//! `ProductionSchedule` and `OperationsSchedule` (see [`crate::form`]): each production
//! request becomes a `work-order-status` `released`, with the item and planned quantity of its
//! `Produced` material requirement.

use std::borrow::Cow;
use std::collections::HashMap;

use millrace_sdk::decimal;
use millrace_sdk::prelude::*;
use roxmltree::{Node, NodeId};

use crate::context::Context;
use crate::document::{Use, material_use};
use crate::form::{Form, Kind};
use crate::quantity::{self, Amount};
use crate::xml;

/// Maps every production request of a schedule of `form`.
pub(crate) fn map<'a, 'input>(
    form: &Form,
    schedule: Node<'a, 'input>,
    context: &Context<'a, 'input>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    // Looked up once: among the requests, finding it again for each would be quadratic.
    let published = xml::child(schedule, "PublishedDate");
    for request in xml::children(schedule, form.request) {
        // The schema lets a request go without an ID, but a work order needs its number.
        let id = xml::text(request, "ID").ok_or_else(|| {
            MapError::rejected(format!(
                "{}: has no ID, so it names no work order to release",
                xml::at(request)
            ))
        })?;
        match form.kind(request, &context.operations_types) {
            Kind::Production => {}
            Kind::Other(kind) => {
                log::info(
                    "request for other operations than production not mapped",
                    &[("request", &id), ("operations-type", &kind)],
                );
                continue;
            }
            Kind::Mixed { at } => {
                return Err(MapError::rejected(format!(
                    "{}: request {id} is under OperationsType Mixed ({}) without an OperationsType of its own; \
                     cannot tell whether it is a production order (say Production on the request)",
                    xml::at(request),
                    xml::at(at)
                )));
            }
        }
        let (item, planned) = produced(request)?;
        let occurred_at = context.occurred_at(
            request,
            vec![published],
            &format!("{}/PublishedDate", form.schedule),
        )?;
        // The schedule's own identity, for telling a resend from a new schedule: the
        // document's BOD id, else the request's ID with the schedule's time. The request ID
        // alone is the work order number, which every re-planned schedule of the order names:
        // a new plan would be dropped as a resend of the first (as performance.rs reasons for
        // reports). A resend is the same document, so it keeps the same time.
        let transaction = context
            .document_id
            .clone()
            .unwrap_or_else(|| format!("{id}@{occurred_at}"));
        events.push(CanonicalEvent {
            site: context.route.site(request)?,
            occurred_at,
            source_sequence: None,
            source_transaction: Some(transaction),
            data: EventData::WorkOrderStatus(WorkOrderStatus {
                work_order: id.into_owned(),
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
/// segment depth). ISA-95 segment requirements nest, and a segment restates what the segments
/// inside it produce: for each item only the outermost requirements that name it count, and a
/// requirement inside a segment (or request) that already names the item produced is a
/// restatement, not more of it. Requirements at the same level for one item in one unit are
/// added up. Co-products (several items) or mixed units leave what cannot be stated as one
/// figure out, with a warning.
fn produced(request: Node<'_, '_>) -> Result<(Option<String>, Option<Amount>), MapError> {
    let requirements: Vec<(Node<'_, '_>, Option<Cow<'_, str>>)> =
        xml::descendants(request, "MaterialRequirement")
            .filter(|node| {
                xml::text(*node, "MaterialUse")
                    .is_some_and(|text| material_use(&text) == Use::Produced)
            })
            .map(|node| (node, xml::text(node, "MaterialDefinitionID")))
            .collect();
    // The items each element states it produces, by the element holding the requirements.
    let mut stated: HashMap<NodeId, Vec<&str>> = HashMap::new();
    for (node, item) in &requirements {
        if let (Some(holder), Some(item)) = (node.parent_element(), item) {
            stated.entry(holder.id()).or_default().push(item);
        }
    }
    // Whether a segment (or the request) enclosing the requirement's own states the item.
    let restated = |requirement: Node<'_, '_>, item: &str| {
        let mut holder = requirement.parent_element();
        while let Some(current) = holder.filter(|node| *node != request) {
            holder = current.parent_element();
            if holder
                .and_then(|outer| stated.get(&outer.id()))
                .is_some_and(|items| items.contains(&item))
            {
                return true;
            }
        }
        false
    };
    let mut items: Vec<Option<&str>> = Vec::new();
    let mut amounts: Vec<(Node<'_, '_>, Option<Amount>)> = Vec::new();
    for (requirement, item) in &requirements {
        if item
            .as_deref()
            .is_some_and(|item| restated(*requirement, item))
        {
            continue;
        }
        items.push(item.as_deref());
        let all = quantity::amounts(*requirement)?;
        amounts.push((
            *requirement,
            quantity::single(*requirement, &all, |_| false)?,
        ));
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
    for (requirement, amount) in amounts {
        total = match (total, amount) {
            (_, None) => return Ok((Some(first_item.to_owned()), None)),
            (None, Some(amount)) => Some(amount),
            (Some(sum), Some(amount)) if sum.uom == amount.uom => {
                let value = decimal::checked_sum([sum.value, amount.value]).ok_or_else(|| {
                    MapError::malformed(format!(
                        "{}: its planned {} {} takes the request's planned quantity of {first_item} \
                         past the largest decimal number",
                        xml::at(requirement),
                        decimal::to_wit(amount.value),
                        amount.uom
                    ))
                })?;
                Some(Amount { value, ..sum })
            }
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
