//! Typed host configuration, read from TOML.
//!
//! Unknown keys are rejected, and every error names the file and the key. Paths inside the file
//! (plugins, credentials, certificates, the state directory) are relative to the file's folder.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `nats.url` | NATS server URL | none: `run` needs one, `up` starts a local server |
//! | `nats.credentials` | NATS credentials file (JWT + nkey) | none |
//! | `nats.user`, `nats.password` | user/password authentication | none |
//! | `nats.password_file`, `nats.password_env` | the password read from a file (trimmed) or an environment variable instead | none |
//! | `nats.token` | token authentication | none |
//! | `nats.token_file`, `nats.token_env` | the token read from a file (trimmed) or an environment variable instead | none |
//! | `nats.tls.ca`, `nats.tls.cert`, `nats.tls.key`, `nats.tls.required` | TLS to the server | off |
//! | `streams.raw`, `streams.canonical`, `streams.dlq` | JetStream stream names | `RAW`, `CANONICAL`, `DLQ` |
//! | `streams.raw_subjects` | subjects captured by the RAW stream | `["raw.>"]` |
//! | `streams.duplicate_window` | JetStream de-duplication window of the streams | `2m` |
//! | `streams.replicas` | copies of every stream, key-value bucket and the registry's object store: 1 or 3 (a cluster); when set, hosts bring existing ones to it | unset: created with 1, existing left as they are |
//! | `streams.placement_tags` | server tags the replicas must sit on | unset: anywhere |
//! | `host.workers` | worker threads running plugins | number of CPUs |
//! | `host.partitions` | ordered lanes messages are spread over by subject | 16 |
//! | `host.max_workers_per_route` | plugin calls one route may run at once | workers − 1 with several routes, else workers |
//! | `host.state_dir` | where `up` keeps its NATS data and the compiled-plugin cache | `.millrace` |
//! | `host.drain_timeout` | how long a stopping host finishes messages in flight before leaving them to redelivery | `10s` |
//! | `routes.<name>.subjects` | raw subjects the route consumes (wildcards allowed) | required |
//! | `routes.<name>.plugin` | plugin folder or `.wasm` component | required |
//! | `routes.<name>.config` | string key/values the plugin reads (site, partner...) | empty |
//! | `routes.<name>.limits.deadline` | longest a single plugin call may run | `2s` |
//! | `routes.<name>.limits.memory_mib` | largest linear memory of the plugin | 64 |
//! | `routes.<name>.limits.output_kib` | largest total output of one call | 1024 |
//! | `routes.<name>.limits.max_events` | most events one call may return | 1000 |
//! | `routes.<name>.limits.instances`, `.tables`, `.table_elements` | component instances, tables and table size a plugin may create | 64, 64, 100000 |
//! | `routes.<name>.retry.attempts` | tries for a trap, deadline or memory breach before dead-lettering | 3 |
//! | `routes.<name>.retry.backoff` | wait before the first retry, doubled each time | `200ms` |
//! | `routes.<name>.ack_wait` | how long JetStream waits for an ack before redelivering | `30s` |
//! | `routes.<name>.ordering` | `flag`: mark an event older than the last one of its key late; `off` | `flag` |
//! | `routes.<name>.idempotency` | skip events whose source transaction another raw message already delivered | `true` |
//! | `governance.horizon` | how long delivered source transactions and the newest time per business key are remembered | `72h` |
//! | `governance.ownership` | which source system owns which event kind per site | none: anyone may publish |
//! | `registry.kind` | where plugin versions and route bindings live: `jetstream` or `directory` | `jetstream` |
//! | `registry.dir` | the folder of a `directory` registry (one host, no JetStream storage) | `<state_dir>/registry` |
//! | `registry.bucket`, `registry.bindings` | the object store and key-value bucket of a `jetstream` registry | `millrace-plugins`, `millrace-routes` |
//! | `registry.trusted_keys` | public ed25519 keys (base64) trusted to sign plugin versions | none |
//! | `registry.require_signatures` | refuse versions not signed by a trusted key | `false` |
//! | `streams.shadow` | the stream of shadow-run differences (`shadow.>`) | `SHADOW` |
//! | `up.port` | port of the nats-server that `up` starts | 4222 |
//! | `up.seed` | raw sample files `up` publishes once the host runs | none |
//! | `admin.listen` | address of the admin API, `/metrics`, the console and HTTP ingest | no `[admin]`: not served; with it `127.0.0.1:9470` |
//! | `admin.tokens` | bearer tokens: `name`, `scope` (`read`, `ingest` or `admin`), `secret_file` or `secret_env`, and for `ingest` the raw `subjects` it may publish to | none: read-only without a token, on loopback only |
//! | `admin.ingest_max_kib` | largest body `POST /ingest/...` accepts | 1024 |
//! | `admin.header_timeout` | longest a client may take to send a request's headers | `10s` |
//! | `admin.max_connections` | open connections the admin server keeps; more wait to be accepted | 256 |
//! | `admin.max_requests` | requests handled at once; more are answered 503 | 64 |
//! | `telemetry.otlp_endpoint` | OTLP/HTTP collector base URL spans are exported to | none: no export |
//! | `telemetry.service_name` | the service name spans carry | `millrace` |
//! | `projection.enabled` | run the visibility projection beside the host | on in `up`, off in `run` |
//! | `projection.consumer` | its durable consumer on the canonical stream | `millrace-projection` |
//! | `projection.inventory_bucket`, `.work_order_bucket`, `.hold_bucket`, `.commitment_bucket`, `.source_bucket` | its key-value buckets | `millrace-inventory`, `millrace-work-orders`, `millrace-holds`, `millrace-commitments`, `millrace-sources` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the key and line.
        message: String,
    },
    /// A value is out of its accepted range.
    #[error("invalid config file {path}: `{key}` {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// The whole host configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach NATS.
    #[serde(default)]
    pub nats: NatsConfig,
    /// The JetStream stream names.
    #[serde(default)]
    pub streams: StreamsConfig,
    /// Host-wide settings.
    #[serde(default)]
    pub host: HostConfig,
    /// Routes by name.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Delivery rules across routes: idempotency and system-of-record ownership.
    #[serde(default)]
    pub governance: GovernanceConfig,
    /// Where plugin versions and route bindings are kept.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Settings of the local all-in-one `millrace up`.
    #[serde(default)]
    pub up: UpConfig,
    /// The admin HTTP server: API, metrics, console and ingest. Off without the section.
    pub admin: Option<AdminConfig>,
    /// Trace export.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The visibility projection of the canonical stream.
    #[serde(default)]
    pub projection: ProjectionConfig,
    /// The folder the file was read from; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the configuration was read from, for error messages.
    #[serde(skip)]
    pub source: PathBuf,
}

