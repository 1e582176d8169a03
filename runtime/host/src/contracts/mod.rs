//! The published contracts of millrace for the teams that consume its events: a JSON Schema of
//! every canonical event type (the CloudEvents envelope with its lineage extensions and one
//! kind's data) and an AsyncAPI 3.0 document of the subjects, for every WIT version served.
//!
//! Everything here is generated from the Rust model (`schemars` derives on [`millrace_core::canonical`]
//! and the shadow report), never written by hand. A field a later WIT version added carries
//! `x-millrace-since`, and the schema of an older version leaves it out. The generated files are
//! committed under `schemas/` (a test fails when they are stale), printed by `millrace schema`
//! and served at `/api/v1/schemas`. docs/CONTRACTS.md is the consumers' guide.

pub mod asyncapi;
pub mod compatibility;
pub mod schema;

use std::fmt;

use millrace_core::sandbox::SERVED_WIT;

/// The name of the AsyncAPI document beside the event schemas of a version.
pub const ASYNCAPI: &str = "asyncapi";

/// A served `millrace:mapping` WIT version, e.g. `1.1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WitVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl WitVersion {
    /// Every version this host serves, oldest first.
    pub fn served() -> Vec<WitVersion> {
        let mut versions: Vec<WitVersion> = SERVED_WIT
            .iter()
            .filter_map(|package| package.strip_prefix("millrace:mapping@"))
            .filter_map(WitVersion::parse_full)
            .collect();
        versions.sort();
        versions
    }

    /// The newest version served.
    pub fn newest() -> WitVersion {
        Self::served().last().copied().unwrap_or(WitVersion {
            major: 1,
            minor: 0,
            patch: 0,
        })
    }

    /// `major.minor.patch` exactly.
    pub(crate) fn parse_full(text: &str) -> Option<WitVersion> {
        let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) => Some(WitVersion {
                major,
                minor,
                patch,
            }),
            _ => None,
        }
    }

    /// A served version named as `1.1`, `1.1.0`, `mapping@1.1.0` or `millrace:mapping@1.1.0`.
    pub fn find(text: &str) -> Result<WitVersion, UnknownDocument> {
        let bare = text
            .trim_start_matches("millrace:")
            .trim_start_matches("mapping@");
        let wanted =
            WitVersion::parse_full(bare).or_else(|| WitVersion::parse_full(&format!("{bare}.0")));
        wanted
            .filter(|v| Self::served().contains(v))
            .ok_or_else(|| UnknownDocument::Version(text.to_owned()))
    }

    /// The folder name of its documents: `mapping@1.1.0`.
    pub fn folder(&self) -> String {
        format!("mapping@{self}")
    }

    /// The WIT package: `millrace:mapping@1.1.0`.
    pub fn package(&self) -> String {
        format!("millrace:mapping@{self}")
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A document that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownDocument {
    /// No such WIT version is served.
    #[error("no WIT version {0:?} is served: use one of {served}", served = served_list())]
    Version(String),
    /// No such event kind or document.
    #[error("no document {0:?}: use an event kind ({kinds}) or `asyncapi`", kinds = schema::kinds().join(", "))]
    Document(String),
}

fn served_list() -> String {
    WitVersion::served()
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The documents of a version: one schema per event kind, then the AsyncAPI document.
pub fn document_names() -> Vec<String> {
    let mut names = schema::kinds();
    names.push(ASYNCAPI.to_owned());
    names
}

/// One document of `version`: an event kind's schema, or `asyncapi`.
pub fn document(version: WitVersion, name: &str) -> Result<serde_json::Value, UnknownDocument> {
    if name == ASYNCAPI {
        Ok(asyncapi::document(version))
    } else {
        schema::event(version, name).ok_or_else(|| UnknownDocument::Document(name.to_owned()))
    }
}

/// A document as it is stored and served: pretty JSON with a final newline.
pub fn render(document: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

/// Every document of every served version, with its path under `schemas/`, e.g.
/// `mapping@1.1.0/inventory-movement.json`.
pub fn all_documents() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for version in WitVersion::served() {
        for name in document_names() {
            if let Ok(doc) = document(version, &name) {
                out.push((format!("{}/{name}.json", version.folder()), doc));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn versions_are_found_by_any_spelling() {
        let v11 = WitVersion::find("1.1").unwrap();
        assert_eq!(v11.to_string(), "1.1.0");
        assert_eq!(WitVersion::find("mapping@1.1.0").unwrap(), v11);
        assert_eq!(WitVersion::find("millrace:mapping@1.0.0").unwrap().minor, 0);
        let err = WitVersion::find("9.9").unwrap_err().to_string();
        assert!(err.contains("1.0.0, 1.1.0"), "{err}");
    }

    /// The committed `schemas/` folder holds exactly what the model generates: set
    /// `MILLRACE_BLESS_SCHEMAS=1` (or run `millrace schema --out schemas`) to rewrite it.
    #[test]
    fn the_committed_schemas_are_the_generated_ones() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let bless = std::env::var_os("MILLRACE_BLESS_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (path, doc) in all_documents() {
            let file = root.join(&path);
            let want = render(&doc);
            if bless {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &want).unwrap();
                continue;
            }
            match std::fs::read_to_string(&file) {
                Ok(have) if have == want => {}
                Ok(_) => stale.push(format!("schemas/{path} differs from the model")),
                Err(_) => stale.push(format!("schemas/{path} is missing")),
            }
        }
        let mut generated: Vec<String> = all_documents().into_iter().map(|(p, _)| p).collect();
        generated.sort();
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            for file in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let rel = format!(
                    "{}/{}",
                    entry.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                );
                if !generated.contains(&rel) && rel.ends_with(".json") {
                    stale.push(format!("schemas/{rel} is no longer generated"));
                }
            }
        }
        assert!(
            stale.is_empty(),
            "the committed schemas are stale:\n  {}\nregenerate them with \
             `MILLRACE_BLESS_SCHEMAS=1 cargo test -p millrace-host --lib contracts` (or \
             `millrace schema --out schemas`), review the diff and commit it",
            stale.join("\n  ")
        );
    }
}
