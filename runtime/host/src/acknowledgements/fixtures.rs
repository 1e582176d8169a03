//! Golden fixtures of acknowledger plugins, and their admission.
//!
//! A case in a plugin's `fixtures/` folder is three files: `<case>.edi` (the raw interchange),
//! `<case>.control.json` (what became of it inbound, the control number and time, and what is
//! expected) and, when an acknowledgement is expected, `<case>.ack` (its exact bytes):
//!
//! ```json
//! { "outcome": { "mapped": 1 } | { "failed": "malformed-input: ..." },
//!   "control": { "number": 1001, "now": "2026-11-30T04:05:00Z" },
//!   "expect": { "partner": "ACME" } | "none" | { "error": "words the refusal holds" } }
//! ```
//!
//! In the registry a case is a [`StoredFixture`]: the input bytes, and as expectation the
//! control file's JSON with the `.ack` bytes added (`document`, base64).

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::registry::record::{StoredFixture, VersionRecord};
use crate::registry::{
    AdmissionBounds, FixtureSettings, check_fixture_count, fixtures::fixture_route,
    refuse_failed_fixtures,
};
use millrace_core::sandbox::{
    AckControl, AcknowledgeError, AcknowledgerComponent, InboundOutcome, RawMessage, RouteContext,
    Sandbox,
};

/// The suffix of a case's control file.
pub const CONTROL_SUFFIX: &str = ".control.json";

/// One case: the outcome and control given, what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckCase {
    /// What became of the interchange inbound.
    pub outcome: CaseOutcome,
    /// The control number and time given.
    pub control: CaseControl,
    /// What the plugin must answer.
    pub expect: Expect,
    /// The expected document, base64 (in the registry's copy; in a folder it is `<case>.ack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// [`InboundOutcome`] as a case writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum CaseOutcome {
    /// Mapped into this many events.
    Mapped(u32),
    /// Dead-lettered with this reason.
    Failed(String),
}

/// [`AckControl`] as a case writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseControl {
    /// The control number.
    pub number: u64,
    /// The time, RFC 3339 in UTC.
    pub now: String,
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Expect {
    /// No acknowledgement (the document is itself one).
    None,
    /// A refusal whose reason holds these words.
    Error(String),
    /// An acknowledgement for this partner, with the bytes of `<case>.ack`.
    #[serde(untagged)]
    Acknowledgement {
        /// The partner token.
        partner: String,
    },
}

/// Lists the cases of a plugin folder as the registry stores them, sorted.
pub fn stored(dir: &Path) -> anyhow::Result<Vec<StoredFixture>> {
    let folder = dir.join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .with_context(|| format!("plugin {} has no fixtures folder", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(CONTROL_SUFFIX).map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut stored = Vec::with_capacity(names.len());
    for case in names {
        let control = folder.join(format!("{case}{CONTROL_SUFFIX}"));
        let text = std::fs::read_to_string(&control)
            .with_context(|| format!("cannot read {}", control.display()))?;
        let mut spec: AckCase = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid case", control.display()))?;
        if matches!(spec.expect, Expect::Acknowledgement { .. }) {
            let ack = folder.join(format!("{case}.ack"));
            let bytes = std::fs::read(&ack).with_context(|| {
                format!(
                    "case {case} expects an acknowledgement but {} is missing",
                    ack.display()
                )
            })?;
            spec.document = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        let input = folder.join(format!("{case}.edi"));
        let raw = std::fs::read(&input)
            .with_context(|| format!("case {case} has no input {}", input.display()))?;
        stored.push(StoredFixture {
            name: format!("{case}.edi"),
            input: base64::engine::general_purpose::STANDARD.encode(raw),
            expected: serde_json::to_string(&spec)?,
        });
    }
    Ok(stored)
}

/// Runs one stored case: `None` when the plugin answers as it expects, else what differs.
pub fn check(
    plugin: &AcknowledgerComponent,
    route: &RouteContext,
    settings: &FixtureSettings,
    fixture: &StoredFixture,
) -> Result<Option<String>, AcknowledgeError> {
    let spec: AckCase = match serde_json::from_str(&fixture.expected) {
        Ok(spec) => spec,
        Err(e) => return Ok(Some(format!("not a valid case: {e}"))),
    };
    let payload = match fixture.input_bytes() {
        Ok(payload) => payload,
        Err(e) => return Ok(Some(format!("{e:#}"))),
    };
    let raw = RawMessage {
        subject: settings.subject.clone(),
        headers: Vec::new(),
        payload,
    };
    let outcome = match &spec.outcome {
        CaseOutcome::Mapped(events) => InboundOutcome::Mapped(*events),
        CaseOutcome::Failed(reason) => InboundOutcome::Failed(reason.clone()),
    };
    let control = AckControl {
        number: spec.control.number,
        now: spec.control.now.clone(),
    };
    let made = match plugin.acknowledge(route, &raw, &outcome, &control) {
        Err(AcknowledgeError::Call(e)) => return Err(AcknowledgeError::Call(e)),
        other => other,
    };
    let expected_document = spec
        .document
        .as_deref()
        .map(|d| base64::engine::general_purpose::STANDARD.decode(d))
        .transpose()
        .unwrap_or_default()
        .unwrap_or_default();
    Ok(match (&spec.expect, made) {
        (Expect::None, Ok(None)) => None,
        (Expect::Error(words), Err(AcknowledgeError::Refused(said))) if said.contains(words) => {
            None
        }
        (Expect::Acknowledgement { partner }, Ok(Some(ack)))
            if *partner == ack.partner && expected_document == ack.document =>
        {
            None
        }
        (Expect::Acknowledgement { partner }, Ok(Some(ack))) => Some(format!(
            "expected for partner {partner}:\n{}\ngot for partner {}:\n{}",
            String::from_utf8_lossy(&expected_document),
            ack.partner,
            String::from_utf8_lossy(&ack.document)
        )),
        (expect, made) => Some(format!("expected {expect:?}, got {made:?}")),
    })
}

/// Contract-gated admission of an acknowledger: it compiles, fits the `acknowledger` world and
/// passes every golden case in this host's sandbox, within `bounds`.
pub fn admit(
    sandbox: &Sandbox,
    record: &VersionRecord,
    component: &[u8],
    bounds: &AdmissionBounds,
) -> anyhow::Result<AcknowledgerComponent> {
    let id = record.id();
    if record.fixtures.is_empty() {
        anyhow::bail!("{id} is refused: it has no golden fixtures to admit it by");
    }
    check_fixture_count(record)?;
    let started = std::time::Instant::now();
    let manifest = record.parsed_manifest()?;
    let plugin = sandbox
        .load_acknowledger(&record.name, &record.version, component)
        .with_context(|| format!("{id} is refused"))?
        .with_limits(manifest.limits);
    let route = fixture_route(&manifest.fixtures);
    let mut failures = Vec::new();
    for (run, fixture) in record.fixtures.iter().enumerate() {
        if bounds.cancel.is_cancelled() || started.elapsed() > bounds.budget {
            anyhow::bail!(
                "{id} is refused: admission stopped after {run} of {} golden fixtures (cancelled or past its {:?} budget)",
                record.fixtures.len(),
                bounds.budget
            );
        }
        match check(&plugin, &route, &manifest.fixtures, fixture) {
            Ok(None) => {}
            Ok(Some(diff)) => failures.push(format!("fixture {} fails:\n{diff}", fixture.name)),
            Err(e) => anyhow::bail!(
                "{id} is refused: golden fixture {} breached a limit: {e}",
                fixture.name
            ),
        }
    }
    refuse_failed_fixtures(record, &failures)?;
    Ok(plugin)
}
