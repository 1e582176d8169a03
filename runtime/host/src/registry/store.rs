//! Deployed plugin versions and route bindings: in the JetStream object store and a key-value
//! bucket every host watches, or in a local folder for a single development host.
//!
//! A version is immutable: `name@version` holds one component, identified by its sha256;
//! deploying the same version with other bytes is refused. A route binding says which version
//! a route serves, which ones it served before (for rollback) and which candidate it tries.
//!
//! In JetStream the object store has no compare-and-set, so a version is first *claimed* in a
//! key-value bucket (`<registry.bucket>-claims`, one key per version) with a create-only
//! compare-and-set carrying its digests; only the deploy whose claim stands (or a deploy of the
//! same bytes) writes the objects. A binding is written with a compare-and-set on the revision
//! its change read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv, object_store};
use base64::Engine as _;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::fixtures;
pub use super::record::{
    Binding, BindingChange, Candidate, CandidateMode, Role, StoredFixture, VersionRecord,
};
use super::{LocalPlugin, MANIFEST_FILE, Manifest};
use millrace_core::config::{Config, RegistryKind};
use millrace_core::digest::sha256_hex;
use millrace_transport as transport;
use millrace_transport::revision::{Decided, FirstTry, RevisionError, read_modify_write};

/// How often a directory registry looks for changed bindings.
const DIRECTORY_POLL: Duration = Duration::from_millis(200);

impl VersionRecord {
    /// The record of a plugin found on disk: its manifest and fixtures.
    pub fn of(plugin: &LocalPlugin, component: &[u8], wit: &str) -> anyhow::Result<Self> {
        let dir = plugin
            .dir
            .as_ref()
            .context("deploy a plugin folder (with plugin.toml and fixtures/), not a bare component: versions are admitted by their fixtures")?;
        let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE))?;
        let mut stored = Vec::new();
        let outbound = plugin
            .manifest
            .as_ref()
            .is_some_and(|m| matches!(m.plugin_world(), Ok(millrace_core::sandbox::World::Poster)));
        if outbound {
            // An outbound case is one JSON file: kept whole as the expectation, and as the input.
            for case in crate::registry::outbound_fixtures::cases(dir)? {
                let text = std::fs::read_to_string(&case)
                    .with_context(|| format!("cannot read fixture {}", case.display()))?;
                stored.push(StoredFixture {
                    name: case
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    input: base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
                    expected: text,
                });
            }
        }
        let acknowledger = plugin
            .manifest
            .as_ref()
            .is_some_and(Manifest::is_acknowledger);
        if acknowledger {
            stored = crate::acknowledgements::fixtures::stored(dir)?;
        }
        for input in fixtures::inputs(dir)?
            .into_iter()
            .filter(|_| !outbound && !acknowledger)
        {
            let expected_path = fixtures::expected_path(&input);
            stored.push(StoredFixture {
                name: input
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                input: base64::engine::general_purpose::STANDARD.encode(std::fs::read(&input)?),
                expected: std::fs::read_to_string(&expected_path).with_context(|| {
                    format!(
                        "fixture {} has no {}",
                        input.display(),
                        expected_path.display()
                    )
                })?,
            });
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok(Self {
            name: plugin.name(),
            version: plugin.version(),
            digest: sha256_hex(component),
            wit: wit.to_owned(),
            size: component.len() as u64,
            deployed_at: now,
            manifest,
            fixtures: stored,
            signature: None,
        })
    }
}

/// Why the registry could not do what was asked. The kind is what callers branch on (the admin
/// API answers 404, 409, 422 or 503 from it); the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The version (or its component) is not deployed.
    #[error("{0}")]
    NotFound(String),
    /// What is asked disagrees with what is stored: a version redeployed with other bytes, a
    /// binding that kept changing under an update.
    #[error("{0}")]
    Conflict(String),
    /// What is stored or asked for cannot be used: an id that is not `name@semver`, a corrupt
    /// record, a component that does not match its digest, a change the rules refuse.
    #[error("{0}")]
    Refused(String),
    /// The registry's storage (NATS, the folder) cannot be reached: try again.
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

impl RegistryError {
    /// The storage failed while doing `what`.
    fn unavailable(what: impl Into<String>) -> impl FnOnce(anyhow::Error) -> Self {
        let what = what.into();
        move |e| Self::Unavailable(e.context(what))
    }
}

