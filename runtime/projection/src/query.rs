//! The read side: inventory positions with their holds, work-order progress, holds,
//! supplier commitments against receipts and the age of each source's last update, read
//! from the buckets, so any process connected to NATS can answer (no projection needed in
//! it). Every answer is a `Serialize` value ready to be sent as JSON.

use std::collections::BTreeMap;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ProjectionError;
use super::amount::Amount;
use super::buckets::Buckets;
use super::state::{
    CommitmentRecord, HoldRecord, SourceRecord, StockRecord, Total, WorkOrderRecord, key_token,
    matches,
};
use millrace_core::canonical::{
    CommitmentLevel, HoldAction, Quantity, ScheduleBucket, WorkOrderState,
};
use millrace_core::config::ProjectionConfig;

/// Which stock positions to list; every field left out (or empty, as `?item=` gives it)
/// matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InventoryFilter {
    /// Item number.
    #[serde(deserialize_with = "empty_as_none")]
    pub item: Option<String>,
    /// Site code.
    #[serde(deserialize_with = "empty_as_none")]
    pub site: Option<String>,
    /// Lot or batch.
    #[serde(deserialize_with = "empty_as_none")]
    pub lot: Option<String>,
}

/// Which work orders, holds or commitments to list; every field left out (or empty) matches
/// all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Site code.
    #[serde(deserialize_with = "empty_as_none")]
    pub site: Option<String>,
    /// Item number (the produced item of a work order, the held item, the committed item).
    #[serde(deserialize_with = "empty_as_none")]
    pub item: Option<String>,
    /// Lot (holds only).
    #[serde(deserialize_with = "empty_as_none")]
    pub lot: Option<String>,
}

/// A filter value as a query string gives it: `?item=` is no filter, not "item is empty".
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|value| !value.is_empty()))
}

/// A token of a key pattern: the key token of `value`, `*` (any) when the filter leaves it out.
fn token(value: Option<&String>) -> String {
    value.map_or_else(|| "*".to_owned(), |v| key_token(Some(v)))
}

/// Every key of a bucket.
fn everything() -> Vec<String> {
    vec![">".to_owned()]
}

/// The stock positions of `site`, `item` and `lot` (none: any) by their keys
/// (`<site>.<item>.<location>.<lot>`): one narrow pattern, the whole bucket only when the
/// filter names nothing.
fn stock_patterns(
    site: Option<&String>,
    item: Option<&String>,
    lot: Option<&String>,
) -> Vec<String> {
    if site.is_none() && item.is_none() && lot.is_none() {
        return everything();
    }
    vec![format!("{}.{}.*.{}", token(site), token(item), token(lot))]
}

/// The item tokens of the holds that can cover stock of `item` (a hold names that item or
/// none) in hold keys (`<site>.<hold id>.<item>.<lot>`), whose item and lot are the scope's.
fn hold_items(item: Option<&String>) -> Vec<String> {
    match item {
        Some(item) => vec![key_token(Some(item)), key_token(None)],
        None => vec!["*".to_owned()],
    }
}

/// The keys of the holds that can cover stock of `site`, `item` and `lot` (none: any): a
/// hold naming the lot (of the item or of none) at any site, one naming no lot (the item or
/// none) at the site. The whole bucket when neither item nor lot is asked for: a lot hold of
/// any site covers stock of a site.
fn covering_hold_patterns(
    site: Option<&String>,
    item: Option<&String>,
    lot: Option<&String>,
) -> Vec<String> {
    if item.is_none() && lot.is_none() {
        return everything();
    }
    let mut patterns = Vec::new();
    for it in hold_items(item) {
        match lot {
            Some(lot) => {
                patterns.push(format!("*.*.{it}.{}", key_token(Some(lot))));
                patterns.push(format!("{}.*.{it}.{}", token(site), key_token(None)));
            }
            None => patterns.push(format!("*.*.{it}.*")),
        }
    }
    patterns
}

