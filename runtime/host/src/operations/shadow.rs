//! Shadow runs: a candidate version maps every message beside the active one, its events are
//! never published, and the host reports field by field where the two disagree — what a new
//! mapping would change, before anyone promotes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pipeline::mapping::Outcome;

/// One field where the candidate differs from the active version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Difference {
    /// Where, e.g. `events[0].data.good_quantity.amount`.
    pub path: String,
    /// The active version's value; absent when only the candidate has the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Value>,
    /// The candidate's value; absent when only the active version has the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Value>,
}

/// A shadow report of one raw message, published to `shadow.<route>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShadowReport {
    /// The route.
    pub route: String,
    /// The raw subject.
    pub raw_subject: String,
    /// The RAW stream sequence.
    pub raw_sequence: u64,
    /// The active version.
    pub active: String,
    /// The candidate version.
    pub candidate: String,
    /// Where they differ (the first ones, when `omitted` is set).
    pub differences: Vec<Difference>,
    /// How many further differences this report leaves out: set only when all of them would
    /// make it larger than one NATS message (the server's `max_payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<usize>,
}

impl ShadowReport {
    /// Publishes the report to `shadow.<route>` without waiting for JetStream's ack. A report
    /// larger than one NATS message keeps the differences that fit, in order, and counts the
    /// others in `omitted`.
    pub async fn publish(mut self, js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
        let body = self.encode_within(millrace_transport::max_payload(&js.client()))?;
        let subject = millrace_core::subjects::shadow(&self.route);
        let _ack = js.publish(subject, body.into()).await?;
        Ok(())
    }

    /// The report as JSON of at most `max` bytes: all of it, or the differences that fit with
    /// the others counted in `omitted`.
    fn encode_within(&mut self, max: usize) -> serde_json::Result<Vec<u8>> {
        let body = serde_json::to_vec(self)?;
        if body.len() <= max {
            return Ok(body);
        }
        let all = std::mem::take(&mut self.differences);
        self.omitted = Some(all.len());
        // The report without differences, and room for the count to shrink and the commas.
        let mut budget = max.saturating_sub(serde_json::to_vec(self)?.len());
        let mut kept = Vec::new();
        for difference in all {
            let size = serde_json::to_vec(&difference)?.len() + 1;
            if size > budget {
                break;
            }
            budget -= size;
            kept.push(difference);
        }
        self.omitted = Some(self.omitted.unwrap_or(0) - kept.len());
        self.differences = kept;
        serde_json::to_vec(self)
    }
}

/// The newest `limit` shadow reports of `route` on the `[streams]` shadow stream, oldest
/// first, read within `within` (a bounded read from the end of the stream, however many
/// reports it holds).
pub async fn reports(
    js: &async_nats::jetstream::Context,
    streams: &millrace_core::config::StreamsConfig,
    route: &str,
    limit: usize,
    within: std::time::Duration,
) -> anyhow::Result<Vec<ShadowReport>> {
    use anyhow::Context as _;
    let messages = millrace_transport::reader::tail(
        js,
        &streams.shadow,
        &millrace_core::subjects::shadow(route),
        limit,
        false,
        within,
    )
    .await
    .context("cannot read the shadow reports")?;
    messages
        .iter()
        .map(|message| {
            serde_json::from_slice(&message.payload).context("a shadow report does not parse")
        })
        .collect()
}

/// Where two outcomes differ, field by field.
pub fn differences(active: &Outcome, candidate: &Outcome) -> Vec<Difference> {
    differences_of(
        &serde_json::to_value(active).unwrap_or(Value::Null),
        &serde_json::to_value(candidate).unwrap_or(Value::Null),
    )
}

/// Where two JSON values differ, field by field (an outbound candidate's rendered requests
/// against the active version's).
pub fn differences_of(active: &Value, candidate: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    compare("", Some(active), Some(candidate), &mut out);
    out
}

fn compare(path: &str, a: Option<&Value>, c: Option<&Value>, out: &mut Vec<Difference>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, c) {
        (Some(Value::Object(a)), Some(Value::Object(c))) => {
            let mut keys: Vec<&String> = a.keys().chain(c.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                compare(&join(key), a.get(key), c.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(c))) => {
            for i in 0..a.len().max(c.len()) {
                compare(&format!("{path}[{i}]"), a.get(i), c.get(i), out);
            }
        }
        (a, c) if a == c => {}
        (a, c) => out.push(Difference {
            path: path.to_owned(),
            active: a.cloned(),
            candidate: c.cloned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_exactly_the_changed_fields() {
        let active: Outcome = serde_json::from_str(
            r#"{"events":[{"kind":"work-order-status","site":"P","occurred_at":"2026-01-01T00:00:00Z","data":{"work_order":"W","state":"started"}}]}"#,
        )
        .unwrap();
        let candidate: Outcome = serde_json::from_str(
            r#"{"events":[{"kind":"work-order-status","site":"P","occurred_at":"2026-01-01T00:00:00Z","data":{"work_order":"W","state":"paused","item":"I"}}]}"#,
        )
        .unwrap();
        let d = differences(&active, &candidate);
        assert_eq!(
            d,
            vec![
                Difference {
                    path: "events[0].data.item".into(),
                    active: None,
                    candidate: Some(Value::String("I".into())),
                },
                Difference {
                    path: "events[0].data.state".into(),
                    active: Some(Value::String("started".into())),
                    candidate: Some(Value::String("paused".into())),
                },
            ]
        );
        assert!(differences(&active, &active).is_empty());
    }

    #[test]
    fn a_report_too_large_for_a_message_keeps_the_differences_that_fit() {
        let difference = |i: usize| Difference {
            path: format!("events[0].data.lines[{i}].item"),
            active: Some(Value::String("A".repeat(100))),
            candidate: None,
        };
        let mut report = ShadowReport {
            route: "r".into(),
            raw_subject: "raw.x".into(),
            raw_sequence: 1,
            active: "p@1.0.0".into(),
            candidate: "p@2.0.0".into(),
            differences: (0..100).map(difference).collect(),
            omitted: None,
        };
        let whole = serde_json::to_vec(&report).unwrap();
        let mut small = report.clone();
        assert_eq!(small.encode_within(whole.len()).unwrap(), whole, "it fits");
        assert_eq!(small.omitted, None);

        let max = whole.len() / 2;
        let body = report.encode_within(max).unwrap();
        assert!(body.len() <= max, "{} > {max}", body.len());
        let back: ShadowReport = serde_json::from_slice(&body).unwrap();
        let kept = back.differences.len();
        assert!(kept > 40 && kept < 50, "about half kept: {kept}");
        assert_eq!(
            back.differences[..],
            (0..kept).map(difference).collect::<Vec<_>>()[..]
        );
        assert_eq!(back.omitted, Some(100 - kept));
    }
}
