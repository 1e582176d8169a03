//! `millrace audit`: the audit trail of changes, filtered by route, action, who and time.

use std::process::ExitCode;

use millrace::audit::{self, Action, AuditQuery, AuditTrail};

/// Longest `millrace audit` waits for the trail.
const AUDIT_READ: std::time::Duration = std::time::Duration::from_secs(30);

/// Arguments of `millrace audit`.
#[derive(Debug, clap::Args)]
pub struct AuditCommand {
    /// Only this route's changes.
    #[arg(long)]
    route: Option<String>,
    /// Only this kind of change: deploy, set-version, canary, shadow, promote, rollback,
    /// redrive, replay, rebuild, propose, approve or reject.
    #[arg(long)]
    action: Option<Action>,
    /// Only changes by this identity (an admin token's name, or an OS user).
    #[arg(long)]
    who: Option<String>,
    /// Only changes since this time: RFC 3339 (2026-11-30T06:00:00Z) or a time ago (30m, 2h,
    /// 7d).
    #[arg(long)]
    since: Option<String>,
    /// How many of the newest entries to show at most.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print the entries as JSON lines (with before and after) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: super::Connection,
}

impl AuditCommand {
    /// Lists the entries, oldest first.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let since = self
            .since
            .as_deref()
            .map(|s| audit::parse_since(s, time::OffsetDateTime::now_utc()))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let (config, client) = self.connection.connect().await?;
        let trail = AuditTrail::new(async_nats::jetstream::new(client), &config);
        let query = AuditQuery {
            route: self.route,
            action: self.action,
            who: self.who,
            since,
            limit: self.limit,
        };
        let entries = trail.list(&query, AUDIT_READ).await?;
        if self.json {
            for entry in &entries {
                outln!("{}", serde_json::to_string(entry)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        if entries.is_empty() {
            outln!("no changes recorded that match");
            return Ok(ExitCode::SUCCESS);
        }
        let rows = entries.iter().map(|e| {
            vec![
                e.at.clone(),
                format!("{} ({})", e.who, e.via.as_str()),
                e.action.as_str().to_owned(),
                e.route
                    .clone()
                    .or_else(|| e.area.clone())
                    .unwrap_or_default(),
                e.what.clone(),
            ]
        });
        out!(
            "{}",
            super::table(&["at", "who", "action", "route", "what"], rows)
        );
        Ok(ExitCode::SUCCESS)
    }
}
