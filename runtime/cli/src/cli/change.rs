//! `millrace change list|show|approve|reject`: route changes waiting for a second identity's
//! approval (routes listed in `approval.routes`; `route set-version` and `route promote`
//! propose them). The CLI's identity is the local OS user.

use std::process::ExitCode;

use clap::Subcommand;

use millrace::approval::{Proposal, ProposalState, Proposals};
use millrace::audit::Actor;
use millrace::registry::AdmissionBounds;

/// Change-approval commands.
#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Lists proposed changes: id, route, change, who proposed it, state, expiry.
    List(ListCommand),
    /// Shows one proposal in full, with the route's binding when it was proposed.
    Show(ShowCommand),
    /// Approves a proposal and applies it at once; the proposer cannot approve their own.
    Approve(ApproveCommand),
    /// Rejects a proposal (its proposer may withdraw it this way).
    Reject(RejectCommand),
}

impl ChangeCommand {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ChangeCommand::List(command) => command.run().await,
            ChangeCommand::Show(command) => command.run().await,
            ChangeCommand::Approve(command) => command.run().await,
            ChangeCommand::Reject(command) => command.run().await,
        }
    }
}

/// The proposals bucket of the configured NATS system (no sandbox needed to read it).
async fn open_proposals(connection: &super::Connection) -> anyhow::Result<Proposals> {
    let (config, _, js) = super::route::open(connection).await?;
    Proposals::open(&js, &config).await
}

/// Arguments of `millrace change list`.
#[derive(Debug, clap::Args)]
pub struct ListCommand {
    /// Only this route's proposals.
    #[arg(long)]
    route: Option<String>,
    /// Every proposal, not only those waiting for approval.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    connection: super::Connection,
}

impl ListCommand {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let proposals: Vec<Proposal> = open_proposals(&self.connection)
            .await?
            .list(self.route.as_deref())
            .await?
            .into_iter()
            .filter(|p| self.all || p.state == ProposalState::Pending)
            .collect();
        if proposals.is_empty() {
            outln!("no {}proposals", if self.all { "" } else { "pending " });
            return Ok(ExitCode::SUCCESS);
        }
        let rows = proposals.iter().map(|p| {
            vec![
                p.id.clone(),
                p.route.clone(),
                p.change.describe(&p.route),
                p.proposed_by.clone(),
                p.state.as_str().to_owned(),
                p.expires_at.clone(),
            ]
        });
        out!(
            "{}",
            super::table(
                &["id", "route", "change", "proposed by", "state", "expires"],
                rows
            )
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Arguments of `millrace change show`.
#[derive(Debug, clap::Args)]
pub struct ShowCommand {
    /// The proposal's id (see `change list`).
    id: String,
    #[command(flatten)]
    connection: super::Connection,
}

impl ShowCommand {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let proposal = open_proposals(&self.connection)
            .await?
            .get(&self.id)
            .await?;
        outln!("{}", serde_json::to_string_pretty(&proposal)?);
        Ok(ExitCode::SUCCESS)
    }
}

/// Arguments of `millrace change approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveCommand {
    /// The proposal's id (see `change list`).
    id: String,
    #[command(flatten)]
    connection: super::Connection,
}

impl ApproveCommand {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let changes = super::route::route_changes(&self.connection).await?;
        let (proposal, applied) = changes
            .approve(&Actor::os_user(), &self.id, AdmissionBounds::default())
            .await?;
        print_decision("approved", &proposal)?;
        super::route::print_binding(&applied.route, &applied.switched.after)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Arguments of `millrace change reject`.
#[derive(Debug, clap::Args)]
pub struct RejectCommand {
    /// The proposal's id (see `change list`).
    id: String,
    /// Why, for the proposer and the audit trail.
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    connection: super::Connection,
}

impl RejectCommand {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let changes = super::route::route_changes(&self.connection).await?;
        let proposal = changes
            .reject(&Actor::os_user(), &self.id, self.reason)
            .await?;
        print_decision("rejected", &proposal)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `<decision> <id> by <proposer>: <change>`, the line approve and reject print.
fn print_decision(decision: &str, proposal: &Proposal) -> anyhow::Result<()> {
    outln!(
        "{decision} {} (proposed by {}) by {}: {}",
        proposal.id,
        proposal.proposed_by,
        proposal.decided_by.as_deref().unwrap_or("unknown"),
        proposal.change.describe(&proposal.route)
    );
    Ok(())
}
