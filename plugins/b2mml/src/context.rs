//! What every noun mapping needs from the document: the route, the document's creation time
//! and its own identity.

use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::route::Route;
use crate::xml;

/// What every noun mapping needs from the document and the route.
pub(crate) struct Context<'a, 'input> {
    /// The route configuration.
    pub(crate) route: Route,
    /// `ApplicationArea/CreationDateTime` of a verb-wrapped document.
    pub(crate) created: Option<Node<'a, 'input>>,
    /// `ApplicationArea/BODID` of a verb-wrapped document: the document's own identity.
    pub(crate) document_id: Option<String>,
}

impl Context<'_, '_> {
    /// The event time: the first present of `candidates`, then the document's creation time.
    /// `what` names the candidates for the error when there is none.
    pub(crate) fn occurred_at<'a, 'input: 'a>(
        &self,
        node: Node<'a, 'input>,
        candidates: Vec<Option<Node<'a, 'input>>>,
        what: &str,
    ) -> Result<String, MapError> {
        let mut all = candidates;
        all.push(self.created);
        self.route.first_timestamp(all)?.ok_or_else(|| {
            MapError::malformed(format!(
                "{}: no time to date the event by ({what} or ApplicationArea/CreationDateTime)",
                xml::at(node)
            ))
        })
    }
}
