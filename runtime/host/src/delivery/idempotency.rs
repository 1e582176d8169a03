//! Idempotency on business identity: the resend of the same document with a new message id.
//!
//! A plugin names the source transaction of each event (an MES transaction id, an EDI
//! interchange and transaction set control number). The first raw message to deliver a
//! transaction claims it in a key-value bucket (kept for the configured horizon); events of
//! that transaction in any other raw message are skipped and counted. The same raw message
//! redelivered after a crash finds its own claim and goes on, so a claim is never lost to a crash
//! between claiming and publishing.

use std::collections::BTreeSet;

use async_nats::jetstream::kv;
use futures::future::try_join_all;

use millrace_core::canonical::MappedEvent;
use millrace_core::digest::sha256_hex;

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

    /// Claims the source transactions of `events` for `raw_id`; returns those another raw
    /// message has already delivered.
    pub async fn claim(
        &self,
        route: &str,
        raw_id: &str,
        events: &[MappedEvent],
    ) -> Result<BTreeSet<String>, LedgerError> {
        let transactions: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e.source_transaction.as_deref())
            .collect();
        let claims = transactions
            .iter()
            .map(|txn| self.claim_one(route, raw_id, txn));
        let owners = try_join_all(claims).await?;
        Ok(transactions
            .into_iter()
            .zip(owners)
            .filter(|(_, ours)| !ours)
            .map(|(txn, _)| txn.to_owned())
            .collect())
    }

    /// True when `raw_id` holds the claim on `txn` (it just took it, or took it before).
    async fn claim_one(&self, route: &str, raw_id: &str, txn: &str) -> Result<bool, LedgerError> {
        let key = format!("{route}.{}", &sha256_hex(txn.as_bytes())[..40]);
        let err = |e: &dyn std::fmt::Display| LedgerError(format!("{key}: {e}"));
        match self.kv.create(&key, raw_id.to_owned().into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = self.kv.get(&key).await.map_err(|e| err(&e))?;
                Ok(holder.is_some_and(|h| h.as_ref() == raw_id.as_bytes()))
            }
            Err(e) => Err(err(&e)),
        }
    }
}
