//! The EDIFACT reader never panics, one interchange or several back to back, and whatever it
//! accepts can be walked with every accessor; the one-interchange reader accepts a payload
//! exactly when the batch reader finds one interchange in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use millrace_sdk::edifact;

fuzz_target!(|data: &[u8]| {
    let one = edifact::parse(data);
    let Ok(all) = edifact::parse_all(data) else {
        assert!(one.is_err(), "parse accepted what parse_all refused");
        return;
    };
    assert_eq!(one.is_ok(), all.len() == 1, "{} interchanges", all.len());
    for interchange in &all {
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
    }
});
