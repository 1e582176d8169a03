//! `[governance]`: delivery rules across routes, idempotency and system-of-record ownership.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `governance.horizon` | how long delivered source transactions and the newest time per business key are remembered | `72h` |
//! | `governance.idempotency_bucket`, `governance.order_bucket` | their key-value buckets | `millrace-idempotency`, `millrace-order` |
//! | `governance.control_number_bucket` | the last control number of acknowledgements per route and partner (never expires) | `millrace-control-numbers` |
//! | `governance.acknowledgement_bucket` | the control number and time each raw message was acknowledged with (kept for the horizon) | `millrace-acknowledgements` |
//! | `governance.ownership` | which source system owns which event kind per site: `kind`, `site` (or `*`), `owner` | none: anyone may publish |

use serde::Deserialize;

use super::values::{HumanDuration, Invalid, check_names, is_token};

/// Delivery rules across routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceConfig {
    /// How long delivered source transactions (to recognise resends) and the newest time per
    /// business key (to recognise late events) are remembered.
    pub horizon: HumanDuration,
    /// The key-value bucket of delivered source transactions.
    pub idempotency_bucket: String,
    /// The key-value bucket of the last event time per business key.
    pub order_bucket: String,
    /// The key-value bucket of the last acknowledgement control number per route and partner.
    pub control_number_bucket: String,
    /// The key-value bucket of the control number each raw message was acknowledged with.
    pub acknowledgement_bucket: String,
    /// Which source system owns which event kind, per site.
    pub ownership: Vec<OwnershipRule>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            horizon: HumanDuration::from_secs(72 * 3600),
            idempotency_bucket: "millrace-idempotency".into(),
            order_bucket: "millrace-order".into(),
            control_number_bucket: "millrace-control-numbers".into(),
            acknowledgement_bucket: "millrace-acknowledgements".into(),
            ownership: Vec::new(),
        }
    }
}

/// One system-of-record rule: events of `kind` at `site` may only come from `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipRule {
    /// The event kind, e.g. `inventory-balance`.
    pub kind: String,
    /// The site code, or `*` for every site.
    pub site: String,
    /// The source system that owns it, e.g. `erp`.
    pub owner: String,
}

/// The canonical event kinds, as in the WIT and the canonical subjects.
pub const EVENT_KINDS: [&str; 8] = [
    "inventory-movement",
    "inventory-balance",
    "work-order-status",
    "material-consumption",
    "production-completion",
    "quality-hold",
    "supplier-commitment",
    "shipment-notice",
];

impl GovernanceConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.horizon < HumanDuration::from_secs(60) {
            return Err(Invalid::new("governance.horizon", "must be at least 1m"));
        }
        check_names([
            (
                "governance.idempotency_bucket",
                self.idempotency_bucket.as_str(),
            ),
            ("governance.order_bucket", &self.order_bucket),
            (
                "governance.control_number_bucket",
                &self.control_number_bucket,
            ),
            (
                "governance.acknowledgement_bucket",
                &self.acknowledgement_bucket,
            ),
        ])?;
        for (i, rule) in self.ownership.iter().enumerate() {
            let key = |k: &str| format!("governance.ownership[{i}].{k}");
            if !EVENT_KINDS.contains(&rule.kind.as_str()) {
                return Err(Invalid::new(
                    key("kind"),
                    format!("is {:?}; accepted: {}", rule.kind, EVENT_KINDS.join(", ")),
                ));
            }
            if rule.site != "*" && !is_token(&rule.site) {
                return Err(Invalid::new(key("site"), "must be a site code or `*`"));
            }
            if !is_token(&rule.owner) {
                return Err(Invalid::new(
                    key("owner"),
                    "must be a source system name like `erp`",
                ));
            }
        }
        Ok(())
    }
}
