//! The router: which route (and so which plugin version) a raw message goes to, and which
//! ordered lane it takes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, RetryPolicy};
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
        for (name, route) in &config.routes {
            let path = config.resolve(&route.plugin);
            let plugin = match loaded.get(&path) {
                Some(plugin) => plugin.clone(),
                None => {
                    let plugin = LocalPlugin::locate(&path)
                        .and_then(|p| p.load(sandbox))
                        .with_context(|| {
                            format!(
                                "route `{name}` in {}: cannot load plugin {}",
                                config.source.display(),
                                path.display()
                            )
                        })?;
                    let plugin = Arc::new(plugin);
                    loaded.insert(path, plugin.clone());
                    plugin
                }
            };
            let name: Arc<str> = name.as_str().into();
            routes.push(Arc::new(Route {
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
            }));
        }
        Ok(Self { routes })
    }

    /// Every route.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }
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
