//! `ProductionPerformance` and `OperationsPerformance` (see [`crate::form`]): each
//! `MaterialActual` of a production `SegmentResponse` whose `MaterialUse` says consumed
//! (`Consumed`, V07's `Material Consumed`) becomes a `material-consumption`, produced
//! (`Produced`, V07's `Material Produced`, `Yield Produced`) a `production-completion`; so does
//! each `MaterialConsumedActual` and `MaterialProducedActual` of the production form (V0401 to
//! V0600), whose name says which it is.

use std::borrow::Cow;

use millrace_sdk::decimal::Decimal;
use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::document::{Use, material_use};
use crate::form::{Form, Kind};
use crate::quantity::{self, Amount};
use crate::xml;

/// Maps every response of a performance of `form`.
pub(crate) fn map<'a, 'input>(
    form: &Form,
    performance: Node<'a, 'input>,
    context: &Context<'a, 'input>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    let published = xml::child(performance, "PublishedDate");
    for response in xml::children(performance, form.response) {
        // The work order is the request the response answers; a response without one (as the
        // Courbon MES writes them) is identified by its own ID, which is then the order number.
        let id = xml::text(response, "ID");
        let requested = work_order(form, response)?;
        let work_order = requested.clone().or_else(|| id.clone()).ok_or_else(|| {
            MapError::rejected(format!(
                "{}: has neither {} nor ID, so it names no work order to book its material to",
                xml::at(response),
                form.request_id
            ))
        })?;
        let transaction = Some(transaction(performance, &id, &work_order, context));
        let at = Segment {
            form,
            work_order: &work_order,
            transaction: transaction.as_deref(),
            context,
        };
        // The times an actual is dated by, innermost first: those of the segments it is in
        // (added on the way down), then these.
        let times = [xml::child(response, "EndTime"), published];
        for segment in xml::children(response, "SegmentResponse") {
            at.map(segment, &times, events)?;
        }
    }
    Ok(())
}

/// The report's own identity, for telling a resend from a new report: the document's
/// (`ApplicationArea/BODID`), else the response's `ID`, else the performance's `ID`, each only
/// when it is not the work order (every report of an order names that: a later report would be
/// dropped as a resend of the first), else the work order with a digest of the document
/// (`53107@<32 hex digits>`): the same for a resend of the same bytes, another for any other
/// report of the order.
fn transaction(
    performance: Node<'_, '_>,
    response_id: &Option<Cow<'_, str>>,
    work_order: &str,
    context: &Context<'_, '_>,
) -> String {
    if let Some(document) = &context.document_id {
        return document.clone();
    }
    [response_id.clone(), xml::text(performance, "ID")]
        .into_iter()
        .flatten()
        .find(|id| *id != work_order)
        .map(Cow::into_owned)
        .unwrap_or_else(|| format!("{work_order}@{}", context.digest()))
}

/// The request a response answers. The operations form allows several; a response that
/// answers more than one cannot say which work order its material belongs to.
fn work_order<'a>(form: &Form, response: Node<'a, '_>) -> Result<Option<Cow<'a, str>>, MapError> {
    let mut requests: Vec<Cow<'a, str>> = xml::children(response, form.request_id)
        .filter_map(xml::own_text)
        .collect();
    requests.dedup();
    match requests.as_slice() {
        [] => Ok(None),
        [_] => Ok(requests.pop()),
        several => Err(MapError::rejected(format!(
            "{}: answers several requests ({}); cannot tell which work order its material belongs to",
            xml::at(response),
            several.join(", ")
        ))),
    }
}

/// What the segment responses of one response share.
struct Segment<'f, 'c, 'a, 'input> {
    form: &'f Form,
    work_order: &'f str,
    transaction: Option<&'f str>,
    context: &'c Context<'a, 'input>,
}

impl<'a, 'input> Segment<'_, '_, 'a, 'input> {
    /// Maps the material actuals of a segment response about production, and the nested
    /// segment responses. `outer` are the times of the elements around the segment that an
    /// actual is dated by, innermost first.
    fn map(
        &self,
        segment: Node<'a, 'input>,
        outer: &[Option<Node<'a, 'input>>],
        events: &mut Vec<CanonicalEvent>,
    ) -> Result<(), MapError> {
        let times: Vec<Option<Node<'a, 'input>>> =
            std::iter::once(xml::child(segment, "ActualEndTime"))
                .chain(outer.iter().copied())
                .collect();
        // Actuals that state a consumption or a production, or that fail to say which; looked
        // for only in a segment that is not production.
        let reported = || {
            actuals(self.form, segment).into_iter().any(|actual| {
                stated_use(self.form, actual).map_or(true, |stated| {
                    stated.is_none_or(|text| material_use(&text) != Use::Other)
                })
            })
        };
        match self.form.kind(segment, &self.context.operations_types) {
            Kind::Production => self.map_actuals(segment, &times, events)?,
            Kind::Other(kind) if reported() => log::info(
                "material actuals of a segment about other operations than production not mapped",
                &[
                    ("line", &xml::line(segment).to_string()),
                    ("operations-type", &kind),
                ],
            ),
            Kind::Mixed { at } if reported() => {
                return Err(MapError::rejected(format!(
                    "{}: reports material under OperationsType Mixed ({}) without an OperationsType of its own; \
                     cannot tell whether it is production (say Production on the segment response)",
                    xml::at(segment),
                    xml::at(at)
                )));
            }
            Kind::Other(_) | Kind::Mixed { .. } => {}
        }
        for nested in xml::nested(segment, "SegmentResponse", "SegmentResponseChild") {
            self.map(nested, &times, events)?;
        }
        Ok(())
    }

