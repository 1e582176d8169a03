//! Idempotency on business identity: the resend of the same document with a new message id.
//!
//! A plugin names the source transaction of each event (an MES transaction id, an EDI
//! interchange and transaction set control number). The first raw message to deliver a
//! transaction claims it in a key-value bucket (kept for the configured horizon); events of
//! that transaction in any other raw message are skipped and counted. The same raw message
//! redelivered after a crash finds its own claim and goes on, so a claim is never lost to a crash
//! between claiming and publishing.
//!
//! A claim names the raw message by its identity *and* its RAW sequence: a publisher that sends
//! the same file again with the same `Nats-Msg-Id` after RAW's duplicate window has passed stores
//! a second raw message, which is a resend like any other (by its identity alone it looked like
//! a crash redelivery, and after a version change its events, with new ids, were published
//! again). A claim written by an older host holds the identity alone and still counts as its
//! own message's.
//!
//! A claim is scoped to the route *and the event's site*: sources number their transactions per
//! plant (an MES's `TX-1` at plant 1000 and at plant 2000 are two postings), and one route may map
//! several plants. The key is `<route>.<site>.<digest of the transaction>`. Hosts before this wrote
//! `<route>.<digest>`: while such claims may still be in the bucket (they expire with the horizon),
//! a transaction with no claim under its new key takes over the older claim's holder, so a resend
//! of what an older host delivered still adds nothing. Whether any are left is looked at once
//! every [`OLDER_CLAIMS_RECHECK`], a count of the bucket's keys of the older shape; after the
//! horizon there are none and a claim is one write again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::kv;
use futures::future::try_join_all;

use millrace_core::canonical::MappedEvent;
use millrace_core::digest::sha256_hex;

use millrace_transport::revision::{Decided, FirstTry, read_modify_write};

/// Why the ledger could not answer; transient: the message is redelivered.
#[derive(Debug, thiserror::Error)]
#[error("idempotency bucket: {0}")]
pub struct LedgerError(String);

/// How often a ledger looks again whether claims of the older shape (without the site) are
/// left in its bucket.
pub const OLDER_CLAIMS_RECHECK: Duration = Duration::from_secs(600);

/// The delivered source transactions, in a key-value bucket.
#[derive(Clone)]
pub struct TransactionLedger {
    kv: kv::Store,
    /// Whether claims an older host wrote may be left, and when that was looked at.
    older: Arc<Mutex<Option<(bool, Instant)>>>,
}

/// A source transaction as the ledger claims it: at a site, by its id there.
pub type SiteTransaction = (String, String);

impl TransactionLedger {
    /// A ledger over an open bucket.
    pub fn new(kv: kv::Store) -> Self {
        Self {
            kv,
            older: Arc::new(Mutex::new(None)),
        }
    }

    /// Claims the source transactions of `events`, each at its event's site, for the raw
    /// message `raw_id` at RAW `raw_sequence`; returns those another raw message has already
    /// delivered.
    pub async fn claim(
        &self,
        route: &str,
        raw_id: &str,
        raw_sequence: u64,
        events: &[MappedEvent],
    ) -> Result<BTreeSet<SiteTransaction>, LedgerError> {
        let transactions: BTreeSet<(&str, &str)> = events
            .iter()
            .filter_map(|e| Some((e.site.as_str(), e.source_transaction.as_deref()?)))
            .collect();
        if transactions.is_empty() {
            return Ok(BTreeSet::new());
        }
        let older = self.older_claims_left().await;
        let holder = Holder::new(raw_id, raw_sequence);
        let claims = transactions
            .iter()
            .map(|&(site, txn)| self.claim_one(route, site, txn, older, &holder));
        let owners = try_join_all(claims).await?;
        Ok(transactions
            .into_iter()
            .zip(owners)
            .filter(|(_, ours)| !ours)
            .map(|((site, txn), _)| (site.to_owned(), txn.to_owned()))
            .collect())
    }

