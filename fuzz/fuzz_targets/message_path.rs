//! The host's message path without NATS: arbitrary bytes through a real loaded plugin
//! (the first byte picks which), then governance (output limit and validation). The host
//! must never panic, and every event it accepts must pass validation.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use millrace::config::Limits;
use millrace::governance::validate::validate;
use millrace::registry::Manifest;
use millrace::registry::fixtures::map_once;
use millrace::sandbox::{PluginComponent, RawMessage, RouteContext, Sandbox};

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
    let raw = RawMessage {
        subject: loaded.subject.clone(),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    if let Ok(events) = map_once(&loaded.plugin, &loaded.route, &raw) {
        assert_eq!(validate(&events), Ok(()));
    }
});
