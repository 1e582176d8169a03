//! `millrace replay`: reprocesses raw history through a route's plugin.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use millrace::audit::{Action, Actor, AuditTrail, Change, Target};
use millrace::delivery::dead_letter::headers::RAW_SEQUENCE;
use millrace::delivery::{Delivered, Delivery, Mode};
use millrace::digest::sha256_hex;
use millrace::pipeline::{Pipeline, RawInput};
use millrace::registry::loader::PluginLoader;
use millrace::registry::store::Registry;
use millrace::routes::Route;
use millrace::transport::{header_value, reader::StreamReader, stored::StoredRange};
use millrace::workers::WorkerPool;

/// Where a replay starts or ends: a RAW stream sequence or an RFC 3339 time.
#[derive(Debug, Clone, Copy)]
pub enum Point {
    /// A RAW stream sequence.
    Sequence(u64),
    /// A time the raw message was stored.
    Time(OffsetDateTime),
}

fn parse_point(text: &str) -> Result<Point, String> {
    if let Ok(sequence) = text.parse::<u64>() {
        if sequence == 0 {
            return Err("RAW stream sequences start at 1".to_owned());
        }
        return Ok(Point::Sequence(sequence));
    }
    OffsetDateTime::parse(text, &Rfc3339).map(Point::Time).map_err(|_| {
        format!("`{text}` is neither a RAW stream sequence (e.g. 1200) nor an RFC 3339 time (e.g. 2026-03-02T06:00:00Z)")
    })
}

/// Arguments of `millrace replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The route whose raw subjects are replayed.
    route: String,
    /// Where to start: a RAW stream sequence or an RFC 3339 time.
    #[arg(long, value_parser = parse_point)]
    from: Point,
    /// Where to stop (inclusive); default: the end of the stream when the replay starts.
    #[arg(long, value_parser = parse_point)]
    to: Option<Point>,
    /// Replay through this deployed version (`name@version`) instead of the route's active one.
    #[arg(long, conflicts_with = "plugin")]
    version: Option<String>,
    /// Replay through this plugin folder or component instead of the route's configured one.
    #[arg(long)]
    plugin: Option<PathBuf>,
    #[command(flatten)]
    connection: super::Connection,
}

