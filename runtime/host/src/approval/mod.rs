//! Governed route changes: the one way the admin API and the CLI change which version a route
//! serves. A change is applied at once, or — on a route listed in `approval.routes` — stored
//! as a [`Proposal`] that takes effect only when another identity approves it before it
//! expires. A rollback is always immediate (the emergency path). Every step is recorded in the
//! [audit trail](crate::audit). docs/GOVERNANCE.md is the operator's view.

pub mod proposal;

use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream;
use serde::{Deserialize, Serialize};

pub use self::proposal::{Proposal, ProposalError, ProposalState, Proposals};
use crate::audit::{Action, Actor, AuditTrail, Change, Target};
use crate::registry::AdmissionBounds;
use crate::registry::rollout::{self, Admitted, Switched};
use crate::registry::store::{Binding, CandidateMode, Registry};
use millrace_core::config::{Config, PluginSource};
use millrace_core::sandbox::Sandbox;

/// A change of which version a route serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum RouteChange {
    /// Make `version` the active version, or with `mode` the candidate.
    SetVersion {
        /// The deployed version, `name@version`.
        version: String,
        /// Canary or shadow; absent: the active version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<CandidateMode>,
    },
    /// Make the candidate the active version.
    Promote,
    /// Drop the candidate, else go back to the version before the active one.
    Rollback,
}

impl RouteChange {
    /// The audited action of the change.
    pub fn action(&self) -> Action {
        match self {
            RouteChange::SetVersion { mode: None, .. } => Action::SetVersion,
            RouteChange::SetVersion {
                mode: Some(CandidateMode::Canary { .. }),
                ..
            } => Action::Canary,
            RouteChange::SetVersion {
                mode: Some(CandidateMode::Shadow),
                ..
            } => Action::Shadow,
            RouteChange::Promote => Action::Promote,
            RouteChange::Rollback => Action::Rollback,
        }
    }

    /// The change in words, e.g. `canary misbehave@2.0.0 on 10% of route line`.
    pub fn describe(&self, route: &str) -> String {
        match self {
            RouteChange::SetVersion { version, mode } => match mode {
                None => format!("set route {route} to {version}"),
                Some(CandidateMode::Canary { percent }) => {
                    format!("canary {version} on {percent}% of route {route}")
                }
                Some(CandidateMode::Shadow) => format!("shadow {version} beside route {route}"),
            },
            RouteChange::Promote => format!("promote the candidate of route {route}"),
            RouteChange::Rollback => format!("roll route {route} back"),
        }
    }

    /// True when the change waits for approval on a route that needs it. A rollback never
    /// does.
    fn needs_approval(&self) -> bool {
        !matches!(self, RouteChange::Rollback)
    }
}

/// What became of a requested change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// It took effect.
    Applied(Applied),
    /// It waits for another identity's approval.
    Proposed(Proposal),
}

/// A change that took effect.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The route.
    pub route: String,
    /// The version admitted for it, for a set-version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted: Option<Admitted>,
    /// The binding before and after.
    #[serde(flatten)]
    pub switched: Switched,
}

/// The route changes of one host or CLI run: the registry they change, the sandbox that admits
/// versions, the audit trail and the proposals.
#[derive(Clone)]
pub struct RouteChanges {
    config: Arc<Config>,
    registry: Registry,
    sandbox: Sandbox,
    audit: AuditTrail,
    js: jetstream::Context,
    proposals: Arc<tokio::sync::OnceCell<Proposals>>,
}

impl RouteChanges {
    /// Changes of the routes of `config` in `registry`, admitted in `sandbox`, recorded in the
    /// audit trail reached through `js`.
    pub fn new(
        config: Arc<Config>,
        registry: Registry,
        sandbox: Sandbox,
        js: jetstream::Context,
    ) -> Self {
        let audit = AuditTrail::new(js.clone(), &config);
        Self {
            config,
            registry,
            sandbox,
            audit,
            js,
            proposals: Arc::default(),
        }
    }

    /// The audit trail the changes are recorded in.
    pub fn audit(&self) -> &AuditTrail {
        &self.audit
    }

    /// The proposals bucket, opened on first use.
    pub async fn proposals(&self) -> anyhow::Result<&Proposals> {
        self.proposals
            .get_or_try_init(|| Proposals::open(&self.js, &self.config))
            .await
    }