/// What a registry operation returns.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// The registry.
// One per process, cloned rarely: the size of the JetStream variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Registry {
    /// In JetStream: versions in an object store, bindings in a key-value bucket.
    JetStream {
        /// The object store.
        objects: object_store::ObjectStore,
        /// The bindings bucket.
        bindings: kv::Store,
        /// The claims of versions (`<registry.bucket>-claims`): which bytes a `name@version`
        /// holds, claimed before its objects are written.
        claims: kv::Store,
    },
    /// In a folder: `versions/` and `routes/`.
    Directory(PathBuf),
}

impl Registry {
    /// Opens the configured registry, creating its storage when needed.
    pub async fn open(config: &Config, js: Option<&jetstream::Context>) -> anyhow::Result<Self> {
        let settings = &config.registry;
        match settings.kind {
            RegistryKind::Directory => {
                let dir = settings.dir.as_ref().map_or_else(
                    || config.resolve(&config.host.state_dir).join("registry"),
                    |d| config.resolve(d),
                );
                for sub in ["versions", "routes"] {
                    std::fs::create_dir_all(dir.join(sub)).with_context(|| {
                        format!("cannot create registry folder {}", dir.display())
                    })?;
                }
                Ok(Registry::Directory(dir))
            }
            RegistryKind::Jetstream => {
                let js = js.context("a jetstream registry needs a NATS connection")?;
                let replication = transport::Replication::of(&config.streams);
                let objects = transport::open_or_create(
                    || js.get_object_store(&settings.bucket),
                    js.create_object_store(object_store::Config {
                        bucket: settings.bucket.clone(),
                        description: Some("millrace: deployed plugin versions".into()),
                        num_replicas: replication.num_replicas(),
                        placement: replication.placement(),
                        ..Default::default()
                    }),
                )
                .await
                .with_context(|| format!("cannot create the object store {}", settings.bucket))?;
                transport::replicate_named(js, &format!("OBJ_{}", settings.bucket), &replication)
                    .await?;
                let bindings = transport::replicated_key_value(
                    js,
                    &settings.bindings,
                    Duration::ZERO,
                    "millrace: the plugin version each route serves",
                    &replication,
                )
                .await?;
                let claims = transport::replicated_key_value(
                    js,
                    &claims_bucket(&settings.bucket),
                    Duration::ZERO,
                    "millrace: the bytes each deployed plugin version holds, claimed before it is stored",
                    &replication,
                )
                .await?;
                Ok(Registry::JetStream {
                    objects,
                    bindings,
                    claims,
                })
            }
        }
    }

