//! `ProductionSchedule` and `OperationsSchedule` (see [`crate::form`]): each production
//! request becomes a `work-order-status` `released`, with the item and planned quantity of its
//! `Produced` material requirement.

use std::borrow::Cow;
use std::collections::HashMap;

use millrace_sdk::decimal;
use millrace_sdk::prelude::*;
use roxmltree::{Node, NodeId};
use time::OffsetDateTime;

use crate::context::Context;
use crate::document::{Use, material_use};
use crate::form::{Form, Kind};
use crate::quantity::{self, Amount};
use crate::route::Route;
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
        let planned = produced(form, request)?;
        if let Some((why, at)) = &planned.left_out {
            log::warn(why, &[("request", &id), ("at", at)]);
        }
        let (occurred_at, transaction) = match context
            .route
            .first_timestamp([published, context.created])?
        {
            // The schedule's own identity, for telling a resend from a new schedule: the
            // document's BOD id, else the request's ID with the schedule's time. The request
            // ID alone is the work order number, which every re-planned schedule of the order
            // names: a new plan would be dropped as a resend of the first (as performance.rs
            // reasons for reports). A resend is the same document, so it keeps the same time.
            Some(time) => {
                let transaction = context
                    .document_id
                    .clone()
                    .unwrap_or_else(|| format!("{id}@{time}"));
                (time, transaction)
            }
            None if !context.route.release_by_planned_start => {
                return Err(MapError::rejected(format!(
                    "{}: no time to date the release of {id} by: the {} has no PublishedDate \
                     (and no ApplicationArea/CreationDateTime); route config key 'release_time' \
                     = \"planned-start\" dates it by the request's planned start (and the \
                     route's limits.max_ahead must then cover how far ahead plans are sent: a \
                     release dated further ahead of the host's clock is an invalid event)",
                    xml::at(request),
                    form.schedule,
                )));
            }
            None => {
                let start = planned_start(schedule, request, &context.route)?.ok_or_else(|| {
                    MapError::rejected(format!(
                        "{}: no time to date the release of {id} by: the {} has no PublishedDate \
                         (and no ApplicationArea/CreationDateTime), and no planned start \
                         ({}/StartTime, SegmentRequirement/EarliestStartTime, {}/StartTime) \
                         stands in for it",
                        xml::at(request),
                        form.schedule,
                        form.request,
                        form.schedule
                    ))
                })?;
                log::warn(
                    "the schedule has no PublishedDate (and no ApplicationArea/CreationDateTime): \
                     the release is dated by the request's planned start, which may lie ahead \
                     of the time it was released",
                    &[("request", &id), ("dated-by", &xml::at(start))],
                );
                // A re-planned schedule that keeps the planned start has the same time: the
                // time would take it for a resend. The digest of the document's bytes is the
                // same for a resend only.
                let transaction = context
                    .document_id
                    .clone()
                    .unwrap_or_else(|| format!("{id}@{}", context.digest()));
                (context.route.timestamp(start)?, transaction)
            }
        };
        events.push(CanonicalEvent {
            site: context.route.site(request)?,
            occurred_at,
            source_sequence: None,
            source_transaction: Some(transaction),
            data: EventData::WorkOrderStatus(WorkOrderStatus {
                work_order: id.into_owned(),
                operation: None,
                state: WorkOrderState::Released,
                item: planned.item,
                planned_quantity: planned.quantity.map(|amount| amount.quantity()),
                completed_quantity: None,
                scrapped_quantity: None,
            }),
        });
    }
    Ok(())
}

/// The planned start of a request, which dates its release when the schedule states no time
/// of its own: the request's `StartTime`, else the earliest `EarliestStartTime` of its segment
/// requirements (at any depth), else the schedule's `StartTime`. Every one of them is a valid,
/// non-empty `dateTime` (checked before anything is mapped).
fn planned_start<'a, 'input>(
    schedule: Node<'a, 'input>,
    request: Node<'a, 'input>,
    route: &Route,
) -> Result<Option<Node<'a, 'input>>, MapError> {
    if let Some(start) = xml::child(request, "StartTime") {
        return Ok(Some(start));
    }
    let mut earliest: Option<(OffsetDateTime, Node<'a, 'input>)> = None;
    for start in xml::descendants(request, "EarliestStartTime") {
        let instant = route.instant(start)?;
        if earliest.is_none_or(|(before, _)| instant < before) {
            earliest = Some((instant, start));
        }
    }
    Ok(earliest
        .map(|(_, start)| start)
        .or_else(|| xml::child(schedule, "StartTime")))
}

