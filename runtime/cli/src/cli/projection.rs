//! `millrace projection rebuild|show`: rebuilding the visibility projection from the canonical
//! stream, and showing what it holds as terminal tables or JSON.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use millrace::canonical::Quantity;
use millrace::projection::Projection;
use millrace::projection::query::{Filter, InventoryFilter, Visibility};

/// Projection commands.
#[derive(Debug, Subcommand)]
pub enum ProjectionCommand {
    /// Drops the projected state and applies the whole canonical stream again from its first
    /// event; prints how many events were applied and how many records each bucket holds.
    Rebuild {
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Shows the projected state: stock positions with their holds, work-order progress,
    /// quality holds, supplier commitments against receipts, or the age of each source's last
    /// update.
    Show {
        /// What to show.
        what: View,
        /// Only this item.
        #[arg(long)]
        item: Option<String>,
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// Only this lot (inventory and holds).
        #[arg(long)]
        lot: Option<String>,
        /// Print JSON (the query API's shape) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: super::Connection,
    },
}

/// The views of `projection show`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum View {
    /// Stock by site, item, location and lot: on hand, blocked, available, in transit.
    Inventory,
    /// Work orders: state, completed and scrapped, material consumed.
    WorkOrders,
    /// Quality holds, open and released, with the positions they block.
    Holds,
    /// Supplier commitments: firm and forecast against received and in transit.
    Commitments,
    /// Source systems: events and the age of the last update.
    Sources,
}

