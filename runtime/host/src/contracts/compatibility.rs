//! Backward compatibility of two versions of a generated schema, for consumers: everything a
//! consumer of the old schema reads is still there with the same type, and nothing it never
//! sent is now required, no enum value it handles is gone. New optional properties and new enum
//! values are allowed.

use serde_json::Value;

/// How `new` breaks consumers of `old`: one readable line per break, e.g.
/// `data.quantity.amount: type changed from "string" to "number"`. Empty when compatible.
pub fn breaks(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare(
        Side { root: old, at: old },
        Side { root: new, at: new },
        "",
        0,
        &mut out,
    );
    out
}

#[derive(Clone, Copy)]
struct Side<'a> {
    root: &'a Value,
    at: &'a Value,
}

impl<'a> Side<'a> {
    /// Follows local `$ref`s (`#/...`).
    fn resolved(self) -> Side<'a> {
        let mut at = self.at;
        for _ in 0..32 {
            match at
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.root.pointer(pointer))
            {
                Some(target) => at = target,
                None => break,
            }
        }
        Side {
            root: self.root,
            at,
        }
    }

    fn get(self, key: &str) -> Option<&'a Value> {
        self.at.get(key)
    }

    fn to(self, at: &'a Value) -> Side<'a> {
        Side {
            root: self.root,
            at,
        }
    }
}

/// `path.name`, or `name` at the top.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn place(path: &str) -> &str {
    if path.is_empty() { "the event" } else { path }
}

fn compare(old: Side<'_>, new: Side<'_>, path: &str, depth: usize, out: &mut Vec<String>) {
    if depth > 64 {
        return;
    }
    let (old, new) = (old.resolved(), new.resolved());

    if old.get("type") != new.get("type") {
        out.push(format!(
            "{}: type changed from {} to {}",
            place(path),
            old.get("type").unwrap_or(&Value::Null),
            new.get("type").unwrap_or(&Value::Null)
        ));
    }
    if let Some(old_const) = old.get("const")
        && new.get("const") != Some(old_const)
    {
        out.push(format!(
            "{}: the constant {old_const} changed to {}",
            place(path),
            new.get("const").unwrap_or(&Value::Null)
        ));
    }
    if let (Some(Value::Array(old_values)), Some(new_values)) = (old.get("enum"), new.get("enum")) {
        for value in old_values {
            if !new_values.as_array().is_some_and(|n| n.contains(value)) {
                out.push(format!("{}: the value {value} was removed", place(path)));
            }
        }
    }

    let old_required = names(old.get("required"));
    for required in names(new.get("required")) {
        if !old_required.contains(&required) {
            out.push(format!(
                "{}: is now required (consumers of the old version never sent or expected it)",
                join(path, &required)
            ));
        }
    }
    if let Some(Value::Object(old_props)) = old.get("properties") {
        let new_props = new.get("properties").and_then(Value::as_object);
        for (name, old_prop) in old_props {
            match new_props.and_then(|p| p.get(name)) {
                None => out.push(format!("{}: was removed", join(path, name))),
                Some(new_prop) => compare(
                    old.to(old_prop),
                    new.to(new_prop),
                    &join(path, name),
                    depth + 1,
                    out,
                ),
            }
        }
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(
            old.to(old_items),
            new.to(new_items),
            &format!("{path}[]"),
            depth + 1,
            out,
        );
    }
    for keyword in ["anyOf", "oneOf"] {
        match (old.get(keyword), new.get(keyword)) {
            (None, None) => {}
            // An enum with documented values: one `const` per alternative, compared as a set.
            (Some(Value::Array(o)), Some(Value::Array(n)))
                if o.iter().chain(n).all(|a| a.get("const").is_some()) =>
            {
                for value in o.iter().filter_map(|a| a.get("const")) {
                    if !n.iter().any(|a| a.get("const") == Some(value)) {
                        out.push(format!("{}: the value {value} was removed", place(path)));
                    }
                }
            }
            (Some(Value::Array(o)), Some(Value::Array(n))) if n.len() >= o.len() => {
                for (o, n) in o.iter().zip(n) {
                    compare(old.to(o), new.to(n), path, depth + 1, out);
                }
            }
            _ => out.push(format!(
                "{}: its {keyword} alternatives changed",
                place(path)
            )),
        }
    }
}

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::contracts::{WitVersion, schema};
    use serde_json::json;

    #[test]
    fn every_kind_of_1_1_is_backward_compatible_with_1_0() {
        let served = WitVersion::served();
        for pair in served.windows(2) {
            for kind in schema::kinds() {
                let old = schema::event(pair[0], &kind).unwrap();
                let new = schema::event(pair[1], &kind).unwrap();
                let found = breaks(&old, &new);
                assert!(
                    found.is_empty(),
                    "{kind} {} → {}: {found:#?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn removed_fields_and_values_changed_types_and_new_required_fields_are_named() {
        let old = schema::event(WitVersion::newest(), "inventory-movement").unwrap();
        let mut new = old.clone();
        let movement = &mut new["$defs"]["InventoryMovement"];
        movement["properties"]
            .as_object_mut()
            .unwrap()
            .remove("lot");
        movement["required"]
            .as_array_mut()
            .unwrap()
            .push(json!("expiry_date"));
        new["$defs"]["Quantity"]["properties"]["amount"]["type"] = json!("number");
        let movement_types = new["$defs"]["MovementType"]["oneOf"]
            .as_array_mut()
            .unwrap();
        movement_types.retain(|case| case["const"] != "scrap");
        movement_types.insert(0, json!({ "const": "borrow", "type": "string" }));
        let found = breaks(&old, &new).join("\n");
        assert!(
            found.contains("data.movement_type: the value \"scrap\" was removed"),
            "{found}"
        );
        assert!(
            !found.contains("borrow"),
            "a new value is no break: {found}"
        );
        assert!(found.contains("data.lot: was removed"), "{found}");
        assert!(
            found.contains("data.expiry_date: is now required"),
            "{found}"
        );
        assert!(
            found.contains("data.quantity.amount: type changed from \"string\" to \"number\""),
            "{found}"
        );
    }
}