/// The keys of the stock positions hold `r` can block (as [`HoldRecord::covers`] has it): its
/// lot of its item (or any) at any site and location; without a lot, its item (or any) at its
/// site, at its location when it names one. None for a hold naming neither.
fn blocked_patterns(r: &HoldRecord) -> Vec<String> {
    let scope = &r.scope;
    let item = token(scope.item.as_ref());
    match &scope.lot {
        Some(lot) => vec![format!("*.{item}.*.{}", key_token(Some(lot)))],
        None if scope.item.is_none() && scope.location.is_none() => Vec::new(),
        None => vec![format!(
            "{}.{item}.{}.*",
            key_token(Some(&r.key.site)),
            token(scope.location.as_ref())
        )],
    }
}

/// Most key patterns read one by one; past them the whole bucket is read once.
const MAX_PATTERNS: usize = 16;

/// One stock position: an item at a site, location and lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryPosition {
    /// Site code.
    pub site: String,
    /// Item number.
    pub item: String,
    /// Storage location; none: at the site, location not stated (stock in transit to the
    /// site is counted here).
    pub location: Option<String>,
    /// Lot or batch.
    pub lot: Option<String>,
    /// Unit of measure of the amounts.
    pub uom: Option<String>,
    /// On hand (exact decimal text).
    pub on_hand: Amount,
    /// Of on hand, blocked by open quality holds: all of it while a hold covers the lot.
    pub blocked: Amount,
    /// On hand less blocked, never below zero.
    pub available: Amount,
    /// Shipped to the site (ship notices, transfers in transit) and not yet received.
    pub in_transit: Amount,
    /// Received by goods receipts, in all.
    pub received: Amount,
    /// Allocated, from the newest inventory balance, when a source sends balances.
    pub allocated: Option<Amount>,
    /// The open holds blocking this position (hold ids).
    pub holds: Vec<String>,
    /// Events in a unit that cannot be converted to `uom` (each against kilograms), added as
    /// they came: when not 0, the amounts mix units.
    pub unit_mismatches: u64,
    /// Source time of the newest event applied (RFC 3339).
    pub updated: Option<String>,
}

/// The state of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationView {
    /// The newest state.
    pub state: WorkOrderState,
    /// Its source time (RFC 3339).
    pub since: String,
}

/// A work order's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkOrderView {
    /// Site code.
    pub site: String,
    /// Work order number.
    pub work_order: String,
    /// Item produced.
    pub item: Option<String>,
    /// The newest state reported for the order or any operation.
    pub state: Option<WorkOrderState>,
    /// Since when (source time, RFC 3339).
    pub state_since: Option<String>,
    /// The newest state per operation.
    pub operations: BTreeMap<String, OperationView>,
    /// Planned quantity.
    pub planned: Option<Quantity>,
    /// Good quantity, summed from production completions.
    pub completed: Option<Quantity>,
    /// Scrap quantity, summed from production completions.
    pub scrapped: Option<Quantity>,
    /// Completed quantity as the newest status reports it.
    pub reported_completed: Option<Quantity>,
    /// Scrapped quantity as the newest status reports it.
    pub reported_scrapped: Option<Quantity>,
    /// Material consumed, per item.
    pub consumed: BTreeMap<String, Quantity>,
    /// Completions and consumptions in a unit that cannot be converted to their sum's (added as
    /// they came): when not 0, a sum mixes units.
    pub unit_mismatches: u64,
    /// Source time of the newest event applied (RFC 3339).
    pub updated: Option<String>,
}

/// A quality hold on one item and lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldView {
    /// Site code.
    pub site: String,
    /// Hold id.
    pub hold_id: String,
    /// Item held.
    pub item: Option<String>,
    /// Lot held.
    pub lot: Option<String>,
    /// Location named by the hold.
    pub location: Option<String>,
    /// Supplier named by the hold.
    pub supplier: Option<String>,
    /// True while placed.
    pub open: bool,
    /// `placed` or `released`.
    pub action: HoldAction,
    /// Reason.
    pub reason: String,
    /// Disposition.
    pub disposition: Option<String>,
    /// When it was placed (source time).
    pub placed_at: Option<String>,
    /// When it was released (source time).
    pub released_at: Option<String>,
    /// Stock positions it blocks now.
    pub blocked_positions: usize,
}

