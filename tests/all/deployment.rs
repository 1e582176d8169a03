//! The deployment examples of docs/DEPLOYMENT.md: the cluster config parses, and the systemd
//! unit starts the real binary and stops it within its stop timeout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;

use crate::support::*;

/// The sections of a systemd unit file: key to value, later keys winning.
fn unit_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not `key=value` in [{current}]: {line}"));
        sections
            .entry(current.clone())
            .or_default()
            .insert(key.trim().to_owned(), value.trim().to_owned());
    }
    sections
}

#[test]
fn the_cluster_example_config_parses() {
    let path = root().join("examples/deploy/millrace.toml");
    let config = millrace::config::Config::load(&path).unwrap();
    assert_eq!(config.streams.replicas, Some(3));
    assert!(
        config.nats.url.as_deref().unwrap().contains(','),
        "every node"
    );
    assert!(config.admin.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_starts_the_host_and_stops_it_within_its_timeout() {
    let unit = std::fs::read_to_string(root().join("examples/deploy/millrace.service")).unwrap();
    let sections = unit_sections(&unit);
    for section in ["Unit", "Service", "Install"] {
        assert!(sections.contains_key(section), "no [{section}]");
    }
    let service = &sections["Service"];
    assert_eq!(service["KillSignal"], "SIGTERM");
    let stop_timeout = millrace::config::parse_duration(&service["TimeoutStopSec"]).unwrap();
    let drain = millrace::config::HostConfig::default().drain_timeout.get();
    assert!(
        stop_timeout > drain,
        "systemd must wait longer than the host's drain ({drain:?})"
    );
    let exec: Vec<&str> = service["ExecStart"].split_whitespace().collect();
    assert_eq!(
        exec[..3],
        ["/usr/local/bin/millrace", "run", "--config"],
        "{exec:?}"
    );

    // The same command line, with this build's binary and a config of this test's server.
    let nats = Nats::start();
    let config = nats.config(&fixture_route(
        "steady",
        &plugin("tests/guests/misbehave"),
        "raw.test.*.cmd",
        "",
    ));
    let log = config.with_extension("service.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(&exec[1..3])
        .arg(&config)
        .env(
            "RUST_LOG",
            service["Environment"].trim_start_matches("RUST_LOG="),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let js = jetstream::new(nats.client().await);
    wait_consuming(&js, &mut child, &log).await;
    publish(&js, "raw.test.lab.cmd", b"ok 1", "unit-1").await;
    read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await;

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < stop_timeout,
            "still running {stop_timeout:?} after SIGTERM: systemd would kill it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// Waits until the host consumes (its route consumer exists), or fails with its log.
async fn wait_consuming(js: &jetstream::Context, child: &mut std::process::Child, log: &Path) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the service exited at start ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(stream) = js.get_stream("RAW").await
            && let Some(Ok(_)) = stream.consumer_names().next().await
        {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "the service never consumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
