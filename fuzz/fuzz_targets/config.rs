//! The host configuration parser never panics on any text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use millrace::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, Path::new("fuzz/millrace.toml"));
    }
});