/// A supplier's commitment for an item at a site, against what the site received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitmentView {
    /// Site code.
    pub site: String,
    /// Supplier.
    pub supplier: String,
    /// Item.
    pub item: String,
    /// Purchase order.
    pub purchase_order: Option<String>,
    /// Firm quantity over all buckets (unit of the first firm bucket).
    pub firm: Option<Quantity>,
    /// Forecast quantity over all buckets.
    pub forecast: Option<Quantity>,
    /// The schedule buckets.
    pub buckets: Vec<ScheduleBucket>,
    /// Cumulative received as the supplier's schedule states it.
    pub cumulative_received: Option<Quantity>,
    /// Received by goods receipts of the item at the site (from any supplier).
    pub received: Amount,
    /// In transit to the site for the item.
    pub in_transit: Amount,
    /// Buckets and stock positions in a unit that cannot be converted to the firm quantity's
    /// (added as they are): when not 0, the sums mix units.
    pub unit_mismatches: u64,
    /// Source time of the schedule (RFC 3339).
    pub updated: Option<String>,
}

/// The last update from one source system at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceView {
    /// Site code.
    pub site: String,
    /// Source system (`mes`, `edi`, `qms`...).
    pub system: String,
    /// Events projected from it.
    pub events: u64,
    /// The newest source time among them (RFC 3339).
    pub newest_event_time: Option<String>,
    /// When its last event was published on the canonical stream (RFC 3339).
    pub last_published: String,
    /// Seconds since then: how stale this source's picture is.
    pub age_seconds: i64,
}

/// The projected state, read from the buckets.
#[derive(Clone)]
pub struct Visibility {
    pub(crate) buckets: Buckets,
}

impl Visibility {
    /// Opens the projection's buckets that exist; a missing one reads as empty and is not
    /// created (the projection's writer creates its buckets, with the configured replicas).
    pub async fn open(
        js: &jetstream::Context,
        config: &ProjectionConfig,
    ) -> Result<Self, ProjectionError> {
        Ok(Self {
            buckets: Buckets::existing(js, config).await?,
        })
    }

    /// The open holds that can block stock of `site`, `item` and `lot` (none: any), read by
    /// their keys.
    async fn open_holds(
        &self,
        site: Option<&String>,
        item: Option<&String>,
        lot: Option<&String>,
    ) -> Result<Vec<HoldRecord>, ProjectionError> {
        let patterns = covering_hold_patterns(site, item, lot);
        let holds: Vec<HoldRecord> = self
            .buckets
            .read_matching(&self.buckets.holds, &patterns)
            .await?;
        Ok(holds.into_iter().filter(HoldRecord::is_open).collect())
    }

    /// Stock positions matching `filter`, sorted by site, item, location and lot, with
    /// blocked decided now from the open holds.
    pub async fn inventory(
        &self,
        filter: &InventoryFilter,
    ) -> Result<Vec<InventoryPosition>, ProjectionError> {
        // By key: `?item=` or `?lot=` reads those positions and the holds that can block
        // them, not the buckets.
        let (site, item, lot) = (
            filter.site.as_ref(),
            filter.item.as_ref(),
            filter.lot.as_ref(),
        );
        let records: Vec<StockRecord> = self
            .buckets
            .read_matching(&self.buckets.inventory, &stock_patterns(site, item, lot))
            .await?;
        let holds = self.open_holds(site, item, lot).await?;
        let mut positions: Vec<InventoryPosition> = records
            .into_iter()
            .filter(|r| {
                matches(&filter.item, Some(&r.key.item))
                    && matches(&filter.site, Some(&r.key.site))
                    && matches(&filter.lot, r.key.lot.as_ref())
            })
            .filter(|r| {
                // A receipt also books "arrived" at the site-level position; with nothing
                // else there it is no position worth listing.
                r.key.location.is_some() || !r.on_hand.is_zero() || !r.in_transit().is_zero()
            })
            .map(|r| {
                let blocking: Vec<String> = holds
                    .iter()
                    .filter(|h| h.blocks(&r.key))
                    .map(|h| h.key.hold_id.clone())
                    .collect();
                // All of it while a hold covers it, else what the source says is in quality
                // inspection or blocked (balances, movements' stock status).
                let blocked = if blocking.is_empty() {
                    r.restricted.min(r.on_hand).at_least_zero()
                } else {
                    r.on_hand.at_least_zero()
                };
                InventoryPosition {
                    available: r.on_hand.minus(blocked).at_least_zero(),
                    in_transit: r.in_transit(),
                    site: r.key.site,
                    item: r.key.item,
                    location: r.key.location,
                    lot: r.key.lot,
                    uom: r.uom,
                    on_hand: r.on_hand,
                    blocked,
                    received: r.received,
                    allocated: r.allocated,
                    holds: blocking,
                    unit_mismatches: r.unit_mismatches,
                    updated: r.updated,
                }
            })
            .collect();
        positions.sort_by(|a, b| {
            (&a.site, &a.item, &a.location, &a.lot).cmp(&(&b.site, &b.item, &b.location, &b.lot))
        });
        Ok(positions)
    }

