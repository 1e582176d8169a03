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
        self.is_open() && self.covers(position)
    }

    /// True when the hold's scope takes in the stock at `position`, placed or released: what
    /// it blocks while it is open ([`blocks`](Self::blocks)).
    pub fn covers(&self, position: &StockKey) -> bool {
        let scope = &self.scope;
        if scope.item.is_none() && scope.lot.is_none() && scope.location.is_none() {
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

    /// True when the hold concerns what a filter asks for (site, item, lot; none: any): its
    /// own site, item and lot are the ones asked for (a field the filter leaves out matches
    /// anything, one the hold leaves out only what the filter leaves out), or it covers a stock
    /// position of `stock` that is (an item-wide hold concerns every lot of the item there, a
    /// lot hold every item of the lot and every site where the lot lies).
    pub fn concerns(
        &self,
        site: &Option<String>,
        item: &Option<String>,
        lot: &Option<String>,
        stock: &[&StockKey],
    ) -> bool {
        let own = matches(site, Some(&self.key.site))
            && matches(item, self.scope.item.as_ref())
            && matches(lot, self.scope.lot.as_ref());
        own || stock.iter().any(|position| {
            matches(site, Some(&position.site))
                && matches(item, Some(&position.item))
                && matches(lot, position.lot.as_ref())
                && self.covers(position)
        })
    }

    /// True when a release of `scope` takes in this record: it names no item or this one, and
    /// no lot or this one (a release without a lot releases every lot of the hold).
    fn released_by(&self, scope: &HoldScope) -> bool {
        matches(&scope.item, self.key.item.as_ref()) && matches(&scope.lot, self.key.lot.as_ref())
    }
}

/// The records one event of a quality hold changes, each with the record it starts from when
/// there is none yet, given every record of its hold id at its site (`siblings`, as stored;
/// `key` is the event's own scope).
///
/// A release closes every record of the hold its scope takes in, whatever else the records
/// name (the placement named the item, the release only the lots): a release naming no item
/// covers any item, naming no lot every lot. A release that takes in no record (it came
/// before its placement) is kept at its own key. A placement changes its own record; when
/// there is none and a newer release of the hold takes it in (a release that came first), it
/// starts as that release, so the older placement does not open it.
pub fn hold_targets(
    key: &HoldKey,
    hold: &QualityHold,
    event: &ProjectedEvent,
    siblings: &[HoldRecord],
) -> Vec<(HoldKey, HoldRecord)> {
    let siblings = siblings
        .iter()
        .filter(|r| r.key.site == key.site && r.key.hold_id == key.hold_id);
    match hold.action {
        HoldAction::Released => {
            let covered: Vec<(HoldKey, HoldRecord)> = siblings
                .filter(|r| r.released_by(&hold.scope))
                .map(|r| (r.key.clone(), r.clone()))
                .collect();
            if covered.is_empty() {
                vec![(key.clone(), HoldRecord::new(key.clone(), hold))]
            } else {
                covered
            }
        }
        HoldAction::Placed => {
            let mut siblings: Vec<&HoldRecord> = siblings.collect();
            if let Some(own) = siblings.iter().find(|r| &r.key == key) {
                return vec![(key.clone(), (*own).clone())];
            }
            let mut record = HoldRecord::new(key.clone(), hold);
            siblings.retain(|r| {
                !r.is_open()
                    && r.placed_at.is_none()
                    && matches(&r.key.item, key.item.as_ref())
                    && matches(&r.key.lot, key.lot.as_ref())
                    && r.newest
                        .is_some_and(|n| !not_older(&event.position, Some(&n)))
            });
            if let Some(release) = siblings
                .iter()
                .max_by(|a, b| cmp_newest(a.newest.as_ref(), b.newest.as_ref()))
            {
                record.action = HoldAction::Released;
                record.released_at.clone_from(&release.released_at);
                record.newest = release.newest;
            }
            vec![(key.clone(), record)]
        }
    }
}

fn cmp_newest(a: Option<&Position>, b: Option<&Position>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.compare(b),
        (a, b) => a.is_some().cmp(&b.is_some()),
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
        // A release may name less than the placement (no item): the record keeps the scope
        // that was placed. One never placed takes the release's, but keeps the item and lot of
        // its key, so a record's scope names the item and lot its key does (the read side
        // finds a hold by them in its key).
        if hold.action == HoldAction::Placed || self.placed_at.is_none() {
            self.scope = HoldScope {
                item: self.key.item.clone(),
                lot: self.key.lot.clone(),
                ..hold.scope.clone()
            };
        }
        self.action = hold.action;
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
