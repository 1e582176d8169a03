//! Control numbers of acknowledgements: allotted from a counter per route and partner, and
//! claimed once per raw message, both in replicated key-value buckets.
//!
//! The counter (`<route>.<partner>` in the control-number bucket, never expiring) moves only
//! by compare-and-swap, so two hosts never draw the same number and a restarted host goes on
//! from the last one drawn. The claim (`<route>.<digest of the raw identity>` in the
//! acknowledgement bucket, kept for the governance horizon) records the number and time given
//! to one raw message: the same message redelivered after a crash finds its claim and makes the
//! same acknowledgement, byte for byte, instead of drawing a new number. A crash between the
//! draw and the claim leaves a gap in the partner's sequence, never a repeat.

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use millrace_core::digest::sha256_hex;
use millrace_transport::revision::{Decided, FirstTry, RevisionError, read_modify_write};

/// Why a control number could not be allotted; transient: the raw message is redelivered.
#[derive(Debug, thiserror::Error)]
#[error("control numbers ({key}): {reason}")]
pub struct ControlError {
    key: String,
    reason: String,
}

/// What one raw message was given: the partner, the number and the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The partner the acknowledgement is for.
    pub partner: String,
    /// The control number.
    pub number: u64,
    /// When it was allotted, RFC 3339 in UTC.
    pub now: String,
}

/// The counters and the claims.
#[derive(Clone)]
pub struct ControlNumbers {
    counters: kv::Store,
    claims: kv::Store,
}

impl ControlNumbers {
    /// Control numbers over open buckets: `counters` must never expire entries.
    pub fn new(counters: kv::Store, claims: kv::Store) -> Self {
        Self { counters, claims }
    }

    /// The claim `raw_id` made on `route` before, if any.
    pub async fn claimed(&self, route: &str, raw_id: &str) -> Result<Option<Claim>, ControlError> {
        let key = claim_key(route, raw_id);
        let entry = self.claims.get(&key).await.map_err(|e| failed(&key, &e))?;
        entry
            .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| failed(&key, &e)))
            .transpose()
    }

    /// Claims the next number of `route` and `partner` for `raw_id`, at `now`; when another
    /// host claimed for the same message first, its claim.
    pub async fn claim(
        &self,
        route: &str,
        raw_id: &str,
        partner: &str,
        now: String,
    ) -> Result<Claim, ControlError> {
        let claim = Claim {
            partner: partner.to_owned(),
            number: self.next(route, partner).await?,
            now,
        };
        let key = claim_key(route, raw_id);
        let body = serde_json::to_vec(&claim).map_err(|e| failed(&key, &e))?;
        // Another host's claim for the same message, when it made one first.
        read_modify_write(&self.claims, &key, FirstTry::AssumeAbsent, |stored| {
            Ok(match stored {
                Some(stored) => Decided::Keep(serde_json::from_slice(stored)?),
                None => Decided::Write(body.clone().into(), claim.clone()),
            })
        })
        .await
        .map_err(|e: RevisionError<serde_json::Error>| failed(&key, &e))
    }

    /// Draws the next number of the counter `route.partner` (the first is 1).
    pub async fn next(&self, route: &str, partner: &str) -> Result<u64, ControlError> {
        let key = format!("{route}.{partner}");
        read_modify_write(&self.counters, &key, FirstTry::Read, |stored| {
            let next = match stored {
                None => 1,
                Some(last) => std::str::from_utf8(last)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or("the counter holds no number")?
                    .checked_add(1)
                    .ok_or("the counter is at its largest number")?,
            };
            Ok(Decided::Write(next.to_string().into(), next))
        })
        .await
        .map_err(|e: RevisionError<&str>| failed(&key, &e))
    }
}

fn claim_key(route: &str, raw_id: &str) -> String {
    format!("{route}.{}", &sha256_hex(raw_id.as_bytes())[..40])
}

fn failed(key: &str, reason: &dyn std::fmt::Display) -> ControlError {
    ControlError {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}