    /// Work orders matching `filter` (site, produced item), sorted by site and number.
    pub async fn work_orders(
        &self,
        filter: &Filter,
    ) -> Result<Vec<WorkOrderView>, ProjectionError> {
        // Keys are `<site>.<work order>`: a site reads its own.
        let patterns = match &filter.site {
            Some(site) => vec![format!("{}.*", key_token(Some(site)))],
            None => everything(),
        };
        let records: Vec<WorkOrderRecord> = self
            .buckets
            .read_matching(&self.buckets.work_orders, &patterns)
            .await?;
        let quantity = |t: Option<Total>| {
            t.map(|t| Quantity {
                amount: t.amount.to_string(),
                uom: t.uom,
            })
        };
        let mismatches = |r: &WorkOrderRecord| {
            [&r.completed, &r.scrapped]
                .into_iter()
                .flatten()
                .chain(r.consumed.values())
                .map(|t| t.unit_mismatches)
                .sum()
        };
        let mut orders: Vec<WorkOrderView> = records
            .into_iter()
            .filter(|r| {
                matches(&filter.site, Some(&r.key.site)) && matches(&filter.item, r.item.as_ref())
            })
            .map(|r| WorkOrderView {
                unit_mismatches: mismatches(&r),
                site: r.key.site,
                work_order: r.key.work_order,
                item: r.item,
                state: r.state.as_ref().map(|s| s.state),
                state_since: r.state.map(|s| s.since),
                operations: r
                    .operations
                    .into_iter()
                    .map(|(op, s)| {
                        (
                            op,
                            OperationView {
                                state: s.state,
                                since: s.since,
                            },
                        )
                    })
                    .collect(),
                planned: r.planned,
                completed: quantity(r.completed),
                scrapped: quantity(r.scrapped),
                reported_completed: r.reported_completed,
                reported_scrapped: r.reported_scrapped,
                consumed: r
                    .consumed
                    .into_iter()
                    .filter_map(|(item, t)| quantity(Some(t)).map(|q| (item, q)))
                    .collect(),
                updated: r.updated,
            })
            .collect();
        orders.sort_by(|a, b| (&a.site, &a.work_order).cmp(&(&b.site, &b.work_order)));
        Ok(orders)
    }

    /// Whether a projection has ever run against these buckets (its holds bucket exists): a
    /// reader that must not take "no projection" for "no holds" (the posting gate) asks first.
    /// The name of the holds bucket comes with the answer, for messages.
    pub async fn has_run(&self) -> Result<(bool, &str), ProjectionError> {
        let holds = &self.buckets.holds;
        Ok((self.buckets.exists(holds).await?, &holds.name))
    }