    /// Applies `change` to `route` for `actor`, or proposes it when the route needs approval.
    /// A version to set is admitted either way, so a proposal never names a version that
    /// would be refused.
    pub async fn request(
        &self,
        actor: &Actor,
        route: &str,
        change: RouteChange,
        bounds: AdmissionBounds,
    ) -> anyhow::Result<Outcome> {
        rollout::check_route(&self.config, route)?;
        if !(change.needs_approval() && self.config.approval.required_for(route)) {
            let note =
                if change == RouteChange::Rollback && self.config.approval.required_for(route) {
                    " (immediate: a rollback needs no approval)"
                } else {
                    ""
                };
            let applied = self
                .apply(route, &change, &rollout::unguarded, bounds)
                .await?;
            let entry = Change::new(
                change.action(),
                Target::Route(route.to_owned()),
                format!("{}{note}", change.describe(route)),
            )
            .before(&self.served(route, applied.switched.before.as_ref()))
            .after(&applied.switched.after);
            self.audit
                .record(actor, entry)
                .await
                .with_context(|| applied_but_unrecorded(&applied))?;
            return Ok(Outcome::Applied(applied));
        }
        let binding_then = self.registry.binding(route).await?;
        // A proposal that could not be applied to the binding it is proposed against is
        // refused now, not when it is approved.
        match &change {
            RouteChange::SetVersion { version, mode } => {
                let serving =
                    rollout::effective_binding(&self.config, route, binding_then.as_ref());
                rollout::check_candidate(route, serving.as_ref(), version, *mode)?;
            }
            RouteChange::Promote => {
                if binding_then
                    .as_ref()
                    .and_then(|b| b.candidate.as_ref())
                    .is_none()
                {
                    anyhow::bail!("{}", rollout::no_candidate(route));
                }
            }
            RouteChange::Rollback => {}
        }
        if let RouteChange::SetVersion { version, .. } = &change {
            rollout::admit_version_within(
                &self.config,
                &self.registry,
                &self.sandbox,
                version,
                bounds,
            )
            .await?;
        }
        let proposal = self
            .proposals()
            .await?
            .create(
                route,
                change.clone(),
                &actor.who,
                actor.via,
                binding_then.clone(),
            )
            .await?;
        let entry = Change::new(
            Action::Propose,
            Target::Route(route.to_owned()),
            format!(
                "proposes to {} ({}, expires {})",
                change.describe(route),
                proposal.id,
                proposal.expires_at
            ),
        )
        .before(&self.served(route, binding_then.as_ref()))
        .after(&proposal)
        .proposal(&proposal.id);
        self.audit.record(actor, entry).await.with_context(|| {
            format!(
                "proposal {} is stored, but the audit trail could not record it",
                proposal.id
            )
        })?;
        Ok(Outcome::Proposed(proposal))
    }

    /// Approves the proposal `id` as `actor` (who must not be its proposer) and applies it.
    pub async fn approve(
        &self,
        actor: &Actor,
        id: &str,
        bounds: AdmissionBounds,
    ) -> anyhow::Result<(Proposal, Applied)> {
        let proposals = self.proposals().await?;
        let proposal = proposals
            .decide(id, &actor.who, ProposalState::Approved, None)
            .await?;
        // Applied only to the binding it was reviewed against: checked on the binding the
        // change replaces, in the same compare-and-set as its write, so of two proposals
        // approved at once against one binding exactly one is applied.
        let reviewed = |now: Option<&Binding>| unchanged_since(&proposal, now);
        let applied = self
            .apply(&proposal.route, &proposal.change, &reviewed, bounds)
            .await;
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) => {
                let reason = format!("{e:#}");
                proposals.failed(id, &reason).await?;
                // The decision is on the trail too, with what stopped it and no change made.
                let entry = Change::new(
                    Action::Approve,
                    Target::Route(proposal.route.clone()),
                    format!(
                        "approves {id} by {}: {}; NOT APPLIED, the proposal is marked failed: {reason}",
                        proposal.proposed_by,
                        proposal.change.describe(&proposal.route)
                    ),
                )
                .proposal(id);
                if let Err(unrecorded) = self.audit.record(actor, entry).await {
                    tracing::warn!(
                        "the failed approval of {id} is not on the audit trail: {unrecorded:#}"
                    );
                }
                return Err(e.context(format!(
                    "proposal {id} was approved but could not be applied; it is marked failed"
                )));
            }
        };
        let entry = Change::new(
            Action::Approve,
            Target::Route(proposal.route.clone()),
            format!(
                "approves {id} by {}: {}",
                proposal.proposed_by,
                proposal.change.describe(&proposal.route)
            ),
        )
        .before(&self.served(&proposal.route, applied.switched.before.as_ref()))
        .after(&applied.switched.after)
        .proposal(id);
        self.audit
            .record(actor, entry)
            .await
            .with_context(|| applied_but_unrecorded(&applied))?;
        Ok((proposal, applied))
    }

    /// Rejects the proposal `id` as `actor` (its proposer may withdraw it this way).
    pub async fn reject(
        &self,
        actor: &Actor,
        id: &str,
        reason: Option<String>,
    ) -> anyhow::Result<Proposal> {
        let proposal = self
            .proposals()
            .await?
            .decide(id, &actor.who, ProposalState::Rejected, reason.clone())
            .await?;
        let entry = Change::new(
            Action::Reject,
            Target::Route(proposal.route.clone()),
            format!(
                "rejects {id} by {}: {}{}",
                proposal.proposed_by,
                proposal.change.describe(&proposal.route),
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        )
        .proposal(id);
        self.audit.record(actor, entry).await.with_context(|| {
            format!("proposal {id} is rejected, but the audit trail could not record it")
        })?;
        Ok(proposal)
    }

    /// What `route` served before a change whose binding was `before`, for the audit trail:
    /// that binding, or, while the route had none, the plugin its config names (a deployed
    /// version, or a folder or component with the version its manifest gives).
    fn served(&self, route: &str, before: Option<&Binding>) -> serde_json::Value {
        if let Some(binding) = before {
            return serde_json::to_value(binding).unwrap_or_default();
        }
        match self.config.plugin_of(route) {
            Some(PluginSource::Registry(id)) => {
                serde_json::json!({ "active": id, "from": "config" })
            }
            Some(PluginSource::Path(path)) => {
                let path = self.config.resolve(&path);
                let active = crate::registry::Manifest::load(&path)
                    .map(|m| format!("{}@{}", m.name, m.version))
                    .unwrap_or_else(|_| path.display().to_string());
                serde_json::json!({
                    "active": active,
                    "from": "config",
                    "plugin": path.display().to_string(),
                })
            }
            None => serde_json::Value::Null,
        }
    }

    /// Applies `change` to `route` when `guard` accepts the binding it replaces.
    async fn apply(
        &self,
        route: &str,
        change: &RouteChange,
        guard: rollout::Guard<'_>,
        bounds: AdmissionBounds,
    ) -> anyhow::Result<Applied> {
        let (admitted, switched) = match change {
            RouteChange::SetVersion { version, mode } => {
                let (admitted, switched) = rollout::set_version(
                    &self.config,
                    &self.registry,
                    &self.sandbox,
                    route,
                    version,
                    *mode,
                    bounds,
                    guard,
                )
                .await?;
                (Some(admitted), switched)
            }
            RouteChange::Promote => (
                None,
                rollout::promote(&self.config, &self.registry, route, guard).await?,
            ),
            RouteChange::Rollback => (
                None,
                rollout::rollback(&self.config, &self.registry, route, guard).await?,
            ),
        };
        Ok(Applied {
            route: route.to_owned(),
            admitted,
            switched,
        })
    }
}

