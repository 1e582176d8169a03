//! The routes a host serves: each names its raw subjects, the plugin versions it serves now
//! (swapped atomically when its binding changes), its limits, retries and governance settings.

mod breaker;
pub mod versions;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::registry::loader::PluginLoader;
use crate::registry::record::{Binding, CandidateMode};
use millrace_core::config::{CallSettings, Config, OutboundRouteConfig, RetryPolicy, RouteConfig};
use millrace_core::sandbox::{PluginComponent, RouteContext};

pub use self::breaker::Breaker;
pub use self::versions::{MessageVersions, ServedVersions, Serving, canary_share};

/// One configured route with the plugin versions it serves.
#[derive(Debug)]
pub struct Route {
    /// The route name.
    pub name: Arc<str>,
    /// The raw subjects it consumes.
    pub subjects: Vec<String>,
    versions: ArcSwap<ServedVersions>,
    /// Configuration and limits the plugin runs with.
    pub context: Arc<RouteContext>,
    /// Retries of traps and breached limits.
    pub retry: RetryPolicy,
    /// JetStream's redelivery delay.
    pub ack_wait: Duration,
    /// Deliveries of one message without an ack before JetStream gives up on it (inbound
    /// routes; none: no limit).
    pub max_deliveries: Option<u32>,
    /// How late events are treated.
    pub ordering: millrace_core::config::Ordering,
    /// Whether resent source transactions are skipped.
    pub idempotency: bool,
    /// Permits for plugin calls in the worker pool at once: fewer than the workers when a host
    /// serves several routes, so one route's slow or hostile calls never hold every worker.
    pub admission: Arc<tokio::sync::Semaphore>,
    /// Permits every route of the host shares for calls while its breaker says it breached a
    /// limit lately ([`Breaker::suspect`]): fewer than the workers, so two or more hostile
    /// routes, each within its own admission, cannot together hold every worker.
    pub suspects: Arc<tokio::sync::Semaphore>,
    /// Shadow runs in flight at once ([`SHADOW_RUNS`]): a shadow candidate runs beside the
    /// live flow, never in its way, and one that falls behind is skipped, not queued.
    pub shadow_runs: Arc<tokio::sync::Semaphore>,
    /// Cools the route down after calls that ran into the deadline or the memory cap.
    pub breaker: Breaker,
}

/// Shadow runs one route has in flight at most; a message arriving while all are taken is not
/// shadowed (its live delivery never waits for a shadow).
pub const SHADOW_RUNS: usize = 16;

impl Route {
    /// The source system of a raw subject: the route's `system` setting, else the second
    /// token of `raw.<system>.<site>.<format>`, else the route name.
    pub fn source_system<'a>(&'a self, subject: &'a str) -> &'a str {
        crate::pipeline::mapping::source_system(&self.context, subject)
    }

    /// The site a raw subject's failures are counted for: the route's `site` setting, else
    /// the third token of `raw.<system>.<site>.<format>`, else the route name.
    pub fn site<'a>(&'a self, subject: &'a str) -> &'a str {
        if let Some(site) = self.context.config.get("site") {
            return site;
        }
        millrace_core::subjects::raw_site(subject).unwrap_or(&self.name)
    }

    /// The trading partner a raw subject's failures are counted for: the route's `partner`
    /// setting, else its source system.
    pub fn partner<'a>(&'a self, subject: &'a str) -> &'a str {
        match self.context.config.get("partner") {
            Some(partner) => partner,
            None => self.source_system(subject),
        }
    }

    /// The versions the route serves, with their role.
    pub fn serving(&self) -> Vec<Serving> {
        let served = self.versions();
        let mut serving = vec![Serving {
            version: served.active.id(),
            role: "active",
            percent: None,
        }];
        if let Some((candidate, mode)) = &served.candidate {
            let (role, percent) = match mode {
                CandidateMode::Canary { percent } => ("canary", Some(*percent)),
                CandidateMode::Shadow => ("shadow", None),
            };
            serving.push(Serving {
                version: candidate.id(),
                role,
                percent,
            });
        }
        serving
    }

    /// The route `name` as it serves now (its binding, else its configured plugin), or with the
    /// plugin at `plugin_override` (a folder or component) when given.
    pub async fn load(
        loader: &PluginLoader,
        name: &str,
        plugin_override: Option<&Path>,
    ) -> anyhow::Result<Route> {
        let versions = match plugin_override {
            Some(path) => ServedVersions {
                active: loader.path(name, path).await?,
                candidate: None,
            },
            None => {
                let binding = match loader.registry() {
                    Some(registry) => registry.binding(name).await?,
                    None => None,
                };
                loader.versions(name, binding.as_ref()).await?
            }
        };
        Self::configured(loader.config(), name, versions)
    }

