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

/// Eight copies of a byte, and the high bit of each byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `byte` (and perhaps of bytes above the
/// first one that does: only the lowest bit set is sure).
#[inline]
fn equal_bytes(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The offset of the first byte of `bytes` that is one of `wanted`, looking at eight bytes at a
/// time: the readers' scans for separators run over every byte of a payload, also as Wasm,
/// which has 64-bit words but no vector unit by default.
#[inline]
pub(crate) fn find_any<const N: usize>(bytes: &[u8], wanted: [u8; N]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = wanted
            .iter()
            .fold(0, |found, byte| found | equal_bytes(word, *byte));
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|byte| wanted.contains(byte))
        .map(|at| offset + at)
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
    fn finds_the_first_of_the_wanted_bytes() {
        let text = b"ISA*00*          *01*~GS*SH\r\nST*856~\x80\xff*";
        for from in 0..text.len() {
            for wanted in [[b'~', b'\n', b'\r'], [b'*', b'*', b'*'], [b'#', 0x80, 0xff]] {
                let expected = text[from..].iter().position(|b| wanted.contains(b));
                assert_eq!(
                    find_any(&text[from..], wanted),
                    expected,
                    "{from} {wanted:?}"
                );
            }
        }
        assert_eq!(find_any(b"", [b'~']), None);
        assert_eq!(find_any(&[0u8, 1, 0, 0, 0, 0, 0, 0, 1], [1]), Some(1));
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
