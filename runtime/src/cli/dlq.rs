//! `millrace dlq list|show|redrive`: the dead letters, and sending them back through their
//! route once the cause is fixed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use clap::Subcommand;

use millrace::config::Config;
use millrace::delivery::{Delivered, Delivery, Mode, RawOrigin};
use millrace::governance::dead_letter::headers;
use millrace::registry::store::Registry;
use millrace::router::{PluginLoader, Route};
use millrace::sandbox::RawMessage;
use millrace::transport::{header_value, reader::StreamReader};
use millrace::workers::WorkerPool;

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Lists dead letters: sequence, route, error kind, attempts, time, raw subject and reason.
    List {
        /// Only this route's dead letters.
        #[arg(long)]
        route: Option<String>,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Shows one dead letter: its headers and its original payload.
    Show {
        /// The dead letter's sequence in the DLQ stream (see `dlq list`).
        sequence: u64,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Sends dead letters back through their route (after the plugin or the data was fixed)
    /// and deletes each one only once its events are stored. A letter that fails again stays.
    Redrive {
        /// The dead letters' sequences in the DLQ stream.
        #[arg(required_unless_present = "all")]
        sequences: Vec<u64>,
        /// Every dead letter (of `--route`, when given).
        #[arg(long, conflicts_with = "sequences")]
        all: bool,
        /// With --all: only this route's dead letters.
        #[arg(long)]
        route: Option<String>,
        /// Map through this plugin folder or component instead of the route's configured one.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Map through this deployed version (`name@version`) instead of the route's active one.
        #[arg(long, conflicts_with = "plugin")]
        version: Option<String>,
        #[command(flatten)]
        connection: super::Connection,
    },
}

/// Runs a dead-letter command.
pub async fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List { route, connection } => {
            let (config, client) = connection.connect().await?;
            list(
                &async_nats::jetstream::new(client),
                &config,
                route.as_deref(),
            )
            .await
        }
        DlqCommand::Show {
            sequence,
            connection,
        } => {
            let (config, client) = connection.connect().await?;
            show(&async_nats::jetstream::new(client), &config, sequence).await
        }
        DlqCommand::Redrive {
            sequences,
            all,
            route,
            plugin,
            version,
            connection,
        } => {
            if connection.config.is_none() {
                bail!("redrive needs --config: the routes and their plugins come from it");
            }
            let (config, client) = connection.connect().await?;
            let js = async_nats::jetstream::new(client.clone());
            let sequences = if all {
                letters(&js, &config, route.as_deref())
                    .await?
                    .iter()
                    .map(|l| l.sequence)
                    .collect()
            } else {
                sequences
            };
            let redrive = Redrive {
                js: &js,
                config: Arc::new(config),
                plugin,
                version,
            };
            let code = redrive.run(&sequences).await;
            client.flush().await.ok();
            code
        }
    }
}

/// One dead letter as read from the DLQ stream.
struct Letter {
    sequence: u64,
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
}

impl Letter {
    fn header(&self, name: &str) -> &str {
        header_value(Some(&self.headers), name).unwrap_or("")
    }
}

async fn letters(
    js: &jetstream::Context,
    config: &Config,
    route: Option<&str>,
) -> anyhow::Result<Vec<Letter>> {
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
        let sequence = message.info().map_or(0, |i| i.stream_sequence);
        out.push(Letter {
            sequence,
            subject: message.subject.to_string(),
            headers: message.headers.clone().unwrap_or_default(),
            payload: message.payload.clone(),
        });
    }
    Ok(out)
}

async fn letter(js: &jetstream::Context, config: &Config, sequence: u64) -> anyhow::Result<Letter> {
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
    Ok(Letter {
        sequence,
        subject: message.subject.to_string(),
        headers: message.headers,
        payload: message.payload,
    })
}

