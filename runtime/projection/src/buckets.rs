//! The projection's key-value buckets: opening them, compare-and-set updates of one record,
//! reading every record (or those whose keys match a pattern), and purging them for a rebuild.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ProjectionError;
use super::state::{BucketKey, ProjectedEvent, Record, apply_once};
use millrace_core::config::ProjectionConfig;
use millrace_transport::revision::{Decided, FirstTry, RevisionError, read_modify_write};
use millrace_transport::{self as transport, reader::StreamReader};

/// The buckets of one projection.
#[derive(Clone)]
pub struct Buckets {
    js: jetstream::Context,
    /// Stock positions.
    pub inventory: Bucket,
    /// Work orders.
    pub work_orders: Bucket,
    /// Quality holds.
    pub holds: Bucket,
    /// Supplier commitments.
    pub commitments: Bucket,
    /// Source systems.
    pub sources: Bucket,
    /// Posting state per outbound route and event.
    pub postings: Bucket,
}

/// One open bucket and its name.
#[derive(Clone)]
pub struct Bucket {
    /// The bucket name.
    pub name: String,
    /// None when the bucket does not exist and was not to be created (a read-only opening):
    /// it reads as empty.
    store: Option<kv::Store>,
}

impl Buckets {
    /// Opens the buckets the configuration names, creating the missing ones.
    pub async fn open(
        js: &jetstream::Context,
        config: &ProjectionConfig,
    ) -> Result<Self, ProjectionError> {
        Self::open_creating(js, config, true).await
    }

    /// Opens the buckets that exist; a missing one reads as empty and is not created. Reading
    /// creates nothing: a read-only caller (the admin API's views, `millrace status`) created
    /// them with one replica on a replicated cluster, where a node down then stalled every read.
    pub async fn existing(
        js: &jetstream::Context,
        config: &ProjectionConfig,
    ) -> Result<Self, ProjectionError> {
        Self::open_creating(js, config, false).await
    }

    async fn open_creating(
        js: &jetstream::Context,
        config: &ProjectionConfig,
        create: bool,
    ) -> Result<Self, ProjectionError> {
        let open = |name: &str, what: &str| {
            let (js, name, what) = (js.clone(), name.to_owned(), what.to_owned());
            async move {
                if !create {
                    let store = if exists(&js, &name).await? {
                        Some(
                            js.get_key_value(&name)
                                .await
                                .map_err(|e| ProjectionError::bucket(&name, e))?,
                        )
                    } else {
                        None
                    };
                    return Ok(Bucket { name, store });
                }
                // Current state never expires: max age zero.
                let store = transport::key_value(&js, &name, Duration::ZERO, &what)
                    .await
                    .map_err(|e| ProjectionError::bucket(&name, format!("{e:#}")))?;
                Ok::<_, ProjectionError>(Bucket {
                    name,
                    store: Some(store),
                })
            }
        };
        Ok(Self {
            js: js.clone(),
            inventory: open(
                &config.inventory_bucket,
                "millrace projection: stock positions",
            )
            .await?,
            work_orders: open(
                &config.work_order_bucket,
                "millrace projection: work orders",
            )
            .await?,
            holds: open(&config.hold_bucket, "millrace projection: quality holds").await?,
            commitments: open(
                &config.commitment_bucket,
                "millrace projection: supplier commitments",
            )
            .await?,
            sources: open(&config.source_bucket, "millrace projection: source systems").await?,
            postings: open(
                &config.posting_bucket,
                "millrace projection: postings per outbound route and event",
            )
            .await?,
        })
    }

    /// Every bucket: inventory, work orders, holds, commitments, sources, postings.
    pub fn all(&self) -> [&Bucket; 6] {
        [
            &self.inventory,
            &self.work_orders,
            &self.holds,
            &self.commitments,
            &self.sources,
            &self.postings,
        ]
    }

    /// Drops every record of every bucket (the buckets stay).
    pub async fn purge(&self) -> Result<(), ProjectionError> {
        for bucket in self.all() {
            let stream = format!("KV_{}", bucket.name);
            let err = |e: &dyn std::fmt::Display| ProjectionError::bucket(&bucket.name, e);
            self.js
                .get_stream(&stream)
                .await
                .map_err(|e| err(&e))?
                .purge()
                .await
                .map_err(|e| err(&e))?;
        }
        Ok(())
    }

    /// Every record of `bucket`, in key order of the bucket's stream.
    pub async fn read_all<R: DeserializeOwned>(
        &self,
        bucket: &Bucket,
    ) -> Result<Vec<R>, ProjectionError> {
        self.read_under(bucket, None).await
    }

    /// Every record of `bucket` whose key starts with the tokens `prefix` (`<site>.<hold id>`:
    /// every record of one hold), or all of them.
    pub async fn read_under<R: DeserializeOwned>(
        &self,
        bucket: &Bucket,
        prefix: Option<&str>,
    ) -> Result<Vec<R>, ProjectionError> {
        let pattern = match prefix {
            Some(prefix) => format!("{prefix}.>"),
            None => ">".to_owned(),
        };
        self.read_matching(bucket, &[pattern]).await
    }

