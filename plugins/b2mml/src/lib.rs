//! millrace mapping plugin for ISA-95 B2MML XML documents (namespaces V0401, V0500, V0600 and V07).
//!
//! Maps production performance (material actuals, in the production or the operations form) to
//! `material-consumption` and `production-completion`, production schedules (either form) to
//! `work-order-status` `released`, and material
//! lots with a quantity to `inventory-balance`. The documents, the field mapping and the route
//! configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod context;
mod document;
mod form;
mod material;
mod performance;
mod quantity;
mod route;
mod schedule;
mod xml;

use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    document::map_document(&msg.payload)
}

millrace_sdk::export_mapper!(map);
