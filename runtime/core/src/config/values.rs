//! The value types the sections share: durations written `500ms`, `2s`, `5m` or `1h`, NATS
//! subjects and names, and what a section's check reports.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `500ms`, `2s`, `5m` or `1h`, parsed when the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        parse_duration(&text).map(Self)
    }
}

impl PartialEq<Duration> for HumanDuration {
    fn eq(&self, other: &Duration) -> bool {
        self.0 == *other
    }
}

impl PartialEq<HumanDuration> for Duration {
    fn eq(&self, other: &HumanDuration) -> bool {
        *self == other.0
    }
}

/// The name of an admin token (`admin.tokens[].name`): letters, digits, `-` and `_` (see
/// [`is_token`]), checked when the file is read. The log and ingest headers name the sender by
/// it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct TokenName(String);

impl TokenName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenName {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if is_token(&text) {
            Ok(Self(text))
        } else {
            Err(format!(
                "`{text}` is not a token name: use letters, digits, `-` and `_`, e.g. `ops` or `erp-webhook`"
            ))
        }
    }
}

impl std::fmt::Display for TokenName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Deserializes a plain [`Duration`] written like a [`HumanDuration`], for the sandbox's
/// [`Limits`](super::Limits), which code builds from plain durations.
pub(super) fn plain_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    HumanDuration::deserialize(d).map(HumanDuration::get)
}

/// [`plain_duration`] for an optional field.
pub(super) fn plain_duration_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    HumanDuration::deserialize(d).map(|d| Some(d.get()))
}

/// Parses `500ms`, `2s`, `5m` or `1h` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        format!(
            "`{text}` is not a duration: write a whole number and a unit, e.g. `500ms`, `2s`, `5m`, `1h`"
        )
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long a duration"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(bad()),
    }
}

/// What a section's check found wrong: the dotted key and what is accepted. [`Config`]
/// adds the file's name.
///
/// [`Config`]: super::Config
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    /// The dotted key, e.g. `routes.mes.limits.deadline`.
    pub key: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl Invalid {
    /// `key` is wrong: `message`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Checks names that become NATS stream, bucket or consumer names (see [`is_token`]).
pub(super) fn check_names<'a>(
    names: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), Invalid> {
    for (key, name) in names {
        if !is_token(name) {
            return Err(Invalid::new(
                key,
                "may hold only letters, digits, `-` and `_`",
            ));
        }
    }
    Ok(())
}

/// Checks the subjects listed under `key`; wildcards only where `wildcards` is true.
pub(super) fn check_subjects(
    key: &str,
    subjects: &[String],
    wildcards: bool,
) -> Result<(), Invalid> {
    for subject in subjects {
        check_subject(subject, wildcards).map_err(|m| Invalid::new(key, m))?;
    }
    Ok(())
}

/// Checks that `value` lies in `range`, saying so with `key` when it does not.
pub(super) fn check_range<T: PartialOrd + std::fmt::Display>(
    key: impl Into<String>,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), Invalid> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Invalid::new(
        key,
        format!("must be between {} and {}", range.start(), range.end()),
    ))
}

/// True when `s` is a non-empty run of letters, digits, `-` and `_`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a NATS subject; wildcards (`*`, a final `>`) only where `wildcards` is true.
pub fn check_subject(subject: &str, wildcards: bool) -> Result<(), String> {
    if subject.is_empty() {
        return Err("has an empty subject".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() || token.chars().any(|c| c.is_whitespace()) {
            return Err(format!(
                "has the invalid subject `{subject}`: tokens are separated by single dots and hold no spaces"
            ));
        }
        let wild = *token == "*" || *token == ">";
        if wild && !wildcards {
            return Err(format!("has `{subject}`: wildcards are not allowed here"));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err(format!("has `{subject}`: `>` may only be the last token"));
        }
        if !wild && (token.contains('*') || token.contains('>')) {
            return Err(format!(
                "has `{subject}`: `*` and `>` must stand alone as a token"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked() {
        assert!(check_subject("raw.mes.*.shift-report", true).is_ok());
        assert!(check_subject("raw.>", true).is_ok());
        assert!(check_subject("raw.>.x", true).is_err());
        assert!(check_subject("raw.*", false).is_err());
        assert!(check_subject("raw a", false).is_err());
        assert!(check_subject("raw.a*", true).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("3 weeks").is_err());
        // Found by the property tests: an hour count that overflows when turned into seconds.
        assert_eq!(
            parse_duration("5124100000000000h"),
            Err("`5124100000000000h` is too long a duration".to_owned())
        );
        assert!(parse_duration("").is_err());
    }
}