    /// Stores a version. The same version with the same bytes, manifest and fixtures is a no-op
    /// (returns false); with other bytes, another manifest or other fixtures it is refused.
    ///
    /// In JetStream the version is claimed first (see the module's documentation), so that of
    /// two deploys of one version with other bytes on two processes at once exactly one is
    /// stored: the other is refused ([`RegistryError::Conflict`]). A deploy that claimed the
    /// version and stopped before its objects were written (a crash, NATS gone) leaves its
    /// claim: the same bytes deployed again finish it; other bytes stay refused.
    pub async fn deploy(&self, record: &VersionRecord, component: &[u8]) -> RegistryResult<bool> {
        let id = record.id();
        checked_id(&id)?;
        // Admission runs a version's golden fixtures: one without any can never serve, and its
        // number, once stored, could not be deployed again with them (versions are immutable).
        if record.fixtures.is_empty() {
            return Err(RegistryError::Refused(format!(
                "{id} has no golden fixtures, so no route could ever be set to it: add input \
                 files with their expected outputs (the plugin folder's fixtures/) and deploy it \
                 with them"
            )));
        }
        match self {
            Registry::Directory(_) => {
                // One folder, one process (a development host): the check and the writes are
                // one step for it.
                static DEPLOYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
                let _one_at_a_time = DEPLOYING.lock().await;
                if let Some(existing) = self.record(&id).await? {
                    return same_version(&existing, record).map(|()| false);
                }
                self.write_version(record, component).await?;
                Ok(true)
            }
            Registry::JetStream { claims, .. } => {
                let ours = Claim::of(record, false);
                let key = claim_key(&id);
                // A version stored before claims existed has a record and no claim: its claim is
                // made from its record, so other bytes are refused as before.
                let first = match claims.entry(&key).await {
                    Ok(Some(entry)) if entry.operation == kv::Operation::Put => None,
                    Ok(_) => match self.record(&id).await? {
                        Some(existing) => Some(Claim::of(&existing, true)),
                        None => Some(ours.clone()),
                    },
                    Err(e) => {
                        return Err(RegistryError::unavailable(format!(
                            "cannot read the claim of {id}"
                        ))(e.into()));
                    }
                };
                let standing =
                    read_modify_write(claims, &key, FirstTry::Read, |value| match value {
                        Some(bytes) => serde_json::from_slice::<Claim>(bytes)
                            .map(Decided::Keep)
                            .map_err(|e| format!("the claim of {id} is corrupt: {e}")),
                        None => {
                            let claim = first.clone().unwrap_or_else(|| ours.clone());
                            let json = serde_json::to_vec(&claim)
                                .map_err(|e| format!("cannot encode the claim of {id}: {e}"))?;
                            Ok(Decided::Write(json.into(), claim))
                        }
                    })
                    .await
                    .map_err(|e| revision_error(&id, "claim", e))?;
                standing.same_as(&ours, &id)?;
                if standing.stored {
                    match self.record(&id).await? {
                        Some(existing) => return same_version(&existing, record).map(|()| false),
                        // Stored once and removed from the object store since: the same bytes
                        // may be stored again, never others.
                        None => {
                            self.write_version(record, component).await?;
                            return Ok(true);
                        }
                    }
                }
                // Claimed and not stored yet: by this deploy, by one of the same bytes still on
                // its way, or by one that stopped halfway. The same bytes are written either way;
                // whichever marks the claim stored first reports the version stored.
                self.write_version(record, component).await?;
                let stored = Claim::of(record, true);
                read_modify_write(claims, &key, FirstTry::Read, |value| {
                    let now = value.map(serde_json::from_slice::<Claim>).transpose();
                    match now {
                        Ok(Some(claim)) if claim.stored => Ok(Decided::Keep(false)),
                        Ok(Some(claim)) if claim.same_as(&stored, &id).is_err() => Err(format!(
                            "the claim of {id} changed to other bytes while it was being stored"
                        )),
                        Ok(_) => serde_json::to_vec(&stored)
                            .map(|json| Decided::Write(json.into(), true))
                            .map_err(|e| format!("cannot encode the claim of {id}: {e}")),
                        Err(e) => Err(format!("the claim of {id} is corrupt: {e}")),
                    }
                })
                .await
                .map_err(|e| revision_error(&id, "claim", e))
            }
        }
    }

    /// Writes a version's component, then its record (a record is only ever visible with its
    /// component).
    async fn write_version(&self, record: &VersionRecord, component: &[u8]) -> RegistryResult<()> {
        let id = record.id();
        let json = serde_json::to_vec_pretty(record).map_err(|e| {
            RegistryError::Refused(format!("cannot encode the record of {id}: {e}"))
        })?;
        let stored: anyhow::Result<()> = async {
            match self {
                Registry::Directory(dir) => {
                    let versions = dir.join("versions");
                    write_atomic(&versions.join(format!("{id}.wasm")), component)?;
                    write_atomic(&versions.join(format!("{id}.json")), &json)?;
                }
                Registry::JetStream { objects, .. } => {
                    objects
                        .put(format!("{id}.wasm").as_str(), &mut &component[..])
                        .await
                        .with_context(|| format!("cannot store the component of {id}"))?;
                    objects
                        .put(format!("{id}.json").as_str(), &mut &json[..])
                        .await
                        .with_context(|| format!("cannot store the record of {id}"))?;
                }
            }
            Ok(())
        }
        .await;
        stored.map_err(RegistryError::unavailable(format!("deploying {id}")))
    }

