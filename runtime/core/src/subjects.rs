//! Subject names: the one place that knows how millrace's NATS subjects are spelled, how a
//! pattern matches a subject, and which ordered lane a raw subject takes.
//!
//! | subject | carries |
//! |---|---|
//! | `raw.<system>.<site>.<format>` | raw messages as sources publish them |
//! | `canonical.<event-kind>.<site>` | canonical events (CloudEvents JSON) |
//! | `dlq.<route>` | dead letters |
//! | `shadow.<route>` | shadow reports: where a shadow candidate's events (or requests) differ |
//! | `dlq.outbound.<route>` | outbound dead letters: the event, its requests, the last answer |
//! | `posting.<target>.<site>` | posting acknowledgements: an event posted to (or rejected by) a target |
//! | `out.<target>.<site>` | what a NATS target's requests publish |
//! | `audit.route.<route>.<action>` | the audit trail of changes to one route |
//! | `audit.host.<area>.<action>` | the audit trail of changes to what routes share (`plugins`, `projection`) |
//! | `ack.<route>.<partner>` | functional acknowledgements (X12 997, EDIFACT CONTRL) for a trading partner |

/// JetStream's advisories of the messages of `stream` that a consumer gave up delivering
/// (its `max_deliver` reached): `{"stream_seq": …, "deliveries": …, "consumer": …}` each.
pub fn max_deliveries_advisories(stream: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*")
}

/// Every canonical event.
pub const ALL_CANONICAL: &str = "canonical.>";
/// Every dead letter.
pub const ALL_DEAD_LETTERS: &str = "dlq.>";
/// Every shadow report.
pub const ALL_SHADOW: &str = "shadow.>";
/// Every posting acknowledgement.
pub const ALL_POSTINGS: &str = "posting.>";
/// Every message NATS targets publish.
pub const ALL_OUTBOX: &str = "out.>";
/// The first token after `dlq.` that marks an outbound route's dead letters.
pub const OUTBOUND_DEAD_LETTERS: &str = "outbound";

/// Every audit entry.
pub const ALL_AUDIT: &str = "audit.>";
/// The audit scope of changes to one route: `audit.route.<route>.<action>`.
pub const AUDIT_ROUTE: &str = "route";
/// The audit scope of changes to what routes share: `audit.host.<area>.<action>`.
pub const AUDIT_HOST: &str = "host";

/// The subject of an audit entry: `audit.<scope>.<name>.<action>`, the scope [`AUDIT_ROUTE`]
/// (named by the route) or [`AUDIT_HOST`] (named by the area, e.g. `plugins`).
pub fn audit(scope: &str, name: &str, action: &str) -> String {
    format!("audit.{scope}.{name}.{action}")
}

/// The subjects of the audit entries of `route` (every route when `None`) and `action` (every
/// action when `None`).
pub fn audit_filter(route: Option<&str>, action: Option<&str>) -> String {
    match (route, action) {
        (None, None) => ALL_AUDIT.to_owned(),
        (Some(route), action) => audit(AUDIT_ROUTE, route, action.unwrap_or("*")),
        (None, Some(action)) => audit("*", "*", action),
    }
}

/// Every functional acknowledgement.
pub const ALL_ACKNOWLEDGEMENTS: &str = "ack.>";

/// The subject of the functional acknowledgements `route` makes for `partner`.
pub fn acknowledgement(route: &str, partner: &str) -> String {
    format!("ack.{route}.{partner}")
}

/// The subject of raw messages of `system` at `site` in `format`.
pub fn raw(system: &str, site: &str, format: &str) -> String {
    format!("raw.{system}.{site}.{format}")
}

/// The subject of canonical events of `kind` at `site`.
pub fn canonical(kind: &str, site: &str) -> String {
    format!("canonical.{kind}.{site}")
}

/// The subject of a route's dead letters.
pub fn dead_letters(route: &str) -> String {
    format!("dlq.{route}")
}

/// The subject of a route's shadow reports.
pub fn shadow(route: &str) -> String {
    format!("shadow.{route}")
}

/// The subject of an outbound route's dead letters.
pub fn outbound_dead_letters(route: &str) -> String {
    format!("dlq.{OUTBOUND_DEAD_LETTERS}.{route}")
}

/// The subject of the acknowledgements of `target` at `site`.
pub fn posting(target: &str, site: &str) -> String {
    format!("posting.{target}.{site}")
}

/// The subject a NATS target publishes a request to for `site`.
pub fn outbox(target: &str, site: &str) -> String {
    format!("out.{target}.{site}")
}

/// The source system token of `raw.<system>.<site>.<format>`.
pub fn raw_system(subject: &str) -> Option<&str> {
    subject.split('.').nth(1)
}

/// The site token of `raw.<system>.<site>.<format>`.
pub fn raw_site(subject: &str) -> Option<&str> {
    subject.split('.').nth(2)
}

