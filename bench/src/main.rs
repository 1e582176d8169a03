//! `cargo run --release -p millrace-bench`: millrace beside the raw machine, a native mapping
//! and a Node.js service, on core NATS and on JetStream, with the same workload in every arm.
//! docs/PERFORMANCE.md describes the arms, what each measures, and a recorded run.

mod arms;
mod calls;
mod check;
mod hostile;
mod measure;
mod native;
mod process;
mod service;
mod workload;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use arms::{Arm, Durability, Mode, Server, Setup};
use measure::{Latency, Probe};

/// The site code every route maps to.
pub const SITE: &str = "PLANT1";

/// millrace performance benchmark (see docs/PERFORMANCE.md).
#[derive(Debug, Parser)]
#[command(name = "millrace-bench", version)]
struct Args {
    /// Short measurements (under a minute in all, once plugins are built and the compile
    /// cache is warm); the last line is a one-line JSON summary in every mode.
    #[arg(long)]
    quick: bool,
    /// Seconds each throughput and each latency measurement lasts [default: 5, 1 with --quick].
    #[arg(long)]
    seconds: Option<f64>,
    /// Raw messages in flight during the throughput measurement (closed loop).
    #[arg(long, default_value_t = 512)]
    window: u64,
    /// Threads running mappings in arms (b), (c) and (d) and in the hostile-neighbour host: the
    /// host's `host.workers`, and the native pool of (b) alike [default: the host's default,
    /// one per CPU].
    #[arg(long)]
    workers: Option<usize>,
    /// Run only these arms, comma-separated: a_raw, b_native, c_millrace_rust,
    /// d_millrace_python, d_millrace_js, e_node.
    #[arg(long, value_delimiter = ',')]
    arms: Vec<String>,
    /// Run only these modes, comma-separated: core, jetstream (both by default). With one arm
    /// and one mode a profiler attached to the bench sees that one path alone.
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Skip the host-process figures: memory with 10 plugins, cold start, two hosts.
    #[arg(long)]
    skip_process: bool,
    /// Also measure a steady route beside hostile ones (deadline and memory breaches); on by
    /// default without --quick.
    #[arg(long)]
    hostile: bool,
    /// Skip the hostile-neighbour measurement.
    #[arg(long, conflicts_with = "hostile")]
    skip_hostile: bool,
    /// Skip the durable JetStream figures ((a), (c) and (e) on one `sync_interval: always`
    /// server, R1, and on a three-node always-fsyncing cluster, R3).
    #[arg(long)]
    skip_durable: bool,
    /// Only the per-call figures, no NATS: the SDK's readers, the native mappings, each plugin
    /// in the sandbox (a call and an instantiation) and the Node.js mapping, for --seconds each
    /// (with --arms, only the plugins and Node.js of the arms named).
    #[arg(long)]
    calls: bool,
}

