//! Validated names from outside the host: subject tokens, HTTP ingest subjects and plugin
//! version ids (`name@semver`). Everything a caller sends that becomes a NATS subject, an
//! object name or a file name goes through here first, so an over-long, encoded, control or
//! invisible character, or a path, never reaches NATS or the disk.

use std::fmt;

/// Longest subject token (system, site, format) a caller may send.
pub const MAX_TOKEN_CHARS: usize = 64;

/// Longest plugin name.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest plugin version, pre-release and build metadata included.
pub const MAX_VERSION_CHARS: usize = 64;

/// Why a name is refused; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// Shows at most 80 characters of `text`, escaped, for an error message.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect::<String>();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// True when `s` is 1 to [`MAX_TOKEN_CHARS`] ASCII letters, digits, `-` and `_`.
pub fn is_subject_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TOKEN_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A subject HTTP ingest may publish to: exactly `raw.<system>.<site>.<format>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSubject(String);

impl IngestSubject {
    /// The subject of `POST /ingest/<system>/<site>/<format>`, from the decoded path suffix.
    pub fn from_path(suffix: &str) -> Result<Self, NameError> {
        let tokens: Vec<&str> = suffix.split('/').collect();
        let wrong = || {
            let subject = format!("raw.{}", suffix.trim_matches('/').replace('/', "."));
            NameError(format!(
                "the path gives the subject {}, which is not raw.<system>.<site>.<format>: use exactly three path segments of 1 to {MAX_TOKEN_CHARS} ASCII letters, digits, `-` or `_` (no dots, encoded or not, no control or invisible characters)",
                shown(&subject)
            ))
        };
        if tokens.len() != 3 || !tokens.iter().all(|t| is_subject_token(t)) {
            return Err(wrong());
        }
        Ok(Self(format!("raw.{}", tokens.join("."))))
    }

    /// The subject.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IngestSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a plugin name: 1 to [`MAX_NAME_CHARS`] lowercase letters, digits and `-`.
pub fn check_plugin_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "the plugin name {:?} may hold only lowercase letters, digits and `-` (1 to {MAX_NAME_CHARS})",
            shown(name)
        )))
    }
}

/// Checks a version: a semantic version 2.0 (`1.2.0`, `1.2.0-rc.1+build.5`) of at most
/// [`MAX_VERSION_CHARS`] characters.
pub fn check_version(version: &str) -> Result<(), NameError> {
    if version.len() <= MAX_VERSION_CHARS && is_semver(version) {
        Ok(())
    } else {
        Err(NameError(format!(
            "the version {:?} is not a semantic version like 1.2.0 or 1.2.0-rc.1 (at most {MAX_VERSION_CHARS} characters: digits, letters, `-`, `.` and one `+`)",
            shown(version)
        )))
    }
}

/// Semantic versioning 2.0: `MAJOR.MINOR.PATCH[-pre.release][+build.meta]`.
fn is_semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let identifier =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|pre| {
            pre.split('.')
                .all(|p| identifier(p) && (!p.bytes().all(|b| b.is_ascii_digit()) || numeric(p)))
        })
        && build.is_none_or(|build| build.split('.').all(identifier))
}

/// A plugin version's id, `name@version`, both checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginId {
    name: String,
    version: String,
}

impl PluginId {
    /// Parses `name@version`.
    pub fn parse(id: &str) -> Result<Self, NameError> {
        let Some((name, version)) = id.split_once('@') else {
            return Err(NameError(format!(
                "{:?} is not a plugin version id: write `name@version`, e.g. mes-shift-report@1.2.0",
                shown(id)
            )));
        };
        check_plugin_name(name)?;
        check_version(version)?;
        Ok(Self {
            name: name.to_owned(),
            version: version.to_owned(),
        })
    }

    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ingest_subjects_are_exactly_three_plain_tokens() {
        assert_eq!(
            IngestSubject::from_path("erp/PLANT1/json")
                .unwrap()
                .as_str(),
            "raw.erp.PLANT1.json"
        );
        for bad in [
            "nowhere",
            "a/b",
            "a/b/c/d",
            "a.b/c/d",
            "a//c",
            "/a/b/c",
            "a/b/c/",
            "a/b\0/c",
            "a/b\u{7f}/c",
            "a/b\u{200b}/c",
            "a/b c/d",
            "a/*/c",
            "a/>/c",
            "é/b/c",
        ] {
            assert!(IngestSubject::from_path(bad).is_err(), "{bad:?}");
        }
        let long = format!("a/{}/c", "x".repeat(MAX_TOKEN_CHARS + 1));
        let error = IngestSubject::from_path(&long).unwrap_err().to_string();
        assert!(error.len() < 400, "the message stays short: {error}");
    }

    #[test]
    fn versions_are_strict_semver() {
        for good in [
            "1.0.0",
            "0.0.0-local",
            "1.2.3-rc.1",
            "1.2.3+build.5",
            "10.20.30-a-b.0",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "1.0",
            "v1.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-../../x",
            "1.0.0-<img/src=x/onerror=alert(1)>",
            "../../outside/evil",
            "1.0.0-a..b",
            "1.0.0+",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert!(check_version(&format!("1.0.0-{}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn plugin_ids_name_and_version() {
        let id = PluginId::parse("mes-shift-report@1.2.0").unwrap();
        assert_eq!((id.name(), id.version()), ("mes-shift-report", "1.2.0"));
        assert_eq!(id.to_string(), "mes-shift-report@1.2.0");
        for bad in [
            "../../outside/evil",
            "a@../../x",
            "A@1.0.0",
            "a/b@1.0.0",
            "@1.0.0",
            "a@",
        ] {
            assert!(PluginId::parse(bad).is_err(), "{bad}");
        }
    }
}
