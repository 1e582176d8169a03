//! An outbound plugin's golden fixtures, checked natively: the same cases the host's admission
//! runs in the sandbox, run in the plugin's own `cargo test`, with the route configuration of
//! the manifest's `[fixtures.config]` (as `millrace plugin test` gives it).
//!
//! A fixture is `fixtures/<case>.json`:
//!
//! ```json
//! {"event": <the CloudEvent as on the canonical stream>,
//!  "requests": [{"target": "erp", "method": "post", "path": "/odata/GoodsMovements",
//!                "headers": [["Content-Type", "application/json"]], "body": {...}}],
//!  "answers": [{"request": 0,
//!               "response": {"status": 201, "headers": [["content-type", "application/json"]],
//!                            "body": {...}},
//!               "verdict": {"posted": "4900001234"}}]}
//! ```
//!
//! or, for an event the plugin refuses, `{"event": ..., "error": {"incomplete-event": "..."}}`.
//! A body is the JSON value when the body is JSON (compared as JSON, so key order does not
//! matter), else `{"base64": "..."}` (compared byte for byte). A verdict is `{"posted": id}`,
//! `{"rejected": reason}` or `{"try-again": why}`.

use std::path::Path;

use serde::Deserialize as _;
use serde_json::Value;

use super::{Event, Poster, Request};
use millrace_model::posting::PostingFixture;

/// Runs every `*.json` golden fixture in `<plugin>/fixtures` through `P`: renders the event,
/// compares the requests (or the error), then interprets each answer and compares the verdict.
/// The route configuration ([`crate::config`]) is the `[fixtures.config]` table of
/// `<plugin>/plugin.toml`, for this thread.
///
/// Returns how many fixtures passed, or every difference found, one per line, naming the file.
/// A folder without fixtures is an error too.
pub fn check_fixtures<P: Poster>(plugin: impl AsRef<Path>) -> Result<usize, String> {
    let plugin = plugin.as_ref();
    crate::config::set_for_tests(fixture_config(plugin)?);
    let dir = plugin.join("fixtures");
    let dir = dir.as_path();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the fixtures folder {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{} holds no *.json fixtures", dir.display()));
    }
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if let Err(found) = check_fixture::<P>(file) {
            failures.extend(found.into_iter().map(|f| format!("{name}: {f}")));
        }
    }
    if failures.is_empty() {
        Ok(files.len())
    } else {
        Err(failures.join("\n"))
    }
}

