//! `ProductionSchedule` and `OperationsSchedule` (see [`crate::form`]): each production
//! request becomes a `work-order-status` `released`, with the item and planned quantity of its
//! `Produced` material requirement.

use std::borrow::Cow;

use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::document::{Use, material_use};
use crate::form::{Form, Kind};
use crate::quantity::{self, Amount};
use crate::xml;

/// Maps every production request of a schedule of `form`.
pub(crate) fn map(
    form: &Form,
    schedule: Node<'_, '_>,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    for request in xml::children(schedule, form.request) {
        // The schema lets a request go without an ID, but a work order needs its number.
        let id = xml::text(request, "ID").ok_or_else(|| {
            MapError::rejected(format!(
                "{}: has no ID, so it names no work order to release",
                xml::at(request)
            ))
        })?;
        match form.kind(request) {
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
            vec![xml::child(schedule, "PublishedDate")],
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
/// segment depth). Several requirements for one item in one unit are added up; co-products
/// (several items) or mixed units leave what cannot be stated as one figure out, with a warning.
fn produced(request: Node<'_, '_>) -> Result<(Option<String>, Option<Amount>), MapError> {
    let requirements = xml::descendants(request, "MaterialRequirement").filter(|node| {
        xml::text(*node, "MaterialUse").is_some_and(|text| material_use(&text) == Use::Produced)
    });
    let mut items: Vec<Option<Cow<'_, str>>> = Vec::new();
    let mut amounts: Vec<Option<Amount>> = Vec::new();
    for requirement in requirements {
        items.push(xml::text(requirement, "MaterialDefinitionID"));
        let all = quantity::amounts(requirement)?;
        amounts.push(quantity::single(requirement, &all, |_| false)?);
    }
    let Some(first_item) = items.first().cloned().flatten() else {
        return Ok((None, None));
    };
    if items.iter().any(|item| item.as_ref() != Some(&first_item)) {
        log::warn(
            "production request produces several items; item and planned quantity left out",
            &[("line", &xml::line(request).to_string())],
        );
        return Ok((None, None));
    }
    let mut total: Option<Amount> = None;
    for amount in amounts {
        total = match (total, amount) {
            (_, None) => return Ok((Some(first_item.to_string()), None)),
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
                return Ok((Some(first_item.to_string()), None));
            }
        };
    }
    Ok((Some(first_item.to_string()), total))
}
