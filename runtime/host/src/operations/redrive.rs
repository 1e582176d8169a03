//! The dead-letter stream read back: listing letters, showing one, and redriving them
//! through their route once the cause is fixed. `millrace dlq` and the admin API both use it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use crate::delivery::dead_letter::{headers, keep_original, message_id, original_headers};
use crate::delivery::{Delivered, Delivery, Mode};
use crate::pipeline::{Pipeline, RawInput};
use crate::registry::loader::PluginLoader;
use crate::routes::Route;
use millrace_core::config::{Config, OutboundRouteConfig, StreamsConfig};
use millrace_core::subjects;
use millrace_core::workers::WorkerPool;
use millrace_transport::header_value;
use millrace_transport::reader::{self, StreamReader};
use millrace_transport::revision::{Decided, FirstTry, RevisionError, read_modify_write};
use millrace_transport::stored;

/// One dead letter as stored on the DLQ stream.
#[derive(Debug, Clone)]
pub struct StoredLetter {
    /// Its DLQ stream sequence.
    pub sequence: u64,
    /// `dlq.<route>`.
    pub subject: String,
    /// The original headers plus the `Millrace-*` ones.
    pub headers: HeaderMap,
    /// The original payload.
    pub payload: Bytes,
}

/// What a dead letter says, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LetterSummary {
    /// DLQ stream sequence.
    pub sequence: u64,
    /// The route.
    pub route: String,
    /// `name@version` of the plugin.
    pub plugin: String,
    /// The failure kind.
    pub error_kind: String,
    /// The reason.
    pub error: String,
    /// Calls made.
    pub attempts: u32,
    /// When, RFC 3339.
    pub failed_at: String,
    /// The raw subject.
    pub raw_subject: String,
    /// The RAW stream sequence.
    pub raw_sequence: u64,
}

/// A dead letter in full, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LetterDetail {
    /// What it says.
    #[serde(flatten)]
    pub summary: LetterSummary,
    /// Every header, sorted by name.
    pub headers: Vec<(String, String)>,
    /// The payload as text, when it is UTF-8.
    pub payload_text: Option<String>,
    /// The payload, base64.
    pub payload_base64: String,
    /// Its size in bytes.
    pub payload_bytes: usize,
}

impl StoredLetter {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        header_value(Some(&self.headers), name).unwrap_or("")
    }

    /// What it says.
    pub fn summary(&self) -> LetterSummary {
        LetterSummary {
            sequence: self.sequence,
            route: self.header(headers::ROUTE).to_owned(),
            plugin: self.header(headers::PLUGIN).to_owned(),
            error_kind: self.header(headers::ERROR_KIND).to_owned(),
            error: self.header(headers::ERROR).to_owned(),
            attempts: self.header(headers::ATTEMPTS).parse().unwrap_or(0),
            failed_at: self.header(headers::FAILED_AT).to_owned(),
            raw_subject: self.header(headers::RAW_SUBJECT).to_owned(),
            raw_sequence: self.header(headers::RAW_SEQUENCE).parse().unwrap_or(0),
        }
    }

    /// Every header, sorted.
    pub fn sorted_headers(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .headers
            .iter()
            .flat_map(|(n, vs)| {
                vs.iter()
                    .map(move |v| (n.to_string(), v.as_str().to_owned()))
            })
            .collect();
        pairs.sort();
        pairs
    }

    /// The raw message the letter keeps, as it was published to the RAW stream `raw_stream`.
    pub fn raw_input(&self, raw_stream: &str) -> RawInput {
        RawInput::new(
            self.header(headers::RAW_SUBJECT).to_owned(),
            Some(original_headers(&self.headers)),
            self.payload.clone(),
            raw_stream,
            self.header(headers::RAW_SEQUENCE).parse().unwrap_or(0),
        )
    }

    /// The whole letter.
    pub fn detail(&self) -> LetterDetail {
        LetterDetail {
            summary: self.summary(),
            headers: self.sorted_headers(),
            payload_text: std::str::from_utf8(&self.payload).ok().map(str::to_owned),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(&self.payload),
            payload_bytes: self.payload.len(),
        }
    }
}

