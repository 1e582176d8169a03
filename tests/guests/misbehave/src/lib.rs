//! A millrace plugin that misbehaves on request, for the host's sandbox tests.
//!
//! The payload's first whitespace-separated word picks the behaviour:
//!
//! | word | behaviour |
//! |------|-----------|
//! | `ok <n>` | one production-completion: site from config `site` (default `TEST`), work order `WO-<n>`, item `ITEM-1`, good `<n>` EA, scrap `0` EA, `2026-01-01T00:00:00Z`, source sequence `<n>` |
//! | `reject` | `rejected-by-rule("rejected on purpose")` |
//! | `trap` | panics: `trap on purpose` |
//! | `loop` | spins forever |
//! | `alloc` | allocates and touches 1 MiB blocks until allocation fails (a trap) |
//! | `big [count] [bytes]` | `count` events (default 1000) with items of `bytes` (default 1 MiB); the default needs about 1 GiB of guest memory, pass smaller numbers to hit an output cap below the memory cap |
//! | `stdout` | prints a line to stdout and to stderr, then behaves like `ok 1` |
//! | `env` | like `ok 1` with item `env:<number of environment variables>` |
//! | `file` | like `ok 1` with item `file:denied`, or `file:read:<bytes>` if `/etc/passwd` was readable |
//! | `clock` | like `ok 1` with item `clock:<unix seconds>`, or `clock:before-epoch` |
//! | `txn <id> <n>` | like `ok <n>`, with source transaction `<id>` (for resend tests) |
//! | `at <time> <order>` | one production-completion for work order `<order>` that happened at `<time>`, no sequence (for ordering tests) |
//! | `fixme <n>` | `rejected-by-rule("needs the fixed plugin")`, unless the route config has `fixed = "yes"`: then like `ok <n>` |
//! | anything else | `malformed-input("unknown command '<word>'")` |
// Misbehaving is the point of this crate.
#![allow(clippy::panic)]

use std::hint::black_box;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use millrace_sdk::prelude::*;

const MIB: usize = 1024 * 1024;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let text = text::latin1(&msg.payload);
    let mut words = text.split_whitespace();
    let command = words.next().unwrap_or("");
    match command {
        "ok" => {
            let n = number_arg(words.next(), 1)?;
            Ok(vec![completion(n, "ITEM-1".to_owned())])
        }
        "reject" => Err(MapError::rejected("rejected on purpose")),
        "txn" => {
            let id = words
                .next()
                .ok_or_else(|| MapError::malformed("txn needs a transaction id"))?;
            let n = number_arg(words.next(), 1)?;
            let mut event = completion(n, "ITEM-1".to_owned());
            event.source_transaction = Some(id.to_owned());
            Ok(vec![event])
        }
        "at" => {
            let (Some(time), Some(order)) = (words.next(), words.next()) else {
                return Err(MapError::malformed("at needs a time and a work order"));
            };
            let mut event = completion(1, "ITEM-1".to_owned());
            event.occurred_at = time.to_owned();
            event.source_sequence = None;
            if let EventData::ProductionCompletion(c) = &mut event.data {
                c.work_order = order.to_owned();
            }
            Ok(vec![event])
        }
        "fixme" => {
            let n = number_arg(words.next(), 1)?;
            if config::get("fixed").as_deref() == Some("yes") {
                Ok(vec![completion(n, "ITEM-1".to_owned())])
            } else {
                Err(MapError::rejected("needs the fixed plugin"))
            }
        }
        "trap" => panic!("trap on purpose"),
        "loop" => spin(),
        "alloc" => exhaust_memory(),
        "big" => {
            let count = number_arg(words.next(), 1000)?;
            let bytes = number_arg(words.next(), MIB as u64)?;
            let bytes = usize::try_from(bytes).map_err(|_| MapError::malformed("bytes too big"))?;
            Ok((1..=count)
                .map(|n| completion(n, "X".repeat(bytes)))
                .collect())
        }
        "stdout" => {
            // Write errors are ignored (println! would trap on them): the test is that the
            // lines reach the host log and the call still succeeds.
            let _ = writeln!(std::io::stdout(), "misbehave: a line on stdout");
            let _ = writeln!(std::io::stderr(), "misbehave: a line on stderr");
            Ok(vec![completion(1, "ITEM-1".to_owned())])
        }
        "env" => {
            let count = std::env::vars_os().count();
            Ok(vec![completion(1, format!("env:{count}"))])
        }
        "file" => {
            let item = match std::fs::read("/etc/passwd") {
                Ok(bytes) => format!("file:read:{}", bytes.len()),
                Err(_) => "file:denied".to_owned(),
            };
            Ok(vec![completion(1, item)])
        }
        "clock" => {
            let item = match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(since) => format!("clock:{}", since.as_secs()),
                Err(_) => "clock:before-epoch".to_owned(),
            };
            Ok(vec![completion(1, item)])
        }
        other => Err(MapError::malformed(format!("unknown command '{other}'"))),
    }
}

/// Reads an optional numeric argument.
fn number_arg(word: Option<&str>, default: u64) -> Result<u64, MapError> {
    match word {
        None => Ok(default),
        Some(word) => word
            .parse()
            .map_err(|_| MapError::malformed(format!("'{word}' is not a number"))),
    }
}

/// The one valid event every well-behaved command returns.
fn completion(n: u64, item: String) -> CanonicalEvent {
    CanonicalEvent {
        site: config::get("site").unwrap_or_else(|| "TEST".to_owned()),
        occurred_at: "2026-01-01T00:00:00Z".to_owned(),
        source_sequence: Some(n),
        source_transaction: None,
        data: EventData::ProductionCompletion(ProductionCompletion {
            work_order: format!("WO-{n}"),
            operation: None,
            item,
            lot: None,
            good_quantity: Quantity {
                amount: n.to_string(),
                uom: "EA".to_owned(),
            },
            scrap_quantity: Quantity {
                amount: "0".to_owned(),
                uom: "EA".to_owned(),
            },
            location: None,
        }),
    }
}

/// Never returns; `black_box` keeps the optimiser from proving the loop side-effect free.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches memory until the allocator fails, which aborts (traps) the instance.
fn exhaust_memory() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Writing every page makes the memory real, not just reserved.
        let block = vec![1u8; MIB];
        blocks.push(black_box(block));
    }
}

millrace_sdk::export_mapper!(map);
