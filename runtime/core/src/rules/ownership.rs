//! System-of-record ownership: which source system may publish which event kind per site.
//!
//! Plants run several systems that all believe they know the stock. A policy such as
//! "inventory-balance at PLANT1 is owned by erp" makes a balance from the WMS a dead letter
//! (reason `not-owner`) instead of a second truth.

use crate::canonical::MappedEvent;
use crate::config::OwnershipRule;

use super::Failure;

/// The ownership rules of a host.
#[derive(Debug, Clone, Default)]
pub struct OwnershipPolicy {
    rules: Vec<OwnershipRule>,
}

impl OwnershipPolicy {
    /// A policy from the configured rules.
    pub fn new(rules: Vec<OwnershipRule>) -> Self {
        Self { rules }
    }

    /// The systems that own `kind` at `site`: the rules naming the site, else those for `*`;
    /// empty when no rule covers it (anyone may publish).
    fn owners(&self, kind: &str, site: &str) -> Vec<&str> {
        let matching = |wanted: &str| -> Vec<&str> {
            self.rules
                .iter()
                .filter(|r| r.kind == kind && r.site == wanted)
                .map(|r| r.owner.as_str())
                .collect()
        };
        let exact = matching(site);
        if exact.is_empty() {
            matching("*")
        } else {
            exact
        }
    }

    /// Refuses the whole message when any of its events comes from a system that does not own
    /// that kind at that site.
    pub fn check(&self, system: &str, events: &[MappedEvent]) -> Result<(), Failure> {
        for (index, event) in events.iter().enumerate() {
            let kind = event.data.kind();
            let owners = self.owners(kind, &event.site);
            if !owners.is_empty() && !owners.contains(&system) {
                return Err(Failure::NotOwner(format!(
                    "event {index} ({kind}) at site {}: {kind} there is owned by {}, not by {system}",
                    event.site,
                    owners.join(" or ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::{EventData, InventoryBalance, Quantity};

    fn balance(site: &str) -> MappedEvent {
        let q = |a: &str| Quantity {
            amount: a.into(),
            uom: "EA".into(),
        };
        MappedEvent {
            site: site.into(),
            occurred_at: "2026-03-02T06:00:00Z".into(),
            source_sequence: None,
            source_transaction: None,
            data: EventData::InventoryBalance(InventoryBalance {
                item: "I".into(),
                location: "L".into(),
                lot: None,
                on_hand: q("1"),
                allocated: q("0"),
                blocked: q("0"),
            }),
        }
    }

    fn rule(site: &str, owner: &str) -> OwnershipRule {
        OwnershipRule {
            kind: "inventory-balance".into(),
            site: site.into(),
            owner: owner.into(),
        }
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let policy = OwnershipPolicy::new(vec![rule("PLANT1", "erp"), rule("*", "wms")]);
        assert!(policy.check("erp", &[balance("PLANT1")]).is_ok());
        let err = policy.check("wms", &[balance("PLANT1")]).unwrap_err();
        assert_eq!(err.kind(), "not-owner");
        assert!(err.message().contains("owned by erp, not by wms"), "{err}");
        assert!(policy.check("wms", &[balance("PLANT2")]).is_ok());
        assert!(policy.check("erp", &[balance("PLANT2")]).is_err());
        assert!(
            OwnershipPolicy::default()
                .check("any", &[balance("X")])
                .is_ok()
        );
    }
}
