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
//! | `sleep <seconds>` | `std::thread::sleep` for `seconds` (a WASI clock wait), then like `ok 1` with item `slept` |
//! | `slow <millions>` | spins `millions` million iterations, then behaves like `ok 1` (a long call that must finish) |
//! | `recurse` | recurses without end: a stack overflow (a trap) |
//! | `abort` | `std::process::abort()`: a trap with no panic message |
//! | `longkey <bytes>` | like `ok 1` with an item of `bytes` bytes (a huge string) |
//! | `longerror <bytes>` | `malformed-input` whose message is `bytes` bytes of `E` (a plugin quoting a whole document in its error) |
//! | `serials <n>` | one valid shipment-notice whose one line ships `n` serial numbers (`SN-<i>`, 11 bytes each): a large event made of valid values |
//! | `negative` / `badtime` / `badunit` / `emptykey` | like `ok 1`, with good quantity `-5`, time `yesterday`, unit `kilos`, or an empty work order |
//! | `random` | like `ok 1` with item `random:<16 hex digits>`: the first 8 bytes of WASI secure randomness, then of insecure randomness |
//! | `socket <host:port>` | like `ok 1` with item `socket:denied:<error kind>`, or `socket:connected` if a TCP connection opened |
//! | `flood <bytes>` | writes `bytes` bytes to stdout in lines, then behaves like `ok 1` |
//! | `logloop <records> [then]` | writes `records` host log records (`logloop record <i>`, 100 bytes of fields each), then behaves like `ok 1`, or like `reject` when `then` is `reject` |
//! | `txn <id> <n>` | like `ok <n>`, with source transaction `<id>` (for resend tests) |
//! | `at <time> <order> [<time>...]` | one production-completion for work order `<order>` that happened at `<time>`, no sequence (for ordering tests), and one more, in order, for each further time |
//! | `fixme <n>` | `rejected-by-rule("needs the fixed plugin")`, unless the route config has `fixed = "yes"`: then like `ok <n>` |
//! | `echo` | like `ok 1` with item `echo:<16 hex digits>`, a digest of the whole raw message the plugin was given (subject, every header in the order given, payload); with route config `reject = "yes"`: `rejected-by-rule("echo:<digest>")` |
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
            let at = |time: &str| {
                let mut event = completion(1, "ITEM-1".to_owned());
                event.occurred_at = time.to_owned();
                event.source_sequence = None;
                if let EventData::ProductionCompletion(c) = &mut event.data {
                    c.work_order = order.to_owned();
                }
                event
            };
            Ok(std::iter::once(time).chain(words).map(at).collect())
        }
        "fixme" => {
            let n = number_arg(words.next(), 1)?;
            if config::get("fixed").as_deref() == Some("yes") {
                Ok(vec![completion(n, "ITEM-1".to_owned())])
            } else {
                Err(MapError::rejected("needs the fixed plugin"))
            }
        }
        "echo" => {
            let seen = format!("echo:{:016x}", digest(&msg));
            if config::get("reject").as_deref() == Some("yes") {
                Err(MapError::rejected(seen))
            } else {
                Ok(vec![completion(1, seen)])
            }
        }
        "trap" => panic!("trap on purpose"),
        "slow" => {
            let millions = number_arg(words.next(), 100)?;
            let mut counter = 0u64;
            for _ in 0..millions.saturating_mul(1_000_000) {
                counter = black_box(counter.wrapping_add(1));
            }
            let mut event = completion(1, "ITEM-1".to_owned());
            event.source_sequence = Some(black_box(counter) / 1_000_000);
            Ok(vec![event])
        }
        "recurse" => {
            let depth = recurse(black_box(u64::MAX));
            Ok(vec![completion(1, format!("depth:{depth}"))])
        }
        "abort" => std::process::abort(),
        "longkey" => {
            let bytes = number_arg(words.next(), MIB as u64)?;
            let bytes = usize::try_from(bytes).map_err(|_| MapError::malformed("bytes too big"))?;
            Ok(vec![completion(1, "K".repeat(bytes))])
        }
        "longerror" => {
            let bytes = number_arg(words.next(), MIB as u64)?;
            let bytes = usize::try_from(bytes).map_err(|_| MapError::malformed("bytes too big"))?;
            Err(MapError::malformed("E".repeat(bytes)))
        }
        "serials" => {
            let n = number_arg(words.next(), 1)?;
            let n = usize::try_from(n).map_err(|_| MapError::malformed("count too big"))?;
            Ok(vec![shipment_with_serials(n)])
        }
        "negative" | "badtime" | "badunit" | "emptykey" => {
            let mut event = completion(1, "ITEM-1".to_owned());
            if let EventData::ProductionCompletion(c) = &mut event.data {
                match command {
                    "negative" => c.good_quantity.amount = "-5".to_owned(),
                    "badunit" => c.good_quantity.uom = "kilos".to_owned(),
                    "emptykey" => c.work_order = String::new(),
                    _ => event.occurred_at = "yesterday".to_owned(),
                }
            }
            Ok(vec![event])
        }
        "random" => {
            let secure = wasip2::random::random::get_random_u64();
            let insecure = wasip2::random::insecure::get_insecure_random_u64();
            Ok(vec![completion(
                1,
                format!("random:{secure:016x}:{insecure:016x}"),
            )])
        }
        "socket" => {
            let address = words.next().unwrap_or("127.0.0.1:4222");
            let item = match std::net::TcpStream::connect(address) {
                Ok(_) => "socket:connected".to_owned(),
                Err(e) => format!("socket:denied:{:?}", e.kind()),
            };
            Ok(vec![completion(1, item)])
        }
        "flood" => {
            let bytes = number_arg(words.next(), MIB as u64)?;
            let line = format!("{}\n", "F".repeat(99));
            let mut out = std::io::stdout();
            for _ in 0..bytes / 100 {
                // Errors ignored, as for `stdout`: the point is what reaches the host log.
                let _ = out.write_all(line.as_bytes());
            }
            let _ = out.flush();
            Ok(vec![completion(1, "ITEM-1".to_owned())])
        }
        "logloop" => {
            let records = number_arg(words.next(), 1_000_000)?;
            let padding = "L".repeat(100);
            for i in 0..records {
                log::info(
                    &format!("logloop record {i}"),
                    &[("padding", padding.as_str())],
                );
            }
            match words.next() {
                Some("reject") => Err(MapError::rejected("rejected on purpose")),
                _ => Ok(vec![completion(1, "ITEM-1".to_owned())]),
            }
        }
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
        "sleep" => {
            let seconds = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            Ok(vec![completion(1, "slept".to_owned())])
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

/// FNV-1a over the subject, each header name and value (in the order given) and the payload,
/// each part closed by a 0 byte: the same input gives the same digest, anything else not.
fn digest(msg: &RawMessage) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes.iter().chain(&[0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(msg.subject.as_bytes());
    for (name, value) in &msg.headers {
        feed(name.as_bytes());
        feed(value.as_bytes());
    }
    feed(&msg.payload);
    hash
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

/// A ship notice of one line with `n` serial numbers.
fn shipment_with_serials(n: usize) -> CanonicalEvent {
    use millrace_sdk::canonical::{ShipmentLine, ShipmentNotice};
    CanonicalEvent {
        site: config::get("site").unwrap_or_else(|| "TEST".to_owned()),
        occurred_at: "2026-01-01T00:00:00Z".to_owned(),
        source_sequence: None,
        source_transaction: None,
        data: EventData::ShipmentNotice(ShipmentNotice {
            shipment_id: format!("ASN-{n}"),
            supplier: "SUPPLIER-1".to_owned(),
            ship_date: "2026-01-01T00:00:00Z".to_owned(),
            expected_delivery: None,
            lines: vec![ShipmentLine {
                item: "ITEM-1".to_owned(),
                quantity: Quantity {
                    amount: n.to_string(),
                    uom: "EA".to_owned(),
                },
                lot: None,
                serials: (0..n).map(|i| format!("SN-{i:08}")).collect(),
                purchase_order: None,
                package_id: None,
            }],
        }),
    }
}

/// Recurses `n` levels; not a tail call, so every level takes a stack frame.
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    black_box(recurse(black_box(n - 1))).wrapping_add(1)
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
