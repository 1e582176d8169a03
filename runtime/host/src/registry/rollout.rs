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

/// What a change must find a route's binding to be (`None`: the route never switched), checked
/// on the binding the change replaces, in the same compare-and-set as its write: an approved
/// proposal is applied only to the binding it was reviewed against.
pub type Guard<'a> = &'a (dyn Fn(Option<&Binding>) -> anyhow::Result<()> + Send + Sync);

/// A guard that accepts any binding: a change applied at once, to the binding it reads.
pub fn unguarded(_: Option<&Binding>) -> anyhow::Result<()> {
    Ok(())
}

/// Changes `route`'s binding with `change` and says what it replaced: the binding `change` saw
/// on the attempt that was written (a compare-and-set on its revision).
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

/// Refuses making `version` the candidate (`mode`), or without one the active version, of a
/// route that serves `current` (its binding, or its configured plugin as one): the active
/// version is not its own candidate, and another plugin becomes active only by promotion.
pub fn check_candidate(
    route: &str,
    current: Option<&Binding>,
    version: &str,
    mode: Option<CandidateMode>,
) -> anyhow::Result<()> {
    if let (Some(mode), Some(current)) = (mode, current)
        && current.active == version
    {
        let what = match mode {
            CandidateMode::Canary { .. } => "canary",
            CandidateMode::Shadow => "shadow",
        };
        bail!(
            "{version} is route {route}'s active version: it cannot be its {what} too (a \
             candidate is compared with, or takes a share from, another version); make another \
             version the candidate"
        );
    }
    // Another plugin than the one serving (a mistyped name would send every message of the
    // route through the wrong mapping) becomes active only through a candidate: shadowed or
    // canaried first, compared, then promoted.
    let name = |id: &str| id.split_once('@').map_or(id, |(name, _)| name).to_owned();
    if let (None, Some(current)) = (mode, current)
        && name(&current.active) != name(version)
    {
        bail!(
            "route {route} serves {}, and {version} is another plugin: a route moves to another \
             plugin through a candidate. Shadow or canary it first (`millrace route set-version \
             {route} {version} --shadow` or `--canary <percent>`), compare (`millrace route diff \
             {route}`), then `millrace route promote {route}`",
            current.active
        );
    }
    Ok(())
}

/// The binding a route serves now: its binding, else its configured plugin (when that names a
/// deployed version) as a binding.
pub fn effective_binding(
    config: &Config,
    route: &str,
    binding: Option<&Binding>,
) -> Option<Binding> {
    binding
        .cloned()
        .or_else(|| configured_version(config, route).map(|id| Binding::activate(None, &id)))
}