    /// Quality holds concerning `filter` (site, item, lot: [`HoldRecord::concerns`]), open and
    /// released, sorted by site, hold id, item and lot, each with the number of positions it
    /// blocks now. With an item or a lot (the posting gate asks for a site and a lot) only the
    /// records that can concern them are read, by their keys: the holds naming them, the holds
    /// that can cover their stock, that stock and the stock the holds found block.
    pub async fn holds(&self, filter: &Filter) -> Result<Vec<HoldView>, ProjectionError> {
        let (site, item, lot) = (
            filter.site.as_ref(),
            filter.item.as_ref(),
            filter.lot.as_ref(),
        );
        let narrow = item.is_some() || lot.is_some();
        let mut hold_patterns = covering_hold_patterns(site, item, lot);
        if narrow {
            // Its own site, item and lot are the ones asked for.
            hold_patterns.push(format!("{}.*.{}.{}", token(site), token(item), token(lot)));
        }
        let records: Vec<HoldRecord> = self
            .buckets
            .read_matching(&self.buckets.holds, &hold_patterns)
            .await?;
        // The stock asked for; all of it without an item or lot, as the holds found block
        // stock of any site.
        let asked_patterns = if narrow {
            stock_patterns(site, item, lot)
        } else {
            everything()
        };
        let asked: Vec<StockRecord> = self
            .buckets
            .read_matching(&self.buckets.inventory, &asked_patterns)
            .await?;
        let positions: Vec<&super::state::StockKey> = asked.iter().map(|s| &s.key).collect();
        let records: Vec<HoldRecord> = records
            .into_iter()
            // What the hold covers, not only the fields it names: an item-wide hold is found
            // by a lot of the item, a lot hold by the item and by every site where the lot lies.
            .filter(|r| r.concerns(&filter.site, &filter.item, &filter.lot, &positions))
            .collect();
        // The stock the open ones can block, by its keys (all of it read once already when
        // the filter names no item or lot).
        let mut blockable: Vec<String> = records
            .iter()
            .filter(|r| r.is_open())
            .flat_map(blocked_patterns)
            .collect();
        blockable.sort();
        blockable.dedup();
        let more: Vec<StockRecord>;
        let stock: &[StockRecord] = if !narrow || blockable.is_empty() {
            &asked
        } else {
            if blockable.len() > MAX_PATTERNS {
                blockable = everything();
            }
            more = self
                .buckets
                .read_matching(&self.buckets.inventory, &blockable)
                .await?;
            &more
        };
        let mut holds: Vec<HoldView> = records
            .into_iter()
            .map(|r| HoldView {
                blocked_positions: stock
                    .iter()
                    .filter(|s| !s.on_hand.at_least_zero().is_zero() && r.blocks(&s.key))
                    .count(),
                open: r.is_open(),
                site: r.key.site,
                hold_id: r.key.hold_id,
                item: r.key.item,
                lot: r.key.lot,
                location: r.scope.location,
                supplier: r.scope.supplier,
                action: r.action,
                reason: r.reason,
                disposition: r.disposition,
                placed_at: r.placed_at,
                released_at: r.released_at,
            })
            .collect();
        holds.sort_by(|a, b| {
            (&a.site, &a.hold_id, &a.item, &a.lot).cmp(&(&b.site, &b.hold_id, &b.item, &b.lot))
        });
        Ok(holds)
    }

