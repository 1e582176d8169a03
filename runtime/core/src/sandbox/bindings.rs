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

/// `millrace:outbound@1.0.0`, world `poster`. It imports the `host` interface and the types of
/// `millrace:mapping@1.1.0`; those are the 1.1.0 bindings' own, so one `host` implementation and
/// one linker serve mappers and posters alike.
pub mod poster_v1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/outbound@1.0.0",
        world: "poster",
        with: {
            "millrace:mapping/host@1.1.0": super::v1_1::millrace::mapping::host,
            "millrace:mapping/canonical@1.1.0": super::v1_1::millrace::mapping::canonical,
        },
    });
}