    /// Maps the material actuals of one production segment response, in document order.
    fn map_actuals(
        &self,
        segment: Node<'a, 'input>,
        times: &[Option<Node<'a, 'input>>],
        events: &mut Vec<CanonicalEvent>,
    ) -> Result<(), MapError> {
        let operation = xml::text(segment, "ProcessSegmentID").or_else(|| xml::text(segment, "ID"));
        let operation = operation.as_deref();
        for actual in actuals(self.form, segment) {
            let stated = stated_use(self.form, actual)?;
            let data = match stated.as_deref().map(|text| (text, material_use(text))) {
                Some((_, Use::Consumed)) => consumption(actual, self.work_order, operation)?,
                Some((_, Use::Produced)) => completion(actual, self.work_order, operation)?,
                Some((other, Use::Other)) => {
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
                site: self.context.route.site(actual)?,
                occurred_at: self.context.occurred_at(
                    actual,
                    times.to_vec(),
                    &format!(
                        "SegmentResponse/ActualEndTime, {}/EndTime, PublishedDate",
                        self.form.response
                    ),
                )?,
                source_sequence: None,
                source_transaction: self.transaction.map(str::to_owned),
                data,
            });
        }
        Ok(())
    }
}

/// The material actuals of a segment response, in document order: its `MaterialActual`s and,
/// in the production form, its `MaterialProducedActual`s, `MaterialConsumedActual`s and
/// `ConsumableActual`s ([`Form::named_actuals`]). Events follow the document, whichever
/// elements state them.
fn actuals<'a, 'input>(form: &Form, segment: Node<'a, 'input>) -> Vec<Node<'a, 'input>> {
    let mut actuals: Vec<Node<'a, 'input>> = std::iter::once("MaterialActual")
        .chain(form.named_actuals.iter().map(|(name, _)| *name))
        .flat_map(|name| xml::children(segment, name))
        .collect();
    actuals.sort_by_key(|node| node.range().start);
    actuals
}

/// The `MaterialUse` a material actual states: a `MaterialActual`'s own, else the value the
/// name of a [`Form::named_actuals`] element stands for. The schema gives those no
/// `MaterialUse`; one that says another value than the name is `malformed-input`, since which
/// of the two holds cannot be told (a `MaterialProducedActual` that says `Consumed`).
fn stated_use<'a>(form: &Form, actual: Node<'a, '_>) -> Result<Option<Cow<'a, str>>, MapError> {
    let stated = xml::text(actual, "MaterialUse");
    let name = actual.tag_name().name();
    let Some((_, named)) = form.named_actuals.iter().find(|(named, _)| *named == name) else {
        return Ok(stated);
    };
    match stated {
        Some(text) if text != *named => Err(MapError::malformed(format!(
            "{}: has MaterialUse '{text}', but {name} stands for MaterialUse '{named}' (the \
             schema gives it no MaterialUse of its own); which of the two holds cannot be told",
            xml::at(actual)
        ))),
        _ => Ok(Some(Cow::Borrowed(named))),
    }
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
        item: xml::require(actual, "MaterialDefinitionID")?.into_owned(),
        lot: xml::text(actual, "MaterialLotID").map(Cow::into_owned),
        quantity: amount.quantity(),
        location: xml::location(actual)?,
    }))
}

fn completion(
    actual: Node<'_, '_>,
    work_order: &str,
    operation: Option<&str>,
) -> Result<EventData, MapError> {
    let amounts = quantity::amounts(actual)?;
    let good = quantity::single(actual, &amounts, quantity::is_scrap)?.ok_or_else(|| {
        match amounts.iter().find(|amount| quantity::is_scrap(amount)) {
            // The whole output scrapped is stated as a good quantity of 0 beside the scrap.
            Some(scrap) => MapError::rejected(format!(
                "{}: has only a scrap Quantity (Key '{}'), no good quantity beside it; a \
                 completion states both (write the good quantity, 0 when all was scrapped)",
                xml::at(actual),
                scrap.key.as_deref().unwrap_or_default()
            )),
            None => no_amount(actual),
        }
    })?;
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
        item: xml::require(actual, "MaterialDefinitionID")?.into_owned(),
        lot: xml::text(actual, "MaterialLotID").map(Cow::into_owned),
        good_quantity: good.quantity(),
        scrap_quantity: scrap.quantity(),
        location: xml::location(actual)?,
    }))
}

fn no_amount(actual: Node<'_, '_>) -> MapError {
    MapError::rejected(format!(
        "{}: has no Quantity that is an amount (rates such as t/h are not quantities)",
        xml::at(actual)
    ))
}
