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
    CommitmentRecord, HoldRecord, SourceRecord, StockRecord, Total, WorkOrderRecord, matches,
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

    async fn open_holds(&self) -> Result<Vec<HoldRecord>, ProjectionError> {
        let holds: Vec<HoldRecord> = self.buckets.read_all(&self.buckets.holds).await?;
        Ok(holds.into_iter().filter(HoldRecord::is_open).collect())
    }

    /// Stock positions matching `filter`, sorted by site, item, location and lot, with
    /// blocked decided now from the open holds.
    pub async fn inventory(
        &self,
        filter: &InventoryFilter,
    ) -> Result<Vec<InventoryPosition>, ProjectionError> {
        let records: Vec<StockRecord> = self.buckets.read_all(&self.buckets.inventory).await?;
        let holds = self.open_holds().await?;
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
        let records: Vec<WorkOrderRecord> =
            self.buckets.read_all(&self.buckets.work_orders).await?;
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
    /// released, sorted by site,
    /// hold id, item and lot, each with the number of positions it blocks now.
    pub async fn holds(&self, filter: &Filter) -> Result<Vec<HoldView>, ProjectionError> {
        let records: Vec<HoldRecord> = self.buckets.read_all(&self.buckets.holds).await?;
        let stock: Vec<StockRecord> = self.buckets.read_all(&self.buckets.inventory).await?;
        let positions: Vec<&super::state::StockKey> = stock.iter().map(|s| &s.key).collect();
        let mut holds: Vec<HoldView> = records
            .into_iter()
            // What the hold covers, not only the fields it names: an item-wide hold is found
            // by a lot of the item, a lot hold by the item and by every site where the lot lies.
            .filter(|r| r.concerns(&filter.site, &filter.item, &filter.lot, &positions))
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
        let records: Vec<CommitmentRecord> =
            self.buckets.read_all(&self.buckets.commitments).await?;
        let stock: Vec<StockRecord> = self.buckets.read_all(&self.buckets.inventory).await?;
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
