//! The outbound model: a canonical event as an outbound plugin receives it (read back from its
//! CloudEvent), the requests it renders, a target's response and the plugin's verdict. These
//! mirror `interface posting` of `wit/outbound@1.0.0` one for one; the sandbox converts.
//!
//! The types are `millrace-model`'s, the ones the SDK gives outbound plugins, so the host's
//! outbound driver, admission by golden fixtures, the dead letters and a plugin's own tests
//! read the same JSON. What only the host does stays here: the headers it owns and the
//! acknowledgements it publishes.

pub mod acknowledgement;

/// One canonical event as outbound plugins receive it (the SDK's `posting::Event`).
pub use millrace_model::posting::Event as CanonicalEvent;
pub use millrace_model::posting::{
    Answer, Envelope, Lineage, Method, NotCanonical, PostingFixture, RenderError, Request,
    Response, Verdict, body,
};

/// The longest text an outbound plugin's verdict or render error may carry (a reason, a
/// document id), in bytes: it travels in acknowledgements and dead letters, each one NATS
/// message, and a plugin quoting a target's whole error page must not make either too large to
/// publish.
pub const PLUGIN_TEXT_MAX: usize = 4096;

/// A plugin's text as the host takes it (a map or render error, a verdict's reason or document
/// id): its control characters shown ([`shown`]), then cut to [`PLUGIN_TEXT_MAX`] bytes
/// ([`clip_to`]).
pub fn clip(text: String) -> String {
    let text = match shown(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    clip_to(text, PLUGIN_TEXT_MAX)
}

/// `text` with its control characters but tab written as escapes (`\n`, `\u{0}`, `\u{1b}`):
/// how the host shows a plugin's text (errors, log records, what it prints), so a plugin cannot
/// forge log lines, hide text behind a NUL, or send escape sequences to an operator's terminal.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() && c != '\t';
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` cut to `max` bytes, at a character boundary, with `…` marking the cut.
pub fn clip_to(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Headers a plugin may not set: the host owns them.
pub const HOST_HEADERS: [&str; 2] = ["authorization", "idempotency-key"];

/// Headers a plugin may not set because the HTTP connection owns them (the message's framing
/// and the hop-by-hop headers): with one, a request would be framed or routed otherwise than
/// the host sends it.
pub const CONNECTION_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Why the host will not send `headers` as a plugin rendered them, if it will not: a name that
/// is not an HTTP token, a value holding a line break or another control character (on the
/// wire it would end the header and start others, in HTTP and in NATS alike), or a header the
/// host or the connection owns. To a NATS target (`nats`) the `Nats-` headers are refused too:
/// JetStream acts on them (message id, expected sequence, rollup, time to live).
pub fn header_refusal(headers: &[(String, String)], nats: bool) -> Option<String> {
    /// RFC 9110's `tchar`, beside letters and digits.
    const TOKEN_MARKS: &[u8] = b"!#$%&'*+-.^_`|~";
    headers.iter().find_map(|(name, value)| {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || TOKEN_MARKS.contains(&b))
        {
            Some(format!(
                "the header name {name:?} is not an HTTP token (letters, digits and \
                 !#$%&'*+-.^_`|~ only)"
            ))
        } else if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
            Some(format!(
                "the value of header `{name}` holds the control character {c:?}, which would \
                 split it into other headers on the wire"
            ))
        } else if HOST_HEADERS.contains(&lower.as_str()) {
            Some(format!(
                "the plugin set the header `{name}`, which the host sets"
            ))
        } else if CONNECTION_HEADERS.contains(&lower.as_str()) {
            Some(format!(
                "the plugin set the header `{name}`, which the HTTP connection sets"
            ))
        } else if nats && lower.starts_with("nats-") {
            Some(format!(
                "the plugin set the header `{name}`: JetStream acts on `Nats-` headers, so the \
                 host alone sets them"
            ))
        } else {
            None
        }
    })
}

