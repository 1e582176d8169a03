//! `[approval]`: which route changes need a second person's approval (docs/GOVERNANCE.md).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `approval.routes` | the routes whose set-version, canary, shadow and promote are proposed and applied only once another identity approves them: route names, or `["*"]` for every route | `[]`: changes apply at once |
//! | `approval.expires_after` | how long a proposal waits for its approval before it can no longer be applied | `24h` |
//! | `approval.bucket` | the key-value bucket of the proposals | `millrace-proposals` |
//!
//! A rollback never waits for approval: it is the emergency path, and is audited as such.

use serde::Deserialize;

use super::values::{HumanDuration, Invalid, check_names};

/// Every route, in `approval.routes`.
pub const EVERY_ROUTE: &str = "*";

/// Change approval: which routes need it, and how long a proposal lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalConfig {
    /// The routes whose changes need approval; `*` for every route.
    pub routes: Vec<String>,
    /// How long a proposal may wait for its approval.
    pub expires_after: HumanDuration,
    /// The key-value bucket of the proposals.
    pub bucket: String,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            expires_after: HumanDuration::from_secs(24 * 3600),
            bucket: "millrace-proposals".into(),
        }
    }
}

impl ApprovalConfig {
    /// True when changes of `route` need another identity's approval.
    pub fn required_for(&self, route: &str) -> bool {
        self.routes.iter().any(|r| r == EVERY_ROUTE || r == route)
    }

    /// The first key that is wrong, with what is accepted.
    /// `routes` are the names of every route of the file, inbound and outbound.
    pub(super) fn check<'a>(
        &self,
        routes: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), Invalid> {
        for route in &self.routes {
            if route != EVERY_ROUTE && !routes.clone().any(|name| name == route) {
                let mut accepted: Vec<&str> = routes.clone().collect();
                accepted.push(EVERY_ROUTE);
                return Err(Invalid::new(
                    "approval.routes",
                    format!(
                        "names {route:?}, which is no route of this file; accepted: {}",
                        accepted.join(", ")
                    ),
                ));
            }
        }
        let expiry = self.expires_after.get();
        if expiry < std::time::Duration::from_secs(1)
            || expiry > std::time::Duration::from_secs(30 * 24 * 3600)
        {
            return Err(Invalid::new(
                "approval.expires_after",
                "must be between 1s and 720h (30 days), e.g. `24h`",
            ));
        }
        check_names([("approval.bucket", self.bucket.as_str())])
    }
}
