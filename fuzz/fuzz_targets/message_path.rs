//! The host's message path without NATS: arbitrary bytes through a real loaded plugin
//! (the first byte picks which) in the pipeline's mapping stage (the call, the output limit and
//! validation). The host must never panic, and every event it accepts must pass validation.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use millrace::config::{Limits, RetryPolicy};
use millrace::pipeline::mapping::Rehearsal;
use millrace::registry::Manifest;
use millrace::registry::fixtures::fixture_input;
use millrace::rules::ownership::OwnershipPolicy;
use millrace::rules::validate::validate;
use millrace::sandbox::{PluginComponent, RouteContext, Sandbox};

/// Plugins built by `cargo build --release --target wasm32-wasip2` in the workspace; their
/// components are read from `MILLRACE_PLUGIN_WASM` (a folder), by default the workspace's
/// `target/wasm32-wasip2/release`.
const PLUGINS: [&str; 7] = [
    "mes-shift-report",
    "x12-856",
    "x12-schedules",
    "x12-warehouse",
    "edifact-desadv",
    "edifact-recadv",
    "b2mml",
];

struct Loaded {
    plugin: PluginComponent,
    route: RouteContext,
    subject: String,
}

fn plugins() -> &'static Vec<Loaded> {
    static PLUGINS_LOADED: OnceLock<Vec<Loaded>> = OnceLock::new();
    PLUGINS_LOADED.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sandbox = Sandbox::new(Some(&root.join("target/fuzz-wasm-cache")))
            .unwrap_or_else(|e| panic!("sandbox: {e:#}"));
        PLUGINS
            .iter()
            .map(|name| {
                let dir = root.join("plugins").join(name);
                let manifest = Manifest::load(&dir).unwrap_or_else(|e| panic!("{name}: {e:#}"));
                let wasm_dir = std::env::var_os("MILLRACE_PLUGIN_WASM").map_or_else(
                    || root.join("target/wasm32-wasip2/release"),
                    std::path::PathBuf::from,
                );
                let wasm = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
                let bytes = std::fs::read(&wasm)
                    .unwrap_or_else(|e| panic!("{}: {e}: build the plugins first", wasm.display()));
                let plugin = sandbox
                    .load(&manifest.name, &manifest.version, &bytes)
                    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
                let route = RouteContext {
                    route: "fuzz".into(),
                    config: Arc::new(manifest.fixtures.config.clone()),
                    limits: Limits::default(),
                };
                Loaded {
                    plugin,
                    route,
                    subject: manifest.fixtures.subject,
                }
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let plugins = plugins();
    let loaded = &plugins[usize::from(pick) % plugins.len()];
    // One try: a trap is contained and final here, and a retry's backoff would only slow the run.
    let stage = Rehearsal {
        plugin: &loaded.plugin,
        route: &loaded.route,
        retry: RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
        ownership: &OwnershipPolicy::default(),
    };
    let (outcome, _) = stage.map(&fixture_input(&loaded.subject, payload.to_vec()));
    if let Ok(events) = outcome {
        assert_eq!(validate(&events), Ok(()));
    }
});