    /// Supplier commitments matching `filter` (site, item), with what the site received and
    /// has in transit for the item, sorted by site, supplier and item.
    pub async fn commitments(
        &self,
        filter: &Filter,
    ) -> Result<Vec<CommitmentView>, ProjectionError> {
        // Keys are `<site>.<supplier>.<item>`; the stock of a site and item is theirs.
        let (site, item) = (filter.site.as_ref(), filter.item.as_ref());
        let patterns = if site.is_none() && item.is_none() {
            everything()
        } else {
            vec![format!("{}.*.{}", token(site), token(item))]
        };
        let records: Vec<CommitmentRecord> = self
            .buckets
            .read_matching(&self.buckets.commitments, &patterns)
            .await?;
        let stock: Vec<StockRecord> = self
            .buckets
            .read_matching(&self.buckets.inventory, &stock_patterns(site, item, None))
            .await?;
        let sum = |level: CommitmentLevel, buckets: &[ScheduleBucket]| {
            let mut total: Option<Total> = None;
            for b in buckets.iter().filter(|b| b.level == level) {
                Total::add(&mut total, &b.quantity);
            }
            total
        };
        let quantity = |total: &Option<Total>| {
            total.as_ref().map(|t| Quantity {
                amount: t.amount.to_string(),
                uom: t.uom.clone(),
            })
        };
        let mut commitments: Vec<CommitmentView> = records
            .into_iter()
            .filter(|r| {
                matches(&filter.site, Some(&r.key.site)) && matches(&filter.item, Some(&r.key.item))
            })
            .map(|r| {
                let (firm, forecast) = (
                    sum(CommitmentLevel::Firm, &r.buckets),
                    sum(CommitmentLevel::Forecast, &r.buckets),
                );
                // What the site received and has in transit, in the firm quantity's unit.
                let unit = firm.as_ref().or(forecast.as_ref()).map(|t| t.uom.clone());
                let mut unit_mismatches = [&firm, &forecast]
                    .into_iter()
                    .flatten()
                    .map(|t| t.unit_mismatches)
                    .sum::<u64>();
                let (mut received, mut in_transit) = (Amount::ZERO, Amount::ZERO);
                for s in stock
                    .iter()
                    .filter(|s| s.key.site == r.key.site && s.key.item == r.key.item)
                {
                    if s.received.is_zero() && s.in_transit().is_zero() {
                        continue;
                    }
                    let from = s.uom.as_deref().unwrap_or_default();
                    let to = unit.as_deref().unwrap_or(from);
                    let convert = |amount: Amount| amount.in_unit(from, to);
                    match (convert(s.received), convert(s.in_transit())) {
                        (Some(rc), Some(it)) => {
                            received = received.plus(rc);
                            in_transit = in_transit.plus(it);
                        }
                        _ => {
                            unit_mismatches += 1;
                            received = received.plus(s.received);
                            in_transit = in_transit.plus(s.in_transit());
                        }
                    }
                }
                CommitmentView {
                    firm: quantity(&firm),
                    forecast: quantity(&forecast),
                    site: r.key.site,
                    supplier: r.key.supplier,
                    item: r.key.item,
                    purchase_order: r.purchase_order,
                    buckets: r.buckets,
                    cumulative_received: r.cumulative_received,
                    received,
                    in_transit,
                    unit_mismatches,
                    updated: r.updated,
                }
            })
            .collect();
        commitments
            .sort_by(|a, b| (&a.site, &a.supplier, &a.item).cmp(&(&b.site, &b.supplier, &b.item)));
        Ok(commitments)
    }