/// How to reach NATS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: Option<String>,
    /// Credentials file (user JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// User name for user/password authentication.
    pub user: Option<String>,
    /// Password for user/password authentication.
    pub password: Option<String>,
    /// A file holding the password (trimmed), resolved against the config file's folder.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// Token for token authentication.
    pub token: Option<String>,
    /// A file holding the token (trimmed), resolved against the config file's folder.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    pub token_env: Option<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: TlsConfig,
}

/// TLS to the NATS server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authorities to trust.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM client key, for mutual TLS.
    pub key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    #[serde(default)]
    pub required: bool,
}

/// JetStream stream names and settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// The stream capturing raw messages.
    #[serde(default = "default_raw")]
    pub raw: String,
    /// The subjects the raw stream captures.
    #[serde(default = "default_raw_subjects")]
    pub raw_subjects: Vec<String>,
    /// The stream of canonical events (`canonical.>`).
    #[serde(default = "default_canonical")]
    pub canonical: String,
    /// The stream of dead letters (`dlq.>`).
    #[serde(default = "default_dlq")]
    pub dlq: String,
    /// The stream of shadow-run differences (`shadow.>`).
    #[serde(default = "default_shadow")]
    pub shadow: String,
    /// The de-duplication window of the streams.
    #[serde(default = "default_duplicate_window", with = "humantime_duration")]
    pub duplicate_window: Duration,
    /// Copies JetStream keeps of every stream, key-value bucket and the registry's object store:
    /// 1, or 3 on a cluster of three or more servers. Unset: created with one, and an existing
    /// stream's left as it is; set: hosts bring existing ones to it at start.
    #[serde(default)]
    pub replicas: Option<usize>,
    /// Server tags the replicas must sit on (JetStream places them only on servers carrying
    /// every tag, e.g. `["site:plant1"]`). Unset: anywhere, and an existing stream's left as it is.
    #[serde(default)]
    pub placement_tags: Option<Vec<String>>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            raw: default_raw(),
            raw_subjects: default_raw_subjects(),
            canonical: default_canonical(),
            dlq: default_dlq(),
            shadow: default_shadow(),
            duplicate_window: default_duplicate_window(),
            replicas: None,
            placement_tags: None,
        }
    }
}

fn default_raw() -> String {
    "RAW".into()
}
fn default_raw_subjects() -> Vec<String> {
    vec!["raw.>".into()]
}
fn default_canonical() -> String {
    "CANONICAL".into()
}
fn default_dlq() -> String {
    "DLQ".into()
}
fn default_shadow() -> String {
    "SHADOW".into()
}
fn default_duplicate_window() -> Duration {
    Duration::from_secs(120)
}

/// Host-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Worker threads that run plugin calls.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Ordered lanes: messages of one raw subject always take the same lane.
    #[serde(default = "default_partitions")]
    pub partitions: usize,
    /// Plugin calls one route may run at once; default: all workers but one when the host has
    /// several routes (so a slow or hostile route cannot starve the others), else all.
    #[serde(default)]
    pub max_workers_per_route: Option<usize>,
    /// Local state: `up`'s NATS data and the compiled-plugin cache.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long a stopping host waits for the messages in flight before it leaves them to
    /// redelivery (a stop must not hang while NATS is unreachable).
    #[serde(default = "default_drain_timeout", with = "humantime_duration")]
    pub drain_timeout: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            partitions: default_partitions(),
            max_workers_per_route: None,
            state_dir: default_state_dir(),
            drain_timeout: default_drain_timeout(),
        }
    }
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_partitions() -> usize {
    16
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".millrace")
}

