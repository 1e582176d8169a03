//! The plugin registry: finding, building and loading plugin versions.
//!
//! A plugin is a folder with a `plugin.toml` manifest, its source, and golden fixtures; or a
//! bare `.wasm` component. This module turns either into a loaded [`PluginComponent`]. (A
//! registry in the JetStream object store comes with the plugin-lifecycle work; a local folder
//! is the single-host fallback and stays.)

mod build;
pub mod fixtures;
pub mod loader;
mod manifest;
pub mod outbound_fixtures;
pub mod record;
pub mod rollout;
pub mod signing;
pub mod store;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use self::manifest::{FixtureSettings, MANIFEST_FILE, Manifest};
use self::record::VersionRecord;
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::{PluginComponent, Sandbox};

/// A plugin found on disk.
#[derive(Debug, Clone)]
pub struct LocalPlugin {
    /// The plugin folder, when it is one (not a bare component).
    pub dir: Option<PathBuf>,
    /// The manifest, when the plugin is a folder.
    pub manifest: Option<Manifest>,
    /// The built component.
    pub component: PathBuf,
}

impl LocalPlugin {
    /// Finds a plugin at `path`: a folder (built when needed) or a `.wasm` file.
    pub fn locate(path: &Path) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "plugin {} not found: give a plugin folder (with {MANIFEST_FILE}) or a .wasm component",
                path.display()
            )
        })?;
        if meta.is_file() {
            return Ok(Self {
                dir: None,
                manifest: None,
                component: path.to_owned(),
            });
        }
        let manifest = Manifest::load(path)?;
        let component = build::build(path, &manifest)?;
        Ok(Self {
            dir: Some(path.to_owned()),
            manifest: Some(manifest),
            component,
        })
    }

    /// The plugin name: from the manifest, or the component's file name.
    pub fn name(&self) -> String {
        match &self.manifest {
            Some(m) => m.name.clone(),
            None => self.component.file_stem().map_or_else(
                || "plugin".into(),
                |s| s.to_string_lossy().replace('_', "-"),
            ),
        }
    }

    /// The plugin version: from the manifest, or `0.0.0-local` for a bare component.
    pub fn version(&self) -> String {
        self.manifest
            .as_ref()
            .map_or_else(|| "0.0.0-local".into(), |m| m.version.clone())
    }

    /// Reads and compiles the component; its WIT version must be the manifest's.
    pub fn load(&self, sandbox: &Sandbox) -> anyhow::Result<PluginComponent> {
        let bytes = std::fs::read(&self.component)
            .with_context(|| format!("cannot read component {}", self.component.display()))?;
        let component = sandbox.load(&self.name(), &self.version(), &bytes)?;
        let component = match &self.manifest {
            Some(manifest) => component.with_limits(manifest.limits),
            None => component,
        };
        if let Some(manifest) = &self.manifest
            && manifest.wit != component.wit
        {
            anyhow::bail!(
                "plugin {}: the manifest says it targets {} but the component was built against {}",
                component.id(),
                manifest.wit,
                component.wit
            );
        }
        Ok(component)
    }
}

/// Contract-gated admission: a version may serve only when it compiles, targets a WIT version
/// this host serves (the one its manifest names), and passes every golden fixture in this
/// host's own sandbox, judged by the host's `ownership` rules as live traffic would be.
/// Returns the loaded version, or why it is refused.
pub fn admit(
    sandbox: &Sandbox,
    record: &VersionRecord,
    component: &[u8],
    ownership: &OwnershipPolicy,
) -> anyhow::Result<PluginComponent> {
    admit_within(
        sandbox,
        record,
        component,
        ownership,
        &AdmissionBounds::default(),
    )
}

/// Refuses to deploy `record` when its manifest's `wit` is not the WIT package its component
/// was built against (`built`, read from the component's imports when it was loaded): stored,
/// such a version would be immutable and refused by every admission.
pub fn check_built_against(record: &VersionRecord, built: &str) -> anyhow::Result<()> {
    if record.wit != built {
        anyhow::bail!(
            "{} is refused: its manifest says wit = \"{}\" but the component is built against \
             {built} (its imports say so): correct `wit` in plugin.toml, or rebuild the component \
             against {}",
            record.id(),
            record.wit,
            record.wit
        );
    }
    Ok(())
}

/// Loads `component` of `record` as its manifest says it is (an acknowledger, else a mapper or
/// poster) and refuses it when it is not what the manifest says: the check of a deploy, on
/// the CLI and the admin API alike. Blocking (it compiles): run it off the async reactor.
pub fn check_deployable(
    sandbox: &Sandbox,
    record: &VersionRecord,
    component: &[u8],
) -> anyhow::Result<()> {
    let manifest = record.parsed_manifest()?;
    if manifest.is_acknowledger() {
        sandbox
            .load_acknowledger(&record.name, &record.version, component)
            .with_context(|| format!("{} is refused", record.id()))?;
        return Ok(());
    }
    let loaded = sandbox
        .load(&record.name, &record.version, component)
        .with_context(|| format!("{} is refused", record.id()))?;
    check_built_against(record, loaded.wit)
}