/// The `[fixtures.config]` table of `<plugin>/plugin.toml` (none when the manifest has none).
fn fixture_config(plugin: &Path) -> Result<Vec<(String, String)>, String> {
    let path = plugin.join("plugin.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
    let manifest: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(table) = manifest
        .get("fixtures")
        .and_then(|f| f.get("config"))
        .and_then(toml::Value::as_table)
    else {
        return Ok(Vec::new());
    };
    table
        .iter()
        .map(|(key, value)| match value.as_str() {
            Some(text) => Ok((key.clone(), text.to_owned())),
            None => Err(format!(
                "{}: fixtures.config.{key} is not text",
                path.display()
            )),
        })
        .collect()
}

/// Every difference between `P` and one fixture file.
fn check_fixture<P: Poster>(file: &Path) -> Result<(), Vec<String>> {
    let text = std::fs::read_to_string(file).map_err(|e| vec![format!("cannot read: {e}")])?;
    let fixture: PostingFixture =
        serde_json::from_str(&text).map_err(|e| vec![format!("not a fixture: {e}")])?;
    let event = Event::from_cloudevent(&fixture.event).map_err(|e| vec![e.to_string()])?;
    let rendered = P::render(&event);
    if let Some(expected) = &fixture.error {
        return match rendered {
            Err(error) => same("error", &json_of(expected), &json_of(&error)).map_err(|d| vec![d]),
            Ok(requests) => Err(vec![format!(
                "expected the error {}, rendered {} request(s): {}",
                json_of(expected),
                requests.len(),
                json_of(&requests)
            )]),
        };
    }
    let requests = rendered.map_err(|e| vec![format!("expected requests, render failed: {e}")])?;
    let mut failures = Vec::new();
    let expected = fixture.requests.unwrap_or_default();
    if expected.len() != requests.len() {
        failures.push(format!(
            "expected {} request(s), rendered {}: {}",
            expected.len(),
            requests.len(),
            json_of(&requests)
        ));
    }
    for (index, (want, got)) in expected.iter().zip(&requests).enumerate() {
        if let Err(diff) = same_request(want, got) {
            failures.push(format!("request {index}: {diff}"));
        }
    }
    for (n, answer) in fixture.answers.iter().enumerate() {
        let Some(request) = requests.get(answer.request) else {
            failures.push(format!(
                "answer {n}: no rendered request {}",
                answer.request
            ));
            continue;
        };
        let verdict = P::interpret(&event, request, &answer.response_to(request));
        if let Err(diff) = same("verdict", &json_of(&answer.verdict), &json_of(&verdict)) {
            failures.push(format!("answer {n}: {diff}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// A request, verdict or render error in the fixtures' JSON form (the model's).
fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The JSON pointer of the first place `want` and `got` differ (the root when their types do).
fn first_difference(want: &Value, got: &Value, at: String) -> String {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let mut keys: Vec<&String> = w.keys().chain(g.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .find(|key| w.get(*key) != g.get(*key))
                .map_or(at.clone(), |key| {
                    let (w, g) = (&w.get(key), &g.get(key));
                    let at = format!("{at}/{key}");
                    match (w, g) {
                        (Some(w), Some(g)) => first_difference(w, g, at),
                        _ => at,
                    }
                })
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .position(|(w, g)| w != g)
            .map_or(at.clone(), |i| {
                first_difference(&w[i], &g[i], format!("{at}/{i}"))
            }),
        _ => at,
    }
}

fn same_request(want: &Value, got: &Request) -> Result<(), String> {
    // Read back as a request and written again, so a body written as base64 compares with the
    // same bytes rendered, and a JSON body compares as JSON.
    let want = Request::deserialize(want)
        .map(|request| json_of(&request))
        .map_err(|e| format!("not a request: {e}"))?;
    let actual = json_of(got);
    let fields: Vec<&str> = ["target", "method", "path", "headers", "body"]
        .into_iter()
        .filter(|f| want[f] != actual[f])
        .collect();
    if fields.is_empty() {
        return Ok(());
    }
    Err(fields
        .into_iter()
        .map(|f| {
            let want = &want[f];
            let at = first_difference(want, &actual[f], String::new());
            let place = if at.is_empty() {
                String::new()
            } else {
                format!(" at {at}")
            };
            format!(
                "{f} differs{place}: expected {}, rendered {}\n  expected {want}\n  rendered {}",
                want.pointer(&at).unwrap_or(&Value::Null),
                actual[f].pointer(&at).unwrap_or(&Value::Null),
                actual[f]
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn same(what: &str, want: &Value, got: &Value) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "{what} differs:\n  expected {want}\n  got      {got}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::EventData;
    use crate::posting::{RenderError, Response, Verdict};
    use serde_json::json;

    /// Posts a completion with a lot, refuses one without.
    struct Tiny;

    impl Poster for Tiny {
        fn render(event: &Event) -> Result<Vec<Request>, RenderError> {
            let EventData::ProductionCompletion(done) = &event.data else {
                return Ok(Vec::new());
            };
            let lot = done
                .lot
                .as_deref()
                .ok_or_else(|| RenderError::incomplete("no lot"))?;
            let path = crate::config::require("path")?;
            Ok(vec![
                Request::post("erp", path).json(json!({"Batch": lot, "Order": done.work_order})),
            ])
        }

        fn interpret(_: &Event, _: &Request, response: &Response) -> Verdict {
            match response.json_str("/doc") {
                Some(doc) if response.is_success() => Verdict::posted(doc),
                _ => Verdict::rejected(response.summary()),
            }
        }
    }

    fn event(lot: Option<&str>) -> Value {
        json!({
            "specversion": "1.0", "id": "e1", "source": "/PLANT1/mes",
            "type": "millrace.production-completion.v1", "time": "2026-03-02T06:15:00Z",
            "subject": "WO-1@PLANT1", "datacontenttype": "application/json",
            "data": {"work_order": "WO-1", "item": "FG-1", "lot": lot,
                     "good_quantity": {"amount": "5", "uom": "EA"},
                     "scrap_quantity": {"amount": "0", "uom": "EA"}},
            "route": "mes", "plugin": "mes-shift-report", "pluginversion": "1.0.0", "rawsequence": 1
        })
    }

    fn write(dir: &Path, name: &str, fixture: Value) {
        std::fs::write(dir.join(name), fixture.to_string()).unwrap();
    }

    #[test]
    fn passes_matching_fixtures_and_names_every_difference() {
        let plugin =
            std::env::temp_dir().join(format!("millrace-sdk-fixtures-{}", std::process::id()));
        let dir = plugin.join("fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            plugin.join("plugin.toml"),
            "name = \"tiny\"\n[fixtures.config]\npath = \"/gm\"\n",
        )
        .unwrap();
        let request = json!({"target": "erp", "method": "post", "path": "/gm",
            "headers": [["Content-Type", "application/json"]],
            "body": {"Order": "WO-1", "Batch": "L1"}});
        let answer = json!({"request": 0,
            "response": {"status": 201, "headers": [], "body": {"doc": "4900000001"}},
            "verdict": {"posted": "4900000001"}});
        write(
            &dir,
            "a-posted.json",
            json!({"event": event(Some("L1")),
            "requests": [request], "answers": [answer]}),
        );
        write(
            &dir,
            "b-no-lot.json",
            json!({"event": event(None),
            "error": {"incomplete-event": "no lot"}}),
        );
        write(
            &dir,
            "c-refused.json",
            json!({"event": event(Some("L1")), "requests": [request],
            "answers": [{"request": 0,
                "response": {"status": 400, "headers": [], "body": {"base64": "bm8="}},
                "verdict": {"rejected": "HTTP 400 from erp: no"}}]}),
        );
        assert_eq!(check_fixtures::<Tiny>(&plugin), Ok(3));

        let mut wrong = request.clone();
        wrong["body"]["Batch"] = json!("L2");
        write(
            &dir,
            "d-wrong.json",
            json!({"event": event(Some("L1")), "requests": [wrong],
            "answers": [{"request": 0, "response": {"status": 201, "headers": [], "body": {"doc": "9"}},
                         "verdict": {"try-again": "later"}}]}),
        );
        write(
            &dir,
            "e-wrong-error.json",
            json!({"event": event(None),
            "error": {"rejected-by-rule": "no lot"}}),
        );
        let report = check_fixtures::<Tiny>(&plugin).unwrap_err();
        std::fs::remove_dir_all(&plugin).unwrap();
        assert!(
            report.contains(
                r#"d-wrong.json: request 0: body differs at /Batch: expected "L2", rendered "L1""#
            ),
            "{report}"
        );
        assert!(
            report.contains(
                r#"d-wrong.json: answer 0: verdict differs:
  expected {"try-again":"later"}
  got      {"posted":"9"}"#
            ),
            "{report}"
        );
        assert!(
            report.contains(
                r#"e-wrong-error.json: error differs:
  expected {"rejected-by-rule":"no lot"}
  got      {"incomplete-event":"no lot"}"#
            ),
            "{report}"
        );
        assert_eq!(
            report.lines().filter(|l| l.contains(".json: ")).count(),
            3,
            "{report}"
        );
    }
}