/// One route: raw subjects, the plugin that maps them, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The raw subjects this route consumes; NATS wildcards allowed.
    pub subjects: Vec<String>,
    /// The plugin folder (built on demand) or a `.wasm` component file.
    pub plugin: PathBuf,
    /// Key/values the plugin reads through the `host` interface.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Sandbox limits of each call.
    #[serde(default)]
    pub limits: Limits,
    /// What to do when a call traps or breaches a limit.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long JetStream waits for an ack before it redelivers.
    #[serde(default = "default_ack_wait", with = "humantime_duration")]
    pub ack_wait: Duration,
    /// How events older than the last one of their business key are treated.
    #[serde(default)]
    pub ordering: Ordering,
    /// Whether events of a source transaction already delivered by another raw message are
    /// skipped (the resend of the same document with a new message id).
    #[serde(default = "default_true")]
    pub idempotency: bool,
}

fn default_true() -> bool {
    true
}

/// How a route treats an event older than the last one published for its business key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// Publish it marked `late` (a CloudEvents extension), and count it.
    #[default]
    Flag,
    /// Do not track order.
    Off,
}

/// Delivery rules across routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// How long delivered source transactions (to recognise resends) and the newest time per
    /// business key (to recognise late events) are remembered.
    #[serde(default = "default_horizon", with = "humantime_duration")]
    pub horizon: Duration,
    /// The key-value bucket of delivered source transactions.
    #[serde(default = "default_idempotency_bucket")]
    pub idempotency_bucket: String,
    /// The key-value bucket of the last event time per business key.
    #[serde(default = "default_order_bucket")]
    pub order_bucket: String,
    /// Which source system owns which event kind, per site.
    #[serde(default)]
    pub ownership: Vec<OwnershipRule>,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            horizon: default_horizon(),
            idempotency_bucket: default_idempotency_bucket(),
            order_bucket: default_order_bucket(),
            ownership: Vec::new(),
        }
    }
}

fn default_horizon() -> Duration {
    Duration::from_secs(72 * 3600)
}
fn default_idempotency_bucket() -> String {
    "millrace-idempotency".into()
}
fn default_order_bucket() -> String {
    "millrace-order".into()
}

/// Where plugin versions and route bindings are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// `jetstream` (every host of the cluster) or `directory` (one host, no JetStream storage).
    #[serde(default)]
    pub kind: RegistryKind,
    /// The folder of a `directory` registry; default `<state_dir>/registry`.
    pub dir: Option<PathBuf>,
    /// The object store holding plugin versions.
    #[serde(default = "default_registry_bucket")]
    pub bucket: String,
    /// The key-value bucket holding route bindings.
    #[serde(default = "default_bindings_bucket")]
    pub bindings: String,
    /// Public ed25519 keys (base64) whose signatures on plugin versions are trusted.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Refuse every plugin version not signed by a trusted key.
    #[serde(default)]
    pub require_signatures: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            kind: RegistryKind::default(),
            dir: None,
            bucket: default_registry_bucket(),
            bindings: default_bindings_bucket(),
            trusted_keys: Vec::new(),
            require_signatures: false,
        }
    }
}

fn default_registry_bucket() -> String {
    "millrace-plugins".into()
}
fn default_bindings_bucket() -> String {
    "millrace-routes".into()
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

/// Where a route's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A deployed version in the registry, `name@version`.
    Registry(String),
    /// A plugin folder or `.wasm` component on disk.
    Path(PathBuf),
}

impl RouteConfig {
    /// The route's plugin: `name@version` names a deployed version, anything else is a path.
    pub fn plugin_source(&self) -> PluginSource {
        let text = self.plugin.to_string_lossy();
        match text.split_once('@') {
            Some((name, version))
                if !text.contains('/')
                    && !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && version.split('.').count() >= 3 =>
            {
                PluginSource::Registry(text.into_owned())
            }
            _ => PluginSource::Path(self.plugin.clone()),
        }
    }
}

/// One system-of-record rule: events of `kind` at `site` may only come from `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipRule {
    /// The event kind, e.g. `inventory-balance`.
    pub kind: String,
    /// The site code, or `*` for every site.
    pub site: String,
    /// The source system that owns it, e.g. `erp`.
    pub owner: String,
}

/// The canonical event kinds, as in the WIT and the canonical subjects.
pub const EVENT_KINDS: [&str; 8] = [
    "inventory-movement",
    "inventory-balance",
    "work-order-status",
    "material-consumption",
    "production-completion",
    "quality-hold",
    "supplier-commitment",
    "shipment-notice",
];

fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

