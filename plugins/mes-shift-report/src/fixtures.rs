//! Runs the golden fixtures natively, the way `millrace plugin test` runs them in the host.

use std::fs;
use std::path::{Path, PathBuf};

use millrace_sdk::canonical::{Quantity, WorkOrderState};
use millrace_sdk::prelude::*;
use serde_json::{Map, Value, json};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Sets the route configuration the manifest declares for fixtures, and returns its subject.
fn fixture_route() -> String {
    let manifest = fs::read_to_string(manifest_dir().join("plugin.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    let fixtures = manifest["fixtures"].as_table().unwrap();
    let config: Vec<(String, String)> = fixtures
        .get("config")
        .and_then(|config| config.as_table())
        .map(|table| {
            table
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    config::set_for_tests(config);
    fixtures["subject"].as_str().unwrap().to_owned()
}

fn quantity(q: &Quantity) -> Value {
    json!({"amount": q.amount, "uom": q.uom})
}

fn state(state: &WorkOrderState) -> &'static str {
    match state {
        WorkOrderState::Released => "released",
        WorkOrderState::Started => "started",
        WorkOrderState::Paused => "paused",
        WorkOrderState::Completed => "completed",
        WorkOrderState::Closed => "closed",
        WorkOrderState::Cancelled => "cancelled",
        WorkOrderState::Held => "held",
    }
}

/// Inserts `value` under `key` unless it is none (the JSON form omits none options).
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// The plugin-level JSON form of an event, as the host prints it.
fn event_json(event: &CanonicalEvent) -> Value {
    let mut data = Map::new();
    let kind = match &event.data {
        EventData::ProductionCompletion(p) => {
            data.insert("work_order".into(), json!(p.work_order));
            put(
                &mut data,
                "operation",
                p.operation.as_ref().map(|v| json!(v)),
            );
            data.insert("item".into(), json!(p.item));
            put(&mut data, "lot", p.lot.as_ref().map(|v| json!(v)));
            data.insert("good_quantity".into(), quantity(&p.good_quantity));
            data.insert("scrap_quantity".into(), quantity(&p.scrap_quantity));
            put(&mut data, "location", p.location.as_ref().map(|v| json!(v)));
            "production-completion"
        }
        EventData::MaterialConsumption(m) => {
            data.insert("work_order".into(), json!(m.work_order));
            put(
                &mut data,
                "operation",
                m.operation.as_ref().map(|v| json!(v)),
            );
            data.insert("item".into(), json!(m.item));
            put(&mut data, "lot", m.lot.as_ref().map(|v| json!(v)));
            data.insert("quantity".into(), quantity(&m.quantity));
            put(&mut data, "location", m.location.as_ref().map(|v| json!(v)));
            "material-consumption"
        }
        EventData::WorkOrderStatus(w) => {
            data.insert("work_order".into(), json!(w.work_order));
            put(
                &mut data,
                "operation",
                w.operation.as_ref().map(|v| json!(v)),
            );
            data.insert("state".into(), json!(state(&w.state)));
            put(&mut data, "item", w.item.as_ref().map(|v| json!(v)));
            put(
                &mut data,
                "planned_quantity",
                w.planned_quantity.as_ref().map(quantity),
            );
            put(
                &mut data,
                "completed_quantity",
                w.completed_quantity.as_ref().map(quantity),
            );
            put(
                &mut data,
                "scrapped_quantity",
                w.scrapped_quantity.as_ref().map(quantity),
            );
            "work-order-status"
        }
        other => panic!("this plugin does not emit {other:?}"),
    };
    let mut object = Map::new();
    object.insert("kind".into(), json!(kind));
    object.insert("site".into(), json!(event.site));
    object.insert("occurred_at".into(), json!(event.occurred_at));
    put(
        &mut object,
        "source_sequence",
        event.source_sequence.map(|v| json!(v)),
    );
    put(
        &mut object,
        "source_transaction",
        event.source_transaction.as_ref().map(|v| json!(v)),
    );
    object.insert("data".into(), Value::Object(data));
    Value::Object(object)
}

fn outcome_json(result: &Result<Vec<CanonicalEvent>, MapError>) -> Value {
    match result {
        Ok(events) => json!({"events": events.iter().map(event_json).collect::<Vec<_>>()}),
        Err(error) => json!({"error": {"kind": error.kind(), "message": error.message()}}),
    }
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "json"))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn golden_fixtures_match() {
    let subject = fixture_route();
    let dir = manifest_dir().join("fixtures");
    let inputs = inputs(&dir);
    assert!(inputs.len() >= 9, "expected the golden fixtures in {dir:?}");
    let mut failures = Vec::new();
    for input in &inputs {
        let stem = input.file_stem().unwrap().to_str().unwrap();
        let expected_path = dir.join(format!("{stem}.expected.json"));
        let expected: Value =
            serde_json::from_str(&fs::read_to_string(&expected_path).unwrap()).unwrap();
        let message = RawMessage {
            subject: subject.clone(),
            headers: Vec::new(),
            payload: fs::read(input).unwrap(),
        };
        let actual = outcome_json(&crate::map(message));
        if actual != expected {
            failures.push(format!(
                "{stem}:\n  expected {expected}\n  actual   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn site_table_wins_over_the_route_site() {
    config::set_for_tests([("site", "PLANT1"), ("site.1000", "BREMEN-1")]);
    let payload = b"HDR|SHIFTRPT|02|1000|L01|A|20260302|+01:00|\nTRL|000000\n";
    let message = RawMessage {
        subject: "raw.mes.plant1.shift-report".into(),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    assert_eq!(crate::map(message), Ok(Vec::new()));

    let payload = b"HDR|SHIFTRPT|02|1000|L01|A|20260302|+01:00|\nMAT|000001|T1|WO1||M1||000001000|KG|20260302|061500|\nTRL|000001\n";
    let map = |config: &[(&str, &str)]| {
        config::set_for_tests(config.iter().copied());
        crate::map(RawMessage {
            subject: "raw.mes.plant1.shift-report".into(),
            headers: Vec::new(),
            payload: payload.to_vec(),
        })
    };
    let site = |result: Result<Vec<CanonicalEvent>, MapError>| result.unwrap()[0].site.clone();
    assert_eq!(
        site(map(&[("site", "PLANT1"), ("site.1000", "BREMEN-1")])),
        "BREMEN-1"
    );
    assert_eq!(site(map(&[("site", "PLANT1")])), "PLANT1");
    assert_eq!(site(map(&[])), "1000");
    assert_eq!(map(&[("site", "PLANT 1")]).unwrap_err().kind(), "other");
}
