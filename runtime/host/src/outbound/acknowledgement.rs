//! Posting acknowledgements: one per request a target answered for good, published on
//! `posting.<target>.<site>` (stream POSTING). The record itself lives in
//! `millrace_core::posting::acknowledgement`, so the projection reads what the driver writes.

pub use millrace_core::posting::acknowledgement::{Acknowledgement, PostingOutcome};
