//! The X12 reader never panics, and whatever it accepts can be walked with every accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use millrace_sdk::x12;

fuzz_target!(|data: &[u8]| {
    let Ok(interchange) = x12::parse(data) else {
        return;
    };
    for (_, set) in interchange.transaction_sets() {
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
});
