//! The two forms B2MML states production in: the production form (`ProductionSchedule`,
//! `ProductionPerformance`), in every version, and the operations form of ISA-95 part 4
//! (`OperationsSchedule`, `OperationsPerformance`, from V0500 on), whose schedules, requests,
//! performances, responses and segments may also say which kind of operations they are about
//! (`OperationsType`). Only production is mapped: the other kinds (maintenance, quality,
//! inventory operations) are not the production facts the canonical events state.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use roxmltree::{Node, NodeId};

use crate::xml;

/// The element names of one form.
pub(crate) struct Form {
    /// `ProductionSchedule` / `OperationsSchedule`.
    pub(crate) schedule: &'static str,
    /// `ProductionRequest` / `OperationsRequest`.
    pub(crate) request: &'static str,
    /// `ProductionResponse` / `OperationsResponse`.
    pub(crate) response: &'static str,
    /// `ProductionRequestID` / `OperationsRequestID`: the request a response answers.
    pub(crate) request_id: &'static str,
    /// The element a segment requirement states a product in besides a `MaterialRequirement`
    /// with `MaterialUse` `Produced`: the production form's `MaterialProducedRequirement`,
    /// which V0401 to V0600 keep beside the `MaterialRequirement` that V04 added to replace it.
    /// The operations form has none.
    pub(crate) produced_requirement: Option<&'static str>,
    /// The elements a segment response states a material actual in besides a `MaterialActual`,
    /// each with the `MaterialUse` its name stands for: the production form's
    /// `MaterialProducedActual`, `MaterialConsumedActual` and `ConsumableActual`, which V0401 to
    /// V0600 keep beside the `MaterialActual` that V04 added to replace them. They have no
    /// `MaterialUse` of their own. The operations form has none.
    pub(crate) named_actuals: &'static [(&'static str, &'static str)],
    /// Whether the form says which kind of operations an element is about.
    typed: bool,
}

/// `ProductionSchedule` and `ProductionPerformance`: production only.
pub(crate) const PRODUCTION: Form = Form {
    schedule: "ProductionSchedule",
    request: "ProductionRequest",
    response: "ProductionResponse",
    request_id: "ProductionRequestID",
    produced_requirement: Some("MaterialProducedRequirement"),
    named_actuals: &[
        ("MaterialProducedActual", "Produced"),
        ("MaterialConsumedActual", "Consumed"),
        ("ConsumableActual", "Consumable"),
    ],
    typed: false,
};

/// `OperationsSchedule` and `OperationsPerformance`: production, maintenance, quality or
/// inventory operations, as their `OperationsType` says.
pub(crate) const OPERATIONS: Form = Form {
    schedule: "OperationsSchedule",
    request: "OperationsRequest",
    response: "OperationsResponse",
    request_id: "OperationsRequestID",
    produced_requirement: None,
    named_actuals: &[],
    typed: true,
};

/// The values of the B2MML `OperationsType` enumeration (V0500, V0600), checked in the whole
/// document before anything is mapped.
pub(crate) const OPERATIONS_TYPES: &[&str] = &[
    "Production",
    "Maintenance",
    "Quality",
    "Inventory",
    "Mixed",
    "Other",
];

/// What kind of operations an element is about.
pub(crate) enum Kind<'a, 'input> {
    /// Production: mapped.
    Production,
    /// Another kind (`Maintenance`, `Quality`, `Inventory`, `Other`; the values are checked
    /// against [`OPERATIONS_TYPES`] before anything is mapped): not mapped.
    Other(Cow<'a, str>),
    /// `Mixed`, stated by the element `at` and by none of the elements between: which kind
    /// its content is cannot be told.
    Mixed { at: Node<'a, 'input> },
}

impl Form {
    /// The kind of operations `node` is about: its own `OperationsType`, else the nearest
    /// enclosing element's (segment, response or request, performance or schedule). An
    /// element of the production form, or one for which no element states a type, is
    /// production, as ISA-95's production form is.
    pub(crate) fn kind<'a, 'input>(
        &self,
        node: Node<'a, 'input>,
        stated: &StatedTypes<'a, 'input>,
    ) -> Kind<'a, 'input> {
        if !self.typed {
            return Kind::Production;
        }
        let Some(element) = stated.nearest(node) else {
            return Kind::Production;
        };
        let value = xml::own_text(element).unwrap_or_default();
        match value.as_ref() {
            "Production" => Kind::Production,
            "Mixed" => Kind::Mixed {
                at: element.parent_element().unwrap_or(element),
            },
            _ => Kind::Other(value),
        }
    }
}

/// The `OperationsType` that holds for each element asked about (its own, else the nearest
/// enclosing element's), found once per element: the requests of a schedule or the segments
/// of a response would each look for their parent's among all their siblings again
/// (quadratic in a large document).
#[derive(Default)]
pub(crate) struct StatedTypes<'a, 'input>(RefCell<HashMap<NodeId, Option<Node<'a, 'input>>>>);

impl<'a, 'input> StatedTypes<'a, 'input> {
    /// The `OperationsType` element of `node` or of its nearest enclosing element stating one.
    fn nearest(&self, node: Node<'a, 'input>) -> Option<Node<'a, 'input>> {
        let element = if node.is_element() {
            node
        } else {
            node.parent_element()?
        };
        if let Some(found) = self.0.borrow().get(&element.id()) {
            return *found;
        }
        let found = xml::child(element, "OperationsType").or_else(|| {
            element
                .parent_element()
                .and_then(|parent| self.nearest(parent))
        });
        self.0.borrow_mut().insert(element.id(), found);
        found
    }
}
