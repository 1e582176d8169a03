//! Constructors with defaults for the canonical events, so a mapping names only what its source
//! gives. Every optional field starts empty and every list empty; set more with the struct
//! update syntax or the `with_*` methods:
//!
//! ```ignore
//! let movement = InventoryMovement {
//!     lot: Some(batch),
//!     to_location: Some(dock),
//!     ..InventoryMovement::new(MovementType::Receipt, item, Quantity::new(amount, "KGM"))
//! };
//! let event = CanonicalEvent::new(site, occurred_at, movement).with_transaction(control);
//! ```
//!
//! They are methods of the [`crate::canonical`] types themselves (`InventoryMovement::new`,
//! `CanonicalEvent::with_transaction`, `impl From<InventoryMovement> for EventData`, ...),
//! written beside the model in `millrace-model`, so nothing here needs importing.
