//! millrace core: what a mapping is, independent of how messages arrive.
//!
//! The [`canonical`] event model and its CloudEvents envelope, the [`rules`] a mapping's outcome
//! must pass, the typed [`config`], validated [`names`] and the [`subjects`] they make, content
//! [`digest`]s, and the [`sandbox`] (wasmtime, the WIT bindings of every served version) whose
//! calls the [`workers`] pool runs. This crate has no NATS client and no networking: the host
//! crates build the flow on top of it (docs/ARCHITECTURE.md).
#![deny(missing_docs)]

pub mod canonical;
pub mod config;
pub mod digest;
pub mod names;
pub mod posting;
pub mod rules;
pub mod sandbox;
pub mod subjects;
pub mod workers;

/// The layering rule of docs/ARCHITECTURE.md, checked where it could be broken: the core names
/// no NATS client, no network server or client and none of the crates built on it (only the
/// model below it).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod layering {
    #[test]
    fn the_core_depends_on_no_broker_no_network_and_no_upper_crate() {
        let manifest: toml::Table = toml::from_str(include_str!("../Cargo.toml")).unwrap();
        let mut names: Vec<&String> = Vec::new();
        for section in ["dependencies", "build-dependencies"] {
            if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
                names.extend(deps.keys());
            }
        }
        assert!(
            names.iter().any(|n| *n == "wasmtime"),
            "read the wrong table: {names:?}"
        );
        for name in names {
            let forbidden = [
                "async-nats",
                "axum",
                "hyper",
                "reqwest",
                "opentelemetry-otlp",
            ]
            .contains(&name.as_str())
                // millrace-model is below the core: the plain canonical model it shares with the SDK.
                || (name.starts_with("millrace-") && name != "millrace-model");
            assert!(!forbidden, "millrace-core must not depend on `{name}`");
        }
        let tokio = &manifest["dependencies"]["tokio"];
        let features = tokio["features"].as_array().unwrap();
        assert!(
            !features
                .iter()
                .any(|f| ["net", "full"].contains(&f.as_str().unwrap())),
            "millrace-core's tokio must not bring networking: {features:?}"
        );
    }
}
