//! The host side of the `millrace:mapping@1.0.0` WIT, generated once and kept private to the
//! sandbox; the rest of the host sees only the re-exports in the parent module.
// Generated items carry the WIT docs where bindgen keeps them; it does not for all.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/mapping@1.0.0",
    world: "mapper",
});

/// The canonical types of the WIT.
pub use self::millrace::mapping::canonical as wit;

/// The types a call takes and returns.
pub mod exports {
    pub use super::millrace::mapping::canonical::{CanonicalEvent, EventData};
    pub use super::millrace::mapping::types::{MapError, RawMessage};
}
