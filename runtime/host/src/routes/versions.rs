//! The plugin versions a route serves, and which of them one message goes through.

use std::sync::Arc;

use crate::registry::record::CandidateMode;
use millrace_core::sandbox::PluginComponent;

/// The plugin versions a route serves right now: swapped whole, atomically, when its binding
/// changes; a message keeps the versions it started with.
#[derive(Debug)]
pub struct ServedVersions {
    /// The active version.
    pub active: Arc<PluginComponent>,
    /// The version being tried, and how.
    pub candidate: Option<(Arc<PluginComponent>, CandidateMode)>,
}

/// A version a route serves, and as what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Serving {
    /// `name@version`.
    pub version: String,
    /// `active`, `canary` or `shadow`.
    pub role: &'static str,
    /// The canary's share of messages, per cent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

/// The versions one message goes through.
#[derive(Debug)]
pub struct MessageVersions {
    /// The version whose events are published.
    pub plugin: Arc<PluginComponent>,
    /// A shadow candidate whose events are only compared.
    pub shadow: Option<Arc<PluginComponent>>,
}

impl ServedVersions {
    /// The versions for the message with key `key` (its raw identity): a canary takes the
    /// messages whose key falls in its share, always the same ones.
    pub fn pick(&self, key: &str) -> MessageVersions {
        match &self.candidate {
            Some((candidate, CandidateMode::Canary { percent }))
                if canary_share(key) < *percent =>
            {
                MessageVersions {
                    plugin: candidate.clone(),
                    shadow: None,
                }
            }
            Some((candidate, CandidateMode::Shadow)) => MessageVersions {
                plugin: self.active.clone(),
                shadow: Some(candidate.clone()),
            },
            _ => MessageVersions {
                plugin: self.active.clone(),
                shadow: None,
            },
        }
    }
}

/// Where a message key falls, 0 to 99, for canaries: stable across hosts and runs.
pub fn canary_share(key: &str) -> u8 {
    (millrace_core::digest::stable_hash(key) % 100) as u8
}
