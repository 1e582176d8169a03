//! What every noun mapping needs from the document: the route, the document's creation time
//! and its own identity.

use std::cell::RefCell;
use std::collections::HashMap;

use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::form::StatedTypes;
use crate::route::Route;
use crate::xml;

/// The key of an inventory balance: site, item, location, lot.
pub(crate) type BalanceKey = (String, String, String, String);

/// What every noun mapping needs from the document and the route.
pub(crate) struct Context<'a, 'input> {
    /// The route configuration.
    pub(crate) route: Route,
    /// `ApplicationArea/CreationDateTime` of a verb-wrapped document.
    pub(crate) created: Option<Node<'a, 'input>>,
    /// `ApplicationArea/BODID` of a verb-wrapped document: the document's own identity.
    pub(crate) document_id: Option<String>,
    /// The document's bytes: a digest of them ([`Context::digest`]) is the identity of a
    /// document that names none of its own.
    pub(crate) payload: &'input [u8],
    /// The inventory balances mapped so far (site, item, location, lot) with the line of their
    /// lot, to refuse a lot listed twice.
    pub(crate) balances: RefCell<HashMap<BalanceKey, u32>>,
    /// The `OperationsType` stated for each element asked about.
    pub(crate) operations_types: StatedTypes<'a, 'input>,
}

/// The first 128 bits of the SHA-256 of `bytes`, as 32 hex digits.
fn sha256_prefix(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Context<'_, '_> {
    /// A digest of the document's bytes: the same for a resend of them, another for any other
    /// report, which is all the host's idempotency ledger asks of an identity. Computed only for
    /// a document that names no identity of its own.
    pub(crate) fn digest(&self) -> String {
        sha256_prefix(self.payload)
    }

    /// The event time: the first present of `candidates`, then the document's creation time.
    /// `what` names the candidates for the error when there is none: `rejected-by-rule`, as
    /// every one of them is optional in the schema (an empty one is refused, named, before
    /// anything is mapped), so the document is valid B2MML, but an event needs a time.
    pub(crate) fn occurred_at<'a, 'input: 'a>(
        &self,
        node: Node<'a, 'input>,
        candidates: Vec<Option<Node<'a, 'input>>>,
        what: &str,
    ) -> Result<String, MapError> {
        let mut all = candidates;
        all.push(self.created);
        self.route.first_timestamp(all)?.ok_or_else(|| {
            MapError::rejected(format!(
                "{}: no time to date the event by ({what} or ApplicationArea/CreationDateTime)",
                xml::at(node)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_digest_tells_a_resend_from_another_report() {
        let digest = |payload: &[u8]| super::sha256_prefix(payload);
        assert_eq!(digest(b"0.41"), digest(b"0.41"));
        assert_ne!(digest(b"0.41"), digest(b"0.77"));
        // The first 32 hex digits of SHA-256("abc") (FIPS 180-2's example).
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea414140de5dae2223");
    }
}
