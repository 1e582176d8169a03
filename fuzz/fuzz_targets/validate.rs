//! Canonical validation never panics, names an event that exists for every broken rule, and
//! accepts a decimal exactly when it matches `-?digits(.digits)?` (at most 40 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use millrace::canonical::MappedEvent;
use millrace::rules::validate::{is_decimal, validate};

fn grammar(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start {
        return false;
    }
    if i < b.len() {
        if b[i] != b'.' {
            return false;
        }
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac_start || i != b.len() {
            return false;
        }
    }
    s.len() <= 40
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(is_decimal(text), grammar(text), "{text:?}");
    }
    if let Ok(events) = serde_json::from_slice::<Vec<MappedEvent>>(data) {
        if let Err(errors) = validate(&events) {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.index < events.len());
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
