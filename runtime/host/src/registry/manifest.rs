//! `plugin.toml`: what a plugin version is and how to test it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use millrace_core::sandbox::{ACKNOWLEDGER_WIT, SERVED_OUTBOUND_WIT, SERVED_WIT, World};

/// The manifest's file name inside a plugin folder.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// A plugin manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The plugin name: lowercase letters, digits and `-`.
    pub name: String,
    /// The plugin version, semver.
    pub version: String,
    /// The WIT package it targets, e.g. `millrace:mapping@1.0.0` or `millrace:outbound@1.0.0`.
    pub wit: String,
    /// The world of that package it exports: `mapper` (the only one of `millrace:mapping`),
    /// `poster` (the default of `millrace:outbound`) or `acknowledger` (docs/OUTBOUND.md, "EDI
    /// functional acknowledgements").
    #[serde(default)]
    pub world: Option<String>,
    /// One line saying what it maps.
    #[serde(default)]
    pub description: String,
    /// Who owns the mapping.
    #[serde(default)]
    pub owner: String,
    /// The source system it maps from, e.g. `mes`.
    #[serde(default)]
    pub source_system: String,
    /// The formats it maps.
    #[serde(default)]
    pub formats: Vec<String>,
    /// How its golden fixtures are run.
    #[serde(default)]
    pub fixtures: FixtureSettings,
    /// How to build a plugin that is not a Rust crate.
    #[serde(default)]
    pub build: Option<BuildSettings>,
    /// The most this plugin needs; a route never gives it more.
    #[serde(default)]
    pub limits: millrace_core::config::PluginLimits,
}

/// How golden fixtures are run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSettings {
    /// The subject the inputs are given with.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The route configuration the plugin sees.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for FixtureSettings {
    fn default() -> Self {
        Self {
            subject: default_subject(),
            config: BTreeMap::new(),
        }
    }
}

fn default_subject() -> String {
    "raw.test.site.fixture".into()
}

/// A build command for plugins in other languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    /// The command and its arguments, run in the plugin folder.
    pub command: Vec<String>,
    /// The component it writes, relative to the plugin folder.
    pub component: PathBuf,
}

impl Manifest {
    /// True when the plugin is an acknowledger (`world = "acknowledger"`).
    pub fn is_acknowledger(&self) -> bool {
        self.world.as_deref() == Some("acknowledger")
    }

    /// Reads and checks `<dir>/plugin.toml`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a plugin folder: cannot read {}",
                dir.display(),
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("invalid plugin manifest {}", path.display()))
    }

    /// Parses and checks manifest text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The world the plugin exports, from `wit` and `world`.
    pub fn plugin_world(&self) -> anyhow::Result<World> {
        let outbound = SERVED_OUTBOUND_WIT.contains(&self.wit.as_str());
        match (outbound, self.world.as_deref()) {
            (false, None | Some("mapper")) => Ok(World::Mapper),
            (true, None | Some("poster")) => Ok(World::Poster),
            (false, Some(other)) => {
                bail!(
                    "`world` is {other:?} but {} has one world: mapper",
                    self.wit
                )
            }
            (true, Some(other)) => bail!(
                "`world` is {other:?} but this host serves the world poster of {}",
                self.wit
            ),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        millrace_core::names::check_plugin_name(&self.name)
            .map_err(|e| anyhow::anyhow!("`name`: {e}"))?;
        millrace_core::names::check_version(&self.version)
            .map_err(|e| anyhow::anyhow!("`version`: {e}"))?;
        if !SERVED_WIT.contains(&self.wit.as_str())
            && !SERVED_OUTBOUND_WIT.contains(&self.wit.as_str())
        {
            bail!(
                "`wit` is {:?} but this host serves {}, {}",
                self.wit,
                SERVED_WIT.join(", "),
                SERVED_OUTBOUND_WIT.join(", ")
            );
        }
        if self.is_acknowledger() {
            if self.wit != ACKNOWLEDGER_WIT {
                bail!(
                    "`wit` is {:?} but the acknowledger world is in {ACKNOWLEDGER_WIT}",
                    self.wit
                );
            }
        } else {
            self.plugin_world()?;
        }
        if let Some(build) = &self.build
            && build.command.is_empty()
        {
            bail!("`build.command` is empty");
        }
        Ok(())
    }
}

#[cfg(test)]
fn is_semver(v: &str) -> bool {
    millrace_core::names::check_version(v).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        assert!(is_semver("1.0.0"));
        assert!(is_semver("1.0.0-rc.1"));
        assert!(!is_semver("1.0"));
        assert!(!is_semver("v1.0.0"));
    }

    #[test]
    fn manifest_rules() {
        let parse = |t: &str| {
            toml::from_str::<Manifest>(t)
                .map_err(|e| e.to_string())
                .and_then(|m| m.check().map(|_| m).map_err(|e| e.to_string()))
        };
        let ok = "name = \"a-b\"\nversion = \"1.0.0\"\nwit = \"millrace:mapping@1.0.0\"\n";
        assert!(parse(ok).is_ok());
        assert!(
            parse(&ok.replace("1.0.0\"\nwit", "one\"\nwit"))
                .unwrap_err()
                .contains("semantic version")
        );
        assert!(
            parse(&ok.replace("@1.0.0", "@9.0.0"))
                .unwrap_err()
                .contains("this host serves")
        );
        assert!(
            parse(&format!("{ok}colour = 1\n"))
                .unwrap_err()
                .contains("colour")
        );
    }
}