    /// The record of a version, if deployed.
    pub async fn record(&self, id: &str) -> RegistryResult<Option<VersionRecord>> {
        let Some(bytes) = self.read(&format!("{id}.json")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            RegistryError::Refused(format!("the registry record of {id} is corrupt: {e}"))
        })
    }

    /// A version's record and component; the component's digest is checked.
    pub async fn fetch(&self, id: &str) -> RegistryResult<(VersionRecord, Vec<u8>)> {
        let record = self.record(id).await?.ok_or_else(|| {
            RegistryError::NotFound(format!(
                "{id} is not deployed: deploy it with `millrace plugin deploy <plugin-folder>`"
            ))
        })?;
        let component = self.read(&format!("{id}.wasm")).await?.ok_or_else(|| {
            RegistryError::NotFound(format!(
                "the component of {id} is missing from the registry"
            ))
        })?;
        let digest = sha256_hex(&component);
        if digest != record.digest {
            return Err(RegistryError::Refused(format!(
                "the component of {id} does not match its digest (registry says {}, the bytes are {digest}): refused",
                record.digest
            )));
        }
        Ok((record, component))
    }

    /// Every deployed version, sorted by name and version.
    pub async fn list(&self) -> RegistryResult<Vec<VersionRecord>> {
        let names: anyhow::Result<Vec<String>> = async {
            let mut names = Vec::new();
            match self {
                Registry::Directory(dir) => names.extend(json_names(&dir.join("versions"))?),
                Registry::JetStream { objects, .. } => {
                    let mut list = objects.list().await?;
                    while let Some(info) = list.next().await {
                        let info = info?;
                        if !info.deleted
                            && let Some(id) = info.name.strip_suffix(".json")
                        {
                            names.push(id.to_owned());
                        }
                    }
                }
            }
            Ok(names)
        }
        .await;
        let names = names.map_err(RegistryError::unavailable("cannot list the registry"))?;
        let mut records = Vec::new();
        for id in names {
            if checked_id(&id).is_err() {
                continue;
            }
            if let Some(record) = self.record(&id).await? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(records)
    }

    async fn read(&self, object: &str) -> RegistryResult<Option<Vec<u8>>> {
        // Object and file names are built from ids callers send: only a valid `name@semver`
        // may become one, never a path or an over-long NATS subject.
        let id = object
            .strip_suffix(".json")
            .or_else(|| object.strip_suffix(".wasm"))
            .unwrap_or(object);
        checked_id(id)?;
        match self {
            Registry::Directory(dir) => match std::fs::read(dir.join("versions").join(object)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(RegistryError::unavailable(format!(
                    "cannot read {object} from the registry"
                ))(e.into())),
            },
            Registry::JetStream { objects, .. } => {
                let mut found = match objects.get(object).await {
                    Ok(found) => found,
                    Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(RegistryError::unavailable(format!(
                            "cannot read {object} from the registry"
                        ))(e.into()));
                    }
                };
                let mut bytes = Vec::new();
                found.read_to_end(&mut bytes).await.map_err(|e| {
                    RegistryError::unavailable(format!("cannot read {object} from the registry"))(
                        e.into(),
                    )
                })?;
                Ok(Some(bytes))
            }
        }
    }

    /// The binding of a route, if it has one.
    pub async fn binding(&self, route: &str) -> RegistryResult<Option<Binding>> {
        Ok(self.binding_with_revision(route).await?.map(|(b, _)| b))
    }

    async fn binding_with_revision(&self, route: &str) -> RegistryResult<Option<(Binding, u64)>> {
        let unavailable =
            || RegistryError::unavailable(format!("cannot read the binding of route {route}"));
        let bytes = match self {
            Registry::Directory(dir) => {
                match std::fs::read(dir.join("routes").join(format!("{route}.json"))) {
                    Ok(bytes) => Some((bytes, 0)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(unavailable()(e.into())),
                }
            }
            Registry::JetStream { bindings, .. } => bindings
                .entry(route)
                .await
                .map_err(|e| unavailable()(e.into()))?
                .filter(|e| e.operation == kv::Operation::Put)
                .map(|e| (e.value.to_vec(), e.revision)),
        };
        bytes
            .map(|(b, revision)| {
                serde_json::from_slice(&b)
                    .map(|binding| (binding, revision))
                    .map_err(|e| {
                        RegistryError::Refused(format!(
                            "the binding of route {route} is corrupt: {e}"
                        ))
                    })
            })
            .transpose()
    }

    /// Changes a route's binding with `change`, which sees the current one (`None`: the route
    /// never switched) and may refuse it. The write is a compare-and-set on the revision of the
    /// binding `change` saw: when another change was written in between, `change` sees that
    /// one and decides again, so a check it makes holds for the binding it replaces. Its error
    /// is returned as it is; a registry that cannot be reached, or a binding that kept changing,
    /// is a [`RegistryError`].
    pub async fn update_binding<F>(&self, route: &str, change: F) -> anyhow::Result<Binding>
    where
        F: Fn(Option<&Binding>) -> anyhow::Result<Binding>,
    {
        let encode = |next: &Binding| {
            serde_json::to_vec_pretty(next).map_err(|e| {
                anyhow::Error::new(RegistryError::Refused(format!(
                    "cannot encode the binding of {route}: {e}"
                )))
            })
        };
        match self {
            Registry::Directory(dir) => {
                // One folder, one process (a development host): the read and the write are one
                // step for it.
                static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
                let _one_at_a_time = CHANGING.lock().await;
                let current = self.binding(route).await?;
                let next = change(current.as_ref())?;
                write_atomic(
                    &dir.join("routes").join(format!("{route}.json")),
                    &encode(&next)?,
                )
                .map_err(RegistryError::unavailable(format!(
                    "cannot write the binding of route {route}"
                )))?;
                Ok(next)
            }
            Registry::JetStream { bindings, .. } => {
                read_modify_write(bindings, route, FirstTry::Read, |value| {
                    let current = value
                        .map(serde_json::from_slice::<Binding>)
                        .transpose()
                        .map_err(|e| {
                            anyhow::Error::new(RegistryError::Refused(format!(
                                "the binding of route {route} is corrupt: {e}"
                            )))
                        })?;
                    let next = change(current.as_ref())?;
                    Ok(Decided::Write(encode(&next)?.into(), next))
                })
                .await
                .map_err(|e| match e {
                    RevisionError::Decided(e) => e,
                    RevisionError::Store(why) => RegistryError::Unavailable(anyhow::anyhow!(
                        "cannot write the binding of route {route}: {why}"
                    ))
                    .into(),
                    RevisionError::Races => RegistryError::Conflict(format!(
                        "the binding of route {route} kept changing under this update: try again"
                    ))
                    .into(),
                })
            }
        }
    }

    /// Every route binding.
    pub async fn bindings(&self) -> RegistryResult<BTreeMap<String, Binding>> {
        let routes: anyhow::Result<Vec<String>> = async {
            let mut routes = Vec::new();
            match self {
                Registry::Directory(dir) => routes.extend(json_names(&dir.join("routes"))?),
                Registry::JetStream { bindings, .. } => {
                    let mut keys = bindings.keys().await?;
                    while let Some(key) = keys.next().await {
                        routes.push(key?);
                    }
                }
            }
            Ok(routes)
        }
        .await;
        let routes = routes.map_err(RegistryError::unavailable("cannot list route bindings"))?;
        let mut out = BTreeMap::new();
        for route in routes {
            if let Some(binding) = self.binding(&route).await? {
                out.insert(route, binding);
            }
        }
        Ok(out)
    }

    /// Sends every later change of a binding to the returned channel, until it is dropped.
    pub async fn watch(&self) -> anyhow::Result<mpsc::Receiver<BindingChange>> {
        let (tx, rx) = mpsc::channel(64);
        match self.clone() {
            Registry::JetStream { bindings, .. } => {
                let mut watch = bindings
                    .watch_all()
                    .await
                    .context("cannot watch route bindings")?;
                tokio::spawn(async move {
                    while let Some(entry) = watch.next().await {
                        let Ok(entry) = entry else { continue };
                        let binding = match entry.operation {
                            kv::Operation::Put => serde_json::from_slice(&entry.value).ok(),
                            _ => None,
                        };
                        let change = BindingChange {
                            route: entry.key,
                            binding,
                        };
                        if tx.send(change).await.is_err() {
                            break;
                        }
                    }
                });
            }
            directory @ Registry::Directory(_) => {
                let mut seen = directory.bindings().await?;
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(DIRECTORY_POLL).await;
                        let Ok(now) = directory.bindings().await else {
                            continue;
                        };
                        for (route, binding) in &now {
                            if seen.get(route) != Some(binding) {
                                let change = BindingChange {
                                    route: route.clone(),
                                    binding: Some(binding.clone()),
                                };
                                if tx.send(change).await.is_err() {
                                    return;
                                }
                            }
                        }
                        seen = now;
                    }
                });
            }
        }
        Ok(rx)
    }
}

