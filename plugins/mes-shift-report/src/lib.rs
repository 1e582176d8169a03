//! millrace mapping plugin for legacy MES shift reports (`SHIFTRPT` version `02`).
//!
//! Maps production completions (`PRD`), material consumptions (`MAT`) and work-order status
//! changes (`WOS`) to canonical `production-completion`, `material-consumption` and
//! `work-order-status` events. The format, the field mapping and the route configuration keys
//! are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod record;
mod report;
mod units;

use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    report::map_report(&msg.payload)
}

millrace_sdk::export_mapper!(map);
