//! The router: which route (and so which plugin version) a raw message goes to, and which
//! ordered lane it takes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::config::{Config, PluginSource, RetryPolicy, RouteConfig};
use crate::registry::store::{Binding, CandidateMode, Registry};
use crate::registry::{LocalPlugin, admit};
use crate::sandbox::{PluginComponent, RouteContext, Sandbox};

/// The plugin versions a route serves right now: swapped whole, atomically, when its binding
/// changes; a message keeps the versions it started with.
#[derive(Debug)]
pub struct Slot {
    /// The active version.
    pub active: Arc<PluginComponent>,
    /// The version being tried, and how.
    pub candidate: Option<(Arc<PluginComponent>, CandidateMode)>,
}

/// A version a route serves, and as what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Serving {
    /// `name@version`.
    pub version: String,
    /// `active`, `canary` or `shadow`.
    pub role: &'static str,
    /// The canary's share of messages, per cent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// The versions one message goes through.
#[derive(Debug)]
pub struct Pick {
    /// The version whose events are published.
    pub plugin: Arc<PluginComponent>,
    /// A shadow candidate whose events are only compared.
    pub shadow: Option<Arc<PluginComponent>>,
}

impl Slot {
    /// The versions for the message with key `key` (its raw identity): a canary takes the
    /// messages whose key falls in its share, always the same ones.
    pub fn pick(&self, key: &str) -> Pick {
        match &self.candidate {
            Some((candidate, CandidateMode::Canary { percent }))
                if canary_share(key) < *percent =>
            {
                Pick {
                    plugin: candidate.clone(),
                    shadow: None,
                }
            }
            Some((candidate, CandidateMode::Shadow)) => Pick {
                plugin: self.active.clone(),
                shadow: Some(candidate.clone()),
            },
            _ => Pick {
                plugin: self.active.clone(),
                shadow: None,
            },
        }
    }
}

/// Where a message key falls, 0 to 99, for canaries: stable across hosts and runs.
pub fn canary_share(key: &str) -> u8 {
    (fnv1a(key) % 100) as u8
}

/// One configured route with the plugin versions it serves.
#[derive(Debug)]
pub struct Route {
    /// The route name.
    pub name: Arc<str>,
    /// The raw subjects it consumes.
    pub subjects: Vec<String>,
    slot: ArcSwap<Slot>,
    /// Configuration and limits the plugin runs with.
    pub context: Arc<RouteContext>,
    /// Retries of traps and breached limits.
    pub retry: RetryPolicy,
    /// JetStream's redelivery delay.
    pub ack_wait: Duration,
    /// The source system, when the route's config names it (`system` key).
    pub system: Option<String>,
    /// How late events are treated.
    pub ordering: crate::config::Ordering,
    /// Whether resent source transactions are skipped.
    pub idempotency: bool,
    /// Permits for plugin calls in the worker pool at once: fewer than the workers when a host
    /// serves several routes, so one route's slow or hostile calls never hold every worker.
    pub admission: tokio::sync::Semaphore,
    /// Cools the route down after calls that ran into the deadline or the memory cap.
    pub breaker: Breaker,
}

/// A circuit breaker for plugins that burn a worker until a limit stops them: after a
/// deadline or memory breach the route's next calls wait a cool-down (100 ms, doubling while
/// breaches continue, at most 5 s; a good call resets it), so a looping plugin gets a sliver
/// of the CPU instead of a whole core.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    open_until: Option<std::time::Instant>,
    cooldown: Duration,
}

impl Breaker {
    const FIRST: Duration = Duration::from_millis(100);
    const LONGEST: Duration = Duration::from_secs(5);

    /// How long calls must still wait, if the breaker is open.
    pub fn remaining(&self) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let until = state.open_until?;
        until.checked_duration_since(std::time::Instant::now())
    }

    /// Records how a call ended: a breach opens (or keeps open) the breaker, anything else
    /// closes it.
    pub fn record(&self, breached: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if breached {
            state.cooldown = (state.cooldown * 2).clamp(Self::FIRST, Self::LONGEST);
            state.open_until = Some(std::time::Instant::now() + state.cooldown);
        } else {
            state.cooldown = Duration::ZERO;
            state.open_until = None;
        }
    }
}

impl Route {
    /// The source system of a raw subject: the route's `system` setting, else the second
    /// token of `raw.<system>.<site>.<format>`, else the route name.
    pub fn source_system<'a>(&'a self, subject: &'a str) -> &'a str {
        if let Some(system) = &self.system {
            return system;
        }
        subject.split('.').nth(1).unwrap_or(&self.name)
    }

