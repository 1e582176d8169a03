//! A `millrace run` host compiles each plugin in a child process into a sealed precompiled
//! artifact in its state folder and loads it from there; a restarted host serves from the
//! artifact without compiling, and a corrupt artifact is refused and compiled again.

use std::path::{Path, PathBuf};

use crate::support::*;

const SUBJECT: &str = "raw.mes.plant1.shift-report";
const CONSUMER: &str = "millrace_mes__raw_mes__star__shift-report";

/// A host config of the MES route with a state folder of its own (a cold compile cache).
fn config(nats: &Nats, state: &Path) -> PathBuf {
    let path = nats.dir.path().join("precompiled.toml");
    let route = fixture_route(
        "mes",
        &plugin("plugins/mes-shift-report"),
        "raw.mes.*.shift-report",
        "",
    );
    std::fs::write(
        &path,
        format!(
            "[nats]\nurl = \"{}\"\n\n[host]\nworkers = 2\nstate_dir = \"{}\"\n\n{route}",
            nats.url(),
            state.display()
        ),
    )
    .unwrap();
    path
}

/// The artifacts in the state folder.
fn artifacts(state: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(state.join("cache/precompiled")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The first good fixture of the MES plugin, and how many events it maps to.
fn shift_report() -> (Vec<u8>, u64) {
    let dir = plugin("plugins/mes-shift-report");
    millrace::registry::fixtures::inputs(&dir)
        .unwrap()
        .into_iter()
        .find_map(|input| {
            let expected: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(millrace::registry::fixtures::expected_path(&input))
                    .unwrap(),
            )
            .unwrap();
            let events = expected.get("events")?.as_array()?.len() as u64;
            Some((std::fs::read(input).unwrap(), events))
        })
        .expect("the MES plugin has a good fixture")
}

/// Starts a host, maps one message through it, and returns its log.
async fn serve_one(config: &Path, js: &async_nats::jetstream::Context, n: u64) -> String {
    let mut host = Host::start(config, js, &[CONSUMER]).await;
    let (payload, events) = shift_report();
    publish(js, SUBJECT, &payload, &format!("shift-{n}")).await;
    wait_processed(js, events * n, &host).await;
    assert_eq!(stream_len(js, "DLQ").await, 0, "{}", host.log_text());
    host.stop();
    host.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serves_from_precompiled_artifacts_and_recompiles_a_corrupt_one() {
    let nats = Nats::start();
    let state = tempfile::tempdir().unwrap();
    let config = config(&nats, state.path());
    let js = async_nats::jetstream::new(nats.client().await);

    // Cold: compiled by a child process, which leaves the artifact.
    let log = serve_one(&config, &js, 1).await;
    assert!(log.contains("compiled in a child process"), "{log}");
    let kept = artifacts(state.path());
    assert_eq!(kept.len(), 1, "one artifact for the one plugin: {kept:?}");

    // Restarted: served from the artifact, nothing compiled.
    let log = serve_one(&config, &js, 2).await;
    assert!(log.contains("loaded precompiled"), "{log}");
    assert!(!log.contains("compiled in a child process"), "{log}");
    assert!(!log.contains("compiled in process"), "{log}");

    // Corrupt: one byte of machine code flipped. Refused, compiled again, replaced.
    let mut bytes = std::fs::read(&kept[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&kept[0], &bytes).unwrap();
    let log = serve_one(&config, &js, 3).await;
    assert!(log.contains("precompiled artifact refused"), "{log}");
    assert!(log.contains("corrupt"), "{log}");
    assert!(log.contains("compiled in a child process"), "{log}");
    assert_ne!(
        std::fs::read(&kept[0]).unwrap(),
        bytes,
        "the artifact was replaced"
    );

    // And the replacement serves.
    let log = serve_one(&config, &js, 4).await;
    assert!(log.contains("loaded precompiled"), "{log}");
}
