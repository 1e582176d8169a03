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

use std::collections::BTreeSet;

use async_nats::jetstream::kv;
use futures::future::try_join_all;

use millrace_core::canonical::MappedEvent;
use millrace_core::digest::sha256_hex;

use millrace_transport::revision::{Decided, FirstTry, read_modify_write};

/// Why the ledger could not answer; transient: the message is redelivered.
#[derive(Debug, thiserror::Error)]
#[error("idempotency bucket: {0}")]
pub struct LedgerError(String);

/// The delivered source transactions, in a key-value bucket.
#[derive(Clone)]
pub struct TransactionLedger {
    kv: kv::Store,
}

impl TransactionLedger {
    /// A ledger over an open bucket.
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// Claims the source transactions of `events` for the raw message `raw_id` at RAW
    /// `raw_sequence`; returns those another raw message has already delivered.
    pub async fn claim(
        &self,
        route: &str,
        raw_id: &str,
        raw_sequence: u64,
        events: &[MappedEvent],
    ) -> Result<BTreeSet<String>, LedgerError> {
        let transactions: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e.source_transaction.as_deref())
            .collect();
        let holder = Holder::new(raw_id, raw_sequence);
        let claims = transactions
            .iter()
            .map(|txn| self.claim_one(route, &holder, txn));
        let owners = try_join_all(claims).await?;
        Ok(transactions
            .into_iter()
            .zip(owners)
            .filter(|(_, ours)| !ours)
            .map(|(txn, _)| txn.to_owned())
            .collect())
    }

    /// True when `holder` holds the claim on `txn` (it just took it, or took it before).
    async fn claim_one(
        &self,
        route: &str,
        holder: &Holder<'_>,
        txn: &str,
    ) -> Result<bool, LedgerError> {
        let key = format!("{route}.{}", &sha256_hex(txn.as_bytes())[..40]);
        // A claim on a new key is one write; a lost race (or a deleted claim's marker) reads.
        read_modify_write(&self.kv, &key, FirstTry::AssumeAbsent, |stored| {
            Ok::<_, std::convert::Infallible>(match stored {
                Some(stored) => Decided::Keep(holder.is(stored)),
                None => Decided::Write(holder.value.clone().into(), true),
            })
        })
        .await
        .map_err(|e| LedgerError(format!("{key}: could not claim or read the claim: {e}")))
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
