//! What both syntaxes share: the inbound outcome, the control number and time the host allots,
//! the acknowledgement made, and reading the raw bytes as text.

use std::borrow::Cow;

/// What became of the raw document on its inbound route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Mapped into this many canonical events.
    Mapped(u32),
    /// Dead-lettered with this reason (`<kind>: <message>`, as the dead letter records it).
    Failed(&'a str),
}

impl Inbound<'_> {
    /// True when the inbound route dead-lettered the document.
    pub fn failed(&self) -> bool {
        matches!(self, Inbound::Failed(_))
    }

    /// True when the route refused the document type itself (`unsupported-document`), rather
    /// than its content.
    pub fn unsupported(&self) -> bool {
        matches!(self, Inbound::Failed(reason) if reason.starts_with("unsupported-document"))
    }
}

/// Whether a dead letter's reason (`<kind>: <message>`) is the refusal of a test interchange
/// by a route that does not map them (the SDK's `edi::Route::admit`: `ISA15` `T`, `UNB` 0035
/// `1`), rather than an error in the interchange.
pub fn is_test_refusal(reason: &str) -> bool {
    reason.starts_with("unsupported-document: a test interchange (")
}

/// The control number and the time of one acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The control number of the acknowledgement's interchange (and group).
    pub number: u64,
    /// `CCYY`.
    pub year: String,
    /// `MM`.
    pub month: String,
    /// `DD`.
    pub day: String,
    /// `HH`.
    pub hour: String,
    /// `MM`.
    pub minute: String,
}

impl Stamp {
    /// The stamp of control `number` at `now`, RFC 3339 in UTC (`2026-11-30T04:05:06Z`).
    pub fn new(number: u64, now: &str) -> Result<Self, String> {
        let bad = || format!("`now` is not an RFC 3339 time in UTC: {now:?}");
        let digits = |range: std::ops::Range<usize>| -> Result<String, String> {
            let part = now.get(range).ok_or_else(bad)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                Ok(part.to_owned())
            } else {
                Err(bad())
            }
        };
        if now.get(4..5) != Some("-")
            || now.get(10..11).is_none_or(|t| !t.eq_ignore_ascii_case("t"))
        {
            return Err(bad());
        }
        Ok(Self {
            number,
            year: digits(0..4)?,
            month: digits(5..7)?,
            day: digits(8..10)?,
            hour: digits(11..13)?,
            minute: digits(14..16)?,
        })
    }

    /// `CCYYMMDD`.
    pub fn date8(&self) -> String {
        format!("{}{}{}", self.year, self.month, self.day)
    }

    /// `YYMMDD`.
    pub fn date6(&self) -> String {
        format!("{}{}{}", &self.year[2..], self.month, self.day)
    }

    /// `HHMM`.
    pub fn time4(&self) -> String {
        format!("{}{}", self.hour, self.minute)
    }
}

/// An acknowledgement document and the partner it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The original sender's id, as a subject token (letters, digits, `-`, `_`).
    pub partner: String,
    /// The complete interchange.
    pub document: Vec<u8>,
}

/// The payload as text, without leading blank lines, decoded by the mapping readers' own
/// [`millrace_sdk::edi::payload_text`]: UTF-16 (as Windows tools save "Unicode" text) by its
/// byte-order mark or by the NUL beside its first letter, else UTF-8, else Latin-1 (an EDIFACT
/// `UNOC` interchange is ISO 8859-1 by definition; X12 partners send it too). The envelope this
/// plugin echoes is ASCII either way.
pub fn text(payload: &[u8]) -> Result<Cow<'_, str>, String> {
    let text = millrace_sdk::edi::payload_text(payload).map_err(|e| e.to_string())?;
    Ok(match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim_start_matches('\u{feff}').trim_start()),
        Cow::Owned(text) => Cow::Owned(text.trim_start_matches('\u{feff}').trim_start().to_owned()),
    })
}

/// The text without its line breaks, when its segment terminator is not one: there a line break
/// is a wrap (files hard-wrapped at 80 columns), never data, as the mapping readers take it.
/// `None` when there is nothing to unwrap.
pub fn unwrapped(text: &str, terminator: char) -> Option<String> {
    let wrap = |c: char| c == '\r' || c == '\n';
    (!wrap(terminator) && text.contains(wrap)).then(|| text.replace(wrap, ""))
}

/// A partner id as the last token of `ack.<route>.<partner>`: trimmed, anything but letters,
/// digits, `-` and `_` mapped to `_`.
pub fn partner_token(id: &str) -> String {
    let token: String = id
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() { "_".into() } else { token }
}

/// The line break written after each segment terminator: the one the original uses after its
/// first segment, if any (after the spaces that pad a record to a fixed width, which are not
/// echoed).
pub fn line_break(after_terminator: &str) -> &'static str {
    let after_terminator = after_terminator.trim_start_matches([' ', '\t']);
    if after_terminator.starts_with("\r\n") {
        "\r\n"
    } else if after_terminator.starts_with('\n') {
        "\n"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_rfc3339_utc() {
        let Ok(stamp) = Stamp::new(7, "2026-11-30T04:05:06Z") else {
            unreachable!("a valid time")
        };
        assert_eq!(stamp.date8(), "20261130");
        assert_eq!(stamp.date6(), "261130");
        assert_eq!(stamp.time4(), "0405");
        assert!(Stamp::new(7, "30/11/2026").is_err());
    }

    #[test]
    fn the_sdk_refusal_of_a_test_interchange_is_told_from_an_error() {
        millrace_sdk::config::set_for_tests([("site", "PLANT1")]);
        let Ok(route) = millrace_sdk::edi::Route::load() else {
            unreachable!("a route with a site")
        };
        for mark in ["ISA15 is T", "UNB 0035 is 1"] {
            let Err(refused) = route.admit(true, mark) else {
                unreachable!("a route that refuses test interchanges")
            };
            assert!(is_test_refusal(&refused.to_string()), "{refused}");
        }
        assert!(!is_test_refusal(
            "unsupported-document: transaction set 944 is not an 856 ship notice"
        ));
        assert!(!is_test_refusal("malformed-input: a test interchange ("));
    }

    #[test]
    fn partner_tokens_keep_only_subject_safe_characters() {
        assert_eq!(partner_token(" ACME CORP.  "), "ACME_CORP_");
        assert_eq!(partner_token("   "), "_");
    }
}