    /// The site a raw subject's failures are counted for: the route's `site` setting, else
    /// the third token of `raw.<system>.<site>.<format>`, else the route name.
    pub fn site<'a>(&'a self, subject: &'a str) -> &'a str {
        if let Some(site) = self.context.config.get("site") {
            return site;
        }
        subject.split('.').nth(2).unwrap_or(&self.name)
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
        let slot = self.slot();
        let mut versions = vec![Serving {
            version: slot.active.id(),
            role: "active",
            percent: None,
        }];
        if let Some((candidate, mode)) = &slot.candidate {
            let (role, percent) = match mode {
                CandidateMode::Canary { percent } => ("canary", Some(*percent)),
                CandidateMode::Shadow => ("shadow", None),
            };
            versions.push(Serving {
                version: candidate.id(),
                role,
                percent,
            });
        }
        versions
    }

    /// The route `name` of `config`, serving `slot`.
    pub fn new(config: &Config, name: &str, slot: Slot) -> anyhow::Result<Self> {
        let route = route_config(config, name)?;
        let name: Arc<str> = name.into();
        Ok(Route {
            name: name.clone(),
            subjects: route.subjects.clone(),
            slot: ArcSwap::from_pointee(slot),
            context: Arc::new(RouteContext {
                route: name,
                config: Arc::new(route.config.clone()),
                limits: route.limits,
            }),
            retry: route.retry,
            ack_wait: route.ack_wait,
            system: route.config.get("system").cloned(),
            ordering: route.ordering,
            idempotency: route.idempotency,
            admission: tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS),
            breaker: Breaker::default(),
        })
    }

    /// Limits this route to `calls` plugin calls at once.
    pub fn with_admission(mut self, calls: usize) -> Self {
        self.admission = tokio::sync::Semaphore::new(calls.max(1));
        self
    }

    /// The versions served now.
    pub fn slot(&self) -> Arc<Slot> {
        self.slot.load_full()
    }

    /// The active version now.
    pub fn active(&self) -> Arc<PluginComponent> {
        self.slot.load().active.clone()
    }

    /// Serves `slot` from now on; messages already started finish on the old one.
    pub fn swap(&self, slot: Slot) {
        self.slot.store(Arc::new(slot));
    }
}

/// Loads the plugin versions routes serve, from the registry or from disk, compiling each
/// version once and off the async reactor.
pub struct PluginLoader {
    config: Arc<Config>,
    sandbox: Sandbox,
    registry: Option<Registry>,
    loaded: Mutex<HashMap<String, Arc<PluginComponent>>>,
}

impl PluginLoader {
    /// A loader; without a registry only plugins on disk can be loaded.
    pub fn new(config: Arc<Config>, sandbox: Sandbox, registry: Option<Registry>) -> Self {
        Self {
            config,
            sandbox,
            registry,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The registry, when there is one.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    fn cached(&self, key: &str) -> Option<Arc<PluginComponent>> {
        self.loaded.lock().ok()?.get(key).cloned()
    }

    fn remember(&self, key: String, plugin: Arc<PluginComponent>) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(key, plugin);
        }
    }

    /// A deployed version, `name@version`: fetched (digest checked) and admitted by its
    /// fixtures, once.
    pub async fn version(&self, id: &str) -> anyhow::Result<Arc<PluginComponent>> {
        if let Some(plugin) = self.cached(id) {
            return Ok(plugin);
        }
        let registry = self
            .registry
            .as_ref()
            .with_context(|| format!("{id} names a deployed version, but there is no registry"))?;
        let (record, component) = registry.fetch(id).await?;
        crate::registry::signing::check(&record, &self.config.registry)?;
        let sandbox = self.sandbox.clone();
        let plugin = tokio::task::spawn_blocking(move || admit(&sandbox, &record, &component))
            .await
            .context("loading a plugin version was interrupted")??;
        let plugin = Arc::new(plugin);
        self.remember(id.to_owned(), plugin.clone());
        Ok(plugin)
    }

    /// A plugin folder (built when needed) or component on disk, for `route`.
    pub async fn path(&self, route: &str, path: &Path) -> anyhow::Result<Arc<PluginComponent>> {
        if self.config.registry.require_signatures {
            anyhow::bail!(
                "route `{route}` loads {} from disk, but registry.require_signatures is on: deploy it signed and name it as name@version",
                path.display()
            );
        }
        let key = path.display().to_string();
        if let Some(plugin) = self.cached(&key) {
            return Ok(plugin);
        }
        let (config, sandbox, owned) = (self.config.clone(), self.sandbox.clone(), path.to_owned());
        let route = route.to_owned();
        let plugin = tokio::task::spawn_blocking(move || {
            LocalPlugin::locate(&owned)
                .and_then(|p| p.load(&sandbox))
                .with_context(|| {
                    format!(
                        "route `{route}` in {}: cannot load plugin {}",
                        config.source.display(),
                        owned.display()
                    )
                })
        })
        .await
        .context("loading a plugin was interrupted")??;
        let plugin = Arc::new(plugin);
        self.remember(key, plugin.clone());
        Ok(plugin)
    }