/// Sandbox limits of one plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest a single call may run before it is interrupted.
    #[serde(default = "default_deadline", with = "humantime_duration")]
    pub deadline: Duration,
    /// Largest linear memory, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Largest total size of the events one call returns, in KiB.
    #[serde(default = "default_output_kib")]
    pub output_kib: u64,
    /// Most events one call may return.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Most component instances the plugin may create.
    #[serde(default = "default_instances")]
    pub instances: usize,
    /// Most tables the plugin may create.
    #[serde(default = "default_tables")]
    pub tables: usize,
    /// Most elements one table may grow to.
    #[serde(default = "default_table_elements")]
    pub table_elements: usize,
}

impl Limits {
    /// These limits tightened by a plugin's own (each the smaller of the two).
    pub fn tightened(&self, plugin: &PluginLimits) -> Limits {
        fn min<T: Ord + Copy>(route: T, plugin: Option<T>) -> T {
            plugin.map_or(route, |p| route.min(p))
        }
        Limits {
            deadline: min(self.deadline, plugin.deadline),
            memory_mib: min(self.memory_mib, plugin.memory_mib),
            output_kib: min(self.output_kib, plugin.output_kib),
            max_events: min(self.max_events, plugin.max_events),
            instances: min(self.instances, plugin.instances),
            tables: min(self.tables, plugin.tables),
            table_elements: min(self.table_elements, plugin.table_elements),
        }
    }
}

/// The limits a plugin's manifest asks for (`[limits]` in plugin.toml): a route never gives a
/// plugin more than it asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// See [`Limits::deadline`].
    #[serde(default, with = "humantime_duration_opt")]
    pub deadline: Option<Duration>,
    /// See [`Limits::memory_mib`].
    pub memory_mib: Option<u64>,
    /// See [`Limits::output_kib`].
    pub output_kib: Option<u64>,
    /// See [`Limits::max_events`].
    pub max_events: Option<usize>,
    /// See [`Limits::instances`].
    pub instances: Option<usize>,
    /// See [`Limits::tables`].
    pub tables: Option<usize>,
    /// See [`Limits::table_elements`].
    pub table_elements: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: default_deadline(),
            memory_mib: default_memory_mib(),
            output_kib: default_output_kib(),
            max_events: default_max_events(),
            instances: default_instances(),
            tables: default_tables(),
            table_elements: default_table_elements(),
        }
    }
}

fn default_deadline() -> Duration {
    Duration::from_secs(2)
}
fn default_memory_mib() -> u64 {
    64
}
fn default_output_kib() -> u64 {
    1024
}
fn default_max_events() -> usize {
    1000
}
fn default_instances() -> usize {
    64
}
fn default_tables() -> usize {
    64
}
fn default_table_elements() -> usize {
    100_000
}

/// Retries of calls that trapped, ran past the deadline or breached the memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    #[serde(default = "default_backoff", with = "humantime_duration")]
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            backoff: default_backoff(),
        }
    }
}

fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_millis(200)
}

/// Settings of the local all-in-one `millrace up`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpConfig {
    /// Port of the local nats-server.
    #[serde(default = "default_up_port")]
    pub port: u16,
    /// Sample messages published once the host is running.
    #[serde(default)]
    pub seed: Vec<SeedMessages>,
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            port: default_up_port(),
            seed: Vec::new(),
        }
    }
}

fn default_up_port() -> u16 {
    4222
}

/// The admin HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address to listen on.
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
    /// Bearer tokens and their scopes.
    #[serde(default)]
    pub tokens: Vec<AdminToken>,
    /// Largest body HTTP ingest accepts, KiB.
    #[serde(default = "default_ingest_max_kib")]
    pub ingest_max_kib: usize,
    /// Longest a client may take to send a request's headers before it is disconnected.
    #[serde(default = "default_header_timeout", with = "humantime_duration")]
    pub header_timeout: Duration,
    /// Connections kept open at once; further clients wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 at once.
    #[serde(default = "default_max_requests")]
    pub max_requests: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            tokens: Vec::new(),
            ingest_max_kib: default_ingest_max_kib(),
            header_timeout: default_header_timeout(),
            max_connections: default_max_connections(),
            max_requests: default_max_requests(),
        }
    }
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_connections() -> usize {
    256
}

fn default_max_requests() -> usize {
    64
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9470))
}

fn default_ingest_max_kib() -> usize {
    1024
}

/// One bearer token of the admin server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it, for the log.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// A file holding the secret (trimmed).
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the secret.
    pub secret_env: Option<String>,
    /// The raw subjects (wildcards allowed) an `ingest` token may publish to; required for
    /// `ingest`, optional for `admin` (default: every subject the raw stream captures).
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /ingest/...` only: for the systems that send raw messages.
    Ingest,
    /// Reading: status, routes, plugins, dead letters, metrics.
    Read,
    /// Everything: deploy, activate, roll back, redrive, and reading and ingest.
    Admin,
}

/// Trace export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318`.
    pub otlp_endpoint: Option<String>,
    /// The service name spans carry.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
        }
    }
}

fn default_service_name() -> String {
    "millrace".into()
}

/// Raw files to publish to one subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMessages {
    /// The raw subject.
    pub subject: String,
    /// The files, one message each.
    pub files: Vec<PathBuf>,
}

