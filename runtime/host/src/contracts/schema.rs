//! The JSON Schema (draft 2020-12) of each canonical event type, derived from the model.
//!
//! One schema per kind and WIT version: the CloudEvents envelope ([`CloudEvent`]) with `type`
//! fixed to `millrace.<kind>.v1` and `data` the kind's record, which is also under `$defs` by
//! its model name (e.g. `#/$defs/InventoryMovement`) for validating the data alone.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::WitVersion;
use millrace_core::canonical::{CloudEvent, EventData};

/// The keyword marking a property a later WIT version added.
pub const SINCE: &str = "x-millrace-since";

/// The root schema of `T`, draft 2020-12.
pub(crate) fn root<T: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// The kinds of [`EventData`] with the name of each one's data record, read from its schema.
fn variants() -> Vec<(String, String)> {
    let schema = root::<EventData>();
    let cases = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    cases
        .iter()
        .filter_map(|case| {
            let props = case.get("properties")?;
            let kind = props.get("kind")?;
            let kind = kind
                .get("const")
                .or_else(|| kind.get("enum").and_then(|e| e.get(0)))?
                .as_str()?;
            let reference = props.get("data")?.get("$ref")?.as_str()?;
            let name = reference.strip_prefix("#/$defs/")?;
            Some((kind.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every event kind, in the model's order.
pub fn kinds() -> Vec<String> {
    variants().into_iter().map(|(kind, _)| kind).collect()
}

/// The record definitions of the model at `version`: every `$defs` entry of [`EventData`],
/// without the properties `version` does not have yet.
pub fn definitions(version: WitVersion) -> Map<String, Value> {
    let mut schema = root::<EventData>();
    for_version(&mut schema, version);
    match schema.get_mut("$defs").map(Value::take) {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    }
}

/// The schema of a `kind` event of `version`, or None for an unknown kind.
pub fn event(version: WitVersion, kind: &str) -> Option<Value> {
    let (_, record) = variants().into_iter().find(|(k, _)| k == kind)?;
    let mut schema = root::<CloudEvent>();
    let object = schema.as_object_mut()?;
    object.insert(
        "title".into(),
        json!(format!("millrace.{kind}.v1 ({})", version.package())),
    );
    object.insert(
        "description".into(),
        json!(format!(
            "A canonical `{kind}` event as millrace publishes it to `canonical.{kind}.<site>`: \
             a CloudEvents 1.0 JSON document with millrace's lineage extensions, for plugins \
             built against {}. Generated from the host's model; do not edit.",
            version.package()
        )),
    );
    let properties = object.get_mut("properties")?.as_object_mut()?;
    let type_description = properties
        .get("type")
        .and_then(|t| t.get("description"))
        .cloned()
        .unwrap_or(Value::Null);
    properties.insert(
        "type".into(),
        json!({ "const": format!("millrace.{kind}.v1"), "description": type_description }),
    );
    properties.insert(
        "data".into(),
        json!({ "$ref": format!("#/$defs/{record}"), "description": "The event record." }),
    );
    let mut defs = definitions(version);
    keep_reachable(&mut defs, &record);
    object.insert("$defs".into(), Value::Object(defs));
    Some(schema)
}

/// Removes the properties added after `version` (and their `required` entries) everywhere.
fn for_version(schema: &mut Value, version: WitVersion) {
    match schema {
        Value::Object(object) => {
            let mut removed = Vec::new();
            if let Some(Value::Object(props)) = object.get_mut("properties") {
                props.retain(|name, prop| {
                    let newer = prop
                        .get(SINCE)
                        .and_then(Value::as_str)
                        .and_then(WitVersion::parse_full)
                        .is_some_and(|since| since > version);
                    if newer {
                        removed.push(name.clone());
                    }
                    !newer
                });
            }
            if let Some(Value::Array(required)) = object.get_mut("required") {
                required.retain(|r| !removed.iter().any(|n| r == n.as_str()));
            }
            for value in object.values_mut() {
                for_version(value, version);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| for_version(v, version)),
        _ => {}
    }
}

/// Keeps the definitions `root` reaches (directly or through others).
fn keep_reachable(defs: &mut Map<String, Value>, root: &str) {
    let mut keep = vec![root.to_owned()];
    let mut i = 0;
    while i < keep.len() {
        let mut refs = Vec::new();
        if let Some(def) = defs.get(&keep[i]) {
            references(def, &mut refs);
        }
        for r in refs {
            if !keep.contains(&r) {
                keep.push(r);
            }
        }
        i += 1;
    }
    defs.retain(|name, _| keep.contains(name));
}

/// The `$defs` names `value` refers to.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, v) in object {
                if key == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    out.push(name.to_owned());
                }
                references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(text: &str) -> WitVersion {
        WitVersion::find(text).unwrap()
    }

    #[test]
    fn every_kind_of_the_model_has_a_schema() {
        let kinds = kinds();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        assert!(kinds.contains(&"inventory-movement".to_owned()));
        assert!(kinds.contains(&"shipment-notice".to_owned()));
        for kind in &kinds {
            let schema = event(v("1.1"), kind).unwrap();
            assert_eq!(
                schema["properties"]["type"]["const"],
                format!("millrace.{kind}.v1")
            );
            assert!(
                schema["$defs"]
                    .as_object()
                    .unwrap()
                    .contains_key("Quantity")
                    || kind == "quality-hold"
            );
        }
        assert!(event(v("1.1"), "no-such-kind").is_none());
    }

    #[test]
    fn the_expiry_date_is_in_1_1_only() {
        let old = event(v("1.0"), "inventory-movement").unwrap();
        let new = event(v("1.1"), "inventory-movement").unwrap();
        let props = |s: &Value| s["$defs"]["InventoryMovement"]["properties"].clone();
        assert!(props(&old).get("expiry_date").is_none());
        assert_eq!(props(&new)["expiry_date"][SINCE], "1.1.0");
    }

    #[test]
    fn the_envelope_carries_the_lineage_extensions() {
        let schema = event(v("1.0"), "work-order-status").unwrap();
        let required = schema["required"].as_array().unwrap();
        for field in [
            "id",
            "source",
            "type",
            "time",
            "subject",
            "data",
            "plugin",
            "pluginversion",
            "rawsequence",
            "route",
        ] {
            assert!(
                required.iter().any(|r| r == field),
                "{field} is not required"
            );
        }
        assert_eq!(schema["properties"]["specversion"]["const"], "1.0");
        assert!(schema["properties"].get("sourcesequence").is_some());
    }
}
