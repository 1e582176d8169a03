//! The millrace host: a raw message on NATS becomes canonical events.
//!
//! The modules follow the flow: [`host`] (the host as a value; lanes pull from the route
//! consumers of `millrace_transport`) → [`pipeline`] (the one stage every message goes through:
//! [`routes`] picks the versions, the core's workers run the plugin in its sandbox, the core's
//! rules check the outcome, [`delivery`] publishes it or dead-letters it). [`operations`] are
//! the operator workflows (redrive, shadow reports); [`registry`] finds, builds, admits and
//! loads plugin versions; [`observability`] counts and traces; [`admin`] is the HTTP API and
//! console; [`contracts`] are the JSON Schemas and the AsyncAPI document published for
//! consumers; [`audit`] is the trail of every change and [`approval`] the governed way routes
//! change (proposals approved by a second identity); [`outbound`] posts canonical events to the
//! systems of record (docs/OUTBOUND.md). docs/ARCHITECTURE.md has the whole map.
#![deny(missing_docs)]

pub mod acknowledgements;
pub mod admin;
pub mod approval;
pub mod audit;
pub mod contracts;
pub mod delivery;
pub mod host;
pub mod lanes;
pub mod observability;
pub mod operations;
pub mod outbound;
pub mod pipeline;
pub mod registry;
pub mod routes;
