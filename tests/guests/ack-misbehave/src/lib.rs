//! A millrace acknowledger that misbehaves on request (world `acknowledger` of
//! `millrace:outbound@1.0.0`), for the host's acknowledgement tests.
//!
//! The raw payload's third whitespace-separated word picks the behaviour (the first two, `ok
//! <n>`, are for the `misbehave` mapper):
//!
//! | word | acknowledgement |
//! |------|-----------------|
//! | `partner-dot` | to partner `P1.evil`, which is no subject token |
//! | `flip` | to partner `P1` when the control number is 0 (the host's first call, which names the partner), to `P2` after: no pure function of its input |
//! | `huge` | to partner `P1`, a document of 1.5 MiB: over a NATS server's default message size (1 MiB), under a route's `output_kib = 2048` |
//! | anything else | to partner `P1`, `ACK <control number>` |
#![allow(unsafe_code, missing_docs, clippy::too_many_arguments)] // the wit-bindgen export glue

wit_bindgen::generate!({
    path: "../../../wit/outbound@1.0.0",
    world: "acknowledger",
    generate_all,
});

struct Acknowledger;

impl Guest for Acknowledger {
    fn acknowledge(
        raw: RawMessage,
        _outcome: Outcome,
        control: Control,
    ) -> Result<Option<Acknowledgement>, String> {
        let text = String::from_utf8_lossy(&raw.payload);
        let (partner, document) = match text.split_whitespace().nth(2).unwrap_or_default() {
            "partner-dot" => ("P1.evil", Vec::new()),
            "flip" if control.number == 0 => ("P1", Vec::new()),
            "flip" => ("P2", Vec::new()),
            "huge" => ("P1", vec![b'X'; 3 * 512 * 1024]),
            _ => ("P1", format!("ACK {}", control.number).into_bytes()),
        };
        Ok(Some(Acknowledgement {
            partner: partner.into(),
            document,
        }))
    }
}

export!(Acknowledger);
