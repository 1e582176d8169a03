//! `millrace publish`: raw files to a subject, for trying things out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use async_nats::{HeaderMap, header};

use millrace::config::{Config, check_subject};
use millrace::digest::sha256_hex;
use millrace::subjects::subject_matches;
use millrace::transport;

/// Publishes each file as one message with a `Nats-Msg-Id` derived from subject and content,
/// so publishing the same file twice is stored once.
pub async fn run(
    subject: &str,
    files: &[PathBuf],
    config: Option<&Path>,
    nats: Option<&str>,
) -> anyhow::Result<ExitCode> {
    check_subject(subject, false).map_err(|m| anyhow::anyhow!("the subject {m}"))?;
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Raw messages only: a file published onto CANONICAL, a dead letter or an acknowledgement
    // subject would be stored there as if a host had written it (a "dead letter" no redrive can
    // read, a "canonical event" the projection skips).
    let raw = &config.streams.raw_subjects;
    if !raw.iter().any(|p| subject_matches(p, subject)) {
        anyhow::bail!(
            "{subject} is not a raw subject: `millrace publish` puts raw messages on the subjects \
             the RAW stream captures (streams.raw_subjects: {}); canonical events, dead letters \
             and acknowledgements are written by hosts",
            raw.join(", ")
        );
    }
    if !config.routes.is_empty()
        && !config
            .routes
            .values()
            .any(|r| r.subjects.iter().any(|p| subject_matches(p, subject)))
    {
        eprintln!(
            "warning: no route in {} consumes {subject}: the message is stored but nothing will map it",
            config.source.display()
        );
    }
    let client = transport::connect(&config, nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    publish_files(&js, subject, files).await?;
    client.flush().await.ok();
    Ok(ExitCode::SUCCESS)
}

/// Publishes each file to `subject` and prints where it was stored.
pub async fn publish_files(
    js: &async_nats::jetstream::Context,
    subject: &str,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    for file in files {
        let payload =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let msg_id = sha256_hex(&[subject.as_bytes(), b"\0", &payload].concat())[..32].to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, msg_id.as_str());
        let max = millrace_transport::max_payload(&js.client());
        millrace_transport::fits(Some(&headers), payload.len(), max)
            .with_context(|| format!("cannot publish {}", file.display()))?;
        let ack = js
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .with_context(|| format!("cannot publish {}", file.display()))?
            .await
            .with_context(|| {
                format!(
                    "JetStream did not store {} on {subject}: is the subject captured by the RAW stream \
                     (`streams.raw_subjects`, default raw.>), and has a host (or `millrace up`) run once to create it?",
                    file.display()
                )
            })?;
        let what = if ack.duplicate {
            "already stored, not stored again"
        } else {
            "stored"
        };
        outln!(
            "{} -> {subject}: {what} (stream {} seq {}, msg id {msg_id})",
            file.display(),
            ack.stream,
            ack.sequence
        );
    }
    Ok(())
}