    /// The route `name` of its `[outbound]` section, else of its `[routes]` section, serving
    /// `versions`.
    fn configured(config: &Config, name: &str, versions: ServedVersions) -> anyhow::Result<Route> {
        if let Some(section) = config.outbound.get(name) {
            return Ok(Route::outbound(name, section, versions));
        }
        Ok(Route::new(name, route_config(config, name)?, versions))
    }

    /// The route `name` mapping through the deployed `version` (`name@version`) when given and
    /// not what it serves now, else through `plugin_override` or what it serves now, for `what`
    /// (a replay, a redrive).
    ///
    /// On a route whose version changes need approval (`approval.routes`) it maps only through a
    /// version the route serves (active, canary or shadow): through another deployed version,
    /// or a plugin folder, one identity would publish or post to the systems of record with code
    /// no second identity approved.
    pub async fn load_through(
        loader: &PluginLoader,
        name: &str,
        version: Option<&str>,
        plugin_override: Option<&Path>,
        what: &str,
    ) -> anyhow::Result<Route> {
        let approval = loader.config().approval.required_for(name);
        if approval && plugin_override.is_some() {
            anyhow::bail!(
                "route `{name}` needs approval for the versions it maps with, so {what} cannot \
                 map through a plugin folder: deploy it, propose it (`millrace route \
                 set-version`, or a canary or shadow), and map through it once it is approved"
            );
        }
        let route = match (Self::load(loader, name, plugin_override).await, version) {
            (Ok(route), _) => route,
            // What the route serves cannot be loaded (gone from the registry): the version asked
            // for can still serve the replay or redrive, the way out an operator reaches for,
            // unless the route needs approval, when what it serves is what may be mapped with.
            (Err(served), Some(wanted)) if !approval => {
                let active = loader.version(wanted).await.with_context(|| {
                    format!("route `{name}` cannot load {wanted}, nor what it serves ({served:#})")
                })?;
                let versions = ServedVersions {
                    active,
                    candidate: None,
                };
                return Self::configured(loader.config(), name, versions);
            }
            (Err(served), _) => return Err(served),
        };
        match version {
            Some(wanted) if wanted != route.active().id() => {
                let served = route.serving();
                if approval && !served.iter().any(|s| s.version == wanted) {
                    let serving: Vec<String> = served
                        .iter()
                        .map(|s| format!("{} ({})", s.version, s.role))
                        .collect();
                    anyhow::bail!(
                        "route `{name}` needs approval for the versions it maps with and serves \
                         {}, not {wanted}, so {what} cannot map through it: propose {wanted} \
                         (`millrace route set-version`, or a canary or shadow), and map through \
                         it once it is approved",
                        serving.join(", ")
                    );
                }
                let active = loader.version(wanted).await.with_context(|| {
                    format!(
                        "route `{name}` serves {}, and {wanted} cannot be loaded",
                        route.active().id()
                    )
                })?;
                let versions = ServedVersions {
                    active,
                    candidate: None,
                };
                // An outbound route too: built as an inbound one, it was "no route", and no
                // outbound letter could be redriven through a version.
                Self::configured(loader.config(), name, versions)
            }
            _ => Ok(route),
        }
    }

    /// The inbound route `name` of its `[routes.<name>]` section, serving `versions`.
    pub fn new(name: &str, section: &RouteConfig, versions: ServedVersions) -> Self {
        let route = Self::of(
            name,
            &section.subjects,
            &section.config,
            &section.calls,
            versions,
        );
        Route {
            ordering: section.ordering,
            idempotency: section.idempotency,
            max_deliveries: Some(section.max_deliveries),
            ..route
        }
    }

    /// The outbound route `name` of its `[outbound.<name>]` section, serving `versions`: its
    /// canonical subjects, plugin configuration, limits and retries; the inbound-only settings
    /// (ordering, business idempotency) are off.
    pub fn outbound(name: &str, section: &OutboundRouteConfig, versions: ServedVersions) -> Self {
        Self::of(
            name,
            &section.subjects,
            &section.config,
            &section.calls,
            versions,
        )
    }

