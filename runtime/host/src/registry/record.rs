//! What the registry keeps: a version's record (its manifest, golden fixtures and signature
//! beside the component) and each route's binding (which versions it serves). Plain data,
//! stored as JSON; the store reads and writes it.

use anyhow::Context;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use millrace_core::config::PluginSource;
use millrace_core::digest::sha256_hex;

/// A signature on a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's public key, base64.
    pub key: String,
    /// The ed25519 signature, base64.
    pub value: String,
}

/// One golden fixture of a version: the input and what it must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFixture {
    /// The input's file name.
    pub name: String,
    /// The input bytes, base64.
    pub input: String,
    /// The expectation, as in `<name>.expected.json`.
    pub expected: String,
}

impl StoredFixture {
    /// The input bytes.
    pub fn input_bytes(&self) -> anyhow::Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.input)
            .with_context(|| format!("fixture {} is not valid base64", self.name))
    }
}

/// What the registry keeps of a version beside its component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// sha256 of the component, hex.
    pub digest: String,
    /// The WIT package it targets.
    pub wit: String,
    /// Component size in bytes.
    pub size: u64,
    /// When it was deployed, RFC 3339.
    pub deployed_at: String,
    /// The manifest, as written.
    pub manifest: String,
    /// Its golden fixtures.
    pub fixtures: Vec<StoredFixture>,
    /// The publisher's signature over name, version and digest, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl VersionRecord {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The record of a version uploaded whole (the admin API's deploy): its manifest text,
    /// component and fixtures, signed or not. The manifest is checked like a folder's.
    pub fn uploaded(
        manifest: String,
        component: &[u8],
        fixtures: Vec<StoredFixture>,
        signature: Option<Signature>,
    ) -> anyhow::Result<Self> {
        let parsed = Manifest::parse(&manifest).context("invalid plugin manifest")?;
        for fixture in &fixtures {
            fixture.input_bytes()?;
        }
        Ok(Self {
            name: parsed.name,
            version: parsed.version,
            digest: sha256_hex(component),
            wit: parsed.wit,
            size: component.len() as u64,
            deployed_at: now(),
            manifest,
            fixtures,
            signature,
        })
    }

    /// The manifest, parsed.
    pub fn parsed_manifest(&self) -> anyhow::Result<Manifest> {
        toml::from_str(&self.manifest)
            .with_context(|| format!("the manifest of {} does not parse", self.id()))
    }
}

/// How a candidate version takes part in a route's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateMode {
    /// Maps a share of the messages (chosen by message key), publishing their events.
    Canary {
        /// Per cent of the messages, 1 to 99.
        percent: u8,
    },
    /// Maps every message beside the active version; its events are compared, not published.
    Shadow,
}

/// A version being tried on a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// `name@version`.
    pub version: String,
    /// Canary or shadow.
    pub mode: CandidateMode,
}

/// Which versions a route serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The active version, `name@version`.
    pub active: String,
    /// The versions active before, oldest first: rollback goes back one.
    #[serde(default)]
    pub history: Vec<String>,
    /// The version being tried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Candidate>,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
}

impl Binding {
    /// A binding serving `active`, remembering the version it replaces.
    pub fn activate(previous: Option<&Binding>, active: &str) -> Self {
        let mut history = previous.map(|b| b.history.clone()).unwrap_or_default();
        if let Some(previous) = previous
            && previous.active != active
        {
            history.push(previous.active.clone());
        }
        Self {
            active: active.to_owned(),
            history,
            candidate: None,
            updated_at: now(),
        }
    }
}

/// What a binding does with one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It is the active version.
    Active,
    /// It is the candidate, a canary.
    Canary,
    /// It is the candidate, in shadow.
    Shadow,
    /// The binding does not serve it.
    Unused,
}

impl Binding {
    /// What the binding does with `version` (`name@version`).
    pub fn role_of(&self, version: &str) -> Role {
        if self.active == version {
            return Role::Active;
        }
        match &self.candidate {
            Some(c) if c.version == version => match c.mode {
                CandidateMode::Canary { .. } => Role::Canary,
                CandidateMode::Shadow => Role::Shadow,
            },
            _ => Role::Unused,
        }
    }

    /// The config's plugin of the route (`configured`), as written, with what the binding does
    /// with it; `None` when it is the active version, or the config names none. A folder is
    /// never served while the route has a binding.
    pub fn configured(&self, configured: Option<PluginSource>) -> Option<(String, Role)> {
        match configured? {
            PluginSource::Registry(id) => match self.role_of(&id) {
                Role::Active => None,
                role => Some((id, role)),
            },
            PluginSource::Path(path) => Some((path.display().to_string(), Role::Unused)),
        }
    }

    /// The binding with `updated_at` set to now.
    pub fn touched(mut self) -> Self {
        self.updated_at = now();
        self
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A change of one route's binding, seen by a watcher.
#[derive(Debug, Clone)]
pub struct BindingChange {
    /// The route.
    pub route: String,
    /// The new binding; `None` when it was removed.
    pub binding: Option<Binding>,
}