/// What a request's produced requirements say it makes, for its release.
#[derive(Debug, Default)]
struct Planned {
    /// The one item produced.
    item: Option<String>,
    /// Its planned amount.
    quantity: Option<Amount>,
    /// Why the item or the quantity was left out, where a requirement states them but they
    /// cannot be stated as one item and one figure: a warning, and where it was found.
    left_out: Option<(&'static str, String)>,
}

/// The item and planned amount of the request's `Produced` material requirements (at any
/// segment depth): the `MaterialRequirement`s with `MaterialUse` `Produced` and, in the
/// production form, the `MaterialProducedRequirement`s. ISA-95 segment requirements nest, and a
/// segment restates what the segments inside it produce: for each item only the outermost
/// requirements that name it count, and a requirement inside a segment (or request) that
/// already names the item produced is a restatement, not more of it. Requirements at the same
/// level for one item in one unit are added up. Co-products (several items), mixed units or a
/// requirement naming no item leave what cannot be stated as one figure out, with a warning.
fn produced(form: &Form, request: Node<'_, '_>) -> Result<Planned, MapError> {
    let stated_produced = |node: &Node<'_, '_>| {
        xml::text(*node, "MaterialUse").is_some_and(|text| material_use(&text) == Use::Produced)
    };
    let mut requirements: Vec<(Node<'_, '_>, Option<Cow<'_, str>>)> =
        xml::descendants(request, "MaterialRequirement")
            .filter(stated_produced)
            .chain(
                form.produced_requirement
                    .into_iter()
                    .flat_map(|name| xml::descendants(request, name)),
            )
            .map(|node| (node, xml::text(node, "MaterialDefinitionID")))
            .collect();
    requirements.sort_by_key(|(node, _)| node.range().start);
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
    let mut items: Vec<&str> = Vec::new();
    let mut amounts: Vec<(Node<'_, '_>, Option<Amount>)> = Vec::new();
    // A produced requirement naming no item (a MaterialClassID, or nothing): its product, and
    // so what its quantity is of, cannot be told.
    let mut unnamed = None;
    for (requirement, item) in &requirements {
        let Some(item) = item.as_deref() else {
            unnamed = unnamed.or(Some(*requirement));
            continue;
        };
        if restated(*requirement, item) {
            continue;
        }
        items.push(item);
        let all = quantity::amounts(*requirement)?;
        amounts.push((
            *requirement,
            quantity::single(*requirement, &all, |_| false)?,
        ));
    }
    if let Some(requirement) = unnamed {
        return Ok(Planned {
            left_out: Some((
                "a produced requirement names no MaterialDefinitionID; the request's item and \
                 planned quantity are left out",
                xml::at(requirement),
            )),
            ..Planned::default()
        });
    }
    let Some(first_item) = items.first().copied() else {
        return Ok(Planned::default());
    };
    if items.iter().any(|item| *item != first_item) {
        return Ok(Planned {
            left_out: Some((
                "production request produces several items; item and planned quantity left out",
                xml::at(request),
            )),
            ..Planned::default()
        });
    }
    let mut total: Option<Amount> = None;
    for (requirement, amount) in amounts {
        total = match (total, amount) {
            (_, None) => {
                return Ok(Planned {
                    item: Some(first_item.to_owned()),
                    ..Planned::default()
                });
            }
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
                return Ok(Planned {
                    item: Some(first_item.to_owned()),
                    left_out: Some((
                        "produced requirements in different units; planned quantity left out",
                        xml::at(request),
                    )),
                    ..Planned::default()
                });
            }
        };
    }
    Ok(Planned {
        item: Some(first_item.to_owned()),
        quantity: total,
        left_out: None,
    })
}

#[cfg(test)]
mod tests {
    use millrace_sdk::config;

    use super::*;
    use crate::document::map_document;
    use crate::form;

    const V0401: &str = "http://www.wbf.org/xml/B2MML-V0401";
    const V0600: &str = "http://www.mesa.org/xml/B2MML-V0600";

