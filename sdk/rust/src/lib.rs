//! Write millrace mapping and outbound plugins in Rust.
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
//! `mapper` world of the WIT version the plugin's `plugin.toml` names (`millrace:mapping@1.0.0`
//! or `@1.1.0`). Beside the canonical types ([`canonical`]) it offers
//! the helpers every mapping needs: exact decimals ([`decimal`]), RFC 3339 timestamps
//! ([`timestamp`]), typed errors ([`MapError`], [`ResultExt`]), the route configuration
//! ([`config`]), logging ([`log`]) and legacy text decoding ([`text`]).
//!
//! Off `wasm32` (in a plugin's own `cargo test`), [`config`] reads a per-thread table set with
//! `config::set_for_tests` and [`log`] writes to stderr, so mappings are testable natively.
//!
//! Outbound plugins (the `poster` world of `millrace:outbound@1.0.0`) implement
//! [`posting::Poster`] and export it with [`export_poster!`]; see [`posting`].
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// Lets the generated bindings and the exported macros name this crate the same way from inside
// and from plugin crates.
extern crate self as millrace_sdk;

#[doc(hidden)]
pub mod __export;
pub mod config;
pub mod decimal;
pub mod edi;
pub mod edifact;
mod error;
pub mod events;
pub mod log;
pub mod posting;
pub mod records;
pub mod text;
pub mod timestamp;
pub mod x12;

pub use error::ResultExt;

/// `wit-bindgen`, for the export glue [`export_mapper!`] writes in a plugin.
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The runtime support of `wit-bindgen`, named by the generated export glue.
#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

pub mod canonical;

/// A raw message as it arrived on NATS: subject, headers and payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The NATS subject it was published to, for example `raw.mes.plant1.shift-report`.
    pub subject: String,
    /// The message headers, in the order received; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The payload bytes, exactly as published (legacy data is often not UTF-8).
    pub payload: Vec<u8>,
}

/// Why a mapping could not turn a raw message into canonical events (the WIT `map-error`, the
/// same type the host reads): build one with [`MapError::malformed`], [`MapError::unsupported`],
/// [`MapError::rejected`] or [`MapError::other`], or attach context to any error with
/// [`ResultExt`].
pub use millrace_model::mapping::MapError;

/// Everything a mapping usually needs, for `use millrace_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::canonical::{
        CanonicalEvent, CommitmentLevel, EventData, HoldAction, HoldScope, InventoryBalance,
        InventoryMovement, MaterialConsumption, MovementType, ProductionCompletion, QualityHold,
        Quantity, ScheduleBucket, ShipmentLine, ShipmentNotice, StockStatus, SupplierCommitment,
        WorkOrderState, WorkOrderStatus,
    };
    pub use crate::decimal::Decimal;
    pub use crate::{MapError, RawMessage, ResultExt, config, decimal, edi, log, text, timestamp};
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

/// Exports a plain mapping function as the plugin's `map`, for the WIT version the plugin's
/// manifest names.
///
/// The function must have the signature
/// `fn(RawMessage) -> Result<Vec<canonical::CanonicalEvent>, MapError>`. Use the macro once, at
/// the root of a `cdylib` crate built for `wasm32-wasip2`, with a `plugin.toml` beside its
/// `Cargo.toml`: its `wit = "millrace:mapping@1.0.0"` or `"millrace:mapping@1.1.0"` chooses
/// the world exported, so the manifest and the component can never disagree.
///
/// The component export glue is written for `wasm32` only. Every target also gets a public
/// `MAPPER` constant naming the function, so a plugin crate that also builds as an `rlib` can
/// be called natively (the benchmark's no-sandbox baseline) without two plugins' exports
/// clashing in one native binary.
pub use millrace_sdk_macros::export_mapper;

/// Exports a [`posting::Poster`] implementation as the plugin's `render` and `interpret`, for
/// the `poster` world of the WIT version the plugin's manifest names.
///
/// Use the macro once, at the root of a `cdylib` crate built for `wasm32-wasip2`, with the type
/// implementing the trait (`millrace_sdk::export_poster!(ErpPostings);`) and a `plugin.toml`
/// beside its `Cargo.toml` whose `wit` is `"millrace:outbound@1.0.0"`. The component export
/// glue is written for `wasm32` only; natively the trait is plain Rust for the plugin's tests.
pub use millrace_sdk_macros::export_poster;

/// The `MAPPER` constant every export writes.
#[doc(hidden)]
#[macro_export]
macro_rules! __mapper_const {
    ($map:path) => {
        /// This plugin's mapping function, for calling it natively (no sandbox).
        pub const MAPPER: fn(
            $crate::RawMessage,
        ) -> ::core::result::Result<
            ::std::vec::Vec<$crate::canonical::CanonicalEvent>,
            $crate::MapError,
        > = $map;
    };
}
