//! Decoding legacy payload text.
//!
//! Both decoders borrow the payload when it is already text (ASCII for Latin-1, valid UTF-8 for
//! [`utf8_or_latin1`]) and copy it only when characters must be decoded.

use std::borrow::Cow;

/// Decodes ISO-8859-1 (Latin-1) bytes: every byte is one character, so this never fails.
///
/// Pure ASCII payloads decode unchanged (and are borrowed); UTF-8 multi-byte sequences come out
/// as two or more Latin-1 characters, so decode UTF-8 sources with [`std::str::from_utf8`]
/// instead.
pub fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        // Valid UTF-8 that is all ASCII reads the same in Latin-1.
        Ok(text) if text.is_ascii() => Cow::Borrowed(text),
        _ => Cow::Owned(bytes.iter().map(|&byte| char::from(byte)).collect()),
    }
}

/// Decodes UTF-8 when the bytes are valid UTF-8 (borrowed), otherwise Latin-1: for sources that
/// moved to UTF-8 over the years but still send old files.
pub fn utf8_or_latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => latin1(bytes),
    }
}

/// A copy of `text` that owns it, independent of the payload it borrowed from.
pub(crate) fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

/// A line break between (or inside) EDI segments: not data, so the readers drop it.
pub(crate) fn is_line_break(c: char) -> bool {
    c == '\r' || c == '\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_latin1_bytes() {
        assert_eq!(latin1(b"M\xfcller \xe9t\xe9"), "Müller été");
        assert_eq!(latin1(b"plain"), "plain");
        assert!(
            matches!(latin1(b"plain"), Cow::Borrowed(_)),
            "ASCII is not copied"
        );
    }

    #[test]
    fn prefers_utf8_when_valid() {
        assert_eq!(utf8_or_latin1("Müller".as_bytes()), "Müller");
        assert_eq!(utf8_or_latin1(b"M\xfcller"), "Müller");
        assert!(matches!(
            utf8_or_latin1("Müller".as_bytes()),
            Cow::Borrowed(_)
        ));
    }
}
