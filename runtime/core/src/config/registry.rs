//! `[registry]`: where plugin versions and route bindings live, and whose signatures count.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `registry.kind` | where plugin versions and route bindings live: `jetstream` or `directory` | `jetstream` |
//! | `registry.dir` | the folder of a `directory` registry (one host, no JetStream storage) | `<state_dir>/registry` |
//! | `registry.bucket`, `registry.bindings` | the object store and key-value bucket of a `jetstream` registry | `millrace-plugins`, `millrace-routes` |
//! | `registry.trusted_keys` | public ed25519 keys (base64) trusted to sign plugin versions | none |
//! | `registry.require_signatures` | refuse versions not signed by a trusted key | `false` |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::values::{Invalid, check_names};

/// Where plugin versions and route bindings are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// `jetstream` (every host of the cluster) or `directory` (one host, no JetStream storage).
    pub kind: RegistryKind,
    /// The folder of a `directory` registry; default `<state_dir>/registry`.
    pub dir: Option<PathBuf>,
    /// The object store holding plugin versions.
    pub bucket: String,
    /// The key-value bucket holding route bindings.
    pub bindings: String,
    /// Public ed25519 keys whose signatures on plugin versions are trusted.
    pub trusted_keys: Vec<TrustedKey>,
    /// Refuse every plugin version not signed by a trusted key.
    pub require_signatures: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            kind: RegistryKind::default(),
            dir: None,
            bucket: "millrace-plugins".into(),
            bindings: "millrace-routes".into(),
            trusted_keys: Vec::new(),
            require_signatures: false,
        }
    }
}

impl RegistryConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_names([
            ("registry.bucket", self.bucket.as_str()),
            ("registry.bindings", &self.bindings),
        ])?;
        if self.require_signatures && self.trusted_keys.is_empty() {
            return Err(Invalid::new(
                "registry.require_signatures",
                "is on but `registry.trusted_keys` is empty: no version could ever serve",
            ));
        }
        Ok(())
    }
}

/// The kind of registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryKind {
    /// The JetStream object store and a key-value bucket every host watches.
    #[default]
    Jetstream,
    /// A local folder, watched: for a single development host.
    Directory,
}

/// A public ed25519 key, written in base64, checked when the file is read.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedKey(VerifyingKey);

impl TrustedKey {
    /// The key, to verify signatures with.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl FromStr for TrustedKey {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes: [u8; 32] = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("is not a base64 ed25519 public key (32 bytes)")?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| "is not a valid ed25519 public key")
    }
}

impl TryFrom<String> for TrustedKey {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse().map_err(|e| {
            format!(
                "the trusted key `{text}` {e}: list the public keys `millrace plugin keygen` prints"
            )
        })
    }
}

impl fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedKey({self})")
    }
}