async fn list(
    js: &jetstream::Context,
    config: &Config,
    route: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let letters = letters(js, config, route).await?;
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(ExitCode::SUCCESS);
    }
    println!("SEQ\tROUTE\tKIND\tATTEMPTS\tFAILED AT\tRAW SUBJECT\tREASON");
    for l in &letters {
        let reason: String = l.header(headers::ERROR).chars().take(120).collect();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            l.sequence,
            l.header(headers::ROUTE),
            l.header(headers::ERROR_KIND),
            l.header(headers::ATTEMPTS),
            l.header(headers::FAILED_AT),
            l.header(headers::RAW_SUBJECT),
            reason
        );
    }
    println!("{} dead letter(s)", letters.len());
    Ok(ExitCode::SUCCESS)
}

async fn show(js: &jetstream::Context, config: &Config, sequence: u64) -> anyhow::Result<ExitCode> {
    let l = letter(js, config, sequence).await?;
    println!("sequence: {}\nsubject: {}", l.sequence, l.subject);
    let mut names: Vec<(String, String)> = l
        .headers
        .iter()
        .flat_map(|(n, vs)| {
            vs.iter()
                .map(move |v| (n.to_string(), v.as_str().to_owned()))
        })
        .collect();
    names.sort();
    for (name, value) in names {
        println!("{name}: {value}");
    }
    println!("payload: {} bytes", l.payload.len());
    match std::str::from_utf8(&l.payload) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("(not UTF-8; hex)\n{}", hex_dump(&l.payload)),
    }
    Ok(ExitCode::SUCCESS)
}

fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .map(|chunk| {
            chunk
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Redriving dead letters through their routes.
struct Redrive<'a> {
    js: &'a jetstream::Context,
    config: Arc<Config>,
    plugin: Option<PathBuf>,
    version: Option<String>,
}

impl Redrive<'_> {
    async fn run(&self, sequences: &[u64]) -> anyhow::Result<ExitCode> {
        if sequences.is_empty() {
            println!("no dead letters to redrive");
            return Ok(ExitCode::SUCCESS);
        }
        let sandbox = super::sandbox(&self.config)?;
        let registry = Registry::open(&self.config, Some(self.js)).await?;
        let loader = PluginLoader::new(self.config.clone(), sandbox, Some(registry));
        let delivery = Delivery::open(self.js, &self.config.governance).await?;
        let pool = WorkerPool::start(1)?;
        let dlq = self.js.get_stream(&self.config.streams.dlq).await?;
        let mut routes: HashMap<String, Arc<Route>> = HashMap::new();
        let mut failed = 0;
        for &sequence in sequences {
            let l = letter(self.js, &self.config, sequence).await?;
            let name = l.header(headers::ROUTE).to_owned();
            let route = match routes.get(&name) {
                Some(route) => route.clone(),
                None => {
                    let route = loader
                        .route_through(&name, self.version.as_deref(), self.plugin.as_deref())
                        .await?;
                    let route = Arc::new(route);
                    routes.insert(name.clone(), route.clone());
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
            let outcome = pool.call(route.active(), route.context.clone(), raw).await;
            let origin = RawOrigin {
                id: &raw_id,
                subject: &raw_subject,
                sequence: raw_sequence,
                headers: Some(&original),
                payload: &l.payload,
            };
            let mode = Mode {
                dead_letter: false,
                ..Mode::LIVE
            };
            match delivery
                .deliver(&route, &route.active(), &origin, outcome, 1, &mode)
                .await?
            {
                Delivered::Events {
                    published,
                    duplicates,
                    ..
                } => {
                    dlq.delete_message(sequence).await.with_context(|| {
                        format!("dead letter {sequence} was redriven but could not be deleted")
                    })?;
                    println!(
                        "redriven {sequence} ({raw_subject}) through {}: {published} event(s) published{}",
                        route.active().id(),
                        if duplicates > 0 {
                            format!(", {duplicates} skipped as already delivered")
                        } else {
                            String::new()
                        }
                    );
                }
                Delivered::Failed(failure) => {
                    failed += 1;
                    println!(
                        "still failing {sequence} ({raw_subject}) through {}: {}: {}; the dead letter stays",
                        route.active().id(),
                        failure.kind(),
                        failure.message()
                    );
                }
            }
        }
        tokio::task::spawn_blocking(move || pool.shutdown()).await?;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
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
