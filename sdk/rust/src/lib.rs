//! Write millrace mapping plugins in Rust.
//!
//! A plugin is one plain function and one macro line:
//!
//! ```ignore
//! use millrace_sdk::prelude::*;
//!
//! fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
//!     let site = config::require("site")?;
//!     let text = text::latin1(&msg.payload);
//!     // ... parse `text`, build events ...
//!     Ok(Vec::new())
//! }
//!
//! millrace_sdk::export_mapper!(map);
//! ```
//!
//! The crate hides `wit-bindgen`: [`export_mapper!`] writes the component export glue for the
//! `millrace:mapping@1.0.0` world `mapper`. Beside the canonical types ([`canonical`]) it offers
//! the helpers every mapping needs: exact decimals ([`decimal`]), RFC 3339 timestamps
//! ([`timestamp`]), typed errors ([`MapError`], [`ResultExt`]), the route configuration
//! ([`config`]), logging ([`log`]) and legacy text decoding ([`text`]).
//!
//! Off `wasm32` (in a plugin's own `cargo test`), [`config`] reads a per-thread table set with
//! `config::set_for_tests` and [`log`] writes to stderr, so mappings are testable natively.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// Lets the generated bindings and the exported macros name this crate the same way from inside
// and from plugin crates.
extern crate self as millrace_sdk;

pub mod config;
pub mod decimal;
pub mod edifact;
mod error;
pub mod log;
pub mod records;
pub mod text;
pub mod timestamp;
pub mod x12;

pub use error::ResultExt;

/// The generated WIT bindings; use the re-exports instead.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit/mapping@1.0.0",
        world: "mapper",
        pub_export_macro: true,
        default_bindings_module: "millrace_sdk::wit",
        runtime_path: "millrace_sdk::__wit_bindgen_rt",
        additional_derives: [PartialEq, Eq],
    });
}

/// The runtime support of `wit-bindgen`, named by the generated export glue.
#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

/// The canonical event model of `millrace:mapping@1.0.0` (events, quantities, enums).
pub mod canonical {
    pub use crate::wit::millrace::mapping::canonical::*;
}

/// A raw message as it arrived on NATS: subject, headers and payload bytes.
pub use crate::wit::millrace::mapping::types::RawMessage;

/// Why a mapping could not turn a raw message into canonical events; every case is permanent.
///
/// Build one with [`MapError::malformed`], [`MapError::unsupported`], [`MapError::rejected`] or
/// [`MapError::other`], or attach context to any error with [`ResultExt`].
pub use crate::wit::millrace::mapping::types::MapError;

/// Everything a mapping usually needs, for `use millrace_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::canonical::{
        CanonicalEvent, EventData, HoldAction, HoldScope, InventoryBalance, InventoryMovement,
        MaterialConsumption, MovementType, ProductionCompletion, QualityHold, Quantity,
        StockStatus, WorkOrderState, WorkOrderStatus,
    };
    pub use crate::decimal::Decimal;
    pub use crate::{MapError, RawMessage, ResultExt, config, decimal, log, text, timestamp};
}

impl RawMessage {
    /// Returns the first value of the header `name` (ASCII case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Exports a plain mapping function as the plugin's `map`.
///
/// The function must have the signature
/// `fn(RawMessage) -> Result<Vec<canonical::CanonicalEvent>, MapError>`. Use the macro once, at
/// the root of a `cdylib` crate built for `wasm32-wasip2`.
///
/// The component export glue is written for `wasm32` only. Every target also gets a public
/// `MAPPER` constant naming the function, so a plugin crate that also builds as an `rlib` can
/// be called natively (the benchmark's no-sandbox baseline) without two plugins' exports
/// clashing in one native binary.
#[macro_export]
macro_rules! export_mapper {
    ($map:path) => {
        /// This plugin's mapping function, for calling it natively (no sandbox).
        pub const MAPPER: fn(
            $crate::RawMessage,
        ) -> ::core::result::Result<
            ::std::vec::Vec<$crate::canonical::CanonicalEvent>,
            $crate::MapError,
        > = $map;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        struct MillraceMapper;

        #[cfg(target_arch = "wasm32")]
        impl $crate::wit::Guest for MillraceMapper {
            fn map(
                input: $crate::RawMessage,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::canonical::CanonicalEvent>,
                $crate::MapError,
            > {
                MAPPER(input)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::wit::export!(MillraceMapper);
    };
}
