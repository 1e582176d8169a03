//! `millrace route ...`: which plugin version a route serves, on every running host.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use async_nats::jetstream::consumer;
use clap::Subcommand;

use millrace::config::Config;
use millrace::governance::shadow::ShadowReport;
use millrace::registry::admit;
use millrace::registry::store::{Binding, Candidate, CandidateMode, Registry};
use millrace::transport::reader::StreamReader;

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
            check_route(&config, &route)?;
            admit_version(&config, &registry, &version).await?;
            let mode = match (canary, shadow) {
                (Some(percent), _) => Some(CandidateMode::Canary { percent }),
                (None, true) => Some(CandidateMode::Shadow),
                (None, false) => None,
            };
            let configured = configured_version(&config, &route);
            let binding = registry
                .update_binding(&route, |current| {
                    let current = current.cloned().or_else(|| baseline(configured.as_deref()));
                    Ok(match mode {
                        None => Binding::activate(current.as_ref(), &version),
                        Some(mode) => {
                            let mut next = current.context(
                                "a candidate needs an active version: set one with `route set-version` first",
                            )?;
                            next.candidate = Some(Candidate {
                                version: version.clone(),
                                mode,
                            });
                            next.touched()
                        }
                    })
                })
                .await?;
            print_binding(&route, &binding);
            Ok(ExitCode::SUCCESS)
        }
        RouteCommand::Rollback { route, connection } => {
            let (config, registry) = open(&connection).await?;
            check_route(&config, &route)?;
            let binding = registry
                .update_binding(&route, |current| {
                    let current = current.with_context(|| {
                        format!("route {route} has never switched versions: there is nothing to roll back to")
                    })?;
                    let mut history = current.history.clone();
                    let previous = history.pop().with_context(|| {
                        format!("route {route} has no version before {}", current.active)
                    })?;
                    let mut next = Binding::activate(None, &previous);
                    next.history = history;
                    Ok(next)
                })
                .await?;
            print_binding(&route, &binding);
            Ok(ExitCode::SUCCESS)
        }
        RouteCommand::Promote { route, connection } => {
            let (config, registry) = open(&connection).await?;
            check_route(&config, &route)?;
            let binding = registry
                .update_binding(&route, |current| {
                    let current = current.context("the route has no candidate to promote")?;
                    let candidate = current
                        .candidate
                        .as_ref()
                        .with_context(|| format!("route {route} has no candidate to promote"))?;
                    Ok(Binding::activate(Some(current), &candidate.version))
                })
                .await?;
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

fn check_route(config: &Config, route: &str) -> anyhow::Result<()> {
    if !config.routes.contains_key(route) {
        bail!(
            "there is no route `{route}` in {}; its routes are: {}",
            config.source.display(),
            config.routes.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// The configured plugin of a route when it names a deployed version.
fn configured_version(config: &Config, route: &str) -> Option<String> {
    match config.routes.get(route)?.plugin_source() {
        millrace::config::PluginSource::Registry(id) => Some(id),
        millrace::config::PluginSource::Path(_) => None,
    }
}

/// The binding a route has before its first switch: its configured version, if deployed.
fn baseline(configured: Option<&str>) -> Option<Binding> {
    configured.map(|id| Binding::activate(None, id))
}

/// Contract-gated admission, in this process's sandbox: the same code every host runs.
async fn admit_version(config: &Config, registry: &Registry, version: &str) -> anyhow::Result<()> {
    let (record, component) = registry.fetch(version).await?;
    millrace::registry::signing::check(&record, &config.registry)?;
    let sandbox = super::sandbox(config)?;
    let plugin =
        tokio::task::spawn_blocking(move || admit(&sandbox, &record, &component)).await??;
    println!(
        "{} admitted: {} built against {}, sha256 {}",
        plugin.id(),
        plugin.id(),
        plugin.wit,
        plugin.digest
    );
    Ok(())
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

async fn diff(
    connection: &super::Connection,
    route: &str,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client);
    let filter = format!("shadow.{route}");
    let mut reader = StreamReader::open(
        &js,
        &config.streams.shadow,
        Some(&filter),
        consumer::DeliverPolicy::All,
        false,
    )
    .await?;
    let mut reports = Vec::new();
    while let Some(message) = reader.next().await? {
        let report: ShadowReport =
            serde_json::from_slice(&message.payload).context("a shadow report does not parse")?;
        reports.push(report);
    }
    if reports.is_empty() {
        println!("no differences reported for route {route}");
        return Ok(ExitCode::SUCCESS);
    }
    let skip = reports.len().saturating_sub(limit);
    for report in &reports[skip..] {
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
