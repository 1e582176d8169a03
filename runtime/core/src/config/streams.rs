//! `[streams]`: the JetStream streams and how they are replicated.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `streams.raw`, `streams.canonical`, `streams.dlq` | JetStream stream names | `RAW`, `CANONICAL`, `DLQ` |
//! | `streams.shadow` | the stream of shadow-run differences (`shadow.>`) | `SHADOW` |
//! | `streams.posting` | the stream of posting acknowledgements (`posting.>`) | `POSTING` |
//! | `streams.outbox` | the stream NATS targets publish to (`out.>`) | `OUTBOX` |
//! | `streams.audit` | the audit trail of changes (`audit.>`, docs/GOVERNANCE.md) | `AUDIT` |
//! | `streams.acks` | the stream of functional acknowledgements for trading partners (`ack.>`) | `ACKS` |
//! | `streams.undeliverable` | the stream keeping JetStream's advisories of raw messages a route's consumer gave up delivering (`routes.<name>.max_deliveries`), which hosts dead-letter | `UNDELIVERABLE` |
//! | `streams.raw_subjects` | subjects captured by the RAW stream | `["raw.>"]` |
//! | `streams.duplicate_window` | JetStream de-duplication window of the streams | `2m` |
//! | `streams.replicas` | copies of every stream, key-value bucket and the registry's object store: 1 or 3 (a cluster); when set, hosts bring existing ones to it | unset: created with 1, existing left as they are |
//! | `streams.placement_tags` | server tags the replicas must sit on | unset: anywhere |

use serde::Deserialize;

use super::values::{HumanDuration, Invalid, check_names, check_subjects};

/// JetStream stream names and settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsConfig {
    /// The stream capturing raw messages.
    pub raw: String,
    /// The subjects the raw stream captures.
    pub raw_subjects: Vec<String>,
    /// The stream of canonical events (`canonical.>`).
    pub canonical: String,
    /// The stream of dead letters (`dlq.>`).
    pub dlq: String,
    /// The stream of shadow-run differences (`shadow.>`).
    pub shadow: String,
    /// The stream of posting acknowledgements (`posting.>`).
    pub posting: String,
    /// The stream NATS targets publish to (`out.>`).
    pub outbox: String,
    /// The audit trail: every change to routes, plugins and the projection (`audit.>`).
    pub audit: String,
    /// The stream of functional acknowledgements for trading partners (`ack.>`).
    pub acks: String,
    /// The stream keeping JetStream's advisories of the raw messages a route's consumer gave
    /// up delivering, which hosts read to dead-letter them.
    pub undeliverable: String,
    /// The de-duplication window of the streams.
    pub duplicate_window: HumanDuration,
    /// Copies JetStream keeps of every stream, key-value bucket and the registry's object store:
    /// 1, or 3 on a cluster of three or more servers. Unset: created with one, and an existing
    /// stream's left as it is; set: hosts bring existing ones to it at start.
    pub replicas: Option<usize>,
    /// Server tags the replicas must sit on (JetStream places them only on servers carrying
    /// every tag, e.g. `["site:plant1"]`). Unset: anywhere, and an existing stream's left as it is.
    pub placement_tags: Option<Vec<String>>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            raw: "RAW".into(),
            raw_subjects: vec!["raw.>".into()],
            canonical: "CANONICAL".into(),
            dlq: "DLQ".into(),
            shadow: "SHADOW".into(),
            posting: "POSTING".into(),
            outbox: "OUTBOX".into(),
            audit: "AUDIT".into(),
            acks: "ACKS".into(),
            undeliverable: "UNDELIVERABLE".into(),
            duplicate_window: HumanDuration::from_secs(120),
            replicas: None,
            placement_tags: None,
        }
    }
}

impl StreamsConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_names([
            ("streams.raw", self.raw.as_str()),
            ("streams.canonical", &self.canonical),
            ("streams.dlq", &self.dlq),
            ("streams.shadow", &self.shadow),
            ("streams.posting", &self.posting),
            ("streams.outbox", &self.outbox),
            ("streams.audit", &self.audit),
            ("streams.acks", &self.acks),
            ("streams.undeliverable", &self.undeliverable),
        ])?;
        if let Some(replicas) = self.replicas
            && replicas != 1
            && replicas != 3
        {
            return Err(Invalid::new(
                "streams.replicas",
                format!(
                    "is {replicas}; accepted: 1 (one server) or 3 (a JetStream cluster of three or more)"
                ),
            ));
        }
        if let Some(tags) = &self.placement_tags
            && tags.iter().any(|t| t.trim().is_empty())
        {
            return Err(Invalid::new(
                "streams.placement_tags",
                "holds an empty tag: list the server tags (`server_tags` in nats-server's config) the replicas must sit on",
            ));
        }
        if self.raw_subjects.is_empty() {
            return Err(Invalid::new(
                "streams.raw_subjects",
                "needs at least one subject",
            ));
        }
        check_subjects("streams.raw_subjects", &self.raw_subjects, true)
    }

    /// Every subject of route `route` overlaps what the RAW stream captures: a route subject
    /// outside it never receives a message, and nats-server accepts its consumer all the same
    /// (a route on `mes.plant2.shift-report`, `raw.` forgotten, reported ready and idled).
    pub(super) fn check_captured(&self, route: &str, subjects: &[String]) -> Result<(), Invalid> {
        for subject in subjects {
            if !self
                .raw_subjects
                .iter()
                .any(|raw| crate::subjects::overlap(raw, subject))
            {
                return Err(Invalid::new(
                    format!("routes.{route}.subjects"),
                    format!(
                        "{subject:?} is outside what the RAW stream captures (streams.raw_subjects = {:?}), \
                         so the route would never receive a message: raw subjects are raw.<system>.<site>.<format>",
                        self.raw_subjects
                    ),
                ));
            }
        }
        Ok(())
    }
}
