//! The published contracts hold: every event a golden fixture expects and every event a live
//! host publishes validates against the generated JSON Schemas (checked by an independent
//! validator, the `jsonschema` crate), and each newer `millrace:mapping` WIT package only adds
//! to the one before it (parsed with `wit-parser`, compared structurally).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use millrace::canonical::{CloudEvent, Lineage, MappedEvent};
use millrace::contracts::{WitVersion, compatibility, schema};
use millrace::registry::{Manifest, fixtures};
use millrace::sandbox::World;
use millrace::transport::local_server::free_port;
use serde_json::{Value, json};
use wit_parser::{PackageId, Resolve, Type, TypeDefKind, WorldItem};

use crate::support::*;

/// Every violation of `instance` against `schema`, one readable line each
/// (`<where in the event>: <what is wrong>`).
fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("the generated schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| {
            let at = e.instance_path().as_str();
            format!("{}: {e}", if at.is_empty() { "/" } else { at })
        })
        .collect()
}

/// The schema of `kind` events of the WIT package `wit` (e.g. `millrace:mapping@1.0.0`).
fn event_schema(wit: &str, kind: &str) -> Value {
    let version = WitVersion::find(wit).unwrap();
    schema::event(version, kind).unwrap_or_else(|| panic!("no schema for {kind} in {wit}"))
}

/// A plugin folder with golden fixtures.
struct FixturePlugin {
    dir: PathBuf,
    manifest: Manifest,
}

/// Every mapping plugin and test guest with golden fixtures (posters' and acknowledgers'
/// fixtures hold requests and acknowledgement documents, not canonical events).
fn fixture_plugins() -> Vec<FixturePlugin> {
    let mut out = Vec::new();
    for parent in ["plugins", "tests/guests"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join(parent))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|d| d.join("plugin.toml").is_file() && d.join("fixtures").is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let manifest = Manifest::load(&dir).unwrap();
            let mapper =
                !manifest.is_acknowledger() && matches!(manifest.plugin_world(), Ok(World::Mapper));
            if mapper {
                out.push(FixturePlugin { dir, manifest });
            }
        }
    }
    out
}

/// The expected events of every fixture of `plugin`, as the fixture files hold them.
fn expected_events(plugin: &FixturePlugin) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for input in fixtures::inputs(&plugin.dir).unwrap() {
        let path = fixtures::expected_path(&input);
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for event in expected["events"].as_array().into_iter().flatten() {
            out.push((path.clone(), event.clone()));
        }
    }
    out
}

/// The CloudEvent the host publishes for a fixture's expected event (its `index`-th), with the
/// fixture's own `data` as written in the file.
fn envelope(plugin: &FixturePlugin, event: &Value, index: usize) -> Value {
    let mapped: MappedEvent = serde_json::from_value(event.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: an expected event is no MappedEvent: {e}",
            plugin.dir.display()
        )
    });
    let lineage = Lineage {
        raw_id: "fixture",
        system: &plugin.manifest.source_system,
        route: "fixtures",
        plugin: &plugin.manifest.name,
        plugin_version: &plugin.manifest.version,
        raw_sequence: 1,
    };
    let mut published = serde_json::to_value(CloudEvent::new(&mapped, index, &lineage)).unwrap();
    published["data"] = event["data"].clone();
    published
}

