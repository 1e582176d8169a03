//! Golden fixtures of outbound plugins: `fixtures/<case>.json`, each an event (the CloudEvent
//! exactly as on the CANONICAL stream), the requests `render` must return and, for answers a
//! target may give, the verdict `interpret` must give; or the render error. docs/OUTBOUND.md
//! has the format.

use std::path::{Path, PathBuf};

use anyhow::Context;

use millrace_core::posting::{
    CanonicalEvent, PostingFixture, Request, header_refusal, path_refusal,
};
use millrace_core::sandbox::{CallError, PluginComponent, RouteContext, Session};

/// The case files of a plugin folder, sorted.
pub fn cases(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folder = dir.join("fixtures");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&folder)
        .with_context(|| format!("plugin {} has no fixtures folder", dir.display()))?
    {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_file() && !hidden && path.extension().is_some_and(|e| e == "json") {
            cases.push(path);
        }
    }
    cases.sort();
    Ok(cases)
}

/// Runs one case (its JSON text) through `plugin`: `None` when it passes, else what differs;
/// and whether a call breached a limit (admission stops there).
pub fn check(plugin: &PluginComponent, route: &RouteContext, text: &str) -> (Option<String>, bool) {
    let fixture: PostingFixture = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return (
                Some(format!(
                    "not a valid outbound fixture ({e}): write {{\"event\": ..., \"requests\": [...], \"answers\": [...]}} or {{\"event\": ..., \"error\": {{\"incomplete-event\": ...}}}}"
                )),
                false,
            );
        }
    };
    let event = match CanonicalEvent::from_cloudevent(&fixture.event) {
        Ok(event) => event,
        Err(e) => return (Some(format!("the fixture's `event`: {e}")), false),
    };
    let mut session = match Session::new(plugin, route) {
        Ok(s) => s,
        Err(e) => return (Some(e.to_string()), e.is_retryable()),
    };
    let rendered = session.render(&event);
    let mut problems = Vec::new();
    let requests = match (rendered, fixture.error, fixture.requests) {
        (Err(e), _, _) if e.is_retryable() => return (Some(e.to_string()), true),
        (Err(CallError::Render(actual)), Some(expected), _) => {
            if expected != actual {
                problems.push(diff(
                    &pretty(&serde_json::json!({ "error": expected })),
                    &pretty(&serde_json::json!({ "error": actual })),
                ));
            }
            return (join(problems), false);
        }
        (Err(e), _, _) => return (Some(format!("render failed: {e}")), false),
        (Ok(actual), Some(expected), _) => {
            return (
                Some(diff(
                    &pretty(&serde_json::json!({ "error": expected })),
                    &pretty(&serde_json::json!({ "requests": actual })),
                )),
                false,
            );
        }
        (Ok(actual), None, expected) => {
            let expected = match expected
                .unwrap_or_default()
                .into_iter()
                .map(serde_json::from_value::<Request>)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(expected) => expected,
                Err(e) => return (Some(format!("the fixture's `requests`: {e}")), false),
            };
            // JSON bodies compare as JSON values, so formatting does not matter.
            let (want, got) = (
                serde_json::to_value(&expected).unwrap_or_default(),
                serde_json::to_value(&actual).unwrap_or_default(),
            );
            if want != got {
                problems.push(diff(
                    &pretty(&serde_json::json!({ "requests": want })),
                    &pretty(&serde_json::json!({ "requests": got })),
                ));
            }
            // A request the host would refuse to send fails here, not in production. (A
            // `Nats-` header is refused only to a NATS target, which a fixture does not name.)
            for (n, request) in actual.iter().enumerate() {
                if let Some(why) =
                    header_refusal(&request.headers, false).or_else(|| path_refusal(&request.path))
                {
                    problems.push(format!("request {n} would be refused when posted: {why}"));
                }
            }
            actual
        }
    };
    for (n, answer) in fixture.answers.into_iter().enumerate() {
        let Some(request) = requests.get(answer.request) else {
            problems.push(format!(
                "answer {n} answers request {}, but render returned {}",
                answer.request,
                requests.len()
            ));
            continue;
        };
        let response = answer.response_to(request);
        match session.interpret(&event, request, &response) {
            Ok(verdict) if verdict == answer.verdict => {}
            Ok(verdict) => problems.push(format!(
                "answer {n} (status {}):\n{}",
                response.status,
                diff(&pretty(&answer.verdict), &pretty(&verdict))
            )),
            Err(e) => return (Some(format!("interpret failed: {e}")), e.is_retryable()),
        }
    }
    (join(problems), false)
}

fn join(problems: Vec<String>) -> Option<String> {
    (!problems.is_empty()).then(|| problems.join("\n"))
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}