    /// What inbound and outbound routes share: subjects, the plugin's configuration and the
    /// call settings; no ordering, no business idempotency.
    fn of(
        name: &str,
        subjects: &[String],
        config: &BTreeMap<String, String>,
        calls: &CallSettings,
        versions: ServedVersions,
    ) -> Self {
        let name: Arc<str> = name.into();
        Route {
            name: name.clone(),
            subjects: subjects.to_vec(),
            versions: ArcSwap::from_pointee(versions),
            context: Arc::new(RouteContext {
                route: name,
                config: Arc::new(config.clone()),
                limits: calls.limits,
            }),
            retry: calls.retry,
            ack_wait: calls.ack_wait.get(),
            max_deliveries: None,
            ordering: millrace_core::config::Ordering::Off,
            idempotency: false,
            admission: Arc::new(tokio::sync::Semaphore::new(
                tokio::sync::Semaphore::MAX_PERMITS,
            )),
            suspects: Arc::new(tokio::sync::Semaphore::new(
                tokio::sync::Semaphore::MAX_PERMITS,
            )),
            shadow_runs: Arc::new(tokio::sync::Semaphore::new(SHADOW_RUNS)),
            breaker: Breaker::default(),
        }
    }

    /// Limits this route to `calls` plugin calls at once, and to the permits of `suspects`
    /// while it breaches limits.
    pub fn with_admission(mut self, calls: usize, suspects: &Arc<tokio::sync::Semaphore>) -> Self {
        self.admission = Arc::new(tokio::sync::Semaphore::new(calls.max(1)));
        self.suspects = suspects.clone();
        self
    }

    /// The versions served now.
    pub fn versions(&self) -> Arc<ServedVersions> {
        self.versions.load_full()
    }

    /// The active version now.
    pub fn active(&self) -> Arc<PluginComponent> {
        self.versions.load().active.clone()
    }

    /// Serves `versions` from now on; messages already started finish on the old ones.
    pub fn swap(&self, versions: ServedVersions) {
        self.versions.store(Arc::new(versions));
    }
}

/// All routes of a host: the inbound ones (raw messages in) and the outbound ones (canonical
/// events out). Both follow their bindings the same way.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
    outbound: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Loads the versions every route serves: its binding's, else its configured plugin.
    /// With several routes, each may use all workers but one at a time (or
    /// `host.max_workers_per_route`), and the routes that breach limits lately all together
    /// as many (so a hostile route, or several, leave a worker to the others).
    pub async fn load(
        config: &Config,
        loader: &PluginLoader,
        bindings: &BTreeMap<String, Binding>,
    ) -> anyhow::Result<Self> {
        let workers = config.host.workers;
        let calls = config
            .host
            .max_workers_per_route
            .unwrap_or(if config.routes.len() > 1 {
                workers.saturating_sub(1)
            } else {
                workers
            });
        let suspects = Arc::new(tokio::sync::Semaphore::new(
            workers.saturating_sub(1).max(1),
        ));
        let mut routes = Vec::new();
        for (name, section) in &config.routes {
            let versions = loader.versions(name, bindings.get(name)).await?;
            if versions.active.world != millrace_core::sandbox::World::Mapper {
                anyhow::bail!(
                    "route `{name}` in {}: {} is an outbound plugin (world poster); serve it on an [outbound.<name>] route",
                    config.source.display(),
                    versions.active.id()
                );
            }
            routes.push(Arc::new(
                Route::new(name, section, versions).with_admission(calls, &suspects),
            ));
        }
        let mut outbound = Vec::new();
        for (name, section) in &config.outbound {
            let versions = loader.versions(name, bindings.get(name)).await?;
            let route = Route::outbound(name, section, versions);
            if route.active().world != millrace_core::sandbox::World::Poster {
                anyhow::bail!(
                    "outbound route `{name}` in {}: {} is a mapping plugin; an outbound route needs a plugin of the world poster (wit = \"millrace:outbound@1.0.0\")",
                    config.source.display(),
                    route.active().id()
                );
            }
            outbound.push(Arc::new(route.with_admission(calls, &suspects)));
        }
        Ok(Self { routes, outbound })
    }

    /// Every inbound route.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Every outbound route.
    pub fn outbound(&self) -> &[Arc<Route>] {
        &self.outbound
    }

    /// The inbound or outbound route named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes
            .iter()
            .chain(&self.outbound)
            .find(|r| &*r.name == name)
    }
}

pub(crate) fn route_config<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a RouteConfig> {
    config.routes.get(name).with_context(|| {
        format!(
            "there is no route `{name}` in {}; its routes are: {}",
            config.source.display(),
            config.routes.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}
