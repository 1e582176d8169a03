//! The canonical event model, the Rust mirror of `interface canonical` in the newest WIT
//! package the SDK exports, `wit/mapping@1.1.0/canonical.wit` (its docs are copied here).
//!
//! The SDK (with the host, in `millrace-model`) owns these types instead of generating them, so that a plugin's component carries
//! the bindings of the one WIT version its manifest names, generated in the plugin by
//! [`crate::export_mapper!`], which also lowers these types to that version's. A plugin
//! targeting 1.0.0 builds the same types: what 1.0.0 cannot carry (an expiry date) is left out
//! and logged.
//!
//! The records also deserialize from the JSON the host publishes on the canonical stream (the
//! `data` of a CloudEvent: snake_case fields, kebab-case enum values, absent options left out),
//! which is how an outbound plugin's native tests read their fixtures
//! ([`crate::posting::Event::from_cloudevent`]).
//!
//! The types are `millrace-model`'s, the ones the host validates and publishes, re-exported
//! here with their constructors ([`crate::events`]).

pub use millrace_model::canonical::*;