/// Runs a projection command.
pub async fn run(command: ProjectionCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProjectionCommand::Rebuild { connection } => {
            let (config, client) = connection.connect().await?;
            let js = async_nats::jetstream::new(client);
            let projection = Projection::open(&js, &config).await?;
            let report = projection
                .rebuild()
                .await
                .context("rebuilding the projection failed; run the rebuild again")?;
            let [inventory, work_orders, holds, commitments, sources] = report.records;
            let change = millrace::audit::Change::new(
                millrace::audit::Action::Rebuild,
                millrace::audit::Target::Projection,
                format!(
                    "rebuilds the projection from {}: {} event(s) read, {} applied",
                    config.streams.canonical, report.events, report.applied
                ),
            )
            .after(&serde_json::json!({
                "events": report.events, "applied": report.applied,
                "unchanged": report.unchanged, "unreadable": report.unreadable,
                "records": report.records,
            }));
            millrace::audit::AuditTrail::new(js.clone(), &config)
                .record(&millrace::audit::Actor::os_user(), change)
                .await?;
            println!(
                "rebuilt from stream {}: {} event(s) read, {} applied, {} unchanged, {} unreadable",
                config.streams.canonical,
                report.events,
                report.applied,
                report.unchanged,
                report.unreadable
            );
            println!(
                "records: {inventory} stock position(s), {work_orders} work order(s), {holds} hold(s), \
                 {commitments} commitment(s), {sources} source(s)"
            );
            Ok(ExitCode::SUCCESS)
        }
        ProjectionCommand::Show {
            what,
            item,
            site,
            lot,
            json,
            connection,
        } => {
            let (config, client) = connection.connect().await?;
            let js = async_nats::jetstream::new(client);
            let visibility = Visibility::open(&js, &config.projection).await?;
            let filter = Filter {
                site: site.clone(),
                item: item.clone(),
                lot: lot.clone(),
            };
            let table = match what {
                View::Inventory => {
                    let rows = visibility
                        .inventory(&InventoryFilter { item, site, lot })
                        .await?;
                    output(json, &rows, inventory_table)?
                }
                View::WorkOrders => {
                    output(json, &visibility.work_orders(&filter).await?, |rows| {
                        let header = [
                            "SITE",
                            "WORK ORDER",
                            "ITEM",
                            "STATE",
                            "SINCE",
                            "PLANNED",
                            "COMPLETED",
                            "SCRAPPED",
                            "CONSUMED",
                        ];
                        let body = rows.iter().map(|w| {
                            let consumed: Vec<String> = w
                                .consumed
                                .iter()
                                .map(|(item, q)| format!("{item} {}", qty(Some(q))))
                                .collect();
                            vec![
                                w.site.clone(),
                                w.work_order.clone(),
                                opt(w.item.as_ref()),
                                w.state.map_or("-".into(), |s| kebab(&s)),
                                opt(w.state_since.as_ref()),
                                qty(w.planned.as_ref()),
                                qty(w.completed.as_ref().or(w.reported_completed.as_ref())),
                                qty(w.scrapped.as_ref().or(w.reported_scrapped.as_ref())),
                                consumed.join(", "),
                            ]
                        });
                        super::table(&header, body)
                    })?
                }
                View::Holds => output(json, &visibility.holds(&filter).await?, |rows| {
                    let header = [
                        "SITE", "HOLD", "ITEM", "LOT", "STATE", "PLACED", "RELEASED", "BLOCKS",
                        "REASON",
                    ];
                    let body = rows.iter().map(|h| {
                        vec![
                            h.site.clone(),
                            h.hold_id.clone(),
                            opt(h.item.as_ref()),
                            opt(h.lot.as_ref()),
                            if h.open { "open" } else { "released" }.into(),
                            opt(h.placed_at.as_ref()),
                            opt(h.released_at.as_ref()),
                            format!("{} position(s)", h.blocked_positions),
                            h.reason.clone(),
                        ]
                    });
                    super::table(&header, body)
                })?,
                View::Commitments => {
                    output(json, &visibility.commitments(&filter).await?, |rows| {
                        let header = [
                            "SITE",
                            "SUPPLIER",
                            "ITEM",
                            "PO",
                            "FIRM",
                            "FORECAST",
                            "CUM RECEIVED",
                            "RECEIVED",
                            "IN TRANSIT",
                        ];
                        let body = rows.iter().map(|c| {
                            vec![
                                c.site.clone(),
                                c.supplier.clone(),
                                c.item.clone(),
                                opt(c.purchase_order.as_ref()),
                                qty(c.firm.as_ref()),
                                qty(c.forecast.as_ref()),
                                qty(c.cumulative_received.as_ref()),
                                c.received.to_string(),
                                c.in_transit.to_string(),
                            ]
                        });
                        super::table(&header, body)
                    })?
                }
                View::Sources => output(json, &visibility.sources().await?, |rows| {
                    let header = [
                        "SITE",
                        "SYSTEM",
                        "EVENTS",
                        "NEWEST EVENT",
                        "LAST UPDATE",
                        "AGE",
                    ];
                    let body = rows.iter().map(|s| {
                        vec![
                            s.site.clone(),
                            s.system.clone(),
                            s.events.to_string(),
                            opt(s.newest_event_time.as_ref()),
                            s.last_published.clone(),
                            age(s.age_seconds),
                        ]
                    });
                    super::table(&header, body)
                })?,
            };
            print!("{table}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The inventory table: one line per position, its holds at the end.
pub fn inventory_table(rows: &[millrace::projection::query::InventoryPosition]) -> String {
    let header = [
        "SITE",
        "ITEM",
        "LOCATION",
        "LOT",
        "ON HAND",
        "BLOCKED",
        "AVAILABLE",
        "IN TRANSIT",
        "UOM",
        "HOLDS",
    ];
    let body = rows.iter().map(|p| {
        vec![
            p.site.clone(),
            p.item.clone(),
            opt(p.location.as_ref()),
            opt(p.lot.as_ref()),
            p.on_hand.to_string(),
            p.blocked.to_string(),
            p.available.to_string(),
            p.in_transit.to_string(),
            opt(p.uom.as_ref()),
            p.holds.join(", "),
        ]
    });
    super::table(&header, body)
}

/// JSON of `rows`, or the table `table` makes of them; an empty table says so.
fn output<T: Serialize>(
    json: bool,
    rows: &[T],
    table: impl FnOnce(&[T]) -> String,
) -> anyhow::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(rows)?));
    }
    if rows.is_empty() {
        return Ok("nothing projected yet (is the projection running? `millrace projection rebuild` builds it from the stream)\n".into());
    }
    Ok(table(rows))
}

fn opt(value: Option<&String>) -> String {
    value.map_or_else(|| "-".to_owned(), Clone::clone)
}

fn qty(q: Option<&Quantity>) -> String {
    q.map_or_else(|| "-".to_owned(), |q| format!("{} {}", q.amount, q.uom))
}

fn kebab<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
