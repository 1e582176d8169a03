//! Loading the plugin versions routes serve, from the registry or from disk: each version
//! fetched (digest and signature checked), admitted by its fixtures and compiled once, off the
//! async reactor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::store::{Binding, Registry, Role};
use super::{LocalPlugin, admit};
use crate::routes::versions::ServedVersions;
use millrace_core::config::{Config, PluginSource};
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::{PluginComponent, Sandbox};

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

    /// The configuration routes are built from.
    pub fn config(&self) -> &Config {
        &self.config
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
        let ownership = OwnershipPolicy::new(self.config.governance.ownership.clone());
        let plugin =
            tokio::task::spawn_blocking(move || admit(&sandbox, &record, &component, &ownership))
                .await
                .context("loading a plugin version was interrupted")??;
        loaded(&plugin);
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
        loaded(&plugin);
        let plugin = Arc::new(plugin);
        self.remember(key, plugin.clone());
        Ok(plugin)
    }

    /// The versions a route serves: its binding when it has one, else its configured plugin.
    pub async fn versions(
        &self,
        route: &str,
        binding: Option<&Binding>,
    ) -> anyhow::Result<ServedVersions> {
        let Some(binding) = binding else {
            let source = self.config.plugin_of(route).with_context(|| {
                format!(
                    "there is no route `{route}` in {}; its routes are: {}",
                    self.config.source.display(),
                    self.config.route_names().join(", ")
                )
            })?;
            let active = match source {
                PluginSource::Registry(id) => self.version(&id).await?,
                PluginSource::Path(path) => self.path(route, &self.config.resolve(&path)).await?,
            };
            return Ok(ServedVersions {
                active,
                candidate: None,
            });
        };
        if let Some((configured, role)) = binding.configured(self.config.plugin_of(route)) {
            let what = match role {
                Role::Unused => "is not used while it has one",
                _ => "is its candidate, not its active version",
            };
            tracing::info!(
                route,
                serving = binding.active.as_str(),
                "the route serves its binding (`millrace route show`); the config's plugin \
                 {configured} {what}"
            );
        }
        // Which route and binding, and the way back: a host that cannot load them does not
        // start, and the registry's bare "not deployed" named neither.
        let bound = |version: &str, role: &str| {
            format!(
                "route `{route}` is bound to {version} as its {role} version (`millrace route \
                 show {route}`), and it cannot be loaded; deploy it again, or bind a deployed \
                 version (`millrace route set-version {route} <name@version>`, or `route \
                 rollback {route}` to drop a candidate)"
            )
        };
        let active = self
            .version(&binding.active)
            .await
            .with_context(|| bound(&binding.active, "active"))?;
        let candidate = match &binding.candidate {
            Some(candidate) => Some((
                self.version(&candidate.version)
                    .await
                    .with_context(|| bound(&candidate.version, "candidate"))?,
                candidate.mode,
            )),
            None => None,
        };
        Ok(ServedVersions { active, candidate })
    }
}

/// Says how a plugin's machine code came to be (compiled here, by a child process, or loaded
/// precompiled): the first is what makes a host's memory grow by the compiler's.
fn loaded(plugin: &PluginComponent) {
    tracing::info!(
        plugin = %plugin.id(),
        digest = %plugin.digest,
        compilation = plugin.compilation.as_str(),
        "plugin loaded"
    );
}
