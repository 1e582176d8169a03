//! An XML document's bytes are read in any encoding without a panic; what is read as UTF-8
//! without a copy is the payload itself (after a UTF-8 byte-order mark); and UTF-16 text
//! written with a mark reads back as the same text.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use millrace_sdk::text::xml_document;

fuzz_target!(|data: &[u8]| {
    if let Ok(Cow::Borrowed(text)) = xml_document(data) {
        assert_eq!(
            text.as_bytes(),
            data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(xml_document(&utf16).ok().as_deref(), Some(text));
    }
});
