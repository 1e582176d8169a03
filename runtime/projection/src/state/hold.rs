//! Quality holds and what stock they block.

use serde::{Deserialize, Serialize};

use super::{
    AppliedIds, BucketKey, ProjectedEvent, Record, StockKey, bucket_key, matches, not_older,
};
use millrace_core::canonical::Position;
use millrace_core::canonical::{HoldAction, HoldScope, QualityHold};

/// A quality hold on one scope: site, hold id, item and lot (a hold on several lots is one
/// record per lot, as the events come).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HoldKey {
    /// Site code.
    pub site: String,
    /// Hold id.
    pub hold_id: String,
    /// Item held.
    pub item: Option<String>,
    /// Lot held.
    pub lot: Option<String>,
}

impl BucketKey for HoldKey {
    /// `<site>.<hold id>.<item>.<lot>`.
    fn bucket_key(&self) -> String {
        bucket_key(&[
            Some(&self.site),
            Some(&self.hold_id),
            self.item.as_deref(),
            self.lot.as_deref(),
        ])
    }
}

/// A quality hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// Which.
    #[serde(flatten)]
    pub key: HoldKey,
    /// Placed or released, as the newest event says.
    pub action: HoldAction,
    /// The whole scope (location and supplier too).
    pub scope: HoldScope,
    /// Reason.
    pub reason: String,
    /// Disposition.
    pub disposition: Option<String>,
    /// When it was placed (source time), from the newest placement.
    pub placed_at: Option<String>,
    /// When it was released (source time).
    pub released_at: Option<String>,
    /// Position of the newest event applied.
    pub newest: Option<Position>,
    /// Recent event ids applied.
    pub applied: AppliedIds,
}

impl HoldRecord {
    /// A record for a hold not seen before.
    pub fn new(key: HoldKey, hold: &QualityHold) -> Self {
        Self {
            key,
            action: hold.action,
            scope: hold.scope.clone(),
            reason: hold.reason.clone(),
            disposition: None,
            placed_at: None,
            released_at: None,
            newest: None,
            applied: AppliedIds::default(),
        }
    }

    /// True while the hold is placed.
    pub fn is_open(&self) -> bool {
        self.action == HoldAction::Placed
    }

    /// True when the hold blocks the stock at `position`. A hold naming a lot blocks that
    /// lot (of its item, when it names one) wherever it sits, at any site and location; one
    /// without a lot blocks its item at its own site, at its location when it names one (every
    /// item there when it names only a location: a cold room held as a whole). A hold naming
    /// only a supplier blocks nothing here (stock does not record its supplier).
    pub fn blocks(&self, position: &StockKey) -> bool {
        let scope = &self.scope;
        if !self.is_open()
            || (scope.item.is_none() && scope.lot.is_none() && scope.location.is_none())
        {
            return false;
        }
        if !matches(&scope.item, Some(&position.item)) {
            return false;
        }
        match &scope.lot {
            Some(lot) => position.lot.as_ref() == Some(lot),
            None => {
                self.key.site == position.site
                    && matches(&scope.location, position.location.as_ref())
            }
        }
    }
}

impl Record for HoldRecord {
    type Key = HoldKey;
    type Change = QualityHold;

    fn fresh(key: &HoldKey, change: &Self::Change) -> Self {
        Self::new(key.clone(), change)
    }

    fn apply(&mut self, hold: &QualityHold, event: &ProjectedEvent) -> bool {
        // A placement or release older than the newest one applied (a late resend of the
        // placement after its release) must not reopen or close the hold.
        if !not_older(&event.position, self.newest.as_ref()) {
            return false;
        }
        self.action = hold.action;
        self.scope = hold.scope.clone();
        self.reason.clone_from(&hold.reason);
        if hold.disposition.is_some() {
            self.disposition.clone_from(&hold.disposition);
        }
        match hold.action {
            HoldAction::Placed => {
                self.placed_at = Some(event.time.clone());
                self.released_at = None;
            }
            HoldAction::Released => self.released_at = Some(event.time.clone()),
        }
        self.newest = Some(event.position);
        true
    }

    fn applied(&mut self) -> &mut AppliedIds {
        &mut self.applied
    }
}