/// Every dead letter on `filter` (see [`dead_letter_filter`]) of the `[streams]` DLQ, oldest
/// first, headers only: the payloads stay on the server (`letter` reads one whole).
pub async fn letters(
    js: &jetstream::Context,
    streams: &StreamsConfig,
    filter: &str,
) -> anyhow::Result<Vec<StoredLetter>> {
    let mut reader = StreamReader::open(
        js,
        &streams.dlq,
        Some(filter),
        consumer::DeliverPolicy::All,
        true,
    )
    .await?;
    let mut out = Vec::new();
    while let Some(message) = reader.next().await? {
        out.push(StoredLetter {
            sequence: message.info().map_or(0, |i| i.stream_sequence),
            subject: message.subject.to_string(),
            headers: message.headers.clone().unwrap_or_default(),
            payload: message.payload.clone(),
        });
    }
    Ok(out)
}

/// The subject of `route`'s dead letters: `dlq.outbound.<route>` for a route of the
/// `[outbound]` section, else `dlq.<route>`; every dead letter without a route.
pub fn dead_letter_filter(
    outbound: &BTreeMap<String, OutboundRouteConfig>,
    route: Option<&str>,
) -> String {
    match route {
        None => subjects::ALL_DEAD_LETTERS.to_owned(),
        Some(route) if outbound.contains_key(route) => subjects::outbound_dead_letters(route),
        Some(route) => subjects::dead_letters(route),
    }
}

/// There is no dead letter at a sequence (never was, or redriven and deleted).
#[derive(Debug, thiserror::Error)]
#[error("there is no dead letter with sequence {sequence} in {stream} (see `millrace dlq list`)")]
pub struct NoSuchLetter {
    /// The sequence asked for.
    pub sequence: u64,
    /// The dead-letter stream.
    pub stream: String,
}

/// Another redrive of the same outbound letter is posting it now (a double click, two
/// operators, the CLI beside the console): this one posts nothing.
#[derive(Debug, thiserror::Error)]
#[error(
    "dead letter {sequence} is being redriven by another caller (since {since}); it is left to \
     that redrive: see `millrace dlq show {sequence}` once it is done"
)]
pub struct LetterInRedrive {
    /// The letter's DLQ sequence.
    pub sequence: u64,
    /// When the other redrive took it (RFC 3339).
    pub since: String,
}

/// The dead letter at `sequence` of the `[streams]` DLQ; the error is a [`NoSuchLetter`] when
/// there is none.
pub async fn letter(
    js: &jetstream::Context,
    streams: &StreamsConfig,
    sequence: u64,
) -> anyhow::Result<StoredLetter> {
    let stream = &streams.dlq;
    // Stream sequences start at 1: there is no letter at 0 (JetStream refuses to read there,
    // which was answered as the stream being unavailable).
    if sequence == 0 {
        return Err(NoSuchLetter {
            sequence,
            stream: stream.clone(),
        }
        .into());
    }
    let message = reader::message_at(js, stream, sequence)
        .await
        .with_context(|| format!("cannot open the dead-letter stream {stream}"))?
        .ok_or_else(|| NoSuchLetter {
            sequence,
            stream: stream.clone(),
        })?;
    let stored = StoredLetter {
        sequence,
        subject: message.subject.to_string(),
        headers: message.headers.clone().unwrap_or_default(),
        payload: message.payload.clone(),
    };
    if header_value(Some(&stored.headers), headers::RAW_NOT_COPIED).is_none() {
        return Ok(stored);
    }
    stored.with_raw_message(js, streams).await
}

impl StoredLetter {
    /// A letter that holds no copy of its raw message ([`headers::RAW_NOT_COPIED`]) with the
    /// raw message's payload and headers read from the RAW stream, as if it held them.
    async fn with_raw_message(
        mut self,
        js: &jetstream::Context,
        streams: &StreamsConfig,
    ) -> anyhow::Result<Self> {
        let raw_sequence: u64 = self.header(headers::RAW_SEQUENCE).parse().unwrap_or(0);
        let raw_subject = self.header(headers::RAW_SUBJECT).to_owned();
        let gone = || {
            anyhow::anyhow!(
                "dead letter {} holds no copy of its raw message (it was too large to copy), and \
                 the raw stream {} no longer holds it at sequence {raw_sequence}",
                self.sequence,
                streams.raw
            )
        };
        // Through the JetStream API: the raw message may be one whose headers the NATS client
        // cannot read (an `undeliverable` letter), which a consumer's delivery would cost the
        // connection over. Such headers are left out, as the letter left them out.
        let raw = stored::stored_message(&js.client(), &streams.raw, raw_sequence)
            .await?
            .ok_or_else(gone)?;
        let raw_headers = raw.headers.unwrap_or(None);
        // The same message, not another stored at that sequence of a re-created stream: its
        // subject and identity are the ones the letter was written for.
        let identity =
            millrace_transport::raw_identity(raw_headers.as_ref(), &streams.raw, raw_sequence);
        let letter_id = message_id(self.header(headers::ROUTE), &identity);
        if raw.subject != raw_subject || self.header("Nats-Msg-Id") != letter_id {
            return Err(gone());
        }
        if let Some(original) = &raw_headers {
            keep_original(&mut self.headers, original);
        }
        self.payload = raw.payload;
        Ok(self)
    }
}

