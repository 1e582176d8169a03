//! `[projection]`: the visibility projection of the canonical stream (see
//! `docs/PROJECTION.md`).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `projection.enabled` | run the visibility projection beside the host | on in `up`; in `run`, on when an outbound route has a posting gate (which reads it), else off |
//! | `projection.consumer` | its durable consumer on the canonical stream | `millrace-projection` |
//! | `projection.inventory_bucket`, `.work_order_bucket`, `.hold_bucket`, `.commitment_bucket`, `.source_bucket`, `.posting_bucket` | its key-value buckets | `millrace-inventory`, `millrace-work-orders`, `millrace-holds`, `millrace-commitments`, `millrace-sources`, `millrace-postings` |

use std::collections::BTreeSet;

use serde::Deserialize;

use super::values::{Invalid, check_names};

/// The visibility projection: current stock, work orders, holds, commitments and source ages
/// kept in key-value buckets from the canonical stream (see `docs/PROJECTION.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionConfig {
    /// Whether `run` and `up` run the projection beside the host; unset: `up` does, `run`
    /// does when an outbound route has a posting gate (`Config::runs_projection`).
    pub enabled: Option<bool>,
    /// The durable consumer of the canonical stream.
    pub consumer: String,
    /// Stock positions by site, item, location and lot.
    pub inventory_bucket: String,
    /// Work orders by site and number.
    pub work_order_bucket: String,
    /// Quality holds by site and hold id.
    pub hold_bucket: String,
    /// Supplier commitments by site, supplier and item.
    pub commitment_bucket: String,
    /// The last update from each source system.
    pub source_bucket: String,
    /// The posting state of each event an outbound route posts, per target.
    pub posting_bucket: String,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            consumer: "millrace-projection".into(),
            inventory_bucket: "millrace-inventory".into(),
            work_order_bucket: "millrace-work-orders".into(),
            hold_bucket: "millrace-holds".into(),
            commitment_bucket: "millrace-commitments".into(),
            source_bucket: "millrace-sources".into(),
            posting_bucket: "millrace-postings".into(),
        }
    }
}

impl ProjectionConfig {
    /// The durable consumer of the posting acknowledgements (stream POSTING):
    /// `<consumer>-postings`.
    pub fn posting_consumer(&self) -> String {
        format!("{}-postings", self.consumer)
    }

    /// The durable consumer of the outbound dead letters (`dlq.outbound.>` on stream DLQ):
    /// `<consumer>-outbound-dead-letters`.
    pub fn dead_letter_consumer(&self) -> String {
        format!("{}-outbound-dead-letters", self.consumer)
    }

    /// The bucket names with their keys, for validation and messages.
    pub fn buckets(&self) -> [(&'static str, &str); 6] {
        [
            ("projection.inventory_bucket", &self.inventory_bucket),
            ("projection.work_order_bucket", &self.work_order_bucket),
            ("projection.hold_bucket", &self.hold_bucket),
            ("projection.commitment_bucket", &self.commitment_bucket),
            ("projection.source_bucket", &self.source_bucket),
            ("projection.posting_bucket", &self.posting_bucket),
        ]
    }

    /// The first key holding a bad name, with what is wrong.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_names([("projection.consumer", self.consumer.as_str())])?;
        let mut seen = BTreeSet::new();
        for (key, name) in self.buckets() {
            check_names([(key, name)])?;
            if !seen.insert(name) {
                return Err(Invalid::new(
                    key,
                    format!(
                        "is {name:?}, a bucket another projection key names already: each needs its own"
                    ),
                ));
            }
        }
        Ok(())
    }
}