/// Refuses an id that is not `name@semver`.
fn checked_id(id: &str) -> RegistryResult<millrace_core::names::PluginId> {
    millrace_core::names::PluginId::parse(id)
        .map_err(|e| RegistryError::Refused(format!("refused: {e}")))
}

/// Writes a file so readers see the old or the new content, never half of it.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The names of the `<name>.json` files in `folder` (a directory registry keeps one record a
/// file: versions under `versions/`, bindings under `routes/`).
fn json_names(folder: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".json") {
            names.push(stem.to_owned());
        }
    }
    Ok(names)
}

/// The key-value bucket of the version claims of the object store `bucket`.
pub fn claims_bucket(bucket: &str) -> String {
    format!("{bucket}-claims")
}

/// The key of the claim of version `id` (`name@version`): `name/version`, a `+` of the version's
/// build metadata written `_` (neither `@` nor `+` may be in a key; neither `/` nor `_` is in a
/// plugin name or a version, so no two ids share a key).
fn claim_key(id: &str) -> String {
    id.replacen('@', "/", 1).replace('+', "_")
}

/// Which bytes a version holds: claimed before its objects are written, marked `stored` once
/// they are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Claim {
    /// sha256 of the component.
    digest: String,
    /// sha256 of the manifest text.
    manifest: String,
    /// sha256 of the golden fixtures, sorted by name.
    fixtures: String,
    /// True once its component and record are in the object store.
    #[serde(default)]
    stored: bool,
}