/// Runs a replay and prints what became of each raw message.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    if args.connection.config.is_none() {
        bail!("replay needs --config: the route and its plugin come from it");
    }
    match (&args.from, &args.to) {
        (Point::Sequence(from), Some(Point::Sequence(to))) if to < from => {
            bail!("--to {to} is before --from {from}: nothing would be replayed")
        }
        (Point::Time(from), Some(Point::Time(to))) if to < from => {
            bail!("--to is before --from: nothing would be replayed")
        }
        _ => {}
    }
    let (config, client) = args.connection.connect().await?;
    let config = Arc::new(config);
    let js = jetstream::new(client.clone());
    let sandbox = super::sandbox(&config)?;
    let registry = Registry::open(&config, Some(&js)).await?;
    let loader = PluginLoader::new(config.clone(), sandbox, Some(registry));
    let route = Route::load_through(
        &loader,
        &args.route,
        args.version.as_deref(),
        args.plugin.as_deref(),
        "a replay",
    )
    .await?;
    let plugin = route.active();
    let delivery = Delivery::open(&js, &config.governance).await?;
    let existing = existing_event_ids(&js, &config.streams.canonical).await?;
    let dead_lettered = dead_lettered_sequences(&js, &config.streams.dlq, &route.name).await?;
    let now = OffsetDateTime::now_utc();
    let replay_id = format!(
        "replay-{}",
        &sha256_hex(
            format!(
                "{}{}{}",
                route.name,
                plugin.id(),
                now.unix_timestamp_nanos()
            )
            .as_bytes()
        )[..16]
    );
    let start = match args.from {
        Point::Sequence(start_sequence) => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence }
        }
        Point::Time(start_time) => consumer::DeliverPolicy::ByStartTime { start_time },
    };
    // Through the JetStream API, a request a message: RAW holds what publishers wrote, and a
    // message whose headers the NATS client cannot read would cost a consumer's connection on
    // every delivery (see `transport::stored`); here it is a failure of its own.
    let mut range = StoredRange::open(&js, &config.streams.raw, &route.subjects, start).await?;
    let pipeline = Pipeline::new(WorkerPool::start(1)?, delivery, js.clone());
    let mode = Mode {
        replay_id: Some(&replay_id),
        existing_ids: Some(&existing),
        dead_letter: false,
        acknowledge: false,
    };
    if let Some(Point::Sequence(to)) = args.to
        && to < range.first()
    {
        bail!(
            "--to {to} is before RAW sequence {}, where --from starts: nothing would be replayed",
            range.first()
        );
    }
    let taken = taken_up_to(&js, &config.streams.raw, &route).await?;
    let mut counts = Counts::default();
    let replayed = replay(
        &mut range,
        &pipeline,
        &route,
        &mode,
        Bounds {
            to: args.to,
            taken,
            dead_lettered: &dead_lettered,
        },
        &mut counts,
    )
    .await;
    pipeline.shutdown().await;
    let mut summary = format!(
        "{replay_id}: route {} through {}: {} raw message(s), {} event(s) published, \
         {} already on {} from this version, {} of a resend skipped, {} failed",
        route.name,
        plugin.id(),
        counts.messages,
        counts.published,
        counts.skipped,
        config.streams.canonical,
        counts.resends,
        counts.failed
    );
    if counts.dead_lettered > 0 {
        summary.push_str(&format!(
            "; {} raw message(s) with a dead letter left to it (a replay publishing them would \
             leave the letter to be redriven into the same events again): `millrace dlq \
             redrive --all --route {}` maps them and settles their letters",
            counts.dead_lettered, route.name
        ));
    }
    if let Some(first) = counts.left_from {
        summary.push_str(&format!(
            "; stopped before RAW {first}: the route's live consumer has not taken it yet \
             (it has taken every message up to {taken}), so the live route maps it and what \
             follows"
        ));
    }
    // A replay that stopped is audited too: what it published stays published.
    let audited = match &replayed {
        Ok(()) => summary.clone(),
        Err(e) => format!("{summary}, then stopped: {e:#}"),
    };
    let change = Change::new(
        Action::Replay,
        Target::Route(route.name.to_string()),
        format!("replays {audited}"),
    )
    .after(&serde_json::json!({
        "replay_id": replay_id, "plugin": plugin.id(), "messages": counts.messages,
        "published": counts.published, "skipped": counts.skipped, "resends": counts.resends,
        "dead_lettered": counts.dead_lettered, "failed": counts.failed,
        "stopped": replayed.as_ref().err().map(|e| format!("{e:#}")),
    }));
    let recorded = AuditTrail::new(js.clone(), &config)
        .record(&Actor::os_user(), change)
        .await;
    client.flush().await.ok();
    // Why it stopped comes first: the audit record may have failed for the same reason.
    replayed.with_context(|| format!("the replay stopped after {summary}"))?;
    recorded?;
    outln!("{summary}");
    Ok(if counts.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a replay did so far.
#[derive(Debug, Default)]
struct Counts {
    messages: usize,
    published: usize,
    skipped: usize,
    /// Events skipped because another raw message delivered their source transaction.
    resends: usize,
    /// Raw messages left alone because they have a dead letter: redrive is their way.
    dead_lettered: usize,
    failed: usize,
    /// The first RAW sequence left to the live route, if the range went past what it has taken.
    left_from: Option<u64>,
}

/// The last RAW sequence the route's live consumer has handed to a host (0 when no host has
/// consumed the route yet). A replay stops there: a message after it is still the live
/// route's to map, and replayed first its events went out marked as replayed while the live
/// copies were dropped as duplicates. (Not its ack floor: a message JetStream gave up on,
/// dead-lettered, never moves that.)
async fn taken_up_to(
    js: &jetstream::Context,
    raw_stream: &str,
    route: &Route,
) -> anyhow::Result<u64> {
    let stream = js
        .get_stream(raw_stream)
        .await
        .with_context(|| format!("cannot open the stream {raw_stream}"))?;
    // One consumer per route, filtering on all its subjects.
    let name = millrace::transport::route_consumer_name(&route.name, &route.subjects);
    match stream.consumer_info(&name).await {
        Ok(info) => Ok(info.delivered.stream_sequence),
        Err(e) if e.to_string().contains("consumer not found") => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read the consumer {name}")),
    }
}

/// Where a replay stops, and what it leaves alone.
struct Bounds<'a> {
    /// The last message asked for.
    to: Option<Point>,
    /// The last message the live route has taken (see [`taken_up_to`]).
    taken: u64,
    /// RAW sequences of the route's dead letters.
    dead_lettered: &'a HashSet<u64>,
}

