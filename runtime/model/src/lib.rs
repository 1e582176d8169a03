//! The canonical model of millrace, written once for the host and for plugin authors.
//!
//! [`canonical`] is the event model mapping plugins produce (WIT `interface canonical`),
//! [`events`] its constructors with defaults, [`mapping`] why a mapping produced none, and
//! [`posting`] what outbound plugins and the host's outbound driver share (WIT
//! `interface posting`). The host re-exports these as
//! `millrace_core::canonical` and `millrace_core::posting`, the SDK as
//! `millrace_sdk::canonical` and `millrace_sdk::posting`, so a plugin's native tests and the
//! host read and write the same JSON.
//!
//! Plain data with serde: no wasmtime, no tokio, and it builds for `wasm32-wasip2`. The
//! `schemars` feature (the host's) derives the JSON Schemas the published contracts are
//! generated from.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[macro_use]
mod variant;

pub mod canonical;
pub mod events;
pub mod mapping;
pub mod posting;

/// What the model may depend on, checked where it could be broken: plain data for plugins and
/// the host alike, so no runtime (wasmtime, tokio), no networking and no other millrace crate.
#[cfg(test)]
mod layering {
    #[test]
    fn the_model_depends_on_serde_and_nothing_of_the_host() {
        let manifest: toml::Table = toml::from_str(include_str!("../Cargo.toml")).unwrap();
        let names: Vec<&String> = manifest["dependencies"]
            .as_table()
            .unwrap()
            .keys()
            .collect();
        assert!(
            names.iter().any(|n| *n == "serde"),
            "read the wrong table: {names:?}"
        );
        for name in names {
            let allowed = ["base64", "schemars", "serde", "serde_json", "thiserror"];
            assert!(
                allowed.contains(&name.as_str()),
                "millrace-model must stay plain data for plugins; it may not depend on `{name}`"
            );
        }
    }
}