/// The visibility projection: current stock, work orders, holds, commitments and source ages
/// kept in key-value buckets from the canonical stream (see `docs/PROJECTION.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    /// Whether `run` and `up` run the projection beside the host; unset: `up` does, `run`
    /// does not.
    pub enabled: Option<bool>,
    /// The durable consumer of the canonical stream.
    #[serde(default = "default_projection_consumer")]
    pub consumer: String,
    /// Stock positions by site, item, location and lot.
    #[serde(default = "default_inventory_bucket")]
    pub inventory_bucket: String,
    /// Work orders by site and number.
    #[serde(default = "default_work_order_bucket")]
    pub work_order_bucket: String,
    /// Quality holds by site and hold id.
    #[serde(default = "default_hold_bucket")]
    pub hold_bucket: String,
    /// Supplier commitments by site, supplier and item.
    #[serde(default = "default_commitment_bucket")]
    pub commitment_bucket: String,
    /// The last update from each source system.
    #[serde(default = "default_source_bucket")]
    pub source_bucket: String,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            consumer: default_projection_consumer(),
            inventory_bucket: default_inventory_bucket(),
            work_order_bucket: default_work_order_bucket(),
            hold_bucket: default_hold_bucket(),
            commitment_bucket: default_commitment_bucket(),
            source_bucket: default_source_bucket(),
        }
    }
}

impl ProjectionConfig {
    /// Whether the projection runs beside the host; `up` is true for `millrace up`.
    pub fn runs(&self, up: bool) -> bool {
        self.enabled.unwrap_or(up)
    }

