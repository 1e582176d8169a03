//! Golden fixtures: each input file (any but `<name>.expected.json`, a `.md` note or a hidden file) in a plugin's `fixtures/` folder has beside it
//! `<name>.expected.json`, either `{"events": [...]}` (the events in the form `millrace plugin
//! run` prints) or `{"error": {"kind": "...", "message": "..."}}`. A plugin version whose
//! fixtures do not all pass is not fit to serve.
//!
//! A fixture runs through the pipeline's mapping stage ([`Rehearsal`]): the same header
//! policy, retries and rules (output size, validity, and the host's ownership rules when a host
//! configuration is given) as live traffic, so a fixture passes exactly when the live message
//! would end the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::manifest::FixtureSettings;
use super::record::StoredFixture;
use crate::pipeline::input::RawInput;
use crate::pipeline::mapping::Rehearsal;
pub use crate::pipeline::mapping::{ErrorOutcome, Outcome};
use millrace_core::config::{Limits, RetryPolicy};
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::{PluginComponent, RouteContext, World};

/// The result of one fixture.
#[derive(Debug)]
pub struct FixtureResult {
    /// The input file.
    pub input: PathBuf,
    /// None when it passed; a readable diff (expected `-`, actual `+`) when it failed.
    pub diff: Option<String>,
}

/// The route context fixtures run with.
pub fn fixture_route(settings: &FixtureSettings) -> RouteContext {
    RouteContext {
        route: "fixtures".into(),
        config: Arc::new(settings.config.clone()),
        limits: Limits::default(),
    }
}

/// The mapping stage as fixtures run it: on `route`, with a fixture route's retries.
pub fn rehearsal<'a>(
    plugin: &'a PluginComponent,
    route: &'a RouteContext,
    ownership: &'a OwnershipPolicy,
) -> Rehearsal<'a> {
    Rehearsal {
        plugin,
        route,
        retry: RetryPolicy::default(),
        ownership,
    }
}

/// A fixture's input as the pipeline takes a raw message: published on `subject` (the
/// manifest's fixture subject), without headers.
pub fn fixture_input(subject: &str, payload: Vec<u8>) -> RawInput {
    RawInput::new(subject.to_owned(), None, payload.into(), "fixtures", 0)
}

/// Lists the fixture inputs of a plugin folder, sorted.
pub fn inputs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folder = dir.join("fixtures");
    let entries = std::fs::read_dir(&folder).with_context(|| {
        format!(
            "plugin {} has no fixtures folder {}",
            dir.display(),
            folder.display()
        )
    })?;
    let mut inputs = Vec::new();
    for entry in entries {
        let path = entry?.path();
        // Expectations are `<name>.expected.json`; notes (like a SOURCES.md naming where samples
        // came from) are .md. Any other file is an input, a JSON document too (a SaaS webhook's
        // body is one): such inputs were skipped, and a plugin of JSON fixtures had "none".
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let skip = name.ends_with(".expected.json") || path.extension().is_some_and(|e| e == "md");
        let hidden = name.starts_with('.');
        if path.is_file() && !skip && !hidden {
            inputs.push(path);
        }
    }
    inputs.sort();
    Ok(inputs)
}

/// The expectation file of a fixture input.
pub fn expected_path(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    input.with_file_name(format!("{stem}.expected.json"))
}

/// Runs every fixture of a plugin folder, judged by the host's `ownership` rules.
pub fn run_all(
    plugin: &PluginComponent,
    dir: &Path,
    settings: &FixtureSettings,
    ownership: &OwnershipPolicy,
) -> anyhow::Result<Vec<FixtureResult>> {
    let route = fixture_route(settings);
    let mut results = Vec::new();
    if plugin.world == World::Poster {
        for input in crate::registry::outbound_fixtures::cases(dir)? {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("cannot read fixture {}", input.display()))?;
            let (diff, _) = crate::registry::outbound_fixtures::check(plugin, &route, &text);
            results.push(FixtureResult { input, diff });
        }
        return Ok(results);
    }
    for input in inputs(dir)? {
        let payload = std::fs::read(&input)
            .with_context(|| format!("cannot read fixture {}", input.display()))?;
        let expected_file = expected_path(&input);
        let expected = std::fs::read_to_string(&expected_file)
            .map_err(|e| format!("cannot read {}: {e}", expected_file.display()));
        let (diff, _) = check_run(plugin, &route, settings, ownership, payload, expected);
        results.push(FixtureResult { input, diff });
    }
    Ok(results)
}

/// Runs one stored fixture of a version as its world reads fixtures: `None` when it passes,
/// else a readable diff; and whether a call breached a limit.
pub fn check_stored(
    plugin: &PluginComponent,
    route: &RouteContext,
    settings: &FixtureSettings,
    ownership: &OwnershipPolicy,
    fixture: &StoredFixture,
) -> anyhow::Result<(Option<String>, bool)> {
    Ok(match plugin.world {
        // An outbound case is one JSON file, kept whole as the expectation.
        World::Poster => {
            crate::registry::outbound_fixtures::check(plugin, route, &fixture.expected)
        }
        World::Mapper => check_run(
            plugin,
            route,
            settings,
            ownership,
            fixture.input_bytes()?,
            Ok(fixture.expected.clone()),
        ),
    })
}

/// Runs one fixture through the mapping stage: `None` when the plugin gives what `expected`
/// (the text of an expectation file, or why it could not be read) says, else a readable diff;
/// and whether the call breached a limit (trap, deadline, memory) through its retries:
/// admission stops there rather than run the remaining fixtures into the same wall.
pub fn check_run(
    plugin: &PluginComponent,
    route: &RouteContext,
    settings: &FixtureSettings,
    ownership: &OwnershipPolicy,
    payload: Vec<u8>,
    expected: Result<String, String>,
) -> (Option<String>, bool) {
    let (result, _) =
        rehearsal(plugin, route, ownership).map(&fixture_input(&settings.subject, payload));
    let breached = matches!(&result, Err(failure) if failure.is_retryable());
    (compare(Outcome::from(result), expected), breached)
}

/// `None` when `actual` is what `expected` says, else a readable diff.
fn compare(actual: Outcome, expected: Result<String, String>) -> Option<String> {
    match expected {
        Err(why) => Some(format!("{why}\nthe plugin gave:\n{}", pretty(&actual))),
        Ok(text) => match serde_json::from_str::<Outcome>(&text) {
            Err(e) => Some(format!(
                "not a valid expectation ({e}): write {{\"events\": [...]}} or {{\"error\": {{\"kind\": ..., \"message\": ...}}}}"
            )),
            Ok(expected) if expected == actual => None,
            Ok(expected) => Some(diff(&pretty(&expected), &pretty(&actual))),
        },
    }
}

/// Pretty JSON of an outcome.
pub fn pretty(outcome: &Outcome) -> String {
    serde_json::to_string_pretty(outcome).unwrap_or_default()
}

fn diff(expected: &str, actual: &str) -> String {
    let diff = similar::TextDiff::from_lines(expected, actual);
    diff.unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_file_but_expectations_notes_and_hidden_ones_is_an_input() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures");
        std::fs::create_dir(&fixtures).unwrap();
        for name in [
            "hold.json",
            "hold.expected.json",
            "shift.txt",
            "shift.expected.json",
            "SOURCES.md",
            ".hidden",
        ] {
            std::fs::write(fixtures.join(name), "x").unwrap();
        }
        let found: Vec<String> = inputs(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["hold.json", "shift.txt"]);
        assert_eq!(
            expected_path(&fixtures.join("hold.json")),
            fixtures.join("hold.expected.json")
        );
    }
}