/// Takes every message of `range` within `bounds` through `pipeline` in `mode`, counting; an
/// `Err` when reading RAW or a host failure stops it.
async fn replay(
    range: &mut StoredRange,
    pipeline: &Pipeline,
    route: &Route,
    mode: &Mode<'_>,
    bounds: Bounds<'_>,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let Bounds {
        to,
        taken,
        dead_lettered,
    } = bounds;
    while let Some(stored) = range.next().await? {
        let sequence = stored.sequence;
        let past_end = match to {
            Some(Point::Sequence(last)) => sequence > last,
            Some(Point::Time(last)) => stored.stored_at.is_some_and(|at| at > last),
            None => false,
        };
        if past_end {
            break;
        }
        if sequence > taken {
            counts.left_from = Some(sequence);
            break;
        }
        if dead_lettered.contains(&sequence) {
            counts.dead_lettered += 1;
            continue;
        }
        counts.messages += 1;
        let input = match RawInput::read(stored, range.stream()) {
            Ok(input) => input,
            Err(unreadable) => {
                counts.failed += 1;
                outln!(
                    "RAW {sequence} ({}): undeliverable: the NATS client cannot read its \
                     headers, so no plugin is given it: {}",
                    unreadable.subject,
                    unreadable.why
                );
                continue;
            }
        };
        let processed = pipeline.process(route, &input, mode).await;
        match processed
            .outcome
            .with_context(|| format!("replaying RAW sequence {sequence}"))?
        {
            Delivered::Events {
                published,
                existing,
                duplicates,
                ..
            } => {
                counts.published += published;
                counts.skipped += existing;
                counts.resends += duplicates;
            }
            Delivered::Failed(failure) => {
                counts.failed += 1;
                outln!(
                    "RAW {sequence} ({}): {}: {}",
                    input.subject,
                    failure.kind(),
                    failure.message()
                );
            }
        }
    }
    Ok(())
}

/// The ids of every event on the canonical stream (read headers only).
async fn existing_event_ids(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<HashSet<String>> {
    let mut reader =
        StreamReader::open(js, stream, None, consumer::DeliverPolicy::All, true).await?;
    let mut ids = HashSet::new();
    while let Some(message) = reader.next().await? {
        if let Some(id) = header_value(message.headers.as_ref(), "Nats-Msg-Id") {
            ids.insert(id.to_owned());
        }
    }
    Ok(ids)
}

/// The RAW sequences of `route`'s dead letters (read headers only).
async fn dead_lettered_sequences(
    js: &jetstream::Context,
    dlq: &str,
    route: &str,
) -> anyhow::Result<HashSet<u64>> {
    let filter = millrace::subjects::dead_letters(route);
    let mut reader =
        StreamReader::open(js, dlq, Some(&filter), consumer::DeliverPolicy::All, true).await?;
    let mut sequences = HashSet::new();
    while let Some(message) = reader.next().await? {
        if let Some(sequence) =
            header_value(message.headers.as_ref(), RAW_SEQUENCE).and_then(|s| s.parse().ok())
        {
            sequences.insert(sequence);
        }
    }
    Ok(sequences)
}
