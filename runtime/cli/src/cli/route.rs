//! `millrace route ...`: which plugin version a route serves, on every running host.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;

use millrace::approval::{Outcome, ProposalState, Proposals, RouteChange, RouteChanges};
use millrace::audit::Actor;
use millrace::config::{Config, PluginSource};
use millrace::operations::shadow;
use millrace::registry::AdmissionBounds;
use millrace::registry::store::{Binding, CandidateMode, Registry, Role};

/// Route commands.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Makes a deployed version serve a route on every running host, within a second. The
    /// version is admitted first (digest, WIT version, golden fixtures in this host's sandbox);
    /// a refused version changes nothing. With --canary or --shadow it becomes the route's
    /// candidate instead. A route moves to another plugin (another name) only through a
    /// candidate: shadow or canary it, then `millrace route promote`. On a route listed in
    /// `approval.routes` the change is proposed and waits for another user's `millrace change
    /// approve`.
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
    /// Undoes the route's last change, at once (even on a route that needs approval for other
    /// changes): drops its candidate (canary or shadow) when it has one, else goes back to the
    /// version it served before the active one.
    Rollback {
        /// The route.
        route: String,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Makes the route's candidate (canary or shadow) its active version; proposed instead on
    /// a route listed in `approval.routes`.
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
    /// Shows which versions a route (or every route) serves, and its changes waiting for
    /// approval.
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
            let mode = match (canary, shadow) {
                (Some(percent), _) => Some(CandidateMode::Canary { percent }),
                (None, true) => Some(CandidateMode::Shadow),
                (None, false) => None,
            };
            let change = RouteChange::SetVersion { version, mode };
            change_route(&connection, &route, change).await
        }
        RouteCommand::Rollback { route, connection } => {
            change_route(&connection, &route, RouteChange::Rollback).await
        }
        RouteCommand::Promote { route, connection } => {
            change_route(&connection, &route, RouteChange::Promote).await
        }
        RouteCommand::Diff {
            route,
            limit,
            connection,
        } => diff(&connection, &route, limit).await,
        RouteCommand::Show { route, connection } => {
            let (config, registry, js) = open(&connection).await?;
            let bindings = registry.bindings().await?;
            for name in config
                .route_names()
                .iter()
                .filter(|n| route.as_ref().is_none_or(|r| r == *n))
            {
                match (bindings.get(name), config.plugin_of(name)) {
                    (Some(binding), configured) => {
                        print_binding(name, binding)?;
                        if let Some((plugin, role)) = binding.configured(configured) {
                            let note = match role {
                                Role::Unused => format!(
                                    "is not used while the route has a binding; `millrace route set-version {name} <name@version>` changes what it serves"
                                ),
                                _ => format!(
                                    "is the route's candidate, not its active version, while the route has a binding; `millrace route promote {name}` makes it active"
                                ),
                            };
                            outln!("  the config's plugin {plugin} {note}");
                        }
                    }
                    (None, Some(PluginSource::Registry(id))) => {
                        outln!("{name}: {id} (from the config; never switched)")
                    }
                    (None, Some(PluginSource::Path(path))) => outln!(
                        "{name}: {} (from the config; never switched)",
                        path.display()
                    ),
                    (None, None) => {}
                }
            }
            if config.approval.routes.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            let proposals = Proposals::open(&js, &config).await?;
            for proposal in proposals.list(route.as_deref()).await? {
                if proposal.state == ProposalState::Pending {
                    outln!(
                        "{}: waiting for approval: {} {} by {} (expires {})",
                        proposal.route,
                        proposal.id,
                        proposal.change.describe(&proposal.route),
                        proposal.proposed_by,
                        proposal.expires_at
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The configuration, the registry and JetStream of a route command.
pub async fn open(
    connection: &super::Connection,
) -> anyhow::Result<(Arc<Config>, Registry, async_nats::jetstream::Context)> {
    if connection.config.is_none() {
        bail!("route commands need --config: the routes come from it");
    }
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client);
    let registry = Registry::open(&config, Some(&js)).await?;
    Ok((Arc::new(config), registry, js))
}

/// The route changes of a command run as the local OS user.
pub async fn route_changes(connection: &super::Connection) -> anyhow::Result<RouteChanges> {
    let (config, registry, js) = open(connection).await?;
    let sandbox = super::sandbox(&config)?;
    Ok(RouteChanges::new(config, registry, sandbox, js))
}

/// Applies or proposes `change` to `route` as the local OS user, and says which.
async fn change_route(
    connection: &super::Connection,
    route: &str,
    change: RouteChange,
) -> anyhow::Result<ExitCode> {
    let changes = route_changes(connection).await?;
    let actor = Actor::os_user();
    match changes
        .request(&actor, route, change, AdmissionBounds::default())
        .await?
    {
        Outcome::Applied(applied) => {
            if let Some(admitted) = &applied.admitted {
                outln!(
                    "{} admitted: built against {}, sha256 {}",
                    admitted.id,
                    admitted.wit,
                    admitted.digest
                );
            }
            print_binding(route, &applied.switched.after)?;
        }
        Outcome::Proposed(proposal) => outln!(
            "proposed {}: {}; it takes effect when another user approves it (`millrace change approve {}`) before {}",
            proposal.id,
            proposal.change.describe(route),
            proposal.id,
            proposal.expires_at
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints which versions `route` serves.
pub fn print_binding(route: &str, binding: &Binding) -> anyhow::Result<()> {
    let candidate = binding
        .candidate
        .as_ref()
        .map_or_else(String::new, |c| match c.mode {
            CandidateMode::Canary { percent } => format!(", canary {} on {percent}%", c.version),
            CandidateMode::Shadow => format!(", shadow {}", c.version),
        });
    let previous = match (&binding.candidate, binding.history.last()) {
        (Some(c), _) => format!(
            " (rollback drops {} and keeps {})",
            c.version, binding.active
        ),
        (None, Some(p)) => format!(" (rollback goes to {p})"),
        (None, None) => String::new(),
    };
    outln!("{route}: active {}{candidate}{previous}", binding.active);
    Ok(())
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
    let reports = shadow::reports(&js, &config.streams, route, limit, SHADOW_READ).await?;
    if reports.is_empty() {
        outln!("no differences reported for route {route}");
        return Ok(ExitCode::SUCCESS);
    }
    for report in &reports {
        outln!(
            "RAW {} ({}): {} -> {}",
            report.raw_sequence,
            report.raw_subject,
            report.active,
            report.candidate
        );
        for d in &report.differences {
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map_or_else(|| "(absent)".to_owned(), ToString::to_string)
            };
            outln!(
                "  {}: {} -> {}",
                d.path,
                show(&d.active),
                show(&d.candidate)
            );
        }
    }
    outln!("{} message(s) with differences", reports.len());
    Ok(ExitCode::SUCCESS)
}