/// Makes `version` the route's active version, or with `mode` its candidate, after
/// admitting it within `bounds`. A refused version changes nothing; nor does a binding that
/// `guard` refuses.
#[allow(clippy::too_many_arguments)]
pub async fn set_version(
    config: &Config,
    registry: &Registry,
    sandbox: &Sandbox,
    route: &str,
    version: &str,
    mode: Option<CandidateMode>,
    bounds: AdmissionBounds,
    guard: Guard<'_>,
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
    let switched = switch(registry, route, |current| {
        guard(current)?;
        let current = effective_binding(config, route, current);
        check_candidate(route, current.as_ref(), version, mode)?;
        Ok(match mode {
            None => Binding::activate(current.as_ref(), version),
            Some(mode) => {
                let mut next = current.with_context(|| {
                    format!(
                        "a candidate needs a deployed active version to fall back to, and route \
                         {route} serves its configured plugin: deploy that (`millrace plugin \
                         deploy <folder>`) and make it the active one (`millrace route \
                         set-version {route} <name@version>`) first"
                    )
                })?;
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
/// else goes back to the version it served before its active one, which must still be deployed
/// (its record and component, the component matching its digest, signed when signatures are
/// required), as `set_version` requires: a host started later must be able to load it. The
/// write is a compare-and-set on the binding the rollback was worked out from.
pub async fn rollback(
    config: &Config,
    registry: &Registry,
    route: &str,
    guard: Guard<'_>,
) -> anyhow::Result<Switched> {
    check_route(config, route)?;
    // The binding the target was checked against: the write is refused on any other one, and
    // the rollback worked out again from that.
    #[derive(Debug)]
    struct Moved;
    impl std::fmt::Display for Moved {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the binding changed while the rollback was checked")
        }
    }
    impl std::error::Error for Moved {}
    for _ in 0..8 {
        let read = registry.binding(route).await?;
        if let Some(target) = read
            .as_ref()
            .filter(|b| b.candidate.is_none())
            .and_then(|b| b.history.last())
        {
            let (record, _) = registry.fetch(target).await.with_context(|| {
                format!(
                    "route {route} cannot be rolled back to {target}: set another deployed \
                     version with `route set-version`"
                )
            })?;
            super::signing::check(&record, &config.registry)
                .with_context(|| format!("route {route} cannot be rolled back to {target}"))?;
        }
        let switched = switch(registry, route, |current| {
            guard(current)?;
            if current != read.as_ref() {
                return Err(Moved.into());
            }
            back_one(route, current)
        })
        .await;
        match switched {
            Err(e) if e.is::<Moved>() => continue,
            other => return other,
        }
    }
    bail!("the binding of route {route} kept changing under the rollback: try again")
}

/// The binding one step back from `current`: without its candidate, else its version before.
fn back_one(route: &str, current: Option<&Binding>) -> anyhow::Result<Binding> {
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
    let previous = history.pop().with_context(|| {
        format!(
            "route {route} has no deployed version before {}: bind another deployed one with \
             `millrace route set-version {route} <name@version>` (a plugin the config names by \
             its folder is no deployed version; deploy it first)",
            current.active
        )
    })?;
    let mut next = Binding::activate(None, &previous);
    next.history = history;
    Ok(next)
}

/// Makes the route's candidate its active version, when `guard` accepts the binding (an
/// approved proposal promotes only the candidate its proposer saw).
pub async fn promote(
    config: &Config,
    registry: &Registry,
    route: &str,
    guard: Guard<'_>,
) -> anyhow::Result<Switched> {
    check_route(config, route)?;
    switch(registry, route, |current| {
        guard(current)?;
        let candidate = current
            .and_then(|b| b.candidate.as_ref())
            .with_context(|| no_candidate(route))?;
        Ok(Binding::activate(current, &candidate.version))
    })
    .await
}

/// Why a route without a candidate cannot be promoted.
pub fn no_candidate(route: &str) -> String {
    format!(
        "route {route} has no candidate to promote: make a version its canary or shadow first \
         (`route set-version {route} <name@version> --canary <percent>` or `--shadow`)"
    )
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_route_moves_to_another_plugin_only_through_a_candidate() {
        let serving = Binding::activate(None, "x12-856@1.0.0");
        let check = |version: &str, mode| check_candidate("x12", Some(&serving), version, mode);
        let refused = check("edifact-desadv@1.0.0", None).unwrap_err().to_string();
        assert!(
            refused.contains(
                "route x12 serves x12-856@1.0.0, and edifact-desadv@1.0.0 is another plugin"
            ) && refused.contains("--shadow")
                && refused.contains("millrace route promote x12"),
            "{refused}"
        );
        assert!(check("edifact-desadv@1.0.0", Some(CandidateMode::Shadow)).is_ok());
        assert!(
            check(
                "edifact-desadv@1.0.0",
                Some(CandidateMode::Canary { percent: 5 })
            )
            .is_ok()
        );
        assert!(
            check("x12-856@1.1.0", None).is_ok(),
            "a version of its own plugin"
        );
        assert!(
            check_candidate("x12", None, "edifact-desadv@1.0.0", None).is_ok(),
            "a route serving its configured folder has no deployed name to keep"
        );
    }
}