#[test]
fn every_golden_fixture_event_conforms_to_the_schemas() {
    let newest = WitVersion::newest().package();
    let mut checked = BTreeMap::new();
    let mut failures = Vec::new();
    for plugin in fixture_plugins() {
        for (index, (path, event)) in expected_events(&plugin).into_iter().enumerate() {
            let kind = event["kind"].as_str().unwrap();
            let published = envelope(&plugin, &event, index);
            // Its own WIT version's schema, and the newest (which every consumer may use).
            for wit in [plugin.manifest.wit.as_str(), newest.as_str()] {
                for v in violations(&event_schema(wit, kind), &published) {
                    failures.push(format!("{} ({wit}): {v}", path.display()));
                }
            }
            *checked.entry(plugin.manifest.name.clone()).or_insert(0) += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every Rust, Python and JavaScript plugin and the 1.1 test guest took part.
    for name in [
        "mes-shift-report",
        "x12-856",
        "b2mml",
        "edifact-desadv",
        "expiry-v1-1",
    ] {
        assert!(
            checked.contains_key(name),
            "no events of {name}: {checked:?}"
        );
    }
    assert!(checked.values().sum::<usize>() >= 10, "{checked:?}");
}

#[test]
fn a_fixture_event_with_a_wrong_field_fails_validation_with_a_readable_error() {
    let plugin = fixture_plugins()
        .into_iter()
        .find(|p| p.manifest.name == "expiry-v1-1")
        .unwrap();
    let (_, event) = expected_events(&plugin).remove(0);
    let good = envelope(&plugin, &event, 0);
    let schema = event_schema(&plugin.manifest.wit, "inventory-movement");
    assert_eq!(violations(&schema, &good), Vec::<String>::new());

    // A float where the contract says exact decimal text, and a movement type nobody knows.
    let mut wrong = good.clone();
    wrong["data"]["quantity"]["amount"] = json!(12.5);
    wrong["data"]["movement_type"] = json!("teleport");
    let found = violations(&schema, &wrong);
    let text = found.join("\n");
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("/data/quantity/amount:") && v.contains("string")),
        "{text}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("/data/movement_type:") && v.contains("teleport")),
        "{text}"
    );

    // A required field missing, and a lineage extension of the wrong type.
    let mut wrong = good;
    wrong["data"].as_object_mut().unwrap().remove("item");
    wrong["rawsequence"] = json!("one");
    let text = violations(&schema, &wrong).join("\n");
    assert!(
        text.contains("/data: \"item\" is a required property"),
        "{text}"
    );
    assert!(text.contains("/rawsequence:"), "{text}");
}

