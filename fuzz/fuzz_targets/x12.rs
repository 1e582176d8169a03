//! The X12 reader never panics, one interchange or several back to back, and whatever it accepts
//! can be walked with every accessor; the one-interchange reader accepts a payload exactly when
//! the batch reader finds one interchange in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use millrace_sdk::x12;

fuzz_target!(|data: &[u8]| {
    let one = x12::parse(data);
    let Ok(all) = x12::parse_all(data) else {
        assert!(one.is_err(), "parse accepted what parse_all refused");
        return;
    };
    assert_eq!(one.is_ok(), all.len() == 1, "{} interchanges", all.len());
    for (_, set) in all.iter().flat_map(|interchange| interchange.transaction_sets()) {
        for segment in &set.segments {
            let _ = segment.at();
            for n in 0..=segment.element_count() + 1 {
                let _ = segment.element(n);
                let _ = segment.trimmed(n);
                let _ = segment.component(n, 1);
                let _ = segment.component(n, 2);
                let _ = segment.pairs(n);
                let _ = x12::unit_to_rec20(segment.element(n));
                let _ = x12::date(segment.element(n));
                let _ = x12::time(segment.element(n));
            }
            let _ = x12::timestamp(segment.element(1), segment.element(2), "+00:00");
        }
    }
    for segment in all.iter().flat_map(|interchange| &interchange.service) {
        let _ = segment.at();
    }
});
