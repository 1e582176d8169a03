//! Outbound plugins: the Rust side of `world poster` in `wit/outbound@1.0.0/posting.wit`.
//!
//! A poster takes one canonical event and renders the requests that post it to the systems of
//! record (ERP, WMS, a webhook), then reads each target's answer as a [`Verdict`]. Implement
//! [`Poster`] on a unit struct and export it with one macro line:
//!
//! ```ignore
//! use millrace_sdk::posting::*;
//! use millrace_sdk::prelude::*;
//!
//! struct ErpPostings;
//!
//! impl Poster for ErpPostings {
//!     fn render(event: &Event) -> Result<Vec<Request>, RenderError> {
//!         let EventData::ProductionCompletion(done) = &event.data else {
//!             return Ok(Vec::new()); // not posted
//!         };
//!         Ok(vec![Request::post("erp", "/odata/GoodsMovements").json(json!({
//!             "Material": done.item,
//!             "Quantity": done.good_quantity.amount,
//!         }))])
//!     }
//!
//!     fn interpret(_event: &Event, _request: &Request, response: &Response) -> Verdict {
//!         match response.status {
//!             201 => Verdict::posted(response.json_str("/MaterialDocument").unwrap_or_default()),
//!             _ if response.is_transient() => Verdict::try_again(response.summary()),
//!             _ => Verdict::rejected(response.summary()),
//!         }
//!     }
//! }
//!
//! millrace_sdk::export_poster!(ErpPostings);
//! ```
//!
//! The host owns everything around the call (base URLs, credentials, retries, rate limits and
//! the `Idempotency-Key` header, which is the event id); a plugin never sees a secret. Off
//! `wasm32` the trait is plain Rust, so a plugin's `cargo test` calls it directly, and
//! [`check_fixtures`] runs the golden fixtures the host's admission runs:
//!
//! ```ignore
//! #[test]
//! fn golden_fixtures() {
//!     let passed = millrace_sdk::posting::check_fixtures::<ErpPostings>(env!("CARGO_MANIFEST_DIR"));
//!     assert!(passed.is_ok_and(|n| n > 0), "{passed:?}");
//! }
//! ```

#[cfg(not(target_arch = "wasm32"))]
mod fixtures;

#[cfg(not(target_arch = "wasm32"))]
pub use fixtures::check_fixtures;

/// Why a CloudEvent from the canonical stream could not be read as an [`Event`].
pub use millrace_model::posting::NotCanonical as CloudEventError;
pub use millrace_model::posting::{
    Envelope, Event, Lineage, Method, RenderError, Request, Response, Verdict,
};
pub use serde_json::{Value, json};

/// An outbound plugin: renders the requests for one canonical event and reads the answers.
///
/// Both are associated functions (no `self`): the host may call them in any instance, in any
/// order, and a plugin must not rely on state from earlier calls.
pub trait Poster {
    /// Renders the requests for one event, in the order they must be sent (the host sends the
    /// next only when the previous is posted). An empty list means this event is not posted.
    fn render(event: &Event) -> Result<Vec<Request>, RenderError>;

    /// Reads a target's answer to `request`, one of those [`Poster::render`] returned for
    /// `event`.
    fn interpret(event: &Event, request: &Request, response: &Response) -> Verdict;
}

/// The verdict on the answer of an ERP's goods-movement service in the shape of SAP S/4HANA's
/// material documents (`API_MATERIAL_DOCUMENT_SRV`, OData v2 or v4), to a request whose
/// `ReferenceDocument` is the event id. Only a material document proves a booking:
/// - a redirect or refused credentials: **try again** ([`Response::access_problem`]);
/// - an answer naming another `ReferenceDocument`: **rejected** (it is another posting's);
/// - a `MaterialDocument` in a 2xx, or in a 409 replaying this `Idempotency-Key`: **posted**;
/// - a 2xx without one: [`Response::success_without`] (a proxy's page, an empty body);
/// - a 409 without one (the first request with this key is still being booked), a 404 from the
///   gateway (no such service: the target's url), or a transient status: **try again**;
/// - anything else: **rejected** with the ERP's message.
pub fn material_document_verdict(event: &Event, response: &Response) -> Verdict {
    if let Some(verdict) = response.access_problem() {
        return verdict;
    }
    if let Some(reference) = response
        .odata_str("ReferenceDocument")
        .filter(|reference| *reference != event.envelope.id)
    {
        return Verdict::rejected(format!(
            "the ERP answered for ReferenceDocument {reference}, not this event ({}): another \
             posting's answer; check the ERP's material documents",
            event.envelope.id
        ));
    }
    let code = response.json_str("/error/code").unwrap_or_default();
    match (response.status, response.odata_str("MaterialDocument")) {
        (200..=299 | 409, Some(document)) => Verdict::posted(document),
        (200..=299, None) => response.success_without("a material document"),
        (409, None) if code.is_empty() || code == "REQUEST_IN_PROGRESS" => Verdict::try_again(
            response
                .error_message()
                .unwrap_or_else(|| response.summary()),
        ),
        (404, None) if code.is_empty() || code.starts_with("/IWFND/") => {
            Verdict::try_again(format!(
                "{}; check the {} target's url",
                response.summary(),
                response.target
            ))
        }
        _ if response.is_transient() => Verdict::try_again(response.summary()),
        _ => Verdict::rejected(
            response
                .error_message()
                .unwrap_or_else(|| format!("HTTP {}", response.status)),
        ),
    }
}