/// What redriving one letter did.
#[derive(Debug, Clone, Serialize)]
pub struct Redriven {
    /// The letter's DLQ sequence.
    pub sequence: u64,
    /// The route it went through.
    pub route: String,
    /// The raw subject.
    pub raw_subject: String,
    /// The version it went through.
    pub plugin: String,
    /// Events published.
    pub published: usize,
    /// Events skipped as already delivered.
    pub duplicates: usize,
    /// Set when it failed again (kind: reason); the letter then stays.
    pub still_failing: Option<String>,
}

impl Redriven {
    /// What the redrive did, in a sentence.
    pub fn describe(&self) -> String {
        match &self.still_failing {
            None => format!(
                "redrives dead letter {} ({}) through {}: {} event(s) published",
                self.sequence, self.raw_subject, self.plugin, self.published
            ),
            Some(reason) => format!(
                "redrives dead letter {} ({}) through {}: still failing ({reason}), the letter stays",
                self.sequence, self.raw_subject, self.plugin
            ),
        }
    }
}

/// Sends dead letters back through their routes, on the [`Pipeline`] the host maps with.
pub struct Redriver {
    config: Arc<Config>,
    js: jetstream::Context,
    loader: Arc<PluginLoader>,
    pipeline: Pipeline,
    plugin: Option<PathBuf>,
    version: Option<String>,
    routes: HashMap<String, Arc<Route>>,
    outbound: Option<crate::outbound::driver::OutboundDriver>,
    /// Posts an outbound letter even when a later event of its business key was posted since.
    post_superseded: bool,
    /// The projection's postings, opened on the first outbound letter (a bucket missing then
    /// is looked for again on each read).
    postings: tokio::sync::OnceCell<millrace_projection::query::Visibility>,
}

/// The claim one redrive holds on an outbound letter while it posts it, so that two redrives
/// of one letter at once (a double click, two operators, the CLI beside the console) post it
/// once: JetStream de-duplicates an inbound letter's events by id, but a target gets every
/// request it is sent. Kept in the idempotency bucket under `_redrive.letter.<DLQ>.<sequence>`
/// (four tokens, apart from the claims of source transactions), holding when it was taken; one
/// older than twice [`OUTBOUND_REDRIVE_PATIENCE`] was left by a redrive that died, and is taken
/// over.
struct RedriveLease {
    kv: jetstream::kv::Store,
    key: String,
}

impl RedriveLease {
    async fn take(js: &jetstream::Context, config: &Config, sequence: u64) -> anyhow::Result<Self> {
        let bucket = &config.governance.idempotency_bucket;
        let kv = js
            .get_key_value(bucket)
            .await
            .with_context(|| format!("cannot open the key-value bucket {bucket}"))?;
        let key = format!("_redrive.letter.{}.{sequence}", config.streams.dlq);
        let now = time::OffsetDateTime::now_utc();
        let stamp = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let stale_after = time::Duration::try_from(OUTBOUND_REDRIVE_PATIENCE * 2)
            .unwrap_or(time::Duration::MINUTE);
        let taken = read_modify_write(&kv, &key, FirstTry::AssumeAbsent, |held| {
            let since = held.map(|held| String::from_utf8_lossy(held).into_owned());
            let stale = since.as_deref().is_none_or(|since| {
                time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
                    .map_or(true, |at| now - at > stale_after)
            });
            if stale {
                Ok(Decided::Write(stamp.clone().into(), ()))
            } else {
                Err(LetterInRedrive {
                    sequence,
                    since: since.unwrap_or_default(),
                })
            }
        })
        .await;
        match taken {
            Ok(()) => Ok(Self { kv, key }),
            Err(RevisionError::Decided(busy)) => Err(busy.into()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot claim dead letter {sequence} for this redrive in {bucket}: {e}"
            )),
        }
    }

    async fn give_back(self) {
        if let Err(e) = self.kv.purge(&self.key).await {
            tracing::warn!(
                key = self.key,
                "cannot give back a redrive's claim on its letter (it lapses after {}s): {e}",
                (OUTBOUND_REDRIVE_PATIENCE * 2).as_secs()
            );
        }
    }
}

