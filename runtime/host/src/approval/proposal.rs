//! Proposals: a route change waiting for another identity's approval, kept in a key-value
//! bucket (`approval.bucket`) so every host, the API and the CLI see the same ones.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::RouteChange;
use crate::audit::Via;
use crate::registry::store::Binding;
use millrace_core::config::Config;
use millrace_transport::{self as transport, Replication};

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProposalState {
    /// Waiting for approval.
    Pending,
    /// Approved and applied.
    Approved,
    /// Approved, but applying it failed (see `reason`).
    Failed,
    /// Rejected.
    Rejected,
    /// Not decided before `expires_at`: it can no longer be applied.
    Expired,
}

impl ProposalState {
    /// The state as written, e.g. `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Pending => "pending",
            ProposalState::Approved => "approved",
            ProposalState::Failed => "failed",
            ProposalState::Rejected => "rejected",
            ProposalState::Expired => "expired",
        }
    }
}

/// A proposed route change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Its id, e.g. `p-3f9c2a71d4e0`.
    pub id: String,
    /// The route it changes.
    pub route: String,
    /// The change.
    pub change: RouteChange,
    /// Who proposed it.
    pub proposed_by: String,
    /// How it was proposed.
    pub proposed_via: Via,
    /// When, RFC 3339 UTC.
    pub proposed_at: String,
    /// Until when it may be approved, RFC 3339 UTC.
    pub expires_at: String,
    /// Where it stands (`expired` is worked out when read).
    pub state: ProposalState,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// Why it was rejected, or why applying it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The route's binding when it was proposed, for the reviewer; absent while the route
    /// served its configured plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_then: Option<Binding>,
}

impl Proposal {
    /// The proposal as it stands at `now`: a pending one past `expires_at` is expired.
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        let expired = OffsetDateTime::parse(&self.expires_at, &Rfc3339).is_ok_and(|at| now > at);
        if self.state == ProposalState::Pending && expired {
            self.state = ProposalState::Expired;
        }
        self
    }
}

/// Why a proposal cannot be decided as asked. The kind is what callers branch on (the admin
/// API answers 404, 403, 409 or 410 from it); the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    /// No proposal has this id.
    #[error("there is no proposal {0}: `millrace change list` shows them")]
    NotFound(String),
    /// The proposer tried to approve their own change.
    #[error(
        "{who} proposed {id} and cannot approve it too: another identity (another admin token, or another OS user on the CLI) must approve it"
    )]
    OwnProposal {
        /// The proposal.
        id: String,
        /// Its proposer.
        who: String,
    },
    /// It was already decided.
    #[error("proposal {id} is {} already{by}", .state.as_str())]
    Decided {
        /// The proposal.
        id: String,
        /// Its state.
        state: ProposalState,
        /// ` by <who>`, when someone decided it.
        by: String,
    },
    /// The reason given is longer than [`MAX_REASON`].
    #[error("the reason is {0} bytes; a decision's reason holds at most {MAX_REASON}")]
    ReasonTooLong(usize),
    /// It waited longer than `approval.expires_after`.
    #[error(
        "proposal {id} expired at {expires_at} without approval and can no longer be applied: propose the change again"
    )]
    Expired {
        /// The proposal.
        id: String,
        /// When it expired.
        expires_at: String,
    },
}

/// The longest reason a decision may give, in bytes: it is kept in the proposal and the audit
/// entry (a 1 MB reason was written into both).
pub const MAX_REASON: usize = 4096;

/// The proposals bucket.
#[derive(Clone)]
pub struct Proposals {
    bucket: kv::Store,
    expires_after: Duration,
}

impl Proposals {
    /// Opens (creating when needed, with `streams.replicas`) the bucket of `config`.
    pub async fn open(js: &jetstream::Context, config: &Config) -> anyhow::Result<Self> {
        let bucket = transport::replicated_key_value(
            js,
            &config.approval.bucket,
            Duration::ZERO,
            "millrace: route changes waiting for approval, and how they were decided",
            &Replication::of(&config.streams),
        )
        .await?;
        Ok(Self {
            bucket,
            expires_after: config.approval.expires_after.get(),
        })
    }

    /// Stores a new pending proposal of `change` to `route` by `who`.
    pub async fn create(
        &self,
        route: &str,
        change: RouteChange,
        who: &str,
        via: Via,
        binding_then: Option<Binding>,
    ) -> anyhow::Result<Proposal> {
        let now = OffsetDateTime::now_utc();
        let mut random = [0u8; 6];
        getrandom::fill(&mut random)
            .map_err(|e| anyhow::anyhow!("no randomness for a proposal id: {e}"))?;
        let id = format!(
            "p-{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let proposal = Proposal {
            id: id.clone(),
            route: route.to_owned(),
            change,
            proposed_by: who.to_owned(),
            proposed_via: via,
            proposed_at: rfc3339(now),
            expires_at: rfc3339(now + self.expires_after),
            state: ProposalState::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
            binding_then,
        };
        let json = serde_json::to_vec(&proposal)?;
        self.bucket
            .create(&id, json.into())
            .await
            .with_context(|| format!("cannot store proposal {id}"))?;
        Ok(proposal)
    }

