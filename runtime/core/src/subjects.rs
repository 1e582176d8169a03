//! Subject names: the one place that knows how millrace's NATS subjects are spelled, how a
//! pattern matches a subject, and which ordered lane a raw subject takes.
//!
//! | subject | carries |
//! |---|---|
//! | `raw.<system>.<site>.<format>` | raw messages as sources publish them |
//! | `canonical.<event-kind>.<site>` | canonical events (CloudEvents JSON) |
//! | `dlq.<route>` | dead letters |
//! | `shadow.<route>` | shadow reports: where a shadow candidate's events differ |
//! | `ack.<route>.<partner>` | functional acknowledgements (X12 997, EDIFACT CONTRL) for a trading partner |

/// Every canonical event.
pub const ALL_CANONICAL: &str = "canonical.>";
/// Every dead letter.
pub const ALL_DEAD_LETTERS: &str = "dlq.>";
/// Every shadow report.
pub const ALL_SHADOW: &str = "shadow.>";

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

/// The ordered lane of a raw subject: messages of one subject always take the same lane.
pub fn lane(subject: &str, lanes: usize) -> usize {
    (crate::digest::stable_hash(subject) % lanes.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn lanes_are_stable_and_spread() {
        assert_eq!(lane("raw.a.b.c", 16), lane("raw.a.b.c", 16));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane(&format!("raw.s.{i}.x"), 16)).collect();
        assert!(used.len() > 8, "{used:?}");
    }
}