/// Refuses to apply `proposal` to a route whose binding is `now` when it changed since the
/// proposal: approved, a set-version proposed against 1.0.0 silently undid another approved
/// change or an emergency rollback made after it. The approver reviewed the change against what
/// the route served then (its active version and candidate), so it is applied only against that.
/// A promotion promotes only the candidate its proposer saw ("none" included: a promotion
/// proposed while the route had no candidate never promotes one set later).
fn unchanged_since(proposal: &Proposal, now: Option<&Binding>) -> anyhow::Result<()> {
    let route = &proposal.route;
    let then = proposal.binding_then.as_ref();
    if matches!(proposal.change, RouteChange::Promote) {
        let candidate = |b: Option<&Binding>| {
            b.and_then(|b| b.candidate.as_ref())
                .map(|c| c.version.clone())
        };
        let (seen, current) = (candidate(then), candidate(now));
        if seen == current {
            return Ok(());
        }
        let current = current.unwrap_or_else(|| "none".to_owned());
        match seen {
            Some(seen) => anyhow::bail!(
                "route `{route}` changed since the proposal: its candidate is {current} now, not \
                 {seen} as when the promotion was proposed: propose the promotion of {current} \
                 again"
            ),
            None => anyhow::bail!(
                "route `{route}` changed since the proposal: it had no candidate when the \
                 promotion was proposed and its candidate is {current} now: propose the \
                 promotion of {current} again"
            ),
        }
    }
    let served =
        |binding: Option<&Binding>| binding.map(|b| (b.active.clone(), b.candidate.clone()));
    if served(now) == served(then) {
        return Ok(());
    }
    let describe = |binding: Option<&Binding>| match binding {
        None => "its configured plugin".to_owned(),
        Some(b) => match &b.candidate {
            Some(c) => match c.mode {
                CandidateMode::Canary { percent } => {
                    format!("{} with {} as a {percent}% canary", b.active, c.version)
                }
                CandidateMode::Shadow => format!("{} with {} in shadow", b.active, c.version),
            },
            None => b.active.clone(),
        },
    };
    anyhow::bail!(
        "route `{route}` changed since the proposal: it served {} when proposed and serves {} \
         now; propose the change again against what it serves",
        describe(then),
        describe(now)
    )
}

/// The error context of a change that took effect but is missing from the trail.
fn applied_but_unrecorded(applied: &Applied) -> String {
    format!(
        "route {} now serves {}, but the audit trail could not record the change",
        applied.route, applied.switched.after.active
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_stored_with_its_kind() {
        let canary = RouteChange::SetVersion {
            version: "m@2.0.0".into(),
            mode: Some(CandidateMode::Canary { percent: 10 }),
        };
        let json = serde_json::to_value(&canary).unwrap();
        assert_eq!(json["change"], "set-version");
        assert_eq!(serde_json::from_value::<RouteChange>(json).unwrap(), canary);
        assert_eq!(canary.action(), Action::Canary);
        assert_eq!(
            serde_json::to_value(RouteChange::Promote).unwrap(),
            serde_json::json!({"change": "promote"})
        );
        assert!(!RouteChange::Rollback.needs_approval());
    }
}
