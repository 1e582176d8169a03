//! The two forms B2MML states production in: the production form (`ProductionSchedule`,
//! `ProductionPerformance`), in every version, and the operations form of ISA-95 part 4
//! (`OperationsSchedule`, `OperationsPerformance`, from V0500 on), whose schedules, requests,
//! performances, responses and segments may also say which kind of operations they are about
//! (`OperationsType`). Only production is mapped: the other kinds (maintenance, quality,
//! inventory operations) are not the production facts the canonical events state.

use std::borrow::Cow;

use roxmltree::Node;

use crate::xml;

/// The element names of one form.
pub(crate) struct Form {
    /// `ProductionSchedule` / `OperationsSchedule`.
    pub(crate) schedule: &'static str,
    /// `ProductionRequest` / `OperationsRequest`.
    pub(crate) request: &'static str,
    /// `ProductionPerformance` / `OperationsPerformance`.
    pub(crate) performance: &'static str,
    /// `ProductionResponse` / `OperationsResponse`.
    pub(crate) response: &'static str,
    /// `ProductionRequestID` / `OperationsRequestID`: the request a response answers.
    pub(crate) request_id: &'static str,
    /// Whether the form says which kind of operations an element is about.
    typed: bool,
}

/// `ProductionSchedule` and `ProductionPerformance`: production only.
pub(crate) const PRODUCTION: Form = Form {
    schedule: "ProductionSchedule",
    request: "ProductionRequest",
    performance: "ProductionPerformance",
    response: "ProductionResponse",
    request_id: "ProductionRequestID",
    typed: false,
};

/// `OperationsSchedule` and `OperationsPerformance`: production, maintenance, quality or
/// inventory operations, as their `OperationsType` says.
pub(crate) const OPERATIONS: Form = Form {
    schedule: "OperationsSchedule",
    request: "OperationsRequest",
    performance: "OperationsPerformance",
    response: "OperationsResponse",
    request_id: "OperationsRequestID",
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
    pub(crate) fn kind<'a, 'input>(&self, node: Node<'a, 'input>) -> Kind<'a, 'input> {
        if !self.typed {
            return Kind::Production;
        }
        let stated = node
            .ancestors()
            .filter(Node::is_element)
            .find_map(|element| xml::child(element, "OperationsType"));
        let Some(element) = stated else {
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
