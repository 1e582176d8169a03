//! The router: which route (and so which plugin version) a raw message goes to, and which
//! ordered lane it takes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, RetryPolicy, RouteConfig};
use crate::registry::LocalPlugin;
use crate::sandbox::{PluginComponent, RouteContext, Sandbox};

/// One configured route with its loaded plugin version.
#[derive(Debug)]
pub struct Route {
    /// The route name.
    pub name: Arc<str>,
    /// The raw subjects it consumes.
    pub subjects: Vec<String>,
    /// The active plugin version.
    pub plugin: Arc<PluginComponent>,
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
}

/// All routes of a host.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Builds (when needed) and loads the plugin of every route; a plugin used by several
    /// routes is loaded once.
    pub fn load(config: &Config, sandbox: &Sandbox) -> anyhow::Result<Self> {
        let mut loaded: HashMap<PathBuf, Arc<PluginComponent>> = HashMap::new();
        let mut routes = Vec::new();
        for name in config.routes.keys() {
            let path = config.resolve(&config.routes[name].plugin);
            let plugin = match loaded.get(&path) {
                Some(plugin) => plugin.clone(),
                None => {
                    let plugin = Arc::new(load_plugin(config, name, &path, sandbox)?);
                    loaded.insert(path, plugin.clone());
                    plugin
                }
            };
            routes.push(Arc::new(Route::new(config, name, plugin)?));
        }
        Ok(Self { routes })
    }

    /// Every route.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }
}

impl Route {
    /// The route `name` of `config`, served by `plugin`.
    pub fn new(config: &Config, name: &str, plugin: Arc<PluginComponent>) -> anyhow::Result<Self> {
        let route = route_config(config, name)?;
        let name: Arc<str> = name.into();
        Ok(Route {
            name: name.clone(),
            subjects: route.subjects.clone(),
            plugin,
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
        })
    }

    /// The route `name` of `config` with its configured plugin, or with `plugin_override` (a
    /// plugin folder or component) when given.
    pub fn load(
        config: &Config,
        name: &str,
        plugin_override: Option<&std::path::Path>,
        sandbox: &Sandbox,
    ) -> anyhow::Result<Self> {
        let path = match plugin_override {
            Some(path) => path.to_owned(),
            None => config.resolve(&route_config(config, name)?.plugin),
        };
        let plugin = load_plugin(config, name, &path, sandbox)?;
        Route::new(config, name, Arc::new(plugin))
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

fn load_plugin(
    config: &Config,
    route: &str,
    path: &std::path::Path,
    sandbox: &Sandbox,
) -> anyhow::Result<PluginComponent> {
    LocalPlugin::locate(path)
        .and_then(|p| p.load(sandbox))
        .with_context(|| {
            format!(
                "route `{route}` in {}: cannot load plugin {}",
                config.source.display(),
                path.display()
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
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in subject.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % lanes.max(1) as u64) as usize
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
    fn lanes_are_stable_and_spread() {
        assert_eq!(lane("raw.a.b.c", 16), lane("raw.a.b.c", 16));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane(&format!("raw.s.{i}.x"), 16)).collect();
        assert!(used.len() > 8, "{used:?}");
    }
}
