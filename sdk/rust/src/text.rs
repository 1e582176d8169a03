//! Decoding payload text: legacy single-byte sources, and XML documents in the encoding they
//! declare.
//!
//! Every decoder borrows the payload when it is already text (ASCII for Latin-1, valid UTF-8 for
//! [`utf8_or_latin1`] and [`xml_document`]) and copies it only when characters must be decoded.

use std::borrow::Cow;

use crate::MapError;

/// Decodes ISO-8859-1 (Latin-1) bytes: every byte is one character, so this never fails.
///
/// Pure ASCII payloads decode unchanged (and are borrowed); UTF-8 multi-byte sequences come out
/// as two or more Latin-1 characters, so decode UTF-8 sources with [`std::str::from_utf8`]
/// instead. A leading UTF-8 byte-order mark, which an editor or a transfer may have added, is
/// dropped: as Latin-1 it would read as the text `ï»¿`.
pub fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = without_bom(bytes);
    match std::str::from_utf8(bytes) {
        // Valid UTF-8 that is all ASCII reads the same in Latin-1.
        Ok(text) if text.is_ascii() => Cow::Borrowed(text),
        _ => Cow::Owned(bytes.iter().map(|&byte| char::from(byte)).collect()),
    }
}

/// Decodes UTF-8 when the bytes are valid UTF-8 (borrowed), otherwise Latin-1: for sources that
/// moved to UTF-8 over the years but still send old files. A leading UTF-8 byte-order mark is
/// dropped.
pub fn utf8_or_latin1(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = without_bom(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => latin1(bytes),
    }
}

/// The payload without a leading UTF-8 byte-order mark.
pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// An XML document's bytes as text, read in the encoding they are written in (XML 1.0, 4.3.3
/// and appendix F):
/// - a byte-order mark decides first (UTF-8, UTF-16 LE or BE);
/// - without one, UTF-16 shows in the first bytes (`<?` written in two-byte characters);
/// - otherwise the `encoding` of the XML declaration (`<?xml version="1.0"
///   encoding="ISO-8859-1"?>`) names it, and UTF-8 is meant when it names none.
///
/// Every encoding of the WHATWG Encoding Standard is read by its usual labels (`UTF-16`,
/// `ISO-8859-1` and `latin1`, read as windows-1252 as browsers do, `Shift_JIS`, `GB2312`...). A
/// label it does not know, or bytes that are not what the encoding says, are a
/// `malformed-input` error that names the encoding, how it was chosen and the offset. UTF-8 text
/// is borrowed (after its byte-order mark, if it has one); anything else is decoded once into a
/// `String`.
pub fn xml_document(bytes: &[u8]) -> Result<Cow<'_, str>, MapError> {
    use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

    let (encoding, start, why) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, bom, "as its byte-order mark says"),
        None if bytes.starts_with(b"<\0?\0") => (UTF_16LE, 0, "as its first bytes show"),
        None if bytes.starts_with(b"\0<\0?") => (UTF_16BE, 0, "as its first bytes show"),
        None => match declared_encoding(bytes) {
            None => (
                UTF_8,
                0,
                "the encoding of an XML document whose declaration names none",
            ),
            Some(label) => match Encoding::for_label(label) {
                // The declaration is readable as ASCII, so the document is not UTF-16 whatever
                // it says: UTF-8 is the one reading consistent with its bytes (as HTML does).
                Some(encoding) if encoding == UTF_16LE || encoding == UTF_16BE => {
                    (UTF_8, 0, "as its declaration, read in ASCII, can only mean")
                }
                Some(encoding) if encoding != encoding_rs::REPLACEMENT => {
                    (encoding, 0, "as its XML declaration says")
                }
                _ => {
                    return Err(MapError::malformed(format!(
                        "the XML declaration names encoding '{}', which this reader does not know \
                         (it reads UTF-8, UTF-16, ISO-8859-1, windows-1252 and the other encodings \
                         of the WHATWG Encoding Standard)",
                        String::from_utf8_lossy(label)
                    )));
                }
            },
        },
    };
    let body = &bytes[start..];
    let not_valid = |offset: usize| {
        MapError::malformed(format!(
            "the payload is not valid {} ({why}): the bytes at offset {offset} are not a {} character",
            encoding.name(),
            encoding.name()
        ))
    };
    if encoding == UTF_8 {
        return std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(|error| not_valid(start + error.valid_up_to()));
    }
    decode(encoding, body)
        .map(Cow::Owned)
        .map_err(|offset| not_valid(start + offset))
}

/// `body` decoded from `encoding` (its byte-order mark, if any, already cut off), or the offset
/// in `body` of the first bytes that are not a character of it.
pub(crate) fn decode(
    encoding: &'static encoding_rs::Encoding,
    body: &[u8],
) -> Result<String, usize> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut text = String::with_capacity(body.len() + body.len() / 2);
    let mut read = 0;
    loop {
        let (result, used) =
            decoder.decode_to_string_without_replacement(&body[read..], &mut text, true);
        read += used;
        match result {
            encoding_rs::DecoderResult::InputEmpty => return Ok(text),
            encoding_rs::DecoderResult::OutputFull => text.reserve(2 * (body.len() - read) + 16),
            encoding_rs::DecoderResult::Malformed(bad, after) => {
                return Err(read - usize::from(bad) - usize::from(after));
            }
        }
    }
}

