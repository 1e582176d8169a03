//! millrace acknowledger plugin: the functional acknowledgement a trading partner expects for
//! each inbound interchange, an X12 997 for X12 (sniffed by `ISA`) and a CONTRL for EDIFACT
//! (`UNA` or `UNB`), made from the raw document and what became of it inbound.
//!
//! The rules (which codes for which error, how the inbound outcome weighs in) are in the
//! README. Everything below the WIT glue is plain Rust over bytes, tested natively against the
//! golden fixtures in `fixtures/`.

pub mod edifact;
pub mod envelope;
pub mod x12;

pub use envelope::{Acknowledgement, Inbound, Stamp};

/// Makes the acknowledgement of one raw document: `None` when it needs none (it is itself an
/// acknowledgement), `Err` when it has no readable envelope.
pub fn acknowledge(
    payload: &[u8],
    inbound: &Inbound<'_>,
    stamp: &Stamp,
) -> Result<Option<Acknowledgement>, String> {
    let text = envelope::text(payload)?;
    let text: &str = &text;
    // A test interchange the route refused for being a test was read whole by the mapping
    // reader (it refuses syntax first): what a functional acknowledgement reports, its syntax,
    // is sound. It is acknowledged as such, its test indicator echoed, and nothing was booked,
    // as nothing is of a test; a rejection would claim an error the partner cannot fix.
    let inbound = match inbound {
        Inbound::Failed(reason) if envelope::is_test_refusal(reason) => &Inbound::Mapped(0),
        other => other,
    };
    if text.starts_with("ISA") {
        x12::acknowledge(text, inbound, stamp)
    } else if text.starts_with("UNA") || text.starts_with("UNB") {
        edifact::acknowledge(text, inbound, stamp)
    } else {
        Err("neither an X12 interchange (ISA) nor an EDIFACT one (UNA, UNB)".into())
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    // Generated glue: the WIT documents what bindgen does not carry over.
    // bindgen writes the canonical ABI glue with `unsafe` and wide lowering functions.
    #![allow(missing_docs, unsafe_code, clippy::too_many_arguments)]

    wit_bindgen::generate!({
        path: "../../wit/outbound@1.0.0",
        world: "acknowledger",
        generate_all,
    });

    struct EdiAck;

    impl Guest for EdiAck {
        fn acknowledge(
            raw: RawMessage,
            outcome: Outcome,
            control: Control,
        ) -> Result<Option<Acknowledgement>, String> {
            let inbound = match &outcome {
                Outcome::Mapped(events) => super::Inbound::Mapped(*events),
                Outcome::Failed(reason) => super::Inbound::Failed(reason),
            };
            let stamp = super::Stamp::new(control.number, &control.now)?;
            Ok(
                super::acknowledge(&raw.payload, &inbound, &stamp)?.map(|ack| Acknowledgement {
                    partner: ack.partner,
                    document: ack.document,
                }),
            )
        }
    }

    export!(EdiAck);
}
