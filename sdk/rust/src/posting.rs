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
/// `ReferenceDocument` is the event id, read as [`Response::json`] reads it (a byte-order mark before
/// the JSON hides nothing; an `error` of `null`, `false` or `""` is none: [`Response::error_reported`]). Only a material document
/// proves a booking, and only in an answer that says the booking was made:
/// - a redirect or refused credentials: **try again** ([`Response::access_problem`]);
/// - an answer naming another `ReferenceDocument`: **rejected** (it is another posting's). The
///   reference is compared ignoring case (a UUID is the same in upper case), and one of 16
///   characters that starts the event id is this event's: SAP's reference (`XBLNR`) holds 16;
/// - a `MaterialDocument` in a 2xx without an OData `error`: **posted** (a number is read as
///   [`Response::json_str`] reads it: `4900012345.0` is `4900012345`);
/// - a `MaterialDocument` in a 409 whose error code is `IDEMPOTENT_REPLAY` (this
///   `Idempotency-Key` was booked before): **posted**, the original document;
/// - an OData `error` wins over a document beside it: a 2xx with one is **rejected** with the
///   ERP's message, a 409 with another code (`DOCUMENT_LOCKED`...) is read as a 409 without a
///   document;
/// - a blank document (`""`, `"   "`) is no document;
/// - an SAP lock message (`M3/897` "plant data of material .. is locked by user ..", `MC/601`),
///   as the error's code or in its `innererror.errordetails`, whatever the status: **try
///   again**, the user's lock ends;
/// - a 2xx without a document: [`Response::success_without`] (a proxy's page, an empty body);
/// - a 409 without a document and with no code, `REQUEST_IN_PROGRESS` (the first request with
///   this key is still being booked) or `IDEMPOTENT_REPLAY` (booked, but the answer names no
///   document: asked again, the ERP names it), a 404 without a code or from SAP Gateway's
///   `/IWFND/` or `/IWBEP/` layer (no such service or entity set: the target's url), or a
///   transient status: **try again**;
/// - anything else: **rejected** with the ERP's message.
pub fn material_document_verdict(event: &Event, response: &Response) -> Verdict {
    if let Some(verdict) = response.access_problem() {
        return verdict;
    }
    if let Some(reference) = response
        .odata_str("ReferenceDocument")
        .filter(|reference| !reference.trim().is_empty())
        .filter(|reference| !same_reference(reference, &event.envelope.id))
    {
        return Verdict::rejected(format!(
            "the ERP answered for ReferenceDocument {reference}, not this event ({}): another \
             posting's answer; check the ERP's material documents",
            event.envelope.id
        ));
    }
    let code = response.json_str("/error/code").unwrap_or_default();
    let code = code.trim();
    // An OData error in the body: the ERP says something went wrong, whatever else it names
    // (an `error` of `null`, `false` or `""` reports none).
    let error = response.error_reported();
    let document = response
        .odata_str("MaterialDocument")
        .map(|document| document.trim().to_owned())
        .filter(|document| !document.is_empty());
    match (response.status, document) {
        (200..=299, Some(document)) if !error => Verdict::posted(document),
        (409, Some(document)) if code == "IDEMPOTENT_REPLAY" => Verdict::posted(document),
        _ if is_sap_lock(response) => Verdict::try_again(response.summary()),
        (200..=299, _) => response.success_without("a material document"),
        (409, _) if code.is_empty() || code == "REQUEST_IN_PROGRESS" => Verdict::try_again(
            response
                .error_message()
                .unwrap_or_else(|| response.summary()),
        ),
        (409, _) if code == "IDEMPOTENT_REPLAY" => Verdict::try_again(format!(
            "{}; the answer names no material document, asked again with the same \
             Idempotency-Key",
            response.summary()
        )),
        (404, _)
            if code.is_empty() || code.starts_with("/IWFND/") || code.starts_with("/IWBEP/") =>
        {
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

/// SAP's messages that an object is locked by another user: the lock ends when the user leaves
/// the transaction, so the posting is tried again. `M3/897`: the plant data of the material is
/// locked; `MC/601`: the requested object is locked (the enqueue server's generic message).
const SAP_LOCK_MESSAGES: [&str; 2] = ["M3/897", "MC/601"];

/// Whether the answer's OData error is an SAP lock message ([`SAP_LOCK_MESSAGES`]), as its code
/// or as the code of one of SAP Gateway's `innererror.errordetails`.
fn is_sap_lock(response: &Response) -> bool {
    let Some(json) = response.json() else {
        return false;
    };
    let error = &json["error"];
    let details = error["innererror"]["errordetails"].as_array();
    std::iter::once(error)
        .chain(details.into_iter().flatten())
        .filter_map(|entry| entry["code"].as_str())
        .any(|code| {
            SAP_LOCK_MESSAGES
                .iter()
                .any(|lock| code.trim().eq_ignore_ascii_case(lock))
        })
}

/// Whether the `ReferenceDocument` of an answer is the event id `id` the request sent: the same
/// ignoring ASCII case (a UUID written in upper case is the same UUID), or its first 16
/// characters (SAP's `ReferenceDocument`, `XBLNR`, holds 16 and keeps those).
fn same_reference(reference: &str, id: &str) -> bool {
    let reference = reference.trim();
    reference.eq_ignore_ascii_case(id)
        || (reference.chars().count() == SAP_REFERENCE_LENGTH
            && id.len() > reference.len()
            && id.is_char_boundary(reference.len())
            && id[..reference.len()].eq_ignore_ascii_case(reference))
}

/// The length of SAP's `ReferenceDocument` (`XBLNR`, `CHAR 16`).
const SAP_REFERENCE_LENGTH: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "cf073c50-cd56-ca3a-1dd0-1a34e70a4af2";

    fn event() -> Event {
        Event::from_cloudevent(&json!({
            "specversion": "1.0", "id": ID, "source": "/PLANT1/mes",
            "type": "millrace.production-completion.v1", "time": "2026-03-02T06:15:00Z",
            "subject": "WO-1@PLANT1", "datacontenttype": "application/json",
            "data": {"work_order": "WO-1", "item": "FG-1", "lot": "L1",
                     "good_quantity": {"amount": "5", "uom": "EA"},
                     "scrap_quantity": {"amount": "0", "uom": "EA"}},
            "route": "mes", "plugin": "mes-shift-report", "pluginversion": "1.0.0", "rawsequence": 1
        }))
        .unwrap()
    }

    fn verdict(status: u16, body: Value) -> Verdict {
        let response = Response {
            target: "erp".into(),
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        };
        material_document_verdict(&event(), &response)
    }

    #[test]
    fn an_error_body_wins_over_a_document() {
        let locked = verdict(
            409,
            json!({"error": {"code": "DOCUMENT_LOCKED", "message": "locked by user X"},
                   "MaterialDocument": "4900011111"}),
        );
        assert_eq!(
            locked,
            Verdict::rejected("DOCUMENT_LOCKED: locked by user X")
        );
        let failed = verdict(
            200,
            json!({"error": {"code": "M7/021", "message": "Material not maintained"},
                   "MaterialDocument": "49"}),
        );
        assert_eq!(failed, Verdict::rejected("M7/021: Material not maintained"));
        let replay = verdict(
            409,
            json!({"error": {"code": "IDEMPOTENT_REPLAY", "message": "booked before"},
                   "d": {"MaterialDocument": "4900012345"}}),
        );
        assert_eq!(replay, Verdict::posted("4900012345"));
    }

    #[test]
    fn an_error_that_reports_none_is_no_error() {
        for none in [json!(null), json!(false), json!(""), json!({})] {
            let posted = verdict(201, json!({"MaterialDocument": "49", "error": none}));
            assert_eq!(posted, Verdict::posted("49"), "{none}");
            let queued = verdict(202, json!({"jobId": "J-77", "error": none}));
            assert!(matches!(queued, Verdict::TryAgain(_)), "{none}: {queued:?}");
        }
        let failed = verdict(
            201,
            json!({"MaterialDocument": "49", "error": "period closed"}),
        );
        assert_eq!(failed, Verdict::rejected("period closed"));
    }

    #[test]
    fn an_sap_lock_is_tried_again_whatever_the_status() {
        let lock = json!({"code": "M3/897", "message": "Plant data of material FG-1 is locked"});
        let wrapped = json!({"code": "/IWBEP/CX_MGW_BUSI_EXCEPTION", "message": "Error",
                             "innererror": {"errordetails": [{"code": "MC/601",
                                                              "message": "locked by JSMITH"}]}});
        for status in [200, 400, 409, 422] {
            for error in [&lock, &wrapped] {
                let answer = verdict(status, json!({"error": error}));
                assert!(
                    matches!(answer, Verdict::TryAgain(_)),
                    "{status}: {answer:?}"
                );
            }
        }
        let unknown = verdict(400, json!({"error": {"code": "M7/021", "message": "x"}}));
        assert_eq!(unknown, Verdict::rejected("M7/021: x"));
    }

    #[test]
    fn a_gateway_404_is_the_targets_url() {
        for code in ["", "/IWFND/MED/170", "/IWBEP/CM_MGW_RT/020"] {
            let answer = verdict(
                404,
                json!({"error": {"code": code, "message": "not found"}}),
            );
            assert!(
                matches!(answer, Verdict::TryAgain(ref why) if why.contains("url")),
                "{code}: {answer:?}"
            );
        }
        let business = verdict(404, json!({"error": {"code": "M7/001", "message": "x"}}));
        assert_eq!(business, Verdict::rejected("M7/001: x"));
    }

    #[test]
    fn a_byte_order_mark_hides_no_document() {
        let mut response = Response {
            target: "erp".into(),
            status: 409,
            headers: Vec::new(),
            body: b"\xEF\xBB\xBF{\"error\": {\"code\": \"IDEMPOTENT_REPLAY\"}, \"MaterialDocument\": 4.9E9}"
                .to_vec(),
        };
        assert_eq!(
            material_document_verdict(&event(), &response),
            Verdict::posted("4900000000")
        );
        response.status = 201;
        response.body = b"\xEF\xBB\xBF{\"MaterialDocument\": \"49\"}".to_vec();
        assert_eq!(
            material_document_verdict(&event(), &response),
            Verdict::posted("49")
        );
    }

    #[test]
    fn a_blank_document_confirms_nothing() {
        for document in ["", "   "] {
            let answer = verdict(201, json!({"MaterialDocument": document}));
            assert!(matches!(answer, Verdict::TryAgain(_)), "{answer:?}");
            let replay = verdict(
                409,
                json!({"error": {"code": "IDEMPOTENT_REPLAY", "message": "booked before"},
                       "MaterialDocument": document}),
            );
            assert!(matches!(replay, Verdict::TryAgain(_)), "{replay:?}");
        }
        // A 409 with a document but no IDEMPOTENT_REPLAY says nothing was booked.
        let conflict = verdict(409, json!({"MaterialDocument": "4900012345"}));
        assert!(matches!(conflict, Verdict::TryAgain(_)), "{conflict:?}");
    }

    #[test]
    fn the_reference_is_compared_ignoring_case_and_as_sap_keeps_it() {
        for reference in [ID.to_uppercase(), ID[..16].to_uppercase(), ID.to_owned()] {
            let answer = verdict(
                201,
                json!({"MaterialDocument": "49", "ReferenceDocument": reference}),
            );
            assert_eq!(answer, Verdict::posted("49"), "{reference}");
        }
        for reference in [&ID[..15], &ID[..17], "cf073c50-cd56-ca3a-1dd0-1a34e70a4af3"] {
            let answer = verdict(
                201,
                json!({"MaterialDocument": "49", "ReferenceDocument": reference}),
            );
            assert!(
                matches!(answer, Verdict::Rejected(_)),
                "{reference}: {answer:?}"
            );
        }
    }
}
