//! millrace: routes raw manufacturing messages from NATS through sandboxed WebAssembly mapping
//! plugins and publishes canonical manufacturing events.
//!
//! The modules follow the flow: [`transport`] (NATS) → [`router`] (which route, which lane) →
//! [`workers`] → [`sandbox`] (the plugin call) → [`governance`] (validation, dead letters) →
//! [`canonical`] (the CloudEvents envelope), tied together by [`host`]. [`registry`] finds,
//! builds and tests plugins; [`config`] is the typed configuration. [`projection`] keeps the
//! visibility picture (stock, work orders, holds) from the canonical stream.
#![deny(missing_docs)]

pub mod admin;
pub mod canonical;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod governance;
pub mod host;
pub mod names;
pub mod observability;
pub mod pipeline;
pub mod projection;
pub mod registry;
pub mod routes;
pub mod sandbox;
pub mod subjects;
pub mod transport;
pub mod workers;
