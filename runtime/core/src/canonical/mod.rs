//! Canonical events: the model plugins produce, and the CloudEvents envelope it is published in.

mod cloudevent;
mod model;
mod position;

pub use self::cloudevent::{CloudEvent, Lineage, business_key, event_id};
pub use self::model::*;
pub use self::position::Position;
