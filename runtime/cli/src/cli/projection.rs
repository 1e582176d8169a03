//! `millrace projection rebuild|show`: rebuilding the visibility projection from the canonical
//! stream, and showing what it holds as terminal tables or JSON.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use millrace::canonical::Quantity;
use millrace::projection::Projection;
use millrace::projection::postings::{PostingFilter, PostingsView, RouteProgress};
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
    /// quality holds, supplier commitments against receipts, the age of each source's last
    /// update, or the postings to the systems of record (per target: posted, rejected by
    /// reason, pending and oldest pending, posting delay; then each posting).
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
        /// Only this target (postings).
        #[arg(long)]
        target: Option<String>,
        /// Only this event kind, e.g. `production-completion` (postings).
        #[arg(long)]
        kind: Option<String>,
        /// Only postings in this state (postings).
        #[arg(long, value_parser = ["pending", "rejected", "posted"])]
        state: Option<String>,
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
    /// Postings to the outbound targets: figures per target, then each posting.
    Postings,
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
            let [
                inventory,
                work_orders,
                holds,
                commitments,
                sources,
                postings,
            ] = report.records;
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
                "acknowledgements": report.acknowledgements,
                "dead_letters": report.dead_letters, "records": report.records,
            }));
            millrace::audit::AuditTrail::new(js.clone(), &config)
                .record(&millrace::audit::Actor::os_user(), change)
                .await?;
            outln!(
                "rebuilt from stream {}: {} event(s) read, {} applied, {} unchanged, {} unreadable",
                config.streams.canonical,
                report.events,
                report.applied,
                report.unchanged,
                report.unreadable
            );
            if report.acknowledgements > 0 {
                outln!(
                    "and {} posting acknowledgement(s) from stream {}",
                    report.acknowledgements,
                    config.streams.posting
                );
            }
            if report.dead_letters > 0 {
                outln!(
                    "and {} outbound dead letter(s) from stream {}",
                    report.dead_letters,
                    config.streams.dlq
                );
            }
            outln!(
                "records: {inventory} stock position(s), {work_orders} work order(s), {holds} hold(s), \
                 {commitments} commitment(s), {sources} source(s), {postings} posting record(s)"
            );
            Ok(ExitCode::SUCCESS)
        }
        ProjectionCommand::Show {
            what,
            item,
            site,
            lot,
            target,
            kind,
            state,
            json,
            connection,
        } => {
            let (config, client) = connection.connect().await?;
            let js = async_nats::jetstream::new(client);
            let visibility = Visibility::open(&js, &config.projection).await?;
            // What the filters given were, so that an empty answer says it is theirs.
            let given: Vec<String> = [
                ("item", &item),
                ("site", &site),
                ("lot", &lot),
                ("target", &target),
                ("kind", &kind),
                ("state", &state),
            ]
            .iter()
            .filter_map(|(name, value)| {
                value
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("--{name} {v}"))
            })
            .collect();
            let empty = match (given.is_empty(), &what) {
                (false, _) => format!("nothing matches {}\n", given.join(" ")),
                (true, View::Postings) => "no postings projected yet (outbound routes post \
                    canonical events; an event an outbound plugin refused before any request was \
                    sent is a dead letter: `millrace dlq list`; is the projection running?)\n"
                    .to_owned(),
                (true, _) => "nothing projected yet (is the projection running? `millrace \
                    projection rebuild` builds it from the stream)\n"
                    .to_owned(),
            };
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
                            "OTHER UNITS",
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
                                mixed(w.unit_mismatches),
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
                            "OTHER UNITS",
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
                                mixed(c.unit_mismatches),
                            ]
                        });
                        super::table(&header, body)
                    })?
                }
                View::Postings => {
                    let filter = PostingFilter {
                        site,
                        target,
                        kind,
                        route: None,
                        state: state
                            .map(|s| serde_json::from_value(serde_json::Value::String(s)))
                            .transpose()?,
                        limit: None,
                    };
                    let progress = RouteProgress::read(&js, &config).await;
                    let view = visibility.postings(&filter, &progress).await?;
                    if json {
                        format!("{}\n", serde_json::to_string_pretty(&view)?)
                    } else {
                        postings_tables(&view)
                    }
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
            out!("{}", if table.is_empty() { &empty } else { &table });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The count of quantities a sum took in a unit it could not convert (`-` for none): such a
/// sum mixes units.
fn mixed(unit_mismatches: u64) -> String {
    match unit_mismatches {
        0 => "-".to_owned(),
        n => format!("{n} (sum mixes units)"),
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
            match p.unit_mismatches {
                // The amounts mix units that cannot be converted: say so where they are read.
                0 => opt(p.uom.as_ref()),
                n => format!("{} (+{n} in other units)", opt(p.uom.as_ref())),
            },
            p.holds.join(", "),
        ]
    });
    super::table(&header, body)
}

/// The postings: one line per target with its figures, then one per posting.
fn postings_tables(view: &PostingsView) -> String {
    if view.postings.is_empty() && view.targets.is_empty() {
        return String::new();
    }
    let seconds = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s"));
    let header = [
        "TARGET",
        "POSTED",
        "REJECTED",
        "PENDING",
        "OLDEST PENDING",
        "MEAN DELAY",
        "MAX DELAY",
        "REJECTIONS",
    ];
    let body = view.targets.iter().map(|t| {
        vec![
            t.target.clone(),
            t.counts.posted.to_string(),
            t.counts.rejected.to_string(),
            t.counts.pending.to_string(),
            t.oldest_pending_seconds.map_or("-".into(), age),
            seconds(t.delay.mean_seconds),
            seconds(t.delay.max_seconds),
            reasons(&t.counts.rejections),
        ]
    });
    let mut out = super::table(&header, body);
    out.push('\n');
    let header = [
        "STATE",
        "TARGET",
        "ROUTE",
        "KIND",
        "SITE",
        "BUSINESS KEY",
        "SOURCE TIME",
        "DOCUMENT",
        "DELAY",
        "REASON",
    ];
    let body = view.postings.iter().map(|p| {
        vec![
            kebab(&p.state),
            p.target.clone(),
            p.route.clone(),
            p.kind.clone(),
            p.site.clone(),
            p.business_key.clone(),
            p.source_time.clone(),
            opt(p.document.as_ref()),
            seconds(p.delay_seconds),
            opt(p.reason.as_ref()),
        ]
    });
    out.push_str(&super::table(&header, body));
    out
}

fn reasons(rejections: &std::collections::BTreeMap<String, u64>) -> String {
    let all: Vec<String> = rejections
        .iter()
        .map(|(reason, n)| format!("{n}× {reason}"))
        .collect();
    if all.is_empty() {
        "-".into()
    } else {
        all.join("; ")
    }
}

/// JSON of `rows`, or the table `table` makes of them; nothing when there are none (the caller
/// says why).
fn output<T: Serialize>(
    json: bool,
    rows: &[T],
    table: impl FnOnce(&[T]) -> String,
) -> anyhow::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(rows)?));
    }
    if rows.is_empty() {
        return Ok(String::new());
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