/// One arm's figures in one mode.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    throughput: f64,
    latency: Latency,
    cpu: measure::CpuPerMessage,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let seconds = args.seconds.unwrap_or(if args.quick { 1.0 } else { 5.0 });
    let measure = Duration::from_secs_f64(seconds);
    let warm_up = Duration::from_secs_f64(if args.quick { 0.3 } else { 1.0 });
    let root = std::path::absolute(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))?;
    let state_dir = root.join("target/millrace-bench");
    std::fs::create_dir_all(&state_dir)?;
    let sandbox = millrace::sandbox::Sandbox::new(Some(&state_dir.join("cache")))?;
    let setup = Setup {
        root,
        state_dir,
        sandbox,
        workers: args
            .workers
            .unwrap_or_else(|| millrace::config::HostConfig::default().workers),
    };
    if args.calls {
        print_machine();
        return calls::measure(&setup, measure, &args.arms).await;
    }
    let selected: Vec<Arm> = Arm::ALL
        .into_iter()
        .filter(|arm| args.arms.is_empty() || args.arms.iter().any(|a| a == arm.key()))
        .collect();
    anyhow::ensure!(
        !selected.is_empty(),
        "--arms named no known arm; use a_raw, b_native, c_millrace_rust, d_millrace_python, d_millrace_js, e_node"
    );

    let modes: Vec<Mode> = [Mode::Core, Mode::JetStream]
        .into_iter()
        .filter(|mode| args.modes.is_empty() || args.modes.iter().any(|m| m == mode_key(*mode)))
        .collect();
    anyhow::ensure!(
        !modes.is_empty(),
        "--modes named no known mode; use core, jetstream"
    );

    print_machine();
    println!(
        "mapping threads: {} (the host's host.workers and (b)'s pool; --workers)",
        setup.workers
    );
    check::outputs_agree(&setup, &selected).await?;

    let mut results: BTreeMap<(&str, &str), Figures> = BTreeMap::new();
    for arm in &selected {
        for mode in modes.iter().copied() {
            let figures = measure_arm(
                &setup,
                *arm,
                mode,
                Durability::Default,
                args.window,
                warm_up,
                measure,
            )
            .await
            .with_context(|| format!("arm {} on {mode:?}", arm.key()))?;
            println!(
                "{:<34} {:<9} {:>9.0} msg/s   p50 {:>7.2} ms  p99 {:>7.2} ms at {:.0} msg/s   cpu/msg bench {:.0} µs{}, nats-server {:.0} µs{}",
                arm.title(),
                mode_key(mode),
                figures.throughput,
                figures.latency.p50_ms,
                figures.latency.p99_ms,
                figures.latency.rate,
                figures.cpu.bench_us,
                figures
                    .cpu
                    .service_us
                    .map_or(String::new(), |us| format!(", service {us:.0} µs")),
                figures.cpu.server_us,
                if figures.latency.lost > 0 {
                    format!("  ({} lost)", figures.latency.lost)
                } else {
                    String::new()
                }
            );
            results.insert((arm.key(), mode_key(mode)), figures);
        }
    }

    // The durable arms: JetStream only (core NATS stores nothing), (a), (c) and (e) where they
    // were selected, on one fsyncing server and on a three-node R3 cluster.
    let mut durable: BTreeMap<(&str, &str), Figures> = BTreeMap::new();
    if !args.skip_durable && modes.contains(&Mode::JetStream) {
        println!();
        for durability in [Durability::SyncAlways, Durability::ClusterR3] {
            for arm in selected
                .iter()
                .filter(|a| matches!(a, Arm::Raw | Arm::Rust | Arm::Node))
            {
                let figures = measure_arm(
                    &setup,
                    *arm,
                    Mode::JetStream,
                    durability,
                    args.window,
                    warm_up,
                    measure,
                )
                .await
                .with_context(|| format!("arm {} on {}", arm.key(), durability.title()))?;
                println!(
                    "{:<34} {:<34} {:>9.0} msg/s   p50 {:>7.2} ms  p99 {:>7.2} ms at {:.0} msg/s",
                    arm.title(),
                    durability.title(),
                    figures.throughput,
                    figures.latency.p50_ms,
                    figures.latency.p99_ms,
                    figures.latency.rate,
                );
                durable.insert((arm.key(), durability.key()), figures);
            }
        }
    }

    let process = if args.skip_process {
        None
    } else {
        Some(process::measure(&setup, args.quick, args.window, warm_up, measure).await?)
    };

    let hostile = if args.hostile || !(args.quick || args.skip_hostile) {
        Some(hostile::measure(&setup, measure).await?)
    } else {
        None
    };

    let get = |arm: Arm, mode: Mode| {
        results
            .get(&(arm.key(), mode_key(mode)))
            .map(|f| f.throughput)
    };
    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => Some((x / y * 100.0).round() / 100.0),
        _ => None,
    };
    let c_b = ratio(
        get(Arm::Rust, Mode::JetStream),
        get(Arm::Native, Mode::JetStream),
    );
    let c_b_core = ratio(get(Arm::Rust, Mode::Core), get(Arm::Native, Mode::Core));
    let c_a_core = ratio(get(Arm::Rust, Mode::Core), get(Arm::Raw, Mode::Core));
    let b_a_core = ratio(get(Arm::Native, Mode::Core), get(Arm::Raw, Mode::Core));
    let c_e = ratio(
        get(Arm::Rust, Mode::JetStream),
        get(Arm::Node, Mode::JetStream),
    );
    let c_e_core = ratio(get(Arm::Rust, Mode::Core), get(Arm::Node, Mode::Core));
    println!();
    let goal = |name: &str, value: Option<f64>, goal: f64| match value {
        Some(v) => println!(
            "{name:<44} {v:>5.2}  goal >= {goal:<4} {}",
            if v >= goal { "met" } else { "NOT met" }
        ),
        None => println!("{name:<44}   n/a  (arms not run)"),
    };
    // The goals of the performance issue (docs/PERFORMANCE.md).
    goal("(c)/(b) JetStream", c_b, 0.9);
    goal("(c)/(b) core NATS", c_b_core, 0.9);
    goal("(b) core / (a) core", b_a_core, 0.35);
    goal("(c)/(e) JetStream (at-least-once both)", c_e, 2.5);
    goal("(c)/(e) core NATS (at-most-once both)", c_e_core, 2.5);
    if let Some(p) = &process {
        p.print();
        let rss = p.rss_ready_mib;
        println!(
            "{:<44} {rss:>5.0}  goal <= 256 MiB {}",
            "serving RSS, 10 plugins, cold cache (MiB)",
            if rss <= 256.0 { "met" } else { "NOT met" }
        );
    }
    if let Some(h) = &hostile {
        println!(
            "steady route beside {} hostile lanes (loops, memory bombs): {:.0} msg/s of {:.0} alone ({:.2})",
            h.hostile_subjects,
            h.beside,
            h.alone,
            h.beside / h.alone.max(1.0)
        );
    }

    let mut arms_json = serde_json::Map::new();
    let mut cpu_json = serde_json::Map::new();
    for ((arm, mode), figures) in &results {
        let entry = arms_json
            .entry(arm.to_string())
            .or_insert_with(|| json!({}));
        entry[*mode] = json!((figures.throughput).round());
        let entry = cpu_json.entry(arm.to_string()).or_insert_with(|| json!({}));
        entry[*mode] = json!({
            "bench": figures.cpu.bench_us.round(),
            "nats_server": figures.cpu.server_us.round(),
        });
        if let Some(service) = figures.cpu.service_us {
            entry[*mode]["service"] = json!(service.round());
        }
    }
    let mut summary = json!({
        "quick": args.quick,
        "workers": setup.workers,
        "throughput_msgs_per_s": arms_json,
        "cpu_us_per_msg": cpu_json,
        "ratios": {
            "c_over_b": c_b,
            "c_core_over_a_core": c_a_core,
            "b_core_over_a_core": b_a_core,
            "c_over_e": c_e,
        },
    });
    if !durable.is_empty() {
        let mut durable_json = serde_json::Map::new();
        for ((arm, durability), figures) in &durable {
            let entry = durable_json
                .entry(arm.to_string())
                .or_insert_with(|| json!({}));
            entry[*durability] = json!((figures.throughput).round());
        }
        summary["jetstream_durable_msgs_per_s"] = json!(durable_json);
    }
    if let Some(p) = &process {
        summary["process"] = p.json();
    }
    if let Some(h) = &hostile {
        summary["hostile"] = json!({
            "steady_alone_msgs_per_s": h.alone.round(),
            "steady_beside_hostile_msgs_per_s": h.beside.round(),
        });
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn mode_key(mode: Mode) -> &'static str {
    match mode {
        Mode::Core => "core",
        Mode::JetStream => "jetstream",
    }
}

