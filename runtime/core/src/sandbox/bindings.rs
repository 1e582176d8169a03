//! The host side of every `millrace:mapping` WIT version this host serves, generated once and
//! kept private to the sandbox; the rest of the host sees the re-exports in the parent module.
// Generated items carry the WIT docs where bindgen keeps them; it does not for all.
#![allow(missing_docs)]

/// `millrace:mapping@1.0.0`.
pub mod v1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/mapping@1.0.0",
        world: "mapper",
    });
}

/// `millrace:mapping@1.1.0`. Its types are distinct Rust types even where the WIT did not
/// change (bindgen can share only resources and whole interfaces), so `convert` lifts both.
pub mod v1_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/mapping@1.1.0",
        world: "mapper",
    });
}

/// The types a call takes: the same shape in every version, so 1.1.0 calls convert the input.
pub mod exports {
    pub use super::v1_0::millrace::mapping::types::{MapError, RawMessage};
}