#[test]
fn the_schema_and_the_host_agree_on_exact_decimals() {
    let defs = schema::definitions(WitVersion::newest());
    let quantity = json!({ "$defs": defs, "$ref": "#/$defs/Quantity" });
    let (longest, too_long) = ("9".repeat(40), "9".repeat(41));
    for amount in [
        "0", "12", "12.50", "-3.5", "0.001", "", "1,5", "1e3", ".5", "5.", "--1", "1.2.3", " 1",
        "NaN", "12\n", &longest, &too_long,
    ] {
        let valid = violations(&quantity, &json!({ "amount": amount, "uom": "EA" })).is_empty();
        assert_eq!(
            valid,
            millrace::rules::validate::is_decimal(amount),
            "the schema and the host disagree on {amount:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_publishes_only_canonical_events_that_conform_and_serves_the_schemas() {
    let mes = plugin("plugins/mes-shift-report");
    let expiry = plugin("tests/guests/expiry-v1-1");
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = nats.config(&format!(
        "{}{}[admin]\nlisten = \"127.0.0.1:{port}\"\n",
        fixture_route("mes", &mes, "raw.mes.*.shift-report", ""),
        fixture_route("expiry", &expiry, "raw.test.*.receipt", "")
    ));
    let js = async_nats::jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;

    // Every input of both plugins that maps to events, published live.
    let mut expected = 0;
    let mut wit_of = BTreeMap::new();
    for (dir, subject) in [
        (&mes, "raw.mes.plant1.shift-report"),
        (&expiry, "raw.test.lab.receipt"),
    ] {
        let manifest = Manifest::load(dir).unwrap();
        wit_of.insert(manifest.name.clone(), manifest.wit.clone());
        for (i, input) in fixtures::inputs(dir).unwrap().into_iter().enumerate() {
            let want: Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures::expected_path(&input)).unwrap(),
            )
            .unwrap();
            let Some(events) = want["events"].as_array() else {
                continue;
            };
            expected += events.len();
            let payload = std::fs::read(&input).unwrap();
            publish(&js, subject, &payload, &format!("{}-{i}", manifest.name)).await;
        }
    }
    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        expected,
        Duration::from_secs(1),
    )
    .await;

    // The same host serves the documents the repository holds (reads need no token on loopback).
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1/schemas");
    let index: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    let listed = index.as_array().unwrap();
    assert_eq!(listed.len(), millrace::contracts::all_documents().len());
    for entry in listed {
        let served = http
            .get(format!(
                "http://127.0.0.1:{port}{}",
                entry["url"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "{entry}");
        let served: Value = served.json().await.unwrap();
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(entry["path"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(served, committed, "{entry}");
    }
    let missing = http
        .get(format!("{base}/9.9/inventory-movement"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let why = missing.text().await.unwrap();
    assert!(why.contains("1.0.0, 1.1.0"), "{why}");
    host.stop().await;

    let newest = WitVersion::newest().package();
    let mut failures = Vec::new();
    let mut with_expiry = 0;
    for message in &stored {
        let event = message.json();
        let kind = event["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("millrace."))
            .and_then(|t| t.strip_suffix(".v1"))
            .unwrap_or_else(|| panic!("{}: no millrace type", message.subject));
        let wit = &wit_of[event["plugin"].as_str().unwrap()];
        for wit in [wit.as_str(), newest.as_str()] {
            for v in violations(&event_schema(wit, kind), &event) {
                failures.push(format!("{} ({wit}): {v}", message.subject));
            }
        }
        with_expiry += usize::from(event["data"].get("expiry_date").is_some());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(stored.len(), expected);
    assert!(
        with_expiry > 0,
        "a 1.1 event with its expiry date was checked"
    );
}

#[test]
fn the_cli_prints_the_committed_documents() {
    for (args, file) in [
        (
            vec!["schema", "--wit", "1.0", "inventory-movement"],
            "mapping@1.0.0/inventory-movement.json",
        ),
        (vec!["schema", "asyncapi"], "mapping@1.1.0/asyncapi.json"),
    ] {
        let out = millrace(&args);
        assert!(out.status.success(), "{}", text(&out));
        let committed = std::fs::read_to_string(root().join("schemas").join(file)).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), committed, "{args:?}");
    }
    assert_clean_failure(&millrace(&["schema", "no-such-kind"]), "inventory-movement");

    // A reader that stops early (`millrace schema asyncapi | head -1`) ends the command quietly.
    // The document is larger than a pipe's buffer, so the write meets the closed pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(["schema", "asyncapi"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "a closed output pipe should end the command quietly: {}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let out = millrace(&["schema", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for (path, _) in millrace::contracts::all_documents() {
        assert_eq!(
            std::fs::read(dir.path().join(&path)).unwrap(),
            std::fs::read(root().join("schemas").join(&path)).unwrap(),
            "{path}"
        );
    }
}

/// A parsed `millrace:mapping` package.
struct WitPackage {
    resolve: Resolve,
    id: PackageId,
}

impl WitPackage {
    fn load(dir: &Path) -> Self {
        let mut resolve = Resolve::default();
        let (id, _) = resolve
            .push_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        Self { resolve, id }
    }

    fn served(version: WitVersion) -> Self {
        Self::load(&root().join("wit").join(version.folder()))
    }

    /// A type as WIT spells it: named types by name (they are compared on their own), the
    /// anonymous ones by structure.
    fn spell(&self, ty: &Type) -> String {
        let id = match ty {
            Type::Id(id) => *id,
            other => return format!("{other:?}").to_lowercase(),
        };
        let def = &self.resolve.types[id];
        if let Some(name) = &def.name {
            return name.clone();
        }
        let opt = |t: &Option<Type>| t.as_ref().map_or("_".to_owned(), |t| self.spell(t));
        match &def.kind {
            TypeDefKind::Option(t) => format!("option<{}>", self.spell(t)),
            TypeDefKind::List(t) => format!("list<{}>", self.spell(t)),
            TypeDefKind::Result(r) => format!("result<{}, {}>", opt(&r.ok), opt(&r.err)),
            TypeDefKind::Tuple(t) => format!(
                "tuple<{}>",
                t.types
                    .iter()
                    .map(|t| self.spell(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Type(t) => self.spell(t),
            other => format!("{other:?}"),
        }
    }

    fn function(&self, f: &wit_parser::Function) -> String {
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, self.spell(&p.ty)))
            .collect();
        let result = f
            .result
            .as_ref()
            .map_or(String::new(), |r| format!(" -> {}", self.spell(r)));
        format!("func({}){result}", params.join(", "))
    }
}

/// How `new` breaks what was built against `old`: one readable line per break. A newer
/// package may only add: types, functions, interfaces, optional record fields, variant and
/// enum cases, flags.
fn wit_breaks(old: &WitPackage, new: &WitPackage) -> Vec<String> {
    let mut out = Vec::new();
    let old_pkg = &old.resolve.packages[old.id];
    let new_pkg = &new.resolve.packages[new.id];
    for (name, old_iface) in &old_pkg.interfaces {
        let Some(new_iface) = new_pkg.interfaces.get(name) else {
            out.push(format!("interface `{name}` was removed"));
            continue;
        };
        let (oi, ni) = (
            &old.resolve.interfaces[*old_iface],
            &new.resolve.interfaces[*new_iface],
        );
        for (tname, tid) in &oi.types {
            let at = format!("interface `{name}`, type `{tname}`");
            let Some(new_tid) = ni.types.get(tname) else {
                out.push(format!("{at}: was removed"));
                continue;
            };
            type_breaks(
                old,
                new,
                &old.resolve.types[*tid].kind,
                &new.resolve.types[*new_tid].kind,
                &at,
                &mut out,
            );
        }
        for (fname, f) in &oi.functions {
            let at = format!("interface `{name}`");
            match ni.functions.get(fname) {
                None => out.push(format!("{at}: function `{fname}` was removed")),
                Some(g) if old.function(f) != new.function(g) => out.push(format!(
                    "{at}: function `{fname}` changed from `{}` to `{}`",
                    old.function(f),
                    new.function(g)
                )),
                Some(_) => {}
            }
        }
    }
    for (wname, wid) in &old_pkg.worlds {
        let Some(new_wid) = new_pkg.worlds.get(wname) else {
            out.push(format!("world `{wname}` was removed"));
            continue;
        };
        let (ow, nw) = (&old.resolve.worlds[*wid], &new.resolve.worlds[*new_wid]);
        for (side, o, n) in [
            ("import", &ow.imports, &nw.imports),
            ("export", &ow.exports, &nw.exports),
        ] {
            let names =
                |r: &Resolve, items: &wit_parser::IndexMap<wit_parser::WorldKey, WorldItem>| {
                    items
                        .keys()
                        .map(|k| r.name_world_key(k))
                        .collect::<Vec<_>>()
                };
            let new_names = names(&new.resolve, n);
            for key in names(&old.resolve, o) {
                let key = key.replace(
                    &format!("@{}", old_version(old)),
                    &format!("@{}", old_version(new)),
                );
                if !new_names.contains(&key) {
                    out.push(format!("world `{wname}`: {side} `{key}` was removed"));
                }
            }
        }
    }
    out
}

fn old_version(p: &WitPackage) -> String {
    p.resolve.packages[p.id]
        .name
        .version
        .as_ref()
        .map_or(String::new(), ToString::to_string)
}

fn type_breaks(
    old: &WitPackage,
    new: &WitPackage,
    o: &TypeDefKind,
    n: &TypeDefKind,
    at: &str,
    out: &mut Vec<String>,
) {
    match (o, n) {
        (TypeDefKind::Record(o), TypeDefKind::Record(n)) => {
            for field in &o.fields {
                match n.fields.iter().find(|f| f.name == field.name) {
                    None => out.push(format!("{at}: field `{}` was removed", field.name)),
                    Some(f) if old.spell(&field.ty) != new.spell(&f.ty) => out.push(format!(
                        "{at}: field `{}` changed type from `{}` to `{}`",
                        field.name,
                        old.spell(&field.ty),
                        new.spell(&f.ty)
                    )),
                    Some(_) => {}
                }
            }
            for field in &n.fields {
                let added = !o.fields.iter().any(|f| f.name == field.name);
                if added && !new.spell(&field.ty).starts_with("option<") {
                    out.push(format!(
                        "{at}: new field `{}` is not optional (`{}`): plugins built against the old version cannot set it",
                        field.name,
                        new.spell(&field.ty)
                    ));
                }
            }
        }
        (TypeDefKind::Variant(o), TypeDefKind::Variant(n)) => {
            for case in &o.cases {
                let spell = |p: &WitPackage, t: &Option<Type>| t.as_ref().map(|t| p.spell(t));
                match n.cases.iter().find(|c| c.name == case.name) {
                    None => out.push(format!("{at}: case `{}` was removed", case.name)),
                    Some(c) if spell(old, &case.ty) != spell(new, &c.ty) => out.push(format!(
                        "{at}: case `{}` changed its payload from {:?} to {:?}",
                        case.name,
                        spell(old, &case.ty),
                        spell(new, &c.ty)
                    )),
                    Some(_) => {}
                }
            }
        }
        (TypeDefKind::Enum(o), TypeDefKind::Enum(n)) => {
            for case in &o.cases {
                if !n.cases.iter().any(|c| c.name == case.name) {
                    out.push(format!("{at}: case `{}` was removed", case.name));
                }
            }
        }
        (TypeDefKind::Flags(o), TypeDefKind::Flags(n)) => {
            for flag in &o.flags {
                if !n.flags.iter().any(|f| f.name == flag.name) {
                    out.push(format!("{at}: flag `{}` was removed", flag.name));
                }
            }
        }
        (TypeDefKind::Type(o), TypeDefKind::Type(n)) => {
            if old.spell(o) != new.spell(n) {
                out.push(format!(
                    "{at}: changed from `{}` to `{}`",
                    old.spell(o),
                    new.spell(n)
                ));
            }
        }
        (o, n) if std::mem::discriminant(o) != std::mem::discriminant(n) => out.push(format!(
            "{at}: changed kind from {} to {}",
            o.as_str(),
            n.as_str()
        )),
        (o, n) => {
            if format!("{o:?}") != format!("{n:?}") {
                out.push(format!("{at}: changed"));
            }
        }
    }
}

#[test]
fn each_served_wit_version_only_adds_to_the_one_before() {
    let served = WitVersion::served();
    assert!(served.len() >= 2, "{served:?}");
    for pair in served.windows(2) {
        let (old, new) = (WitPackage::served(pair[0]), WitPackage::served(pair[1]));
        let breaks = wit_breaks(&old, &new);
        assert!(
            breaks.is_empty(),
            "{} breaks {}:\n  {}",
            pair[1].package(),
            pair[0].package(),
            breaks.join("\n  ")
        );
    }
}

#[test]
fn a_deliberately_breaking_wit_package_fails_the_check_naming_each_break() {
    let old = WitPackage::served(WitVersion::newest());
    let broken = WitPackage::load(&root().join("tests/contracts/mapping-breaking"));
    let text = wit_breaks(&old, &broken).join("\n");
    for wanted in [
        "interface `canonical`, type `inventory-movement`: field `lot` was removed",
        "interface `canonical`, type `quantity`: field `amount` changed type from `decimal` to `f64`",
        "interface `canonical`, type `work-order-state`: case `held` was removed",
        "interface `canonical`, type `shipment-line`: new field `country-of-origin` is not optional",
        "interface `host`: function `get-config-all` was removed",
    ] {
        assert!(text.contains(wanted), "expected {wanted:?} in:\n{text}");
    }
}

#[test]
fn the_generated_schemas_follow_the_wit_versions_and_stay_backward_compatible() {
    let served = WitVersion::served();
    fn canonical(p: &WitPackage) -> &wit_parser::Interface {
        let pkg = &p.resolve.packages[p.id];
        &p.resolve.interfaces[pkg.interfaces["canonical"]]
    }
    for pair in served.windows(2) {
        // Every record field WIT added is in the newer schema, marked with the version that
        // added it, and absent from the older one.
        let (old_wit, new_wit) = (WitPackage::served(pair[0]), WitPackage::served(pair[1]));
        let (old_defs, new_defs) = (schema::definitions(pair[0]), schema::definitions(pair[1]));
        for (tname, tid) in &canonical(&new_wit).types {
            let TypeDefKind::Record(record) = &new_wit.resolve.types[*tid].kind else {
                continue;
            };
            let old_fields: Vec<String> = canonical(&old_wit)
                .types
                .get(tname)
                .and_then(|t| match &old_wit.resolve.types[*t].kind {
                    TypeDefKind::Record(r) => {
                        Some(r.fields.iter().map(|f| f.name.clone()).collect())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            let def: String = tname
                .split('-')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            for field in record
                .fields
                .iter()
                .filter(|f| !old_fields.contains(&f.name))
            {
                let property = field.name.replace('-', "_");
                let Some(new_def) = new_defs.get(&def) else {
                    continue;
                };
                assert_eq!(
                    new_def["properties"][&property][schema::SINCE],
                    pair[1].to_string(),
                    "{def}.{property} was added in WIT {}",
                    pair[1]
                );
                assert!(
                    old_defs[&def]["properties"].get(&property).is_none(),
                    "{def}.{property} is not in WIT {}",
                    pair[0]
                );
            }
        }
        // And a consumer of the older schemas reads events of the newer ones.
        for kind in schema::kinds() {
            let breaks = compatibility::breaks(
                &schema::event(pair[0], &kind).unwrap(),
                &schema::event(pair[1], &kind).unwrap(),
            );
            assert!(breaks.is_empty(), "{kind}: {breaks:#?}");
        }
    }
}

/// A posting acknowledgement and an outbound dead letter, as the host writes them, validate
/// against the document's schemas for them; a wrong outcome does not.
fn outbound_payloads_conform(document: &Value) {
    use millrace::outbound::acknowledgement::{Acknowledgement, PostingOutcome};
    use millrace::outbound::letter::OutboundLetter;
    use millrace::posting::{Method, Request, Response};
    // The document itself as the schema root, so its `#/components/schemas/…` references resolve.
    let schema_of = |name: &str| {
        let mut schema = document.clone();
        schema["$ref"] = format!("#/components/schemas/{name}").into();
        schema
    };
    let acknowledgement = Acknowledgement {
        route: "erp-postings".into(),
        target: "erp".into(),
        event_id: "4d1f0c2e-7b5a-4c1e-9a3d-2f6b8e0c1a77".into(),
        kind: "production-completion".into(),
        site: "PLANT1".into(),
        business_key: "WO-4711@PLANT1/0010".into(),
        request: 0,
        idempotency_key: "4d1f0c2e-7b5a-4c1e-9a3d-2f6b8e0c1a77".into(),
        outcome: PostingOutcome::Posted,
        document: Some("4900000001".into()),
        reason: None,
        status: 201,
        plugin: "erp-postings@1.0.0".into(),
        source_time: "2026-03-02T06:15:00+01:00".into(),
        acknowledged_at: "2026-03-02T05:15:03Z".into(),
        delay_seconds: 3.0,
    };
    let acknowledgement = serde_json::to_value(&acknowledgement).unwrap();
    let posting = schema_of("PostingAcknowledgement");
    assert_eq!(violations(&posting, &acknowledgement), Vec::<String>::new());
    let mut wrong = acknowledgement.clone();
    wrong["outcome"] = "maybe".into();
    assert!(!violations(&posting, &wrong).is_empty());

    let request = Request {
        target: "erp".into(),
        method: Method::Post,
        path: "/odata/v1/GoodsMovements".into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: br#"{"GoodsMovementCode":"03"}"#.to_vec(),
    };
    let letter = OutboundLetter {
        route: "erp-postings".into(),
        subject: "canonical.material-consumption.PLANT1".into(),
        sequence: 42,
        event_id: Some("9b2e".into()),
        event: "{}".into(),
        event_not_copied: None,
        plugin: Some("erp-postings@1.0.0".into()),
        kind: "rejected".into(),
        reason: "M7/021: material RM-999 unknown in plant 1000".into(),
        requests: vec![request],
        request: Some(0),
        answer: Some(Response {
            target: "erp".into(),
            status: 422,
            headers: vec![],
            body: vec![0xff, 0xfe],
        }),
        failed_at: "2026-03-02T05:16:00Z".into(),
        attempts: 1,
    };
    let letter = serde_json::to_value(&letter).unwrap();
    let dead_letter = schema_of("OutboundDeadLetter");
    assert_eq!(violations(&dead_letter, &letter), Vec::<String>::new());
    let mut wrong = letter.clone();
    wrong["requests"][0]["method"] = "fetch".into();
    assert!(!violations(&dead_letter, &wrong).is_empty());
}

/// The official AsyncAPI 3.0.0 JSON Schema, vendored (tests/contracts/asyncapi/README.md).
fn asyncapi_meta_schema() -> Value {
    let path = root().join("tests/contracts/asyncapi/3.0.0-without-id.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_asyncapi_documents_are_valid_asyncapi_3() {
    let meta = asyncapi_meta_schema();
    let mut checked = 0;
    for (path, document) in millrace::contracts::all_documents() {
        if !path.ends_with("asyncapi.json") {
            continue;
        }
        let wrong = violations(&meta, &document);
        assert!(
            wrong.is_empty(),
            "{path} is not a valid AsyncAPI 3.0 document:\n  {}",
            wrong.join("\n  ")
        );
        let channels = document["channels"].as_object().unwrap();
        assert_eq!(
            channels["audit-route"]["address"], "audit.route.{route}.{action}",
            "{path}"
        );
        assert_eq!(
            document["components"]["messages"]["audit-entry"]["payload"]["$ref"],
            "#/components/schemas/AuditEntry"
        );
        // The outbound half: postings, NATS targets' requests, partners' acknowledgements and
        // outbound dead letters, the JSON payloads described by the host's own types.
        for (channel, address, message, payload) in [
            (
                "postings",
                "posting.{target}.{site}",
                "posting-acknowledgement",
                Some("PostingAcknowledgement"),
            ),
            ("outbox", "out.{target}.{site}", "target-request", None),
            (
                "partner-acknowledgements",
                "ack.{route}.{partner}",
                "x12-997",
                None,
            ),
            (
                "partner-acknowledgements",
                "ack.{route}.{partner}",
                "edifact-contrl",
                None,
            ),
            (
                "outbound-dead-letters",
                "dlq.outbound.{route}",
                "outbound-dead-letter",
                Some("OutboundDeadLetter"),
            ),
        ] {
            assert_eq!(channels[channel]["address"], address, "{path}");
            assert_eq!(
                channels[channel]["messages"][message]["$ref"],
                format!("#/components/messages/{message}"),
                "{path}"
            );
            let payload_ref = &document["components"]["messages"][message]["payload"]["$ref"];
            match payload {
                Some(schema) => {
                    assert_eq!(*payload_ref, format!("#/components/schemas/{schema}"))
                }
                None => assert!(payload_ref.is_null(), "{message} carries bytes"),
            }
        }
        outbound_payloads_conform(&document);
        checked += 1;
    }
    assert_eq!(checked, WitVersion::served().len());

    // The check has teeth: an operation without its channel is refused.
    let mut broken = millrace::contracts::all_documents()
        .into_iter()
        .find(|(p, _)| p.ends_with("asyncapi.json"))
        .unwrap()
        .1;
    broken["operations"]["receiveRaw"]
        .as_object_mut()
        .unwrap()
        .remove("channel");
    let wrong = violations(&meta, &broken);
    assert!(
        !wrong.is_empty(),
        "a broken document passed the meta-schema"
    );
}