async fn measure_arm(
    setup: &Setup,
    arm: Arm,
    mode: Mode,
    durability: Durability,
    window: u64,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<Figures> {
    let server = Server::start_with(durability)?;
    server.ready().await?;
    let url = server.url();
    let running = arms::start(setup, arm, mode, &server).await?;
    let mut probe = Probe::start(&url, arm == Arm::Raw).await?;
    probe.watch_servers(server.pids());
    probe.watch_service(running.pid());
    let throughput = probe.throughput(window, warm_up, measure).await?;
    let cpu = probe.cpu().unwrap_or_default();
    let latency = probe.latency(throughput / 2.0, measure).await?;
    running.stop().await?;
    drop(probe);
    drop(server);
    Ok(Figures {
        throughput,
        latency,
        cpu,
    })
}

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or_else(
            || "?".into(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    // The server the arms run (the pinned one when scripts/setup installed it), not PATH's.
    let nats = std::process::Command::new(millrace::transport::local_server::server_binary())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "nats-server not found".into());
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "node not found".into());
    println!("machine: {model}, {cores} cores, {memory} RAM; {nats}; node {node}");
    println!(
        "workload: alternating {}-byte MES shift reports (2 events) and {}-byte X12 856 (1 event), {} sites",
        workload::shift_report(0).len(),
        workload::ship_notice(1).len(),
        workload::SITES
    );
}