/// True when `subject` matches the NATS subject pattern `pattern` (`*` one token, a final
/// `>` one or more tokens).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when some subject matches both NATS subject patterns `a` and `b` (`*` one token, a
/// final `>` one or more tokens): `raw.>` and `raw.mes.*.x` overlap, `raw.>` and `mes.>` do not.
pub fn overlap(a: &str, b: &str) -> bool {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(x), Some(y)) if x == y => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when the NATS subject pattern `wide` matches every subject `narrow` matches (a subject
/// covers itself): `raw.>` covers `raw.mes.*.x`, `raw.*.x` covers `raw.mes.x`, and `raw.a.*`
/// and `raw.*.b` only overlap. nats-server refuses a consumer whose filters cover one another.
pub fn covers(wide: &str, narrow: &str) -> bool {
    let mut wide = wide.split('.');
    let mut narrow = narrow.split('.');
    loop {
        match (wide.next(), narrow.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) => return false,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(n)) if w == n => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The ordered lane of a raw subject: messages of one subject always take the same lane.
pub fn lane(subject: &str, lanes: usize) -> usize {
    (crate::digest::stable_hash(subject) % lanes.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_overlap_when_one_subject_matches_both() {
        for (a, b) in [
            ("raw.>", "raw.mes.plant1.x"),
            ("raw.>", "raw.mes.*.x"),
            ("raw.mes.>", "raw.>"),
            ("raw.*.plant1.x", "raw.mes.*.x"),
            ("raw.mes.plant1.x", "raw.mes.plant1.x"),
        ] {
            assert!(overlap(a, b), "{a} {b}");
            assert!(overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("raw.>", "mes.plant2.shift-report"),
            ("raw.>", "raw"),
            ("raw.mes.>", "raw.erp.plant1.x"),
            ("raw.*.x", "raw.mes.plant1.x"),
            ("raw.mes.plant1", "raw.mes.plant1.x"),
        ] {
            assert!(!overlap(a, b), "{a} {b}");
            assert!(!overlap(b, a), "{b} {a}");
        }
    }

    #[test]
    fn a_pattern_covers_what_it_matches_all_of() {
        for (wide, narrow) in [
            ("raw.>", "raw.mes.plant1.x"),
            ("raw.>", "raw.mes.>"),
            ("raw.>", "raw.*.x"),
            ("raw.*.x", "raw.mes.x"),
            ("raw.*.x", "raw.*.x"),
            ("raw.mes.x", "raw.mes.x"),
        ] {
            assert!(covers(wide, narrow), "{wide} covers {narrow}");
        }
        for (wide, narrow) in [
            ("raw.mes.>", "raw.>"),
            ("raw.a.*", "raw.*.b"),
            ("raw.*.b", "raw.a.*"),
            ("raw.mes.x", "raw.*.x"),
            ("raw.*", "raw.>"),
            ("raw.>", "raw"),
            ("raw.mes", "raw.mes.x"),
        ] {
            assert!(!covers(wide, narrow), "{wide} does not cover {narrow}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(subject_matches(
            "raw.mes.*.shift-report",
            "raw.mes.plant1.shift-report"
        ));
        assert!(subject_matches("raw.>", "raw.mes.plant1.shift-report"));
        assert!(!subject_matches("raw.>", "raw"));
        assert!(!subject_matches("raw.mes.*", "raw.mes.plant1.x"));
        assert!(subject_matches("raw.mes", "raw.mes"));
        assert!(!subject_matches("raw.mes", "raw.mes.x"));
    }

    #[test]
    fn audit_filters_match_their_entries() {
        let entry = audit(AUDIT_ROUTE, "line", "rollback");
        assert_eq!(entry, "audit.route.line.rollback");
        assert!(subject_matches(&audit_filter(None, None), &entry));
        assert!(subject_matches(&audit_filter(Some("line"), None), &entry));
        assert!(subject_matches(
            &audit_filter(None, Some("rollback")),
            &entry
        ));
        assert!(!subject_matches(&audit_filter(Some("other"), None), &entry));
        assert!(!subject_matches(
            &audit_filter(Some("line"), Some("promote")),
            &entry
        ));
        let deploy = audit(AUDIT_HOST, "plugins", "deploy");
        assert!(subject_matches(
            &audit_filter(None, Some("deploy")),
            &deploy
        ));
        assert!(!subject_matches(
            &audit_filter(Some("plugins"), None),
            &deploy
        ));
    }

    #[test]
    fn lanes_are_stable_and_spread() {
        assert_eq!(lane("raw.a.b.c", 16), lane("raw.a.b.c", 16));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane(&format!("raw.s.{i}.x"), 16)).collect();
        assert!(used.len() > 8, "{used:?}");
    }
}
