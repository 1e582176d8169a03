//! `--calls`: what one call costs, without NATS. The SDK's readers on the bench's messages, the
//! plugins' mappings compiled natively (arm b's code), and each plugin as a component in the
//! sandbox: a call on a reused session (as the host's workers call it) and a fresh
//! instantiation (what a recycled or new session costs). Beside them, the Node.js service's
//! mapping module timed in Node itself (`node-service/calls.mjs`), the per-message cost of arm
//! (e) without its NATS work. Each figure is the mean of the fastest of five rounds.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use millrace::sandbox::{PluginComponent, RawMessage, Session};
use millrace_sdk::records::{Delimited, FixedField, FixedLayout};
use millrace_sdk::{edifact, x12};
use serde_json::json;

use crate::arms::{Arm, Setup};
use crate::service::Mapping;
use crate::workload;

/// A fixed-width record of the kind legacy MES exports write: 12 fields, 118 columns.
const FIXED: FixedLayout = FixedLayout::new(&[
    FixedField::new("record-type", 1, 3),
    FixedField::new("sequence", 4, 6),
    FixedField::new("transaction", 10, 12),
    FixedField::new("work-order", 22, 10),
    FixedField::new("operation", 32, 4),
    FixedField::new("item", 36, 18),
    FixedField::new("lot", 54, 14),
    FixedField::new("good-qty", 68, 9),
    FixedField::new("scrap-qty", 77, 9),
    FixedField::new("unit", 86, 3),
    FixedField::new("date", 89, 8),
    FixedField::new("location", 97, 22),
]);
const FIXED_LINE: &str = "PRD000101T000000001PWO-4711  0010MAT-100           LOT-2603-01   000125000000002000PC 20260302FG-01                   ";

/// The production record of the bench's shift report, as a delimited layout.
const DELIMITED: Delimited = Delimited::new(
    '|',
    &[
        "record-type",
        "sequence",
        "transaction",
        "work-order",
        "operation",
        "item",
        "lot",
        "good-qty",
        "scrap-qty",
        "unit",
        "date",
        "time",
        "location",
    ],
);

/// One figure: what was timed and the mean microseconds per call.
struct Figure {
    key: String,
    what: String,
    micros: f64,
}

