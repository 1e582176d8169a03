//! The EDIFACT reader never panics, and whatever it accepts can be walked with every accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use millrace_sdk::edifact;

fuzz_target!(|data: &[u8]| {
    let Ok(interchange) = edifact::parse(data) else {
        return;
    };
    for message in &interchange.messages {
        for segment in &message.segments {
            let _ = segment.at();
            for n in 0..=segment.element_count() + 1 {
                for component in segment.element(n) {
                    let _ = interchange.decimal(component);
                }
                let _ = segment.value(n, 1);
                let _ = segment.value(n, 2);
            }
            let _ = edifact::date_time(segment.value(1, 2), segment.value(1, 3));
            let _ = edifact::zoned_date_time(segment.value(1, 2), segment.value(1, 3));
            let _ = edifact::dtm_timestamp(segment, millrace_sdk::timestamp::UtcOffset::UTC);
        }
    }
});
