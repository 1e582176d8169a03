//! millrace: routes raw manufacturing messages from NATS through sandboxed WebAssembly mapping
//! plugins and publishes canonical manufacturing events.
//!
//! The modules follow the flow: [`transport`] (NATS) → [`host`] (lanes) → [`pipeline`] (the one
//! stage every message goes through: [`routes`] picks the versions, [`workers`] run the plugin
//! in the [`sandbox`], [`rules`] check the outcome, [`delivery`] publishes it or dead-letters
//! it, in the [`canonical`] CloudEvents envelope). [`operations`] are the operator workflows
//! (redrive, shadow reports); [`registry`] finds, builds, admits and loads plugin versions;
//! [`config`] is the typed configuration; [`projection`] keeps the visibility picture (stock,
//! work orders, holds) from the canonical stream; [`contracts`] are the JSON Schemas and the
//! AsyncAPI document published for consumers. docs/ARCHITECTURE.md has the whole map.
#![deny(missing_docs)]

pub mod acknowledgements;
pub mod admin;
pub mod canonical;
pub mod config;
pub mod contracts;
pub mod delivery;
pub mod digest;
pub mod host;
pub mod names;
pub mod observability;
pub mod operations;
pub mod pipeline;
pub mod projection;
pub mod registry;
pub mod routes;
pub mod rules;
pub mod sandbox;
pub mod subjects;
pub mod transport;
pub mod workers;