    /// Every source system with the age of its last update, sorted by site and system.
    pub async fn sources(&self) -> Result<Vec<SourceView>, ProjectionError> {
        let records: Vec<SourceRecord> = self.buckets.read_all(&self.buckets.sources).await?;
        let now = OffsetDateTime::now_utc();
        let mut sources: Vec<SourceView> = records
            .into_iter()
            .map(|r| {
                let age_seconds = OffsetDateTime::parse(&r.last_published, &Rfc3339)
                    .map_or(0, |t| (now - t).whole_seconds().max(0));
                SourceView {
                    site: r.site,
                    system: r.system,
                    events: r.events,
                    newest_event_time: r.newest_event_time,
                    last_published: r.last_published,
                    age_seconds,
                }
            })
            .collect();
        sources.sort_by(|a, b| (&a.site, &a.system).cmp(&(&b.site, &b.system)));
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::state::{BucketKey, HoldKey, StockKey};
    use millrace_core::canonical::{HoldScope, QualityHold};

    /// True when bucket key `key` matches the subject pattern `pattern` (`*` one token, a
    /// last `>` the rest), as the server picks subjects.
    fn matches_pattern(pattern: &str, key: &str) -> bool {
        let (p, k): (Vec<&str>, Vec<&str>) =
            (pattern.split('.').collect(), key.split('.').collect());
        for (i, token) in p.iter().enumerate() {
            match *token {
                ">" => return k.len() > i,
                "*" if i < k.len() => {}
                t if k.get(i) == Some(&t) => {}
                _ => return false,
            }
        }
        p.len() == k.len()
    }

    fn hold(
        site: &str,
        item: Option<&str>,
        lot: Option<&str>,
        location: Option<&str>,
    ) -> HoldRecord {
        let scope = HoldScope {
            item: item.map(Into::into),
            lot: lot.map(Into::into),
            location: location.map(Into::into),
            supplier: None,
        };
        let key = HoldKey {
            site: site.into(),
            hold_id: "NCR-1".into(),
            item: scope.item.clone(),
            lot: scope.lot.clone(),
        };
        HoldRecord::new(
            key,
            &QualityHold {
                hold_id: "NCR-1".into(),
                action: HoldAction::Placed,
                scope,
                reason: "r".into(),
                disposition: None,
            },
        )
    }

    fn stock(site: &str, item: &str, location: Option<&str>, lot: Option<&str>) -> StockKey {
        StockKey {
            site: site.into(),
            item: item.into(),
            location: location.map(Into::into),
            lot: lot.map(Into::into),
        }
    }

    #[test]
    fn key_patterns_find_every_hold_and_position_a_filter_concerns() {
        let holds = [
            hold("P1", Some("RM-1"), Some("L1"), None),
            hold("P2", Some("RM-1"), Some("L1"), None),
            hold("P1", None, Some("L1"), None),
            hold("P1", Some("RM-1"), None, None),
            hold("P2", Some("RM-1"), None, None),
            hold("P1", None, None, Some("COLD")),
            hold("P1", Some("RM-1"), None, Some("COLD")),
            hold("P1", Some("RM-2"), Some("L2"), None),
            hold("P1", Some("a.b c"), Some("L 1"), None),
        ];
        let positions = [
            stock("P1", "RM-1", Some("WH1"), Some("L1")),
            stock("P1", "RM-1", Some("COLD"), Some("L1")),
            stock("P2", "RM-1", None, Some("L1")),
            stock("P1", "RM-1", Some("WH1"), None),
            stock("P1", "RM-2", Some("COLD"), Some("L2")),
            stock("P2", "RM-2", Some("WH1"), Some("L1")),
            stock("P1", "a.b c", Some("WH1"), Some("L 1")),
        ];
        let values = |v: &[&str]| -> Vec<Option<String>> {
            std::iter::once(None)
                .chain(v.iter().map(|s| Some((*s).to_owned())))
                .collect()
        };
        for site in values(&["P1", "P2"]) {
            for item in values(&["RM-1", "RM-2", "a.b c"]) {
                for lot in values(&["L1", "L2", "L 1"]) {
                    let (s, i, l) = (site.as_ref(), item.as_ref(), lot.as_ref());
                    let asked = stock_patterns(s, i, l);
                    let positions_asked: Vec<&StockKey> = positions
                        .iter()
                        .filter(|p| {
                            matches(&site, Some(&p.site))
                                && matches(&item, Some(&p.item))
                                && matches(&lot, p.lot.as_ref())
                        })
                        .collect();
                    for p in &positions_asked {
                        assert!(
                            asked.iter().any(|a| matches_pattern(a, &p.bucket_key())),
                            "{p:?} {asked:?}"
                        );
                        // Every hold that blocks a position asked for is read.
                        let covering = covering_hold_patterns(s, i, l);
                        for h in holds.iter().filter(|h| h.blocks(p)) {
                            assert!(
                                covering
                                    .iter()
                                    .any(|c| matches_pattern(c, &h.key.bucket_key())),
                                "{:?} blocks {p:?}, not in {covering:?}",
                                h.key
                            );
                            // And every position it blocks.
                            let blocked = blocked_patterns(h);
                            for q in positions.iter().filter(|q| h.blocks(q)) {
                                assert!(
                                    blocked.iter().any(|b| matches_pattern(b, &q.bucket_key()))
                                );
                            }
                        }
                    }
                    // Every hold the filter concerns is read.
                    if i.is_some() || l.is_some() {
                        let mut read = covering_hold_patterns(s, i, l);
                        read.push(format!("{}.*.{}.{}", token(s), token(i), token(l)));
                        for h in holds
                            .iter()
                            .filter(|h| h.concerns(&site, &item, &lot, &positions_asked))
                        {
                            assert!(
                                read.iter().any(|r| matches_pattern(r, &h.key.bucket_key())),
                                "{:?} concerns {site:?} {item:?} {lot:?}, not in {read:?}",
                                h.key
                            );
                        }
                    }
                }
            }
        }
        // The gate's question reads narrowly: the lot's own keys and the site's holds without a lot.
        let (site, lot) = ("P1".to_owned(), "L1".to_owned());
        assert_eq!(
            covering_hold_patterns(Some(&site), None, Some(&lot)),
            ["*.*.*.L1", "P1.*.*.="]
        );
        assert_eq!(stock_patterns(Some(&site), None, Some(&lot)), ["P1.*.*.L1"]);
    }
}