    /// The proposal `id` as it stands now, with its revision.
    async fn read(&self, id: &str) -> anyhow::Result<(Proposal, u64)> {
        let entry = self
            .bucket
            .entry(id)
            .await
            .with_context(|| format!("cannot read proposal {id}"))?
            .filter(|e| e.operation == kv::Operation::Put)
            .ok_or_else(|| ProposalError::NotFound(id.to_owned()))?;
        let proposal: Proposal = serde_json::from_slice(&entry.value)
            .with_context(|| format!("proposal {id} is corrupt"))?;
        Ok((proposal.at(OffsetDateTime::now_utc()), entry.revision))
    }

    /// The proposal `id` as it stands now.
    pub async fn get(&self, id: &str) -> anyhow::Result<Proposal> {
        self.read(id).await.map(|(p, _)| p)
    }

    /// Marks the pending proposal `id` decided (`state`) by `who`, unless `who` may not decide
    /// it or someone else decided it first. Approving one's own proposal is refused;
    /// rejecting it (withdrawing) is not.
    pub async fn decide(
        &self,
        id: &str,
        who: &str,
        state: ProposalState,
        reason: Option<String>,
    ) -> anyhow::Result<Proposal> {
        if let Some(long) = reason.as_ref().filter(|r| r.len() > MAX_REASON) {
            return Err(ProposalError::ReasonTooLong(long.len()).into());
        }
        let (mut proposal, revision) = self.read(id).await?;
        match proposal.state {
            ProposalState::Pending => {}
            ProposalState::Expired => {
                return Err(ProposalError::Expired {
                    id: id.to_owned(),
                    expires_at: proposal.expires_at,
                }
                .into());
            }
            decided => {
                return Err(ProposalError::Decided {
                    id: id.to_owned(),
                    state: decided,
                    by: proposal
                        .decided_by
                        .map(|w| format!(" by {w}"))
                        .unwrap_or_default(),
                }
                .into());
            }
        }
        if state == ProposalState::Approved && proposal.proposed_by == who {
            return Err(ProposalError::OwnProposal {
                id: id.to_owned(),
                who: who.to_owned(),
            }
            .into());
        }
        proposal.state = state;
        proposal.decided_by = Some(who.to_owned());
        proposal.decided_at = Some(rfc3339(OffsetDateTime::now_utc()));
        proposal.reason = reason;
        let json = serde_json::to_vec(&proposal)?;
        // Written only over the revision read: of two deciders at once, one wins.
        match self.bucket.update(id, json.into(), revision).await {
            Ok(_) => Ok(proposal),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // Another decider won: say how it was decided, and by whom.
                let (now, _) = self.read(id).await?;
                Err(ProposalError::Decided {
                    id: id.to_owned(),
                    state: now.state,
                    by: now.decided_by.map_or_else(
                        || " by someone else a moment ago".to_owned(),
                        |w| format!(" by {w}"),
                    ),
                }
                .into())
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("cannot record the decision on proposal {id}"))),
        }
    }

    /// Records that applying the approved proposal `id` failed, and why.
    pub async fn failed(&self, id: &str, reason: &str) -> anyhow::Result<Proposal> {
        let (mut proposal, revision) = self.read(id).await?;
        proposal.state = ProposalState::Failed;
        proposal.reason = Some(reason.to_owned());
        let json = serde_json::to_vec(&proposal)?;
        self.bucket
            .update(id, json.into(), revision)
            .await
            .with_context(|| format!("cannot record that proposal {id} failed"))?;
        Ok(proposal)
    }

    /// Every proposal (of `route`, when given) as it stands now, oldest first.
    pub async fn list(&self, route: Option<&str>) -> anyhow::Result<Vec<Proposal>> {
        let mut ids = Vec::new();
        match self.bucket.keys().await {
            Ok(mut keys) => {
                while let Some(key) = keys.next().await {
                    ids.push(key.context("cannot list the proposals")?);
                }
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot list the proposals")),
        }
        let mut out = Vec::new();
        for id in ids {
            match self.get(&id).await {
                Ok(proposal) if route.is_none_or(|r| r == proposal.route) => out.push(proposal),
                Ok(_) => {}
                Err(e) if e.downcast_ref::<ProposalError>().is_some() => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.proposed_at.cmp(&b.proposed_at));
        Ok(out)
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_proposal_past_its_expiry_reads_as_expired() {
        let proposal = Proposal {
            id: "p-1".into(),
            route: "line".into(),
            change: RouteChange::Promote,
            proposed_by: "alice".into(),
            proposed_via: Via::Api,
            proposed_at: "2026-11-30T00:00:00Z".into(),
            expires_at: "2026-11-30T01:00:00Z".into(),
            state: ProposalState::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
            binding_then: None,
        };
        let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
        assert_eq!(
            proposal.clone().at(at("2026-11-30T00:59:00Z")).state,
            ProposalState::Pending
        );
        assert_eq!(
            proposal.clone().at(at("2026-11-30T01:00:01Z")).state,
            ProposalState::Expired
        );
        let mut rejected = proposal;
        rejected.state = ProposalState::Rejected;
        assert_eq!(
            rejected.at(at("2026-12-30T00:00:00Z")).state,
            ProposalState::Rejected
        );
    }
}