/// Most golden fixtures a version may carry.
pub const MAX_FIXTURES: usize = 256;

/// Refuses a version carrying more golden fixtures than one admission runs.
pub fn check_fixture_count(record: &VersionRecord) -> anyhow::Result<()> {
    if record.fixtures.len() > MAX_FIXTURES {
        anyhow::bail!(
            "{} is refused: it has {} golden fixtures, more than the {MAX_FIXTURES} admission runs",
            record.id(),
            record.fixtures.len()
        );
    }
    Ok(())
}

/// How long and until when one admission may run.
#[derive(Debug)]
pub struct AdmissionBounds {
    /// Longest all fixtures together may run; checked between fixtures.
    pub budget: std::time::Duration,
    /// Cancelled when whoever asked for the admission went away.
    pub cancel: tokio_util::sync::CancellationToken,
    /// A place under a cap of admissions at once, held until the admission really ends (not
    /// when its caller leaves), so the cap counts the work still running.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The limits of the route the version is admitted for (its deadline, memory...): the
    /// fixtures run under them, tightened by the manifest's, as live calls do. Under the
    /// defaults, a version was admitted onto a 16 MiB route whose every message it then
    /// dead-lettered.
    pub route_limits: millrace_core::config::Limits,
}

impl Default for AdmissionBounds {
    fn default() -> Self {
        Self {
            budget: std::time::Duration::from_secs(60),
            cancel: tokio_util::sync::CancellationToken::new(),
            slot: None,
            route_limits: millrace_core::config::Limits::default(),
        }
    }
}

/// Refuses `record` when any of its golden fixtures failed (`failures`, one text each): the
/// end of every admission, mapper or acknowledger.
pub fn refuse_failed_fixtures(record: &VersionRecord, failures: &[String]) -> anyhow::Result<()> {
    if !failures.is_empty() {
        anyhow::bail!(
            "{} is refused: {} of {} golden fixtures fail\n{}",
            record.id(),
            failures.len(),
            record.fixtures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// [`admit`] within `bounds`: it stops (refusing the version) when the budget is spent, when
/// a fixture breaches a limit, or when it is cancelled.
pub fn admit_within(
    sandbox: &Sandbox,
    record: &VersionRecord,
    component: &[u8],
    ownership: &OwnershipPolicy,
    bounds: &AdmissionBounds,
) -> anyhow::Result<PluginComponent> {
    let id = record.id();
    check_fixture_count(record)?;
    let started = std::time::Instant::now();
    let manifest = record.parsed_manifest()?;
    let loaded = sandbox
        .load(&record.name, &record.version, component)
        .with_context(|| format!("{id} is refused"))?
        .with_limits(manifest.limits);
    if loaded.wit != record.wit {
        anyhow::bail!(
            "{id} is refused: its record says it targets {} but the component was built against {}",
            record.wit,
            loaded.wit
        );
    }
    if record.fixtures.is_empty() {
        anyhow::bail!("{id} is refused: it has no golden fixtures to admit it by");
    }
    let settings = manifest.fixtures;
    let route = millrace_core::sandbox::RouteContext {
        limits: bounds.route_limits,
        ..fixtures::fixture_route(&settings)
    };
    let mut failures = Vec::new();
    for (run, fixture) in record.fixtures.iter().enumerate() {
        if bounds.cancel.is_cancelled() {
            anyhow::bail!(
                "the admission of {id} was cancelled after {run} of {} golden fixtures: its caller went away",
                record.fixtures.len()
            );
        }
        if started.elapsed() > bounds.budget {
            anyhow::bail!(
                "{id} is refused: admission stopped after {run} of {} golden fixtures, past its {:?} budget",
                record.fixtures.len(),
                bounds.budget
            );
        }
        let (diff, breached) =
            fixtures::check_stored(&loaded, &route, &settings, ownership, fixture)?;
        if let Some(diff) = diff {
            failures.push(format!("fixture {} fails:\n{diff}", fixture.name));
        }
        if breached {
            anyhow::bail!(
                "{id} is refused: golden fixture {} breached a limit (trap, deadline or memory); admission stopped after {} of {} fixtures\n{}",
                fixture.name,
                run + 1,
                record.fixtures.len(),
                failures.join("\n")
            );
        }
    }
    refuse_failed_fixtures(record, &failures)?;
    Ok(loaded)
}