    /// Every record of `bucket` whose key matches one of the subject `patterns` (key tokens,
    /// `*` for any one token, a last `>` for the rest: `*.*.*.L1` is every record whose fourth
    /// token is `L1`), each once, in key order. The server picks them by subject, so a narrow
    /// pattern reads only what it names, however large the bucket.
    pub async fn read_matching<R: DeserializeOwned>(
        &self,
        bucket: &Bucket,
        patterns: &[String],
    ) -> Result<Vec<R>, ProjectionError> {
        // Opened read-only while missing: a projection may have created it since.
        if bucket.store.is_none() && !exists(&self.js, &bucket.name).await? {
            return Ok(Vec::new());
        }
        let err = |e: &dyn std::fmt::Display| ProjectionError::bucket(&bucket.name, e);
        let every = patterns.iter().any(|p| p == ">");
        let patterns: Vec<&str> = if every {
            vec![">"]
        } else {
            patterns.iter().map(String::as_str).collect()
        };
        let mut found: std::collections::BTreeMap<String, jetstream::Message> =
            std::collections::BTreeMap::new();
        for pattern in patterns {
            let filter = format!("$KV.{}.{pattern}", bucket.name);
            let mut reader = StreamReader::open(
                &self.js,
                &format!("KV_{}", bucket.name),
                Some(&filter),
                consumer::DeliverPolicy::LastPerSubject,
                false,
            )
            .await
            .map_err(|e| err(&format!("{e:#}")))?;
            while let Some(message) = reader.next().await.map_err(|e| err(&format!("{e:#}")))? {
                // Deletes and purges are empty markers.
                if message.payload.is_empty() {
                    continue;
                }
                found.insert(message.subject.to_string(), message);
            }
        }
        found
            .values()
            .map(|message| serde_json::from_slice(&message.payload).map_err(|e| err(&e)))
            .collect()
    }

    /// Whether `bucket` exists: a projection has created it (opened read-only while missing,
    /// it is looked for again).
    pub async fn exists(&self, bucket: &Bucket) -> Result<bool, ProjectionError> {
        Ok(bucket.store.is_some() || exists(&self.js, &bucket.name).await?)
    }

    /// The number of records in `bucket`.
    pub async fn count(&self, bucket: &Bucket) -> Result<u64, ProjectionError> {
        if bucket.store.is_none() {
            return Ok(0);
        }
        // Read from the server now: the store's own status is the stream info cached when the
        // bucket was opened, so a rebuild on new buckets reported 0 records of each kind.
        let mut stream = self
            .js
            .get_stream(format!("KV_{}", bucket.name))
            .await
            .map_err(|e| ProjectionError::bucket(&bucket.name, e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| ProjectionError::bucket(&bucket.name, e))?;
        Ok(info.state.messages)
    }
}

/// True when bucket `name` exists; false only when the server says its stream is not found
/// (a read that times out, a node down, is an error, never an empty projection).
async fn exists(js: &jetstream::Context, name: &str) -> Result<bool, ProjectionError> {
    use jetstream::ErrorCode;
    use jetstream::context::GetStreamErrorKind;
    match js.get_stream(format!("KV_{name}")).await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(false)
        }
        Err(e) => Err(ProjectionError::bucket(name, e)),
    }
}

impl Bucket {
    /// The open bucket, for a write; a bucket opened read-only that did not exist has none.
    fn store(&self) -> Result<&kv::Store, ProjectionError> {
        self.store.as_ref().ok_or_else(|| {
            ProjectionError::bucket(
                &self.name,
                "the bucket does not exist (opened to read only)",
            )
        })
    }

    /// Reads the record at `key` (or `fresh()` when there is none), lets `change` change it,
    /// and writes it back only if the record still has the revision it was read at; a lost
    /// race reads again. True when the record changed.
    pub async fn update<R: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        fresh: impl Fn() -> R,
        mut change: impl FnMut(&mut R) -> bool,
    ) -> Result<bool, ProjectionError> {
        let store = self.store()?;
        read_modify_write(store, key, FirstTry::Read, |stored| {
            let mut record = match stored {
                Some(value) => serde_json::from_slice::<R>(value)?,
                None => fresh(),
            };
            if !change(&mut record) {
                return Ok(Decided::Keep(false));
            }
            Ok(Decided::Write(serde_json::to_vec(&record)?.into(), true))
        })
        .await
        .map_err(|e: RevisionError<serde_json::Error>| {
            ProjectionError::bucket(&self.name, format!("{key}: {e}"))
        })
    }

    /// Applies `change` from `event` to the record named `key` (a fresh one when there is
    /// none), once per event id: the [`update`](Self::update) every event-fed record takes.
    /// True when it changed.
    pub async fn apply<R: Record>(
        &self,
        key: &R::Key,
        change: &R::Change,
        event: &ProjectedEvent,
    ) -> Result<bool, ProjectionError> {
        let fresh = || R::fresh(key, change);
        self.update(&key.bucket_key(), fresh, |r| apply_once(r, change, event))
            .await
    }

    /// [`apply`](Self::apply) starting from `seed` when there is no record at `key` yet.
    pub async fn apply_seeded<R: Record + Clone>(
        &self,
        key: &R::Key,
        change: &R::Change,
        event: &ProjectedEvent,
        seed: &R,
    ) -> Result<bool, ProjectionError> {
        self.update(
            &key.bucket_key(),
            || seed.clone(),
            |r| apply_once(r, change, event),
        )
        .await
    }

    /// [`apply`](Self::apply), also giving the record as it is afterwards (as it was, when the
    /// change changed nothing).
    pub async fn apply_read<R: Record + Clone>(
        &self,
        key: &R::Key,
        change: &R::Change,
        event: &ProjectedEvent,
    ) -> Result<(bool, R), ProjectionError> {
        let fresh = || R::fresh(key, change);
        let mut after = None;
        let changed = self
            .update(&key.bucket_key(), fresh, |r: &mut R| {
                let changed = apply_once(r, change, event);
                after = Some(r.clone());
                changed
            })
            .await?;
        Ok((changed, after.unwrap_or_else(|| R::fresh(key, change))))
    }
}