impl Claim {
    fn of(record: &VersionRecord, stored: bool) -> Self {
        let fixtures = serde_json::to_vec(&sorted_fixtures(record)).unwrap_or_default();
        Self {
            digest: record.digest.clone(),
            manifest: sha256_hex(record.manifest.as_bytes()),
            fixtures: sha256_hex(&fixtures),
            stored,
        }
    }

    /// Refuses `other` unless it claims the same bytes, manifest and fixtures.
    fn same_as(&self, other: &Claim, id: &str) -> RegistryResult<()> {
        let unfinished = if self.stored {
            ""
        } else {
            " (by a deploy that has not finished storing it: deploying those same bytes again finishes it)"
        };
        let other_part = if self.digest != other.digest {
            return Err(RegistryError::Conflict(format!(
                "{id} is already deployed with other bytes (sha256 {}, these are {}){unfinished}: versions are immutable, give the plugin a new version",
                self.digest, other.digest
            )));
        } else if self.manifest != other.manifest {
            "another manifest (plugin.toml)"
        } else if self.fixtures != other.fixtures {
            "other golden fixtures"
        } else {
            return Ok(());
        };
        Err(RegistryError::Conflict(format!(
            "{id} is already deployed with this component but {other_part}{unfinished}: versions are immutable, give the plugin a new version"
        )))
    }
}

/// A version's fixtures sorted by name.
fn sorted_fixtures(record: &VersionRecord) -> Vec<&StoredFixture> {
    let mut all: Vec<_> = record.fixtures.iter().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Refuses `record` unless it is `existing` again: the same component, manifest (limits) and
/// fixtures (a version is what admission judged).
fn same_version(existing: &VersionRecord, record: &VersionRecord) -> RegistryResult<()> {
    Claim::of(existing, true).same_as(&Claim::of(record, true), &record.id())
}

/// A failed read-modify-write of the claim of `id`, as a registry error.
fn revision_error(id: &str, what: &str, error: RevisionError<String>) -> RegistryError {
    match error {
        RevisionError::Decided(why) => RegistryError::Refused(why),
        RevisionError::Store(why) => {
            RegistryError::Unavailable(anyhow::anyhow!("cannot write the {what} of {id}: {why}"))
        }
        RevisionError::Races => RegistryError::Conflict(format!(
            "the {what} of {id} kept changing under this deploy: try again"
        )),
    }
}