/// Why the host will not send a request to `path`, whatever the target, if it will not: a path
/// starts with `/` and holds no whitespace, control character or backslash (a URL parser drops
/// tabs and line breaks without a word, and reads `\\` as `/`), and no `.` or `..` segment,
/// plain or percent-encoded, so it can only name a place under the target's URL.
pub fn path_refusal(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("the path `{path}` does not start with `/`"));
    }
    if let Some(c) = path
        .chars()
        .find(|&c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Some(format!(
            "the path {path:?} holds {c:?}: percent-encode it (a URL holds no whitespace, \
             control character or backslash)"
        ));
    }
    let before_query = path.split(['?', '#']).next().unwrap_or_default();
    let dots = before_query.split('/').find(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })?;
    Some(format!(
        "the path {path:?} holds the segment `{dots}`, which would climb out of the place it \
         names (and out of the target's URL): write the path it means"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::EventData;

    #[test]
    fn a_plugins_text_shows_its_control_characters_as_escapes() {
        assert_eq!(
            clip("bad\0 record\r\n2026 INFO forged\u{1b}[2J\tend".into()),
            "bad\\u{0} record\\r\\n2026 INFO forged\\u{1b}[2J\tend"
        );
        assert_eq!(clip("plain text".into()), "plain text");
        // Escaped first, then cut: the bound holds.
        assert_eq!(
            clip("\0".repeat(PLUGIN_TEXT_MAX)).len(),
            PLUGIN_TEXT_MAX + '…'.len_utf8()
        );
    }

    #[test]
    fn headers_that_would_split_reframe_or_steer_a_request_are_refused() {
        let one = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        let refused = |name: &str, value: &str, nats: bool| {
            header_refusal(&one(name, value), nats).unwrap_or_default()
        };
        assert_eq!(
            header_refusal(&one("X-Plant", "PLANT1\tline 2"), true),
            None
        );
        assert_eq!(header_refusal(&one("sap-client", "100"), false), None);
        assert_eq!(header_refusal(&one("Nats-Note", "x"), false), None);
        assert!(refused("X-A", "1\r\nX-B: 2", false).contains("control character '\\r'"));
        assert!(refused("X-A", "1\nNats-Rollup: all", true).contains("'\\n'"));
        assert!(refused("X-A", "\0", true).contains("control character"));
        assert!(refused("X-A: 1", "2", false).contains("not an HTTP token"));
        assert!(refused("X A", "2", true).contains("not an HTTP token"));
        assert!(refused("", "2", true).contains("not an HTTP token"));
        assert!(refused("Ä", "2", true).contains("not an HTTP token"));
        assert!(refused("AUTHORIZATION", "x", false).contains("which the host sets"));
        assert!(refused("Content-Length", "0", false).contains("HTTP connection"));
        assert!(refused("transfer-encoding", "chunked", true).contains("HTTP connection"));
        assert!(refused("Nats-Msg-Id", "x", true).contains("JetStream acts on"));
        assert!(refused("nats-rollup", "all", true).contains("JetStream acts on"));
    }

    #[test]
    fn paths_that_could_leave_the_target_are_refused() {
        for good in [
            "/goods-movements",
            "/odata/GoodsMovements('4711')?$format=json&x=../y",
            "/a/b%20c/",
            "/",
            "/.well-known/x",
            "/a/...",
        ] {
            assert_eq!(path_refusal(good), None, "{good}");
        }
        let refused = |path: &str| path_refusal(path).unwrap_or_default();
        assert!(refused("goods").contains("does not start with `/`"));
        assert!(refused("@evil.example/x").contains("does not start with `/`"));
        assert!(refused("/goods\nmovements").contains("'\\n'"));
        assert!(refused("/goods x").contains("' '"));
        assert!(refused("/a\\..\\b").contains("'\\\\'"));
        assert!(refused("/../tenant-b/orders").contains("segment `..`"));
        assert!(refused("/a/./b").contains("segment `.`"));
        assert!(refused("/a/%2E%2e/b").contains("segment `%2E%2e`"));
        assert!(refused("/a/..").contains("segment `..`"));
    }

    #[test]
    fn plugin_text_is_clipped_at_a_character_boundary() {
        assert_eq!(clip("short".into()), "short");
        let long = "é".repeat(PLUGIN_TEXT_MAX);
        let clipped = clip(long);
        assert!(clipped.ends_with('…'));
        assert_eq!(clipped.len(), PLUGIN_TEXT_MAX + '…'.len_utf8());
    }

    #[test]
    fn an_event_reads_back_from_the_cloudevent_the_inbound_half_publishes() {
        use crate::canonical::{CloudEvent, Lineage, MappedEvent, ProductionCompletion, Quantity};
        let mapped = MappedEvent {
            site: "PLANT1".into(),
            occurred_at: "2026-11-30T03:00:00Z".into(),
            source_sequence: Some(42),
            source_transaction: Some("TX-7".into()),
            data: EventData::ProductionCompletion(ProductionCompletion {
                work_order: "WO-1".into(),
                operation: None,
                item: "ITEM-1".into(),
                lot: Some("LOT-1".into()),
                good_quantity: Quantity::new("5", "EA"),
                scrap_quantity: Quantity::new("0", "EA"),
                location: None,
            }),
        };
        let lineage = Lineage {
            raw_id: "msg-1",
            system: "mes",
            route: "mes",
            plugin: "mes-shift-report",
            plugin_version: "1.2.0",
            raw_sequence: 9,
        };
        let cloudevent = serde_json::to_value(CloudEvent::new(&mapped, 0, &lineage)).unwrap();
        let event = CanonicalEvent::from_cloudevent(&cloudevent).unwrap();
        assert_eq!(event.data, mapped.data);
        let e = &event.envelope;
        assert_eq!(e.kind, "production-completion");
        assert_eq!(e.site, "PLANT1");
        assert_eq!(e.subject, "canonical.production-completion.PLANT1");
        assert_eq!(e.time, "2026-11-30T03:00:00Z");
        assert_eq!(e.lineage.plugin, "mes-shift-report@1.2.0");
        assert_eq!(e.lineage.raw_id, "raw:9");
        assert_eq!(e.lineage.source_sequence, Some(42));
        assert_eq!(e.lineage.source_transaction.as_deref(), Some("TX-7"));
        assert_eq!(e.business_key, crate::canonical::business_key(&mapped));
        assert!(CanonicalEvent::from_cloudevent(&serde_json::json!({})).is_err());
    }
}
