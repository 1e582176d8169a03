//! `millrace dlq list|show|redrive`: the dead letters, and sending them back through their
//! route once the cause is fixed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use async_nats::jetstream;
use clap::Subcommand;

use millrace::audit::{Actor, AuditTrail, Change};
use millrace::config::Config;
use millrace::delivery::Delivery;
use millrace::operations::redrive::{NoSuchLetter, Redriver, dead_letter_filter, letter, letters};
use millrace::registry::loader::PluginLoader;
use millrace::registry::store::Registry;

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
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sequence: u64,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Sends dead letters back through their route (after the plugin or the data was fixed)
    /// and deletes each one only once its events are stored. A letter that fails again stays.
    Redrive {
        /// The dead letters' sequences in the DLQ stream.
        #[arg(required_unless_present = "all", value_parser = clap::value_parser!(u64).range(1..))]
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
        /// Post an outbound letter even when a later event of its business key was posted since
        /// (by default it stays, said superseded: posting it would leave the targets with the
        /// older state).
        #[arg(long)]
        superseded: bool,
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
            superseded,
            connection,
        } => {
            if connection.config.is_none() {
                bail!("redrive needs --config: the routes and their plugins come from it");
            }
            let (config, client) = connection.connect().await?;
            let js = async_nats::jetstream::new(client.clone());
            if let Some(route) = &route {
                check_route(&config, route)?;
            }
            let sequences = if all {
                letters(
                    &js,
                    &config.streams,
                    &dead_letter_filter(&config.outbound, route.as_deref()),
                )
                .await?
                .iter()
                .map(|l| l.sequence)
                .collect()
            } else {
                sequences
            };
            let through = Through {
                version,
                plugin,
                superseded,
            };
            let code = redrive(&js, Arc::new(config), &sequences, through).await;
            client.flush().await.ok();
            code
        }
    }
}

async fn list(
    js: &jetstream::Context,
    config: &Config,
    route: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let filter = dead_letter_filter(&config.outbound, route);
    let letters = letters(js, &config.streams, &filter).await?;
    if letters.is_empty() {
        // A typo listed nothing, as a route without letters does.
        match route.map(|route| check_route(config, route)) {
            Some(Err(e)) => outln!("no dead letters on {filter}: {e}"),
            _ => outln!("no dead letters"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    outln!("SEQ\tROUTE\tKIND\tATTEMPTS\tFAILED AT\tRAW SUBJECT\tREASON");
    for l in &letters {
        let s = l.summary();
        let reason: String = s.error.chars().take(120).collect();
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            s.sequence,
            s.route,
            s.error_kind,
            s.attempts,
            s.failed_at,
            s.raw_subject,
            reason
        );
    }
    outln!("{} dead letter(s)", letters.len());
    Ok(ExitCode::SUCCESS)
}

async fn show(js: &jetstream::Context, config: &Config, sequence: u64) -> anyhow::Result<ExitCode> {
    let l = letter(js, &config.streams, sequence).await?;
    outln!("sequence: {}\nsubject: {}", l.sequence, l.subject);
    for (name, value) in l.sorted_headers() {
        outln!("{name}: {value}");
    }
    outln!("payload: {} bytes", l.payload.len());
    match std::str::from_utf8(&l.payload) {
        Ok(text) => outln!("{text}"),
        Err(_) => outln!("(not UTF-8; hex)\n{}", hex_dump(&l.payload)),
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

/// Refuses a `--route` that names no route of the config, listing those it has: `--all --route`
/// with a typo said "no dead letters to redrive" and succeeded.
fn check_route(config: &Config, route: &str) -> anyhow::Result<()> {
    if config.routes.contains_key(route) || config.outbound.contains_key(route) {
        return Ok(());
    }
    let known: Vec<&str> = (config.routes.keys())
        .chain(config.outbound.keys())
        .map(String::as_str)
        .collect();
    bail!(
        "the config has no route `{route}`; its routes: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// Whether `js`'s connection to NATS is up.
fn connected(js: &jetstream::Context) -> bool {
    matches!(
        js.client().connection_state(),
        async_nats::connection::State::Connected
    )
}

/// How a redrive maps and posts: `dlq redrive`'s options.
struct Through {
    version: Option<String>,
    plugin: Option<PathBuf>,
    superseded: bool,
}

/// Redrives `sequences`, printing what became of each.
async fn redrive(
    js: &jetstream::Context,
    config: Arc<Config>,
    sequences: &[u64],
    through: Through,
) -> anyhow::Result<ExitCode> {
    if sequences.is_empty() {
        outln!("no dead letters to redrive");
        return Ok(ExitCode::SUCCESS);
    }
    let sandbox = super::sandbox(&config)?;
    let registry = Registry::open(&config, Some(js)).await?;
    let loader = Arc::new(PluginLoader::new(config.clone(), sandbox, Some(registry)));
    let delivery = Delivery::open(js, &config.governance).await?;
    let trail = AuditTrail::new(js.clone(), &config);
    let actor = Actor::os_user();
    let outbound: Vec<String> = config.outbound.keys().cloned().collect();
    let mut redriver = Redriver::new(
        config,
        js.clone(),
        loader,
        delivery,
        through.version,
        through.plugin,
    )?
    .post_superseded(through.superseded);
    let mut failed = 0;
    let mut result = Ok(());
    for &sequence in sequences {
        match redriver.redrive(sequence).await {
            Ok(r) => {
                if let Err(e) = trail.record(&actor, Change::redrive(None, &r)).await {
                    result = Err(e);
                    break;
                }
                match &r.still_failing {
                    None if outbound.contains(&r.route) => outln!(
                        "redriven {sequence} ({}) through {}: posted, {} request(s)",
                        r.raw_subject,
                        r.plugin,
                        r.published
                    ),
                    None => outln!(
                        "redriven {sequence} ({}) through {}: {} event(s) published{}",
                        r.raw_subject,
                        r.plugin,
                        r.published,
                        if r.duplicates > 0 {
                            format!(", {} skipped as already delivered", r.duplicates)
                        } else {
                            String::new()
                        }
                    ),
                    Some(reason) => {
                        failed += 1;
                        outln!(
                            "still failing {sequence} ({}) through {}: {reason}; the dead letter stays",
                            r.raw_subject,
                            r.plugin
                        );
                    }
                }
            }
            // One letter that cannot be redriven (its route renamed or removed, its version
            // gone) does not keep the others from their routes. Without NATS none can be: the
            // rest wait.
            Err(e) if connected(js) => {
                failed += 1;
                if e.downcast_ref::<NoSuchLetter>().is_some() {
                    outln!("cannot redrive {sequence}: {e:#}");
                } else {
                    outln!("cannot redrive {sequence}: {e:#}; the dead letter stays");
                }
            }
            Err(e) => {
                result = Err(e.context(format!(
                    "NATS is not connected: stopped, the letters from {sequence} on stay"
                )));
                break;
            }
        }
    }
    redriver.finish().await;
    result?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