    /// The planned product of the first request of a schedule in `namespace`, read in `form`.
    fn planned(form: &Form, namespace: &str, request: &str) -> Result<Planned, MapError> {
        config::set_for_tests([("site", "PLANT1")]);
        let noun = form.schedule;
        let xml = format!(r#"<{noun} xmlns="{namespace}">{request}</{noun}>"#);
        let doc = xml::parse(&xml).unwrap();
        produced(form, doc.root_element().first_element_child().unwrap())
    }

    fn requirement(element: &str, item: &str, amount: &str) -> String {
        let item = if item.is_empty() {
            String::new()
        } else {
            format!("<MaterialDefinitionID>{item}</MaterialDefinitionID>")
        };
        let material_use = if element == "MaterialRequirement" {
            "<MaterialUse>Produced</MaterialUse>"
        } else {
            ""
        };
        format!(
            "<{element}>{item}{material_use}<Quantity><QuantityString>{amount}</QuantityString>\
             <UnitOfMeasure>KG</UnitOfMeasure></Quantity></{element}>"
        )
    }

    fn segment(inside: &str) -> String {
        format!("<SegmentRequirement>{inside}</SegmentRequirement>")
    }

    /// V0401 to V0600 keep the production form's MaterialProducedRequirement beside the
    /// MaterialRequirement that V04 added: both state the product, with the same rules.
    #[test]
    fn a_material_produced_requirement_states_the_product() {
        let request =
            |inside: &str| format!("<ProductionRequest><ID>WO1</ID>{inside}</ProductionRequest>");
        let old =
            |item: &str, amount: &str| requirement("MaterialProducedRequirement", item, amount);
        let new = |item: &str, amount: &str| requirement("MaterialRequirement", item, amount);
        for namespace in [V0401, V0600] {
            let one = planned(
                &form::PRODUCTION,
                namespace,
                &request(&segment(&old("A", "5"))),
            )
            .unwrap();
            assert_eq!(one.item.as_deref(), Some("A"));
            assert_eq!(one.quantity.unwrap().quantity().amount, "5");
            assert!(one.left_out.is_none());
        }
        // Restated in a nested segment in the other element: counted once. Siblings add up.
        let restated = request(&segment(&format!(
            "{}{}",
            new("A", "1"),
            segment(&old("A", "1"))
        )));
        let one = planned(&form::PRODUCTION, V0401, &restated).unwrap();
        assert_eq!(one.quantity.unwrap().quantity().amount, "1");
        let siblings = request(&format!(
            "{}{}",
            segment(&old("A", "0.5")),
            segment(&new("A", "0.25"))
        ));
        let sum = planned(&form::PRODUCTION, V0401, &siblings).unwrap();
        assert_eq!(sum.quantity.unwrap().quantity().amount, "0.75");
        // Co-products across the two elements are left out, with a warning.
        let two = planned(
            &form::PRODUCTION,
            V0401,
            &request(&segment(&format!("{}{}", old("A", "1"), new("B", "1")))),
        )
        .unwrap();
        assert_eq!((two.item, two.quantity.is_none()), (None, true));
        assert_eq!(
            two.left_out.unwrap().0,
            "production request produces several items; item and planned quantity left out"
        );
        // Its quantities are read as strictly as a MaterialRequirement's.
        let unknown = request(&segment(&old("A", "5").replace(">KG<", ">BAG<")));
        assert_eq!(
            planned(&form::PRODUCTION, V0401, &unknown)
                .unwrap_err()
                .kind(),
            "malformed-input"
        );
        // The operations form has no such element.
        let operations = format!(
            "<OperationsRequest><ID>WO1</ID>{}</OperationsRequest>",
            segment(&old("A", "5"))
        );
        let none = planned(&form::OPERATIONS, V0600, &operations).unwrap();
        assert_eq!((none.item, none.left_out), (None, None));
    }

    /// A produced requirement that names no item (a material class, or nothing, as an MTConnect
    /// gateway writes it) cannot say what the request makes: item and quantity are left out
    /// with a warning, not released silently without them, and its quantity is not read.
    #[test]
    fn a_produced_requirement_naming_no_item_is_left_out_with_a_warning() {
        let request =
            |inside: &str| format!("<ProductionRequest><ID>WO1</ID>{inside}</ProductionRequest>");
        let unnamed = "<MaterialProducedRequirement><Quantity><QuantityString>0.4E1</QuantityString>\
                       </Quantity></MaterialProducedRequirement>";
        for inside in [
            segment(unnamed),
            segment(&format!(
                "{}{unnamed}",
                requirement("MaterialRequirement", "A", "5")
            )),
            segment(&requirement("MaterialRequirement", "", "5")),
        ] {
            let none = planned(&form::PRODUCTION, V0600, &request(&inside)).unwrap();
            assert_eq!((none.item, none.quantity), (None, None));
            let (why, _) = none.left_out.unwrap();
            assert!(
                why.starts_with("a produced requirement names no MaterialDefinitionID"),
                "{why}"
            );
        }
        // A request stating no product at all is released without one, without a warning.
        let nothing = planned(&form::PRODUCTION, V0600, &request(&segment(""))).unwrap();
        assert_eq!((nothing.item, nothing.left_out), (None, None));
    }

    /// A schedule without PublishedDate and ApplicationArea (bare schedules from ERP and MES
    /// gateways) is dated by the request's planned start; its identity is the request with the
    /// document's digest, since a re-plan may keep the planned start.
    #[test]
    fn a_schedule_without_a_time_of_its_own_is_dated_by_the_planned_start() {
        let schedule = |schedule_start: &str, request: &str| {
            format!(
                r#"<ProductionSchedule xmlns="{V0401}">{schedule_start}<ProductionRequest><ID>WO1</ID>{request}</ProductionRequest></ProductionSchedule>"#
            )
        };
        let run = |xml: &str| {
            config::set_for_tests([("site", "PLANT1"), ("release_time", "planned-start")]);
            map_document(xml.as_bytes())
        };
        let dated = |xml: &str| run(xml).unwrap().remove(0);
        let start = |time: &str| format!("<StartTime>{time}</StartTime>");
        let earliest =
            |time: &str| segment(&format!("<EarliestStartTime>{time}</EarliestStartTime>"));
        let segments = format!(
            "{}{}",
            earliest("2026-03-05T08:00:00Z"),
            segment(&earliest("2026-03-05T05:00:00Z"))
        );
        // The request's StartTime, else its segments' earliest EarliestStartTime, else the
        // schedule's StartTime.
        let schedule_start = start("2026-03-04T00:00:00Z");
        for (xml, time) in [
            (
                schedule(
                    &schedule_start,
                    &format!("{}{segments}", start("2026-03-05T06:00:00Z")),
                ),
                "2026-03-05T06:00:00Z",
            ),
            (schedule(&schedule_start, &segments), "2026-03-05T05:00:00Z"),
            (schedule(&schedule_start, ""), "2026-03-04T00:00:00Z"),
        ] {
            assert_eq!(dated(&xml).occurred_at, time);
        }
        // A resend is the same transaction; a re-plan with the same start is another.
        let plan = |amount: &str| {
            schedule(
                "",
                &format!(
                    "{}{}",
                    start("2026-03-05T06:00:00Z"),
                    segment(&requirement("MaterialProducedRequirement", "A", amount))
                ),
            )
        };
        let first = dated(&plan("5")).source_transaction.unwrap();
        assert_eq!(dated(&plan("5")).source_transaction.unwrap(), first);
        assert_ne!(dated(&plan("6")).source_transaction.unwrap(), first);
        assert!(first.starts_with("WO1@"), "{first}");
        // With a PublishedDate the request and that time identify it, as before.
        let published = schedule(
            "<PublishedDate>2026-03-04T18:00:00Z</PublishedDate>",
            &start("2026-03-05T06:00:00Z"),
        );
        let event = dated(&published);
        assert_eq!(event.occurred_at, "2026-03-04T18:00:00Z");
        assert_eq!(
            event.source_transaction.as_deref(),
            Some("WO1@2026-03-04T18:00:00Z")
        );
        // No time anywhere: refused by rule, the document being valid B2MML.
        let error = run(&schedule("", "")).unwrap_err();
        assert_eq!(error.kind(), "rejected-by-rule");
        // Without the route's word, a schedule with no time of its own is refused, naming the
        // key: plans are sent days ahead, and a release dated ahead of the host's clock by
        // more than limits.max_ahead is an invalid event.
        config::set_for_tests([("site", "PLANT1")]);
        let error = map_document(plan("5").as_bytes()).unwrap_err();
        assert_eq!(error.kind(), "rejected-by-rule");
        assert!(
            error
                .message()
                .contains("'release_time' = \"planned-start\"")
                && error.message().contains("limits.max_ahead"),
            "{error}"
        );
        config::set_for_tests([("site", "PLANT1"), ("release_time", "soon")]);
        let error = map_document(plan("5").as_bytes()).unwrap_err();
        assert_eq!(error.kind(), "other");
        assert!(
            error.message().contains("'release_time' is 'soon'"),
            "{error}"
        );
    }
}