    /// True when `holder` holds the claim on `txn` at `site` (it just took it, or took it
    /// before). With `older` claims left, a transaction with no claim yet takes over the holder
    /// of its older claim, if it has one.
    async fn claim_one(
        &self,
        route: &str,
        site: &str,
        txn: &str,
        older: bool,
        holder: &Holder<'_>,
    ) -> Result<bool, LedgerError> {
        let digest = &sha256_hex(txn.as_bytes())[..40];
        let key = format!("{route}.{site}.{digest}");
        let earlier = if older {
            let older_key = format!("{route}.{digest}");
            self.kv.get(&older_key).await.map_err(|e| {
                LedgerError(format!(
                    "{older_key}: could not read an older host's claim: {e}"
                ))
            })?
        } else {
            None
        };
        // A claim on a new key is one write; a lost race (or a deleted claim's marker) reads.
        read_modify_write(&self.kv, &key, FirstTry::AssumeAbsent, |stored| {
            Ok::<_, std::convert::Infallible>(match (stored, &earlier) {
                (Some(stored), _) => Decided::Keep(holder.is(stored)),
                (None, Some(earlier)) => Decided::Write(earlier.clone(), holder.is(earlier)),
                (None, None) => Decided::Write(holder.value.clone().into(), true),
            })
        })
        .await
        .map_err(|e| LedgerError(format!("{key}: could not claim or read the claim: {e}")))
    }

    /// Whether claims of the older shape (`<route>.<digest>`, two tokens) may be left in the
    /// bucket: counted by an ephemeral consumer of their last values, at most once every
    /// [`OLDER_CLAIMS_RECHECK`]. When they cannot be counted they may be left: a new
    /// transaction then reads its older claim, which costs a read and loses nothing.
    async fn older_claims_left(&self) -> bool {
        if let Some((left, at)) = *self.older.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < OLDER_CLAIMS_RECHECK
        {
            return left;
        }
        let left = match self.count_older_claims().await {
            Ok(0) => false,
            Ok(claims) => {
                tracing::info!(
                    claims,
                    "the idempotency bucket holds claims of older hosts (without the site): a \
                     new transaction reads its older claim too, until they expire with the horizon"
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    "cannot count the idempotency claims older hosts wrote, so a new transaction \
                     reads its older claim too: {e}"
                );
                true
            }
        };
        *self.older.lock().unwrap_or_else(|e| e.into_inner()) = Some((left, Instant::now()));
        left
    }

    /// How many keys of the older shape the bucket holds.
    async fn count_older_claims(&self) -> Result<u64, async_nats::Error> {
        let consumer = self
            .kv
            .stream
            .create_consumer(pull::Config {
                filter_subject: format!("{}*.*", self.kv.prefix),
                deliver_policy: DeliverPolicy::LastPerSubject,
                headers_only: true,
                inactive_threshold: Duration::from_secs(10),
                ..Default::default()
            })
            .await?;
        let info = consumer.cached_info();
        // It goes by itself once inactive; deleting it now is tidier.
        let _ = self.kv.stream.delete_consumer(&info.name).await;
        Ok(info.num_pending)
    }
}

/// The raw message a claim names: `<identity>\n<RAW sequence>` (a header value, so an identity,
/// holds no line break).
struct Holder<'a> {
    raw_id: &'a str,
    value: String,
}

impl<'a> Holder<'a> {
    fn new(raw_id: &'a str, raw_sequence: u64) -> Self {
        Self {
            raw_id,
            value: format!("{raw_id}\n{raw_sequence}"),
        }
    }

    /// True when `stored` names this raw message; an older host's claim names its identity alone.
    fn is(&self, stored: &[u8]) -> bool {
        stored == self.value.as_bytes() || stored == self.raw_id.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::Holder;

    #[test]
    fn a_claim_names_the_raw_message_by_identity_and_sequence() {
        let holder = Holder::new("asn-1", 7);
        assert!(holder.is(b"asn-1\n7"), "its own claim");
        assert!(
            holder.is(b"asn-1"),
            "an older host's claim of the same message"
        );
        assert!(
            !holder.is(b"asn-1\n3"),
            "the same identity stored again after RAW's duplicate window: a resend"
        );
        assert!(!holder.is(b"asn-2\n7"));
        assert!(!Holder::new("asn-1", 17).is(b"asn-1\n7"));
    }
}