/// Longest one outbound letter may wait on its targets during a redrive before it is left
/// where it is (a target still down).
const OUTBOUND_REDRIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl Redriver {
    /// Redrives through each route's active version, or through `version` (a deployed
    /// `name@version`) or `plugin` (a folder or component) instead.
    pub fn new(
        config: Arc<Config>,
        js: jetstream::Context,
        loader: Arc<PluginLoader>,
        delivery: Delivery,
        version: Option<String>,
        plugin: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let pool = WorkerPool::start(1).context("cannot start a worker thread")?;
        Ok(Self {
            config,
            pipeline: Pipeline::new(pool, delivery, js.clone()),
            js,
            loader,
            plugin,
            version,
            routes: HashMap::new(),
            outbound: None,
            post_superseded: false,
            postings: tokio::sync::OnceCell::new(),
        })
    }

    /// Posts outbound letters whose business key a later event was posted for since (by
    /// default such a letter stays, said superseded: posting it would leave the targets with
    /// the older state).
    pub fn post_superseded(mut self, yes: bool) -> Self {
        self.post_superseded = yes;
        self
    }

    /// Maps the letter at `sequence` again and delivers the outcome; the letter is deleted
    /// only once its events are stored.
    pub async fn redrive(&mut self, sequence: u64) -> anyhow::Result<Redriven> {
        let l = letter(&self.js, &self.config.streams, sequence).await?;
        let name = l.header(headers::ROUTE).to_owned();
        let route = match self.routes.get(&name) {
            Some(route) => route.clone(),
            None => {
                let route = Arc::new(
                    Route::load_through(
                        &self.loader,
                        &name,
                        self.version.as_deref(),
                        self.plugin.as_deref(),
                        "a redrive",
                    )
                    .await?,
                );
                self.routes.insert(name.clone(), route.clone());
                route
            }
        };
        if self.config.outbound.contains_key(&name) {
            return self.redrive_outbound(&l, &route).await;
        }
        let input = l.raw_input(&self.config.streams.raw);
        let processed = self.pipeline.process(&route, &input, &Mode::REDRIVE).await;
        let delivered = processed.outcome.with_context(|| {
            format!("dead letter {sequence} could not be redriven now and stays")
        })?;
        let mut redriven = Redriven {
            sequence,
            route: name,
            raw_subject: input.subject,
            plugin: processed.plugin,
            published: 0,
            duplicates: 0,
            still_failing: None,
        };
        match delivered {
            Delivered::Events {
                published,
                duplicates,
                ..
            } => {
                self.settle(sequence).await.with_context(|| {
                    format!("dead letter {sequence} was redriven but could not be deleted")
                })?;
                redriven.published = published;
                redriven.duplicates = duplicates;
            }
            Delivered::Failed(failure) => {
                redriven.still_failing = Some(format!("{}: {}", failure.kind(), failure.message()));
            }
        }
        Ok(redriven)
    }

    /// Deletes the letter at `sequence`, its events stored: a letter already gone was settled
    /// by another redrive of it meanwhile (two operators, or a host's API and the CLI), which
    /// stored the same events, so this one is settled too.
    async fn settle(&self, sequence: u64) -> anyhow::Result<()> {
        let dlq = &self.config.streams.dlq;
        let stream = self.js.get_stream(dlq).await?;
        let Err(refused) = stream.delete_message(sequence).await else {
            return Ok(());
        };
        match millrace_transport::stored::stored_message(&self.js.client(), dlq, sequence).await {
            Ok(None) => {
                tracing::info!(
                    sequence,
                    "the dead letter was settled by another redrive meanwhile"
                );
                Ok(())
            }
            _ => Err(refused.into()),
        }
    }

    /// Posts an outbound letter's event again through the outbound driver the host posts
    /// with; the letter is deleted only once every request is posted.
    async fn redrive_outbound(
        &mut self,
        l: &StoredLetter,
        route: &Route,
    ) -> anyhow::Result<Redriven> {
        use crate::outbound::driver::Posted;
        let letter: crate::outbound::letter::OutboundLetter = serde_json::from_slice(&l.payload)
            .with_context(|| format!("dead letter {} is not an outbound letter", l.sequence))?;
        if self.outbound.is_none() {
            let observer = Arc::new(crate::observability::Observer::new());
            self.outbound = Some(
                crate::outbound::driver(
                    &self.js,
                    &self.config,
                    self.pipeline.calls().clone(),
                    observer,
                )
                .await?,
            );
        }
        let driver = self.outbound.as_ref().context("no outbound driver")?;
        let input = match &letter.event_not_copied {
            None => letter.input(),
            Some(_) => {
                let canonical = &self.config.streams.canonical;
                let gone = || {
                    anyhow::anyhow!(
                        "dead letter {} holds no copy of its event (it was too large to copy), \
                         and the stream {canonical} no longer holds it at sequence {}",
                        l.sequence,
                        letter.sequence
                    )
                };
                // The event the letter was written for: its subject and id.
                let id_of = crate::outbound::letter::event_id;
                let event = reader::message_at(&self.js, canonical, letter.sequence)
                    .await?
                    .filter(|m| {
                        m.subject.as_str() == letter.subject && id_of(&m.payload) == letter.event_id
                    })
                    .ok_or_else(gone)?;
                crate::outbound::input::EventInput {
                    subject: letter.subject.clone(),
                    payload: event.payload.clone(),
                    sequence: letter.sequence,
                }
            }
        };
        let mut redriven = Redriven {
            sequence: l.sequence,
            route: route.name.to_string(),
            raw_subject: input.subject.clone(),
            plugin: route.active().id(),
            published: 0,
            duplicates: 0,
            still_failing: None,
        };
        if !self.post_superseded
            && let Some(why) = self.superseded(&letter, &input).await?
        {
            redriven.still_failing = Some(why);
            return Ok(redriven);
        }
        let lease = RedriveLease::take(&self.js, &self.config, l.sequence).await?;
        // Posted and settled under the claim, which is given back only then, whatever came of
        // it: a redrive that read the letter before another one settled it finds it gone once
        // it holds the claim, and posts nothing.
        let outcome = async {
            self::letter(&self.js, &self.config.streams, l.sequence).await?;
            let patience = tokio_util::sync::CancellationToken::new();
            let timer = {
                let patience = patience.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(OUTBOUND_REDRIVE_PATIENCE).await;
                    patience.cancel();
                })
            };
            let posted = driver
                .process(route, &input, &Mode::REDRIVE, &patience)
                .await;
            timer.abort();
            if posted.is_err() && patience.is_cancelled() {
                // Not the host stopping: the targets did not take it in time. The letter stays,
                // as any redrive that still fails (and is audited as one).
                redriven.still_failing = Some(format!(
                    "not posted within {}s (a target still down or its breaker open, or the \
                     event held at a posting gate; see `millrace status`): redrive it again once \
                     it can be posted",
                    OUTBOUND_REDRIVE_PATIENCE.as_secs()
                ));
                return Ok(redriven);
            }
            let posted = posted.with_context(|| {
                format!(
                    "dead letter {} could not be posted now and stays",
                    l.sequence
                )
            })?;
            match posted {
                Posted::Posted(documents) => {
                    self.settle(l.sequence).await.with_context(|| {
                        format!(
                            "dead letter {} was posted but could not be deleted",
                            l.sequence
                        )
                    })?;
                    redriven.published = documents.len();
                }
                Posted::Rejected(reason) => redriven.still_failing = Some(reason),
            }
            Ok(redriven)
        }
        .await;
        lease.give_back().await;
        outcome
    }

    /// Why an outbound letter's event must not be posted now: a later event of its business key
    /// was posted on its route since (the projection's postings say so), and posting the older
    /// one over it would leave the targets with the older state (a hold's placement redriven
    /// after its release re-blocks the lot). `None` when none was, or when the event cannot be
    /// read (the driver dead-letters it again, saying why).
    async fn superseded(
        &self,
        letter: &crate::outbound::letter::OutboundLetter,
        input: &crate::outbound::input::EventInput,
    ) -> anyhow::Result<Option<String>> {
        let Ok(event) = millrace_core::posting::CanonicalEvent::from_payload(&input.payload) else {
            return Ok(None);
        };
        let visibility = self
            .postings
            .get_or_try_init(|| {
                millrace_projection::query::Visibility::open(&self.js, &self.config.projection)
            })
            .await
            .context("cannot read the projection's postings")?;
        let envelope = &event.envelope;
        let later = visibility
            .posted_after(
                &letter.route,
                &envelope.kind,
                &envelope.business_key,
                letter.sequence,
            )
            .await
            .context("cannot read the projection's postings")?;
        Ok(later.map(|(id, sequence)| {
            format!(
                "superseded: a later {} of {} (event {id}, CANONICAL {sequence}) was posted since, \
                 and posting this older one now would leave the targets with its older state; \
                 redrive it with --superseded to post it anyway",
                envelope.kind, envelope.business_key
            )
        }))
    }

    /// Stops the worker thread.
    pub async fn finish(self) {
        self.pipeline.shutdown().await;
    }
}
