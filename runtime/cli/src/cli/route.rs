//! `millrace route ...`: which plugin version a route serves, on every running host.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;

use millrace::config::Config;
use millrace::operations::shadow;
use millrace::registry::rollout;
use millrace::registry::store::{Binding, CandidateMode, Registry};

/// Route commands.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Makes a deployed version serve a route on every running host, within a second. The
    /// version is admitted first (digest, WIT version, golden fixtures in this host's sandbox);
    /// a refused version changes nothing. With --canary or --shadow it becomes the route's
    /// candidate instead.
    SetVersion {
        /// The route.
        route: String,
        /// The deployed version, `name@version`.
        version: String,
        /// Send this per cent of the messages (chosen by message key) to the version.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99), conflicts_with = "shadow")]
        canary: Option<u8>,
        /// Run the version on every message beside the active one, publishing only where
        /// their events differ (see `route diff`).
        #[arg(long)]
        shadow: bool,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Goes back to the version the route served before the active one.
    Rollback {
        /// The route.
        route: String,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Makes the route's candidate (canary or shadow) its active version.
    Promote {
        /// The route.
        route: String,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Shows the differences the route's shadow candidate found, newest last.
    Diff {
        /// The route.
        route: String,
        /// How many reports to show at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Shows which versions a route (or every route) serves.
    Show {
        /// The route; every route when left out.
        route: Option<String>,
        #[command(flatten)]
        connection: super::Connection,
    },
}

/// Runs a route command.
pub async fn run(command: RouteCommand) -> anyhow::Result<ExitCode> {
    match command {
        RouteCommand::SetVersion {
            route,
            version,
            canary,
            shadow,
            connection,
        } => {
            let (config, registry) = open(&connection).await?;
            let mode = match (canary, shadow) {
                (Some(percent), _) => Some(CandidateMode::Canary { percent }),
                (None, true) => Some(CandidateMode::Shadow),
                (None, false) => None,
            };
            let sandbox = super::sandbox(&config)?;
            let (admitted, binding) =
                rollout::set_version(&config, &registry, &sandbox, &route, &version, mode).await?;
            println!(
                "{} admitted: built against {}, sha256 {}",
                admitted.id, admitted.wit, admitted.digest
            );
            print_binding(&route, &binding);
            Ok(ExitCode::SUCCESS)
        }
        RouteCommand::Rollback { route, connection } => {
            let (config, registry) = open(&connection).await?;
            let binding = rollout::rollback(&config, &registry, &route).await?;
            print_binding(&route, &binding);
            Ok(ExitCode::SUCCESS)
        }
        RouteCommand::Promote { route, connection } => {
            let (config, registry) = open(&connection).await?;
            let binding = rollout::promote(&config, &registry, &route).await?;
            print_binding(&route, &binding);
            Ok(ExitCode::SUCCESS)
        }
        RouteCommand::Diff {
            route,
            limit,
            connection,
        } => diff(&connection, &route, limit).await,
        RouteCommand::Show { route, connection } => {
            let (config, registry) = open(&connection).await?;
            let bindings = registry.bindings().await?;
            for name in config
                .routes
                .keys()
                .filter(|n| route.as_ref().is_none_or(|r| r == *n))
            {
                match bindings.get(name) {
                    Some(binding) => print_binding(name, binding),
                    None => println!(
                        "{name}: {} (from the config; never switched)",
                        config.routes[name].plugin.display()
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open(connection: &super::Connection) -> anyhow::Result<(Arc<Config>, Registry)> {
    if connection.config.is_none() {
        bail!("route commands need --config: the routes come from it");
    }
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client);
    let registry = Registry::open(&config, Some(&js)).await?;
    Ok((Arc::new(config), registry))
}

fn print_binding(route: &str, binding: &Binding) {
    let candidate = binding
        .candidate
        .as_ref()
        .map_or_else(String::new, |c| match c.mode {
            CandidateMode::Canary { percent } => format!(", canary {} on {percent}%", c.version),
            CandidateMode::Shadow => format!(", shadow {}", c.version),
        });
    let previous = binding
        .history
        .last()
        .map_or_else(String::new, |p| format!(" (rollback goes to {p})"));
    println!("{route}: active {}{candidate}{previous}", binding.active);
}

/// Longest `route diff` waits for the shadow reports.
const SHADOW_READ: std::time::Duration = std::time::Duration::from_secs(30);

async fn diff(
    connection: &super::Connection,
    route: &str,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client);
    let reports = shadow::reports(&js, &config, route, limit, SHADOW_READ).await?;
    if reports.is_empty() {
        println!("no differences reported for route {route}");
        return Ok(ExitCode::SUCCESS);
    }
    for report in &reports {
        println!(
            "RAW {} ({}): {} -> {}",
            report.raw_sequence, report.raw_subject, report.active, report.candidate
        );
        for d in &report.differences {
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map_or_else(|| "(absent)".to_owned(), ToString::to_string)
            };
            println!(
                "  {}: {} -> {}",
                d.path,
                show(&d.active),
                show(&d.candidate)
            );
        }
    }
    println!("{} message(s) with differences", reports.len());
    Ok(ExitCode::SUCCESS)
}