/// Calls `f` for about `budget` (after a short warm-up) and returns the mean µs per call of the
/// fastest of five rounds: on a shared machine the other rounds measure the neighbours too.
fn per_call(budget: Duration, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..10 {
        f()?;
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < budget / 5 {
            for _ in 0..4 {
                f()?;
            }
            calls += 4;
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    Ok(best)
}

/// Times everything and prints a table and, as the last line, a JSON summary. `arms` (the
/// keys of `--arms`), when not empty, limits the plugins and the Node.js figures to those arms.
pub async fn measure(setup: &Setup, budget: Duration, arms: &[String]) -> anyhow::Result<()> {
    let wanted = |arm: Arm| arms.is_empty() || arms.iter().any(|key| key == arm.key());
    let shift = workload::payload(0);
    let asn = workload::payload(1);
    let desadv_path = setup
        .root
        .join("plugins/edifact-desadv/fixtures/desadv-d96a-sscc-batch.edi");
    let desadv = std::fs::read(&desadv_path)
        .with_context(|| format!("cannot read {}", desadv_path.display()))?;
    let mut figures = Vec::new();

    figures.push(Figure {
        key: "x12_parse_856".to_owned(),
        what: format!("x12::parse + walk, the bench 856 ({} bytes)", asn.len()),
        micros: per_call(budget, || {
            let interchange = x12::parse(&asn).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut total = 0;
            for (_, set) in interchange.transaction_sets() {
                for segment in &set.segments {
                    for element in segment.elements() {
                        total += element.len();
                    }
                }
            }
            black_box(total);
            Ok(())
        })?,
    });
    figures.push(Figure {
        key: "edifact_parse_desadv".to_owned(),
        what: format!(
            "edifact::parse + walk, a DESADV fixture ({} bytes)",
            desadv.len()
        ),
        micros: per_call(budget, || {
            let interchange = edifact::parse(&desadv).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut total = 0;
            for message in &interchange.messages {
                for segment in &message.segments {
                    for n in 1..=6 {
                        total += segment.value(n, 1).len() + segment.value(n, 2).len();
                    }
                }
            }
            black_box(total);
            Ok(())
        })?,
    });
    figures.push(Figure {
        key: "records_fixed_line".to_owned(),
        what: format!(
            "records::FixedLayout::read + 12 values ({} columns)",
            FIXED_LINE.len()
        ),
        micros: per_call(budget, || {
            let record = FIXED.read(1, black_box(FIXED_LINE))?;
            let mut total = 0;
            for field in FIXED.fields() {
                total += record.value(field.name)?.len();
            }
            black_box(total);
            Ok(())
        })?,
    });
    let text = String::from_utf8_lossy(&shift).into_owned();
    let prd = text
        .lines()
        .nth(1)
        .context("the shift report has no PRD line")?
        .to_owned();
    figures.push(Figure {
        key: "records_delimited_line".to_owned(),
        what: "records::Delimited::read + 13 values (the PRD line)".to_owned(),
        micros: per_call(budget, || {
            let record = DELIMITED.read(2, black_box(&prd))?;
            let mut total = 0;
            for index in 0..record.len() {
                total += record.value(index)?.len();
            }
            black_box(total);
            Ok(())
        })?,
    });
    for (key, index) in [("native_map_shift", 0u64), ("native_map_856", 1)] {
        let (subject, payload) = (workload::subject(index), workload::payload(index));
        figures.push(Figure {
            key: key.to_owned(),
            what: format!(
                "native mapping (arm b's code), {}",
                if index == 0 { "shift report" } else { "856" }
            ),
            micros: per_call(budget, || {
                black_box(crate::native::map(&subject, &payload)?);
                Ok(())
            })?,
        });
    }

    for (arm, language) in [
        (Arm::Rust, "Rust"),
        (Arm::Python, "Python"),
        (Arm::JavaScript, "JavaScript"),
    ] {
        if !wanted(arm) {
            continue;
        }
        let (shift_dir, asn_dir) = setup.plugin_dirs(arm);
        for (index, dir) in [(0u64, shift_dir), (1, asn_dir)] {
            let plugin = setup.load(&dir).await?;
            let document = if index == 0 { "shift report" } else { "856" };
            let (call, instantiate) =
                tokio::task::spawn_blocking(move || sandboxed(&plugin, index, budget)).await??;
            figures.push(Figure {
                key: format!("wasm_{}_call_{}", key_of(language), key_of(document)),
                what: format!("{language} plugin in the sandbox, {document}: one call"),
                micros: call,
            });
            figures.push(Figure {
                key: format!("wasm_{}_instantiate_{}", key_of(language), key_of(document)),
                what: format!("{language} plugin: instantiation (a new session)"),
                micros: instantiate,
            });
        }
    }
    let node = if wanted(Arm::Node) {
        node_calls(&setup.root, budget).await?
    } else {
        Vec::new()
    };
    for (key, what, micros) in node {
        figures.push(Figure {
            key: key.to_owned(),
            what,
            micros,
        });
    }

    println!("{:<64} {:>12}", "per call, no NATS", "µs");
    for figure in &figures {
        println!("{:<64} {:>12.1}", figure.what, figure.micros);
    }
    let summary: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|f| (f.key.clone(), json!((f.micros * 10.0).round() / 10.0)))
        .collect();
    println!("{}", json!({ "calls_us": summary }));
    Ok(())
}

/// A label as a JSON key: `shift report` gives `shift_report`.
fn key_of(label: &str) -> String {
    label.to_lowercase().replace(' ', "_")
}

/// The mean µs of one call on a reused session, and of one instantiation.
fn sandboxed(plugin: &PluginComponent, index: u64, budget: Duration) -> anyhow::Result<(f64, f64)> {
    let route = Mapping::route_context("calls");
    let raw = RawMessage {
        subject: workload::subject(index),
        headers: Vec::new(),
        payload: workload::payload(index).to_vec(),
    };
    let mut session = Session::new(plugin, &route)?;
    let call = per_call(budget, || {
        if session.is_spent() {
            session = Session::new(plugin, &route)?;
        }
        black_box(session.call(&raw)?);
        Ok(())
    })?;
    let instantiate = per_call(budget / 2, || {
        black_box(Session::new(plugin, &route)?);
        Ok(())
    })?;
    Ok((call, instantiate))
}

/// The Node.js service's mapping module timed in Node (`node-service/calls.mjs`).
async fn node_calls(
    root: &Path,
    budget: Duration,
) -> anyhow::Result<Vec<(&'static str, String, f64)>> {
    let folder = tempfile::tempdir()?;
    let (shift, asn) = (folder.path().join("shift"), folder.path().join("856"));
    std::fs::write(&shift, workload::payload(0))?;
    std::fs::write(&asn, workload::payload(1))?;
    let output = tokio::process::Command::new("node")
        .arg(root.join("bench/node-service/calls.mjs"))
        .arg(&shift)
        .arg(&asn)
        .arg(budget.as_secs_f64().to_string())
        .arg(crate::SITE)
        .output()
        .await
        .context("cannot run node (the Node.js figures need Node.js 18+)")?;
    anyhow::ensure!(
        output.status.success(),
        "node-service/calls.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("node-service/calls.mjs printed no JSON")?;
    let read = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    Ok(vec![
        (
            "node_map_shift",
            "Node.js, the same JavaScript mapping, shift report".to_owned(),
            read("shift_us"),
        ),
        (
            "node_map_856",
            "Node.js, the same JavaScript mapping, 856".to_owned(),
            read("asn_us"),
        ),
    ])
}