/// The value of `encoding` in the XML declaration that starts `bytes`, if it has one.
fn declared_encoding(bytes: &[u8]) -> Option<&[u8]> {
    let declaration = bytes.strip_prefix(b"<?xml")?;
    let declaration = &declaration[..declaration.windows(2).position(|w| w == b"?>")?];
    let at = declaration.windows(8).position(|w| w == b"encoding")?;
    let rest = declaration[at + 8..]
        .trim_ascii_start()
        .strip_prefix(b"=")?;
    let rest = rest.trim_ascii_start();
    let quote = *rest.first().filter(|q| matches!(q, b'"' | b'\''))?;
    let value = &rest[1..];
    Some(&value[..value.iter().position(|b| *b == quote)?])
}

/// A copy of `text` that owns it, independent of the payload it borrowed from.
pub(crate) fn owned(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

/// A line break between (or inside) EDI segments: not data, so the readers drop it (files come
/// hard-wrapped at 80 columns).
pub fn is_line_break(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// What may pad an EDI file around its segments without being one: white space, and the NUL
/// bytes and DOS end-of-file mark (Ctrl-Z, 0x1A) some systems pad a file with.
pub fn is_padding(c: char) -> bool {
    c.is_whitespace() || c == '\0' || c == '\u{1a}'
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
        // A UTF-8 byte-order mark is not three Latin-1 characters of the text.
        assert_eq!(latin1(b"\xEF\xBB\xBFM\xfcller"), "Müller");
        assert!(matches!(latin1(b"\xEF\xBB\xBFHDR"), Cow::Borrowed("HDR")));
        assert_eq!(utf8_or_latin1(b"\xEF\xBB\xBFM\xfcller"), "Müller");
        assert_eq!(utf8_or_latin1("\u{feff}Müller".as_bytes()), "Müller");
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

    /// One document in the encodings XML documents come in, each as a sender would write it.
    #[test]
    fn reads_xml_documents_in_the_encoding_they_name() {
        let document = "<?xml version=\"1.0\" encoding=\"ENC\"?>\n<Lot><ID>Müller Š €</ID></Lot>";
        let utf16 = |le: bool, bom: bool| {
            let text = document.replace("ENC", "UTF-16");
            let mut bytes = Vec::new();
            if bom {
                bytes.extend(if le { [0xFF, 0xFE] } else { [0xFE, 0xFF] });
            }
            for unit in text.encode_utf16() {
                bytes.extend(if le {
                    unit.to_le_bytes()
                } else {
                    unit.to_be_bytes()
                });
            }
            bytes
        };
        let declared = |label: &str, body: &[u8]| {
            let mut bytes =
                format!("<?xml version='1.0' encoding = '{label}' ?>\n<Lot><ID>").into_bytes();
            bytes.extend(body);
            bytes.extend(b"</ID></Lot>");
            bytes
        };
        let expect = |bytes: &[u8]| {
            let text = xml_document(bytes).unwrap();
            assert!(text.contains("<ID>Müller Š €</ID>"), "{text}");
        };
        expect(document.replace("ENC", "UTF-8").as_bytes());
        expect(&[b"\xEF\xBB\xBF".as_slice(), document.as_bytes()].concat());
        for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            expect(&utf16(le, bom));
        }
        // Windows-1252 has Š and € where ISO-8859-1 has control characters: senders declaring
        // ISO-8859-1 mean windows-1252 (the Web's reading, the one encoding_rs gives the label).
        for label in ["windows-1252", "ISO-8859-1", "latin1", "cp1252"] {
            expect(&declared(label, b"M\xFCller \x8A \x80"));
        }
        let shift_jis = declared("Shift_JIS", b"\x93\xFA\x96\x7B");
        let shift_jis = xml_document(&shift_jis).unwrap();
        assert!(shift_jis.contains("<ID>日本</ID>"), "{shift_jis}");
        // UTF-8 without a mark is not copied.
        assert!(matches!(
            xml_document(b"<?xml version=\"1.0\"?><a/>").unwrap(),
            Cow::Borrowed(_)
        ));
        // A declaration read in ASCII cannot mean UTF-16: the bytes are read as UTF-8.
        assert_eq!(
            xml_document(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>").unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"
        );
    }

    #[test]
    fn refuses_xml_bytes_that_are_not_what_their_encoding_says() {
        let message = |bytes: &[u8]| xml_document(bytes).unwrap_err().message().to_owned();
        assert_eq!(
            message(b"<a>\xE9</a>"),
            "the payload is not valid UTF-8 (the encoding of an XML document whose declaration \
             names none): the bytes at offset 3 are not a UTF-8 character"
        );
        assert_eq!(
            message(b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"latin1\"?><a>\xE9</a>"),
            "the payload is not valid UTF-8 (as its byte-order mark says): the bytes at offset \
             45 are not a UTF-8 character"
        );
        // An unpaired surrogate (0xD800) as the fourth UTF-16 unit, after the mark.
        assert_eq!(
            message(b"\xFF\xFE<\0a\0>\0\x00\xD8<\0/\0a\0>\0"),
            "the payload is not valid UTF-16LE (as its byte-order mark says): the bytes at offset \
             8 are not a UTF-16LE character"
        );
        assert_eq!(
            message(b"<?xml version=\"1.0\" encoding=\"EBCDIC-037\"?><a/>"),
            "the XML declaration names encoding 'EBCDIC-037', which this reader does not know (it \
             reads UTF-8, UTF-16, ISO-8859-1, windows-1252 and the other encodings of the WHATWG \
             Encoding Standard)"
        );
        assert_eq!(
            xml_document(b"<a>\xE9</a>").unwrap_err().kind(),
            "malformed-input"
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
