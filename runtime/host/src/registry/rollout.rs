//! Which version a route serves on every host: activate, canary, shadow, promote, roll back.
//! The CLI (`millrace route ...`) and the admin API both change bindings through here.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Serialize;

use super::store::{Binding, Candidate, CandidateMode, Registry};
use super::{AdmissionBounds, admit_within};
use millrace_core::config::{Config, PluginSource};
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::Sandbox;

/// A version that passed admission.
#[derive(Debug, Clone, Serialize)]
pub struct Admitted {
    /// `name@version`.
    pub id: String,
    /// The WIT package it was built against.
    pub wit: String,
    /// sha256 of the component.
    pub digest: String,
    /// The world it exports: `mapper` serves inbound routes, `poster` outbound ones.
    pub world: millrace_core::sandbox::World,
}

/// A route's binding before and after a change.
#[derive(Debug, Clone, Serialize)]
pub struct Switched {
    /// The binding the change replaced; `None` while the route served its configured plugin.
    pub before: Option<Binding>,
    /// The binding now.
    pub after: Binding,
}

/// Changes `route`'s binding with `change` and says what it replaced: the binding `change` saw
/// on the attempt that was written.
async fn switch<F>(registry: &Registry, route: &str, change: F) -> anyhow::Result<Switched>
where
    F: Fn(Option<&Binding>) -> anyhow::Result<Binding>,
{
    let seen = std::sync::Mutex::new(None);
    let after = registry
        .update_binding(route, |current| {
            if let Ok(mut seen) = seen.lock() {
                *seen = current.cloned();
            }
            change(current)
        })
        .await?;
    let before = seen.into_inner().unwrap_or_default();
    Ok(Switched { before, after })
}

/// Fails unless `config` has the route `route`, naming the routes it has.
pub fn check_route(config: &Config, route: &str) -> anyhow::Result<()> {
    if config.plugin_of(route).is_none() {
        bail!(
            "there is no route `{route}` in {}; its routes are: {}",
            config.source.display(),
            config.route_names().join(", ")
        );
    }
    Ok(())
}

/// Contract-gated admission in `sandbox`: the same checks every host runs before serving.
pub async fn admit_version(
    config: &Config,
    registry: &Registry,
    sandbox: &Sandbox,
    version: &str,
) -> anyhow::Result<Admitted> {
    admit_version_within(
        config,
        registry,
        sandbox,
        version,
        AdmissionBounds::default(),
    )
    .await
}

/// [`admit_version`] within `bounds`.
pub async fn admit_version_within(
    config: &Config,
    registry: &Registry,
    sandbox: &Sandbox,
    version: &str,
    bounds: AdmissionBounds,
) -> anyhow::Result<Admitted> {
    let (record, component) = registry.fetch(version).await?;
    super::signing::check(&record, &config.registry)?;
    let sandbox = sandbox.clone();
    let ownership = OwnershipPolicy::new(config.governance.ownership.clone());
    let plugin = tokio::task::spawn_blocking(move || {
        admit_within(&sandbox, &record, &component, &ownership, &bounds)
    })
    .await??;
    Ok(Admitted {
        id: plugin.id(),
        wit: plugin.wit.to_owned(),
        digest: plugin.digest.clone(),
        world: plugin.world,
    })
}

/// Makes `version` the route's active version, or with `mode` its candidate, after
/// admitting it within `bounds`. A refused version changes nothing.
pub async fn set_version(
    config: &Config,
    registry: &Registry,
    sandbox: &Sandbox,
    route: &str,
    version: &str,
    mode: Option<CandidateMode>,
    bounds: AdmissionBounds,
) -> anyhow::Result<(Admitted, Switched)> {
    check_route(config, route)?;
    let route_limits = (config.routes.get(route).map(|r| r.calls))
        .or_else(|| config.outbound.get(route).map(|r| r.calls))
        .map_or(bounds.route_limits, |calls| calls.limits);
    let bounds = AdmissionBounds {
        route_limits,
        ..bounds
    };
    let admitted = admit_version_within(config, registry, sandbox, version, bounds).await?;
    let wanted = if config.outbound.contains_key(route) {
        millrace_core::sandbox::World::Poster
    } else {
        millrace_core::sandbox::World::Mapper
    };
    if admitted.world != wanted {
        bail!(
            "{version} exports the world {} but route `{route}` serves {} plugins",
            admitted.world.name(),
            wanted.name()
        );
    }
    let configured = configured_version(config, route);
    let switched = switch(registry, route, |current| {
        let current = current
            .cloned()
            .or_else(|| configured.as_deref().map(|id| Binding::activate(None, id)));
        Ok(match mode {
            None => Binding::activate(current.as_ref(), version),
            Some(mode) => {
                let mut next = current.context(
                    "a candidate needs an active version: set one with `route set-version` first",
                )?;
                next.candidate = Some(Candidate {
                    version: version.to_owned(),
                    mode,
                });
                next.touched()
            }
        })
    })
    .await?;
    Ok((admitted, switched))
}

/// Undoes the route's last change: drops its candidate (canary or shadow) when it has one,
/// else goes back to the version it served before its active one.
pub async fn rollback(
    config: &Config,
    registry: &Registry,
    route: &str,
) -> anyhow::Result<Switched> {
    check_route(config, route)?;
    switch(registry, route, |current| {
        let current = current.with_context(|| {
            format!("route {route} has never switched versions: there is nothing to roll back to")
        })?;
        // A candidate is the last change: a bad canary or shadow goes, the active version stays.
        if current.candidate.is_some() {
            let mut next = current.clone();
            next.candidate = None;
            return Ok(next.touched());
        }
        let mut history = current.history.clone();
        let previous = history
            .pop()
            .with_context(|| format!("route {route} has no version before {}", current.active))?;
        let mut next = Binding::activate(None, &previous);
        next.history = history;
        Ok(next)
    })
    .await
}

/// Makes the route's candidate its active version; with `reviewed`, only when the candidate is
/// that version (an approved proposal promotes what its proposer saw).
pub async fn promote(
    config: &Config,
    registry: &Registry,
    route: &str,
    reviewed: Option<&str>,
) -> anyhow::Result<Switched> {
    check_route(config, route)?;
    switch(registry, route, |current| {
        let current = current.context("the route has no candidate to promote")?;
        let candidate = current
            .candidate
            .as_ref()
            .with_context(|| format!("route {route} has no candidate to promote"))?;
        if let Some(reviewed) = reviewed {
            anyhow::ensure!(
                candidate.version == reviewed,
                "route {route}'s candidate is {} now, not {reviewed} as when the promotion was \
                 proposed: propose the promotion of {} again",
                candidate.version,
                candidate.version
            );
        }
        Ok(Binding::activate(Some(current), &candidate.version))
    })
    .await
}

/// The routes whose binding names version `id`: `<route> (active|candidate|previous)`.
pub fn routes_using(bindings: &BTreeMap<String, Binding>, id: &str) -> Vec<String> {
    bindings
        .iter()
        .filter_map(|(route, b)| {
            if b.active == id {
                Some(format!("{route} (active)"))
            } else if b.candidate.as_ref().is_some_and(|c| c.version == id) {
                Some(format!("{route} (candidate)"))
            } else if b.history.iter().any(|h| h == id) {
                Some(format!("{route} (previous)"))
            } else {
                None
            }
        })
        .collect()
}

/// The configured plugin of a route when it names a deployed version.
fn configured_version(config: &Config, route: &str) -> Option<String> {
    match config.plugin_of(route)? {
        PluginSource::Registry(id) => Some(id),
        PluginSource::Path(_) => None,
    }
}
