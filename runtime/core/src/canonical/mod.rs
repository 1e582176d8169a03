//! Canonical events: the model plugins produce, and the CloudEvents envelope it is published in.
//!
//! The model itself is `millrace-model`'s, the one the SDK re-exports to plugin authors: the
//! host and the plugins read and write the same types.

mod cloudevent;
mod position;

pub use self::cloudevent::{CloudEvent, Lineage, event_id};
pub use self::position::Position;
/// One event as a plugin returned it (the SDK's `CanonicalEvent`): the form
/// `millrace plugin run` prints and golden fixtures hold.
pub use millrace_model::canonical::CanonicalEvent as MappedEvent;
pub use millrace_model::canonical::{
    CommitmentLevel, Date, Decimal, EventData, HoldAction, HoldScope, InventoryBalance,
    InventoryMovement, MaterialConsumption, MovementType, ProductionCompletion, QualityHold,
    Quantity, ScheduleBucket, ShipmentLine, ShipmentNotice, StockStatus, SupplierCommitment,
    Timestamp, WorkOrderState, WorkOrderStatus, business_key,
};