    /// The bucket names with their keys, for validation and messages.
    pub fn buckets(&self) -> [(&'static str, &str); 5] {
        [
            ("projection.inventory_bucket", &self.inventory_bucket),
            ("projection.work_order_bucket", &self.work_order_bucket),
            ("projection.hold_bucket", &self.hold_bucket),
            ("projection.commitment_bucket", &self.commitment_bucket),
            ("projection.source_bucket", &self.source_bucket),
        ]
    }

    /// The first key holding a bad name, with what is wrong.
    fn check(&self) -> Result<(), (String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        for (key, name) in [("projection.consumer", self.consumer.as_str())]
            .into_iter()
            .chain(self.buckets())
        {
            if !is_token(name) {
                return Err((
                    key.into(),
                    "may hold only letters, digits, `-` and `_`".into(),
                ));
            }
            if key != "projection.consumer" && !seen.insert(name) {
                return Err((
                    key.into(),
                    format!(
                        "is {name:?}, a bucket another projection key names already: each needs its own"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn default_projection_consumer() -> String {
    "millrace-projection".into()
}
fn default_inventory_bucket() -> String {
    "millrace-inventory".into()
}
fn default_work_order_bucket() -> String {
    "millrace-work-orders".into()
}
fn default_hold_bucket() -> String {
    "millrace-holds".into()
}
fn default_commitment_bucket() -> String {
    "millrace-commitments".into()
}
fn default_source_bucket() -> String {
    "millrace-sources".into()
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.source = path.to_owned();
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        config.validate()?;
        config.read_nats_secrets()?;
        Ok(config)
    }

    /// Reads `nats.password_file`/`_env` and `nats.token_file`/`_env` into the password and
    /// token, so the secrets can stay out of the config file.
    fn read_nats_secrets(&mut self) -> Result<(), ConfigError> {
        let password = self.secret(
            "nats.password",
            self.nats.password.is_some(),
            self.nats.password_file.as_deref(),
            self.nats.password_env.as_deref(),
        )?;
        if password.is_some() {
            self.nats.password = password;
        }
        let token = self.secret(
            "nats.token",
            self.nats.token.is_some(),
            self.nats.token_file.as_deref(),
            self.nats.token_env.as_deref(),
        )?;
        if token.is_some() {
            self.nats.token = token;
        }
        Ok(())
    }

    /// A secret from `<key>_file` or `<key>_env`, at most one of them and not beside `<key>`.
    fn secret(
        &self,
        key: &str,
        inline: bool,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Result<Option<String>, ConfigError> {
        if [inline, file.is_some(), env.is_some()]
            .iter()
            .filter(|set| **set)
            .count()
            > 1
        {
            return Err(self.invalid(
                key,
                format!(
                    "is given more than once: set one of `{key}`, `{key}_file` and `{key}_env`"
                ),
            ));
        }
        let text = match (file, env) {
            (Some(file), _) => {
                let path = self.resolve(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    self.invalid(
                        format!("{key}_file"),
                        format!("names {}, which cannot be read: {e}", path.display()),
                    )
                })?
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                self.invalid(
                    format!("{key}_env"),
                    format!("names ${var}, which is not set"),
                )
            })?,
            (None, None) => return Ok(None),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(self.invalid(key, "is empty where it is read from"));
        }
        Ok(Some(text.to_owned()))
    }

    /// Resolves a path written in the file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.workers == 0 || self.host.workers > 256 {
            return Err(self.invalid("host.workers", "must be between 1 and 256"));
        }
        if self.host.partitions == 0 || self.host.partitions > 4096 {
            return Err(self.invalid("host.partitions", "must be between 1 and 4096"));
        }
        for (key, name) in [
            ("streams.raw", &self.streams.raw),
            ("streams.canonical", &self.streams.canonical),
            ("streams.dlq", &self.streams.dlq),
            ("streams.shadow", &self.streams.shadow),
            ("registry.bucket", &self.registry.bucket),
            ("registry.bindings", &self.registry.bindings),
        ] {
            if !is_token(name) {
                return Err(self.invalid(key, "may hold only letters, digits, `-` and `_`"));
            }
        }
        if let Some(replicas) = self.streams.replicas
            && replicas != 1
            && replicas != 3
        {
            return Err(self.invalid(
                "streams.replicas",
                format!("is {replicas}; accepted: 1 (one server) or 3 (a JetStream cluster of three or more)"),
            ));
        }
        if let Some(tags) = &self.streams.placement_tags
            && tags.iter().any(|t| t.trim().is_empty())
        {
            return Err(self.invalid(
                "streams.placement_tags",
                "holds an empty tag: list the server tags (`server_tags` in nats-server's config) the replicas must sit on",
            ));
        }
        if self.streams.raw_subjects.is_empty() {
            return Err(self.invalid("streams.raw_subjects", "needs at least one subject"));
        }
        for subject in &self.streams.raw_subjects {
            check_subject(subject, true).map_err(|m| self.invalid("streams.raw_subjects", m))?;
        }
        let password = self.nats.password.is_some()
            || self.nats.password_file.is_some()
            || self.nats.password_env.is_some();
        if self.nats.user.is_some() != password {
            return Err(self.invalid(
                "nats.user",
                "and `nats.password` (or `nats.password_file`/`nats.password_env`) must be given together",
            ));
        }
        if let (Some(_), None) | (None, Some(_)) = (&self.nats.tls.cert, &self.nats.tls.key) {
            return Err(self.invalid("nats.tls.cert", "and `nats.tls.key` must be given together"));
        }
        for (name, route) in &self.routes {
            let key = |k: &str| format!("routes.{name}.{k}");
            if !is_token(name) {
                return Err(self.invalid(
                    format!("routes.{name}"),
                    "route names may hold only letters, digits, `-` and `_`",
                ));
            }
            if route.subjects.is_empty() {
                return Err(self.invalid(key("subjects"), "needs at least one raw subject"));
            }
            for subject in &route.subjects {
                check_subject(subject, true).map_err(|m| self.invalid(key("subjects"), m))?;
            }
            let limits = &route.limits;
            if limits.deadline < Duration::from_millis(1)
                || limits.deadline > Duration::from_secs(60)
            {
                return Err(self.invalid(key("limits.deadline"), "must be between 1ms and 60s"));
            }
            if !(1..=4096).contains(&limits.memory_mib) {
                return Err(self.invalid(key("limits.memory_mib"), "must be between 1 and 4096"));
            }
            if !(1..=1024 * 1024).contains(&limits.output_kib) {
                return Err(self.invalid(key("limits.output_kib"), "must be between 1 and 1048576"));
            }
            if !(1..=1_000_000).contains(&limits.max_events) {
                return Err(self.invalid(key("limits.max_events"), "must be between 1 and 1000000"));
            }
            for (k, value, max) in [
                ("limits.instances", limits.instances, 1_000),
                ("limits.tables", limits.tables, 1_000),
                ("limits.table_elements", limits.table_elements, 10_000_000),
            ] {
                if !(1..=max).contains(&value) {
                    return Err(self.invalid(key(k), format!("must be between 1 and {max}")));
                }
            }
            if !(1..=100).contains(&route.retry.attempts) {
                return Err(self.invalid(key("retry.attempts"), "must be between 1 and 100"));
            }
            if route.ack_wait < Duration::from_secs(1) {
                return Err(self.invalid(key("ack_wait"), "must be at least 1s"));
            }
        }
        for (i, key) in self.registry.trusted_keys.iter().enumerate() {
            crate::registry::signing::public_key(key)
                .map_err(|e| self.invalid(format!("registry.trusted_keys[{i}]"), e.to_string()))?;
        }
        if self.registry.require_signatures && self.registry.trusted_keys.is_empty() {
            return Err(self.invalid(
                "registry.require_signatures",
                "is on but `registry.trusted_keys` is empty: no version could ever serve",
            ));
        }
        let governance = &self.governance;
        if governance.horizon < Duration::from_secs(60) {
            return Err(self.invalid("governance.horizon", "must be at least 1m"));
        }
        for (key, name) in [
            (
                "governance.idempotency_bucket",
                &governance.idempotency_bucket,
            ),
            ("governance.order_bucket", &governance.order_bucket),
        ] {
            if !is_token(name) {
                return Err(self.invalid(key, "may hold only letters, digits, `-` and `_`"));
            }
        }
        for (i, rule) in governance.ownership.iter().enumerate() {
            let key = |k: &str| format!("governance.ownership[{i}].{k}");
            if !EVENT_KINDS.contains(&rule.kind.as_str()) {
                return Err(self.invalid(
                    key("kind"),
                    format!("is {:?}; accepted: {}", rule.kind, EVENT_KINDS.join(", ")),
                ));
            }
            if rule.site != "*" && !is_token(&rule.site) {
                return Err(self.invalid(key("site"), "must be a site code or `*`"));
            }
            if !is_token(&rule.owner) {
                return Err(self.invalid(key("owner"), "must be a source system name like `erp`"));
            }
        }
        for (i, seed) in self.up.seed.iter().enumerate() {
            check_subject(&seed.subject, false)
                .map_err(|m| self.invalid(format!("up.seed[{i}].subject"), m))?;
        }
        self.projection
            .check()
            .map_err(|(key, message)| self.invalid(key, message))?;
        if let Some(admin) = &self.admin {
            self.validate_admin(admin)?;
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(self.invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL, e.g. http://127.0.0.1:4318",
            ));
        }
        Ok(())
    }

    fn validate_admin(&self, admin: &AdminConfig) -> Result<(), ConfigError> {
        if admin.tokens.is_empty() && !admin.listen.ip().is_loopback() {
            return Err(self.invalid(
                "admin.listen",
                format!(
                    "is {}, reachable from other machines, but no [[admin.tokens]] are set: add tokens or listen on 127.0.0.1",
                    admin.listen
                ),
            ));
        }
        if admin.ingest_max_kib == 0 || admin.ingest_max_kib > 64 * 1024 {
            return Err(self.invalid("admin.ingest_max_kib", "must be between 1 and 65536"));
        }
        if admin.header_timeout < Duration::from_millis(100)
            || admin.header_timeout > Duration::from_secs(300)
        {
            return Err(self.invalid("admin.header_timeout", "must be between 100ms and 5m"));
        }
        if !(1..=65_536).contains(&admin.max_connections) {
            return Err(self.invalid("admin.max_connections", "must be between 1 and 65536"));
        }
        if !(1..=65_536).contains(&admin.max_requests) {
            return Err(self.invalid("admin.max_requests", "must be between 1 and 65536"));
        }
        let mut names = std::collections::BTreeMap::new();
        let mut sources = std::collections::BTreeMap::new();
        for (i, token) in admin.tokens.iter().enumerate() {
            let key = |k: &str| format!("admin.tokens[{i}].{k}");
            if !is_token(&token.name) {
                return Err(self.invalid(key("name"), "must be a name like `ops` or `erp-webhook`"));
            }
            if let Some(first) = names.insert(token.name.as_str(), i) {
                return Err(self.invalid(
                    key("name"),
                    format!(
                        "is {:?}, the name of admin.tokens[{first}] too: each token needs its own name (the log and ingest headers name the sender by it)",
                        token.name
                    ),
                ));
            }
            if token.secret_file.is_some() == token.secret_env.is_some() {
                return Err(self.invalid(
                    key("secret_file"),
                    "set exactly one of `secret_file` and `secret_env`: secrets stay out of the config file",
                ));
            }
            let source = match (&token.secret_file, &token.secret_env) {
                (Some(file), _) => format!(
                    "file {}",
                    // Through its components: `a` and `./a` are one file.
                    self.resolve(file)
                        .components()
                        .collect::<PathBuf>()
                        .display()
                ),
                (None, Some(var)) => format!("env {var}"),
                (None, None) => String::new(),
            };
            if let Some(first) = sources.insert(source, i) {
                return Err(self.invalid(
                    key("secret_file"),
                    format!("reads the same secret as admin.tokens[{first}]: each token needs its own secret"),
                ));
            }
            match token.scope {
                Scope::Ingest if token.subjects.is_empty() => {
                    return Err(self.invalid(
                        key("subjects"),
                        "is required for an `ingest` token: list the raw subjects it may publish to, e.g. [\"raw.erp.*.*\"]",
                    ));
                }
                Scope::Read if !token.subjects.is_empty() => {
                    return Err(self.invalid(
                        key("subjects"),
                        "is only for `ingest` and `admin` tokens: a `read` token publishes nothing",
                    ));
                }
                _ => {}
            }
            for subject in &token.subjects {
                check_subject(subject, true).map_err(|m| self.invalid(key("subjects"), m))?;
                if !subject.starts_with("raw.") {
                    return Err(self.invalid(
                        key("subjects"),
                        format!("has `{subject}`: ingest publishes only raw subjects (`raw.<system>.<site>.<format>`)"),
                    ));
                }
            }
        }
        Ok(())
    }
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

/// Optional durations written as `500ms`, `2s`, `5m`, `1h`.
mod humantime_duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// Durations written as `500ms`, `2s`, `5m`, `1h`.
mod humantime_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("conf/millrace.toml"))
    }

    #[test]
    fn minimal_route_gets_safe_defaults() {
        let c = parse(
            r#"
            [routes.mes-plant1]
            subjects = ["raw.mes.plant1.shift-report"]
            plugin = "../plugins/mes-shift-report"
            "#,
        )
        .unwrap();
        let r = &c.routes["mes-plant1"];
        assert_eq!(r.limits, Limits::default());
        assert_eq!(r.retry.attempts, 3);
        assert_eq!(c.streams.raw, "RAW");
        assert_eq!(
            c.resolve(&r.plugin),
            PathBuf::from("conf/../plugins/mes-shift-report")
        );
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let err = parse("[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\ncolour=\"red\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("conf/millrace.toml"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("[routes.a]\nsubjects=[\"raw..a\"]\nplugin=\"p\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("routes.a.subjects"), "{err}");
        let err =
            parse("[routes.a]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\nlimits={deadline=\"soon\"}\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not a duration"), "{err}");
        let err = parse("[routes.\"a.b\"]\nsubjects=[\"raw.a\"]\nplugin=\"p\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("route names"), "{err}");
        let err = parse("[nats]\nuser=\"u\"\n").unwrap_err().to_string();
        assert!(err.contains("nats.password"), "{err}");
    }

    #[test]
    fn stream_replicas_are_one_or_three_and_placement_tags_are_named() {
        let config =
            parse("[streams]\nreplicas = 3\nplacement_tags = [\"az:1\", \"ssd\"]\n").unwrap();
        assert_eq!(config.streams.replicas, Some(3));
        assert_eq!(
            config.streams.placement_tags,
            Some(vec!["az:1".to_owned(), "ssd".to_owned()])
        );
        let defaults = parse("").unwrap();
        assert_eq!(defaults.streams.replicas, None);
        assert_eq!(defaults.streams.placement_tags, None);
        for replicas in [0, 2, 5] {
            let err = parse(&format!("[streams]\nreplicas = {replicas}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("conf/millrace.toml"), "{err}");
            assert!(err.contains("streams.replicas"), "{err}");
            assert!(err.contains("1 (one server) or 3"), "{err}");
        }
        let err = parse("[streams]\nplacement_tags = [\"\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("streams.placement_tags"), "{err}");
    }

    #[test]
    fn admin_tokens_are_unique_and_ingest_tokens_bound() {
        let token = |name: &str, scope: &str, file: &str, extra: &str| {
            format!(
                "[[admin.tokens]]\nname = \"{name}\"\nscope = \"{scope}\"\nsecret_file = \"{file}\"\n{extra}"
            )
        };
        let ok = format!(
            "[admin]\n{}{}",
            token("ops", "admin", "ops.token", ""),
            token(
                "erp",
                "ingest",
                "erp.token",
                "subjects = [\"raw.erp.*.*\"]\n"
            )
        );
        assert_eq!(
            parse(&ok).unwrap().admin.unwrap().tokens[1].subjects,
            ["raw.erp.*.*"]
        );
        let err = parse(&format!(
            "[admin]\n{}{}",
            token("ops", "admin", "a", ""),
            token("ops", "read", "b", "")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("admin.tokens[1].name") && err.contains("own name"),
            "{err}"
        );
        let err = parse(&format!(
            "[admin]\n{}{}",
            token("ops", "admin", "a", ""),
            token("viewer", "read", "./a", "")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("admin.tokens[1].secret_file") && err.contains("same secret"),
            "{err}"
        );
        let err = parse(&format!("[admin]\n{}", token("erp", "ingest", "a", "")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.tokens[0].subjects"), "{err}");
        let err = parse(&format!(
            "[admin]\n{}",
            token("erp", "ingest", "a", "subjects = [\"canonical.>\"]\n")
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("raw subjects"), "{err}");
    }

    #[test]
    fn nats_secrets_come_from_one_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nats.password"), "s3cret\n").unwrap();
        let path = dir.path().join("millrace.toml");
        let config = Config::parse(
            "[nats]\nuser = \"u\"\npassword_file = \"nats.password\"\n",
            &path,
        )
        .unwrap();
        assert_eq!(config.nats.password.as_deref(), Some("s3cret"));
        let err = Config::parse(
            "[nats]\nuser = \"u\"\npassword = \"x\"\npassword_env = \"P\"\n",
            &path,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`nats.password` is given more than once"),
            "{err}"
        );
        let err = Config::parse("[nats]\ntoken_file = \"missing\"\n", &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nats.token_file"), "{err}");
    }

    #[test]
    fn ownership_rules_are_checked() {
        let ok = "[[governance.ownership]]\nkind = \"inventory-balance\"\nsite = \"PLANT1\"\nowner = \"erp\"\n";
        assert_eq!(parse(ok).unwrap().governance.ownership[0].owner, "erp");
        let err = parse(&ok.replace("inventory-balance", "stock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("governance.ownership[0].kind"), "{err}");
        assert!(err.contains("inventory-movement"), "{err}");
    }

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
    fn a_plugin_never_gets_more_than_it_asks_for() {
        let route = Limits::default();
        let plugin = PluginLimits {
            deadline: Some(Duration::from_millis(50)),
            memory_mib: Some(512),
            ..PluginLimits::default()
        };
        let effective = route.tightened(&plugin);
        assert_eq!(effective.deadline, Duration::from_millis(50));
        assert_eq!(
            effective.memory_mib, route.memory_mib,
            "the route's cap still holds"
        );
        assert_eq!(effective.max_events, route.max_events);
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