    /// The route `name` as it serves now (its binding, else its configured plugin), or with the
    /// plugin at `plugin_override` (a folder or component) when given.
    pub async fn route(&self, name: &str, plugin_override: Option<&Path>) -> anyhow::Result<Route> {
        let slot = match plugin_override {
            Some(path) => Slot {
                active: self.path(name, path).await?,
                candidate: None,
            },
            None => {
                let binding = match &self.registry {
                    Some(registry) => registry.binding(name).await?,
                    None => None,
                };
                self.slot(name, binding.as_ref()).await?
            }
        };
        Route::new(&self.config, name, slot)
    }

    /// The route `name` mapping through the deployed `version` (`name@version`) when given and
    /// not what it serves now, else through `plugin_override` or what it serves now.
    pub async fn route_through(
        &self,
        name: &str,
        version: Option<&str>,
        plugin_override: Option<&Path>,
    ) -> anyhow::Result<Route> {
        let route = self.route(name, plugin_override).await?;
        match version {
            Some(wanted) if wanted != route.active().id() => {
                let active = self.version(wanted).await.with_context(|| {
                    format!(
                        "route `{name}` serves {}, and {wanted} cannot be loaded",
                        route.active().id()
                    )
                })?;
                Route::new(
                    &self.config,
                    name,
                    Slot {
                        active,
                        candidate: None,
                    },
                )
            }
            _ => Ok(route),
        }
    }

    /// The versions a route serves: its binding when it has one, else its configured plugin.
    pub async fn slot(&self, route: &str, binding: Option<&Binding>) -> anyhow::Result<Slot> {
        let Some(binding) = binding else {
            let active = match route_config(&self.config, route)?.plugin_source() {
                PluginSource::Registry(id) => self.version(&id).await?,
                PluginSource::Path(path) => self.path(route, &self.config.resolve(&path)).await?,
            };
            return Ok(Slot {
                active,
                candidate: None,
            });
        };
        let active = self.version(&binding.active).await?;
        let candidate = match &binding.candidate {
            Some(candidate) => Some((self.version(&candidate.version).await?, candidate.mode)),
            None => None,
        };
        Ok(Slot { active, candidate })
    }
}

/// All routes of a host.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Loads the versions every route serves: its binding's, else its configured plugin.
    /// With several routes, each may use all workers but one at a time (or
    /// `host.max_workers_per_route`).
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
        let mut routes = Vec::new();
        for name in config.routes.keys() {
            let slot = loader.slot(name, bindings.get(name)).await?;
            routes.push(Arc::new(
                Route::new(config, name, slot)?.with_admission(calls),
            ));
        }
        Ok(Self { routes })
    }

    /// Every route.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// The route named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| &*r.name == name)
    }
}

fn route_config<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a RouteConfig> {
    config.routes.get(name).with_context(|| {
        format!(
            "there is no route `{name}` in {}; its routes are: {}",
            config.source.display(),
            config.routes.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// True when `subject` matches the NATS subject pattern `pattern` (`*` one token, a final
/// `>` one or more tokens).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The ordered lane of a raw subject: messages of one subject always take the same lane.
pub fn lane(subject: &str, lanes: usize) -> usize {
    (fnv1a(subject) % lanes.max(1) as u64) as usize
}

/// FNV-1a: a hash stable across runs, hosts and platforms.
fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(subject_matches(
            "raw.mes.*.shift-report",
            "raw.mes.plant1.shift-report"
        ));
        assert!(subject_matches("raw.>", "raw.mes.plant1.shift-report"));
        assert!(!subject_matches("raw.>", "raw"));
        assert!(!subject_matches("raw.mes.*", "raw.mes.plant1.x"));
        assert!(subject_matches("raw.mes", "raw.mes"));
        assert!(!subject_matches("raw.mes", "raw.mes.x"));
    }

    #[test]
    fn the_breaker_cools_a_route_down_after_breaches_and_resets_on_success() {
        let breaker = Breaker::default();
        assert_eq!(breaker.remaining(), None);
        breaker.record(true);
        let first = breaker.remaining().unwrap_or_default();
        assert!(
            first > Duration::from_millis(50) && first <= Breaker::FIRST,
            "{first:?}"
        );
        for _ in 0..10 {
            breaker.record(true);
        }
        let longest = breaker.remaining().unwrap_or_default();
        assert!(
            longest > Duration::from_secs(4) && longest <= Breaker::LONGEST,
            "{longest:?}"
        );
        breaker.record(false);
        assert_eq!(breaker.remaining(), None);
    }

    #[test]
    fn lanes_are_stable_and_spread() {
        assert_eq!(lane("raw.a.b.c", 16), lane("raw.a.b.c", 16));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane(&format!("raw.s.{i}.x"), 16)).collect();
        assert!(used.len() > 8, "{used:?}");
    }
}
