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
