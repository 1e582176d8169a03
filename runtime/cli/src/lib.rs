//! millrace: routes raw manufacturing messages from NATS through sandboxed WebAssembly mapping
//! plugins and publishes canonical manufacturing events.
//!
//! This library is the `millrace` command's view of the crates below it, re-exported as one
//! API: `millrace-core` (model, rules, config, sandbox), `millrace-transport` (NATS),
//! `millrace-projection` (the visibility picture) and `millrace-host` (pipeline, delivery,
//! registry, operations, observability, admin). docs/ARCHITECTURE.md has the map.
#![deny(missing_docs)]

pub use millrace_core::{
    canonical, config, digest, names, posting, rules, sandbox, subjects, workers,
};
pub use millrace_host::{
    acknowledgements, admin, approval, audit, contracts, delivery, host, lanes, observability,
    operations, outbound, pipeline, registry, routes,
};
pub use millrace_projection as projection;
pub use millrace_transport as transport;
