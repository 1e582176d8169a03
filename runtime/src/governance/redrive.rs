//! The dead-letter stream read back: listing letters, showing one, and redriving them
//! through their route once the cause is fixed. `millrace dlq` and the admin API both use it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use super::dead_letter::headers;
use crate::config::Config;
use crate::delivery::{Delivered, Delivery, Mode, RawOrigin};
use crate::router::{PluginLoader, Route};
use crate::sandbox::RawMessage;
use crate::transport::{header_value, reader::StreamReader};
use crate::workers::WorkerPool;

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

/// The dead letters (of `route`, when given), oldest first.
pub async fn letters(
    js: &jetstream::Context,
    config: &Config,
    route: Option<&str>,
) -> anyhow::Result<Vec<StoredLetter>> {
    let filter = route.map_or_else(|| "dlq.>".to_owned(), |r| format!("dlq.{r}"));
    let mut reader = StreamReader::open(
        js,
        &config.streams.dlq,
        Some(&filter),
        consumer::DeliverPolicy::All,
        false,
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

/// The dead letter at `sequence`.
pub async fn letter(
    js: &jetstream::Context,
    config: &Config,
    sequence: u64,
) -> anyhow::Result<StoredLetter> {
    let stream = js
        .get_stream(&config.streams.dlq)
        .await
        .with_context(|| format!("cannot open the dead-letter stream {}", config.streams.dlq))?;
    let message = stream.get_raw_message(sequence).await.with_context(|| {
        format!(
            "there is no dead letter with sequence {sequence} in {} (see `millrace dlq list`)",
            config.streams.dlq
        )
    })?;
    Ok(StoredLetter {
        sequence,
        subject: message.subject.to_string(),
        headers: message.headers,
        payload: message.payload,
    })
}

/// What redriving one letter did.
#[derive(Debug, Clone, Serialize)]
pub struct Redriven {
    /// The letter's DLQ sequence.
    pub sequence: u64,
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

/// Sends dead letters back through their routes.
pub struct Redriver {
    config: Arc<Config>,
    js: jetstream::Context,
    loader: Arc<PluginLoader>,
    delivery: Delivery,
    pool: WorkerPool,
    plugin: Option<PathBuf>,
    version: Option<String>,
    routes: HashMap<String, Arc<Route>>,
}

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
        Ok(Self {
            config,
            js,
            loader,
            delivery,
            pool: WorkerPool::start(1).context("cannot start a worker thread")?,
            plugin,
            version,
            routes: HashMap::new(),
        })
    }

    /// Maps the letter at `sequence` again and delivers the outcome; the letter is deleted
    /// only once its events are stored.
    pub async fn redrive(&mut self, sequence: u64) -> anyhow::Result<Redriven> {
        let l = letter(&self.js, &self.config, sequence).await?;
        let name = l.header(headers::ROUTE).to_owned();
        let route = match self.routes.get(&name) {
            Some(route) => route.clone(),
            None => {
                let route = Arc::new(
                    self.loader
                        .route_through(&name, self.version.as_deref(), self.plugin.as_deref())
                        .await?,
                );
                self.routes.insert(name.clone(), route.clone());
                route
            }
        };
        let raw_subject = l.header(headers::RAW_SUBJECT).to_owned();
        let raw_sequence: u64 = l.header(headers::RAW_SEQUENCE).parse().unwrap_or(0);
        let raw_id = match header_value(Some(&l.headers), headers::RAW_MSG_ID) {
            Some(id) => id.to_owned(),
            None => format!("{}:{raw_sequence}", self.config.streams.raw),
        };
        let original = original_headers(&l.headers, &raw_id);
        let raw = RawMessage {
            subject: raw_subject.clone(),
            headers: original
                .iter()
                .flat_map(|(n, vs)| {
                    vs.iter()
                        .map(move |v| (n.to_string(), v.as_str().to_owned()))
                })
                .collect(),
            payload: l.payload.to_vec(),
        };
        let plugin = route.active();
        let outcome = self
            .pool
            .call(plugin.clone(), route.context.clone(), raw)
            .await;
        let origin = RawOrigin {
            id: &raw_id,
            subject: &raw_subject,
            sequence: raw_sequence,
            headers: Some(&original),
            payload: &l.payload,
            traceparent: header_value(Some(&original), crate::observability::trace::TRACEPARENT),
        };
        let mode = Mode {
            dead_letter: false,
            ..Mode::LIVE
        };
        let mut redriven = Redriven {
            sequence,
            raw_subject: raw_subject.clone(),
            plugin: plugin.id(),
            published: 0,
            duplicates: 0,
            still_failing: None,
        };
        match self
            .delivery
            .deliver(&route, &plugin, &origin, outcome, 1, &mode)
            .await?
        {
            Delivered::Events {
                published,
                duplicates,
                ..
            } => {
                let dlq = self.js.get_stream(&self.config.streams.dlq).await?;
                dlq.delete_message(sequence).await.with_context(|| {
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

    /// Stops the worker thread.
    pub async fn finish(self) {
        let pool = self.pool;
        let _ = tokio::task::spawn_blocking(move || pool.shutdown()).await;
    }
}

/// The headers the raw message arrived with: the dead letter's minus what millrace added.
fn original_headers(letter: &HeaderMap, raw_id: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in letter.iter() {
        let text: &str = name.as_ref();
        if text.starts_with("Millrace-") || text.eq_ignore_ascii_case("Nats-Msg-Id") {
            continue;
        }
        for value in values {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert("Nats-Msg-Id", raw_id);
    out
}
