//! The integration test harness: a real nats-server on a free port, the real `millrace`
//! binary, real compiled plugins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use millrace::registry::LocalPlugin;
use millrace::transport::local_server::{LocalServer, free_port};

/// Long enough for a cold build on a slow machine; tests never assert on speed.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// The workspace root.
pub fn root() -> PathBuf {
    // The test binary belongs to runtime/cli: the workspace is two folders up.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// A plugin folder, built once per test binary.
pub fn plugin(relative: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<PathBuf>>> = OnceLock::new();
    let dir = root().join(relative);
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if !built.contains(&dir) {
        LocalPlugin::locate(&dir).unwrap_or_else(|e| panic!("building {relative}: {e:#}"));
        built.push(dir.clone());
    }
    dir
}

/// A nats-server with JetStream in a temporary folder.
pub struct Nats {
    pub server: LocalServer,
    pub dir: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A free port can be taken by another socket before the server binds it: try again.
        let mut attempts = 0;
        let server = loop {
            attempts += 1;
            match LocalServer::start(free_port().unwrap(), &dir.path().join("js")) {
                Ok(server) => break server,
                Err(e) if attempts < 5 => eprintln!("nats-server did not start, retrying: {e:#}"),
                Err(e) => panic!("nats-server did not start: {e:#}"),
            }
        };
        Self { server, dir }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        let (port, store) = (self.server.port(), self.server.store_dir().to_owned());
        self.server.stop();
        let mut attempts = 0;
        self.server = loop {
            attempts += 1;
            match LocalServer::start(port, &store) {
                Ok(server) => break server,
                Err(e) if attempts < 50 => {
                    eprintln!("nats-server did not restart yet: {e:#}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("nats-server did not restart: {e:#}"),
            }
        };
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.unwrap()
    }

    /// Writes a host config with the given route sections and returns its path.
    pub fn config(&self, routes: &str) -> PathBuf {
        let path = self.dir.path().join("millrace.toml");
        let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("millrace-state");
        std::fs::write(
            &path,
            format!(
                "[nats]\nurl = \"{}\"\n\n[host]\nworkers = 2\npartitions = 8\nstate_dir = \"{}\"\n\n{routes}",
                self.url(),
                state.display()
            ),
        )
        .unwrap();
        path
    }
}

/// A millrace host inside the test process: tests wait on its typed signals (ready, route
/// switches), never on log text.
pub struct InProcessHost {
    handle: Option<millrace::host::HostHandle>,
    switches: tokio::sync::broadcast::Receiver<millrace::host::RouteSwitch>,
}

impl InProcessHost {
    /// Starts a host on `config` and waits until every route consumes.
    pub async fn start(config: &Path) -> Self {
        let config = std::sync::Arc::new(millrace::config::Config::load(config).unwrap());
        let client = millrace::transport::connect(&config, None).await.unwrap();
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("millrace-state/cache");
        let sandbox = millrace::sandbox::Sandbox::new(Some(&cache)).unwrap();
        let mut handle = millrace::host::HostBuilder::new(config, client, sandbox).start();
        let switches = handle.route_switches();
        tokio::time::timeout(PATIENCE, handle.ready())
            .await
            .expect("the host was not ready in time")
            .unwrap();
        Self {
            handle: Some(handle),
            switches,
        }
    }

    /// Waits for the switch of `route` after which it serves what `serves` accepts, and returns
    /// what it serves; a route that stays put (its new binding cannot be served) fails the test.
    pub async fn switched(
        &mut self,
        route: &str,
        serves: impl Fn(&[millrace::routes::Serving]) -> bool,
    ) -> Vec<millrace::routes::Serving> {
        let started = Instant::now();
        loop {
            let left = PATIENCE.saturating_sub(started.elapsed());
            let switch = tokio::time::timeout(left, self.switches.recv())
                .await
                .unwrap_or_else(|_| panic!("route {route} never switched as expected"))
                .unwrap();
            if switch.route != route {
                continue;
            }
            match switch.to {
                Ok(serving) if serves(&serving) => return serving,
                Ok(_) => {}
                Err(why) => panic!("route {route} stayed on {}: {why}", switch.from),
            }
        }
    }

    /// Where its admin API listens, when the config has an `[admin]` section.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.handle.as_ref().and_then(|h| h.admin_addr())
    }

    /// Stops the host and waits until it has.
    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.unwrap();
        }
    }
}

/// The active version among what a route serves is `version`.
pub fn active_is(version: &str) -> impl Fn(&[millrace::routes::Serving]) -> bool + '_ {
    move |serving| {
        serving
            .iter()
            .any(|s| s.role == "active" && s.version == version)
    }
}

/// How many million iterations of `slow` run in `target` on this machine, measured in-process
/// with the same engine settings the host uses.
pub fn slow_millions_for(target: Duration) -> u64 {
    use millrace::config::Limits;
    use millrace::registry::LocalPlugin;
    use millrace::sandbox::{RawMessage, RouteContext, Sandbox, Session};
    use std::sync::Arc;
    let sandbox = Sandbox::new(None).unwrap();
    let component = LocalPlugin::locate(&plugin("tests/guests/misbehave"))
        .unwrap()
        .load(&sandbox)
        .unwrap();
    let route = RouteContext {
        route: "calibrate".into(),
        config: Arc::default(),
        limits: Limits {
            deadline: Duration::from_secs(60),
            ..Limits::default()
        },
    };
    let mut session = Session::new(&component, &route).unwrap();
    let probe = 200;
    let raw = RawMessage {
        subject: "raw.test.lab.cmd".into(),
        headers: Vec::new(),
        payload: format!("slow {probe}").into_bytes(),
    };
    session.call(&raw).unwrap();
    let started = Instant::now();
    session.call(&raw).unwrap();
    let per_million = started.elapsed().as_secs_f64() / probe as f64;
    ((target.as_secs_f64() / per_million) as u64).max(1)
}

/// A `millrace` child process.
pub struct Host {
    child: Child,
    pub log: PathBuf,
}

/// Lines of a child host's log shown when it fails to start.
const LOG_TAIL: usize = 60;

/// Free ports [`Host::start`] tries for a child's admin API before it gives up.
const PORT_ATTEMPTS: u32 = 3;

impl Host {
    /// Starts `millrace run --config <config>` and waits until it says, through its admin API
    /// (`GET /api/v1/status`), that it is ready and every route of `config` serves a version;
    /// and until the route consumers `consumers` exist on the RAW stream. A config without an
    /// `[admin]` section runs from a copy beside it that adds one on a free loopback port (and
    /// on another when the child finds that port taken, as a port picked free may be meanwhile).
    pub async fn start(config: &Path, js: &jetstream::Context, consumers: &[&str]) -> Self {
        let loaded = millrace::config::Config::load(config)
            .unwrap_or_else(|e| panic!("{}: {e:#}", config.display()));
        let routes: BTreeSet<&str> = loaded.routes.keys().map(String::as_str).collect();
        let mut attempt = 1;
        'start: loop {
            let (run_config, status) = StatusProbe::for_config(config, &loaded);
            let log = config.with_extension(format!("{}.log", std::process::id() ^ rand_u32()));
            let child = Command::new(env!("CARGO_BIN_EXE_millrace"))
                .args(["run", "--config"])
                .arg(&run_config)
                .env("RUST_LOG", "warn,millrace=debug")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut host = Self { child, log };
            let started = Instant::now();
            loop {
                if let Some(status) = host.child.try_wait().unwrap() {
                    // The free port picked for the admin API was taken between picking and
                    // binding (by another test's connection): pick another.
                    if loaded.admin.is_none()
                        && attempt < PORT_ATTEMPTS
                        && host.log_text().contains("cannot listen on")
                    {
                        attempt += 1;
                        continue 'start;
                    }
                    panic!("millrace exited at start ({status}):\n{}", host.log_tail());
                }
                let why = match status.unready(&routes).await {
                    Ok(()) if consumers_exist(js, consumers).await => return host,
                    Ok(()) => format!("the consumers {consumers:?} do not all exist yet"),
                    Err(why) => why,
                };
                assert!(
                    started.elapsed() < PATIENCE,
                    "millrace was not ready after {PATIENCE:?} ({why}); the end of its log:\n{}",
                    host.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    /// The process id, e.g. to read its memory from /proc.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts that every message so far ended once (none was redelivered) and that the host
    /// kept its NATS connection: what a publish past the server's limits would break.
    pub fn assert_ended_once(&self) {
        let log = self.log_text();
        assert!(
            !log.contains("redelivered") && !log.contains("disconnected"),
            "each message ended once, the connection kept:\n{log:.4000}"
        );
    }

    /// SIGKILL: no draining, no acks.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a graceful exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM and returns at once.
    pub fn terminate(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether the route consumers `names` all exist on the RAW stream.
async fn consumers_exist(js: &jetstream::Context, names: &[&str]) -> bool {
    let Ok(stream) = js.get_stream("RAW").await else {
        return false;
    };
    for name in names {
        if stream.consumer_info(*name).await.is_err() {
            return false;
        }
    }
    true
}

/// Reads a child host's status from its admin API: the typed answer of `GET /api/v1/status`.
struct StatusProbe {
    url: String,
    /// A read (or admin) token, when the config has tokens.
    token: Option<String>,
    http: reqwest::Client,
}

impl StatusProbe {
    /// The config a child host runs from (`config`, or a copy with an `[admin]` section on a
    /// free port) and where to read its status.
    fn for_config(config: &Path, loaded: &millrace::config::Config) -> (PathBuf, Self) {
        use millrace::config::Scope;
        let (run_config, listen, token) = match &loaded.admin {
            Some(admin) => {
                assert_ne!(
                    admin.listen.port(),
                    0,
                    "Host::start reads the status at admin.listen: give it a fixed port"
                );
                let folder = config.parent().unwrap_or(Path::new("."));
                let token = admin
                    .tokens
                    .iter()
                    .filter(|t| matches!(t.scope, Scope::Read | Scope::Admin))
                    .find_map(|t| match (&t.secret_file, &t.secret_env) {
                        (Some(file), _) => std::fs::read_to_string(folder.join(file)).ok(),
                        (None, Some(var)) => std::env::var(var).ok(),
                        (None, None) => None,
                    })
                    .map(|secret| secret.trim().to_owned());
                (config.to_owned(), admin.listen.to_string(), token)
            }
            None => {
                let listen = format!("127.0.0.1:{}", free_port().unwrap());
                let copy = config.with_extension(format!("admin{}.toml", rand_u32()));
                let text = std::fs::read_to_string(config).unwrap();
                std::fs::write(&copy, format!("{text}\n\n[admin]\nlisten = {listen:?}\n")).unwrap();
                (copy, listen, None)
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // No idle connections kept: some tests cap the admin server's connections.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let probe = Self {
            url: format!("http://{listen}/api/v1/status"),
            token,
            http,
        };
        (run_config, probe)
    }

    /// `Ok` once the host says it is ready and each of `routes` serves a version; else why not.
    async fn unready(&self, routes: &BTreeSet<&str>) -> Result<(), String> {
        let mut request = self.http.get(&self.url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.url, response.status()));
        }
        let status: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if status["ready"] != true {
            return Err(format!("the host is not ready: {status}"));
        }
        let serving: BTreeSet<&str> = status["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["serving"].as_array().is_some_and(|s| !s.is_empty()))
            .filter_map(|r| r["name"].as_str())
            .collect();
        match routes.difference(&serving).next() {
            None => Ok(()),
            Some(route) => Err(format!("route {route} serves nothing yet: {status}")),
        }
    }
}

/// Publishes a raw message with a `Nats-Msg-Id` and waits for JetStream to store it.
/// What a test driving the pipeline in-process needs: the configuration of `routes` on `nats`,
/// JetStream with the streams made, the plugin loader and the delivery stage.
pub struct Staged {
    pub config: std::sync::Arc<millrace::config::Config>,
    pub js: jetstream::Context,
    pub loader: millrace::registry::loader::PluginLoader,
    pub delivery: millrace::delivery::Delivery,
}

impl Staged {
    pub async fn on(nats: &Nats, routes: &str) -> Self {
        let path = nats.config(routes);
        let config = std::sync::Arc::new(millrace::config::Config::load(&path).unwrap());
        let js = jetstream::new(nats.client().await);
        millrace::transport::ensure_streams(&js, &config.streams)
            .await
            .unwrap();
        let sandbox = millrace::sandbox::Sandbox::new(None).unwrap();
        let loader = millrace::registry::loader::PluginLoader::new(config.clone(), sandbox, None);
        let delivery = millrace::delivery::Delivery::open(&js, &config.governance)
            .await
            .unwrap();
        Self {
            config,
            js,
            loader,
            delivery,
        }
    }
}

pub async fn publish(js: &jetstream::Context, subject: &str, payload: &[u8], msg_id: &str) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(subject.to_owned(), headers, payload.to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Publishes each `(payload, msg id)` to `subject` in order, each stored before the next.
pub async fn publish_each(
    js: &jetstream::Context,
    subject: &str,
    messages: impl IntoIterator<Item = (String, String)>,
) {
    for (payload, id) in messages {
        publish(js, subject, payload.as_bytes(), &id).await;
    }
}

/// Good, late and failing traffic for the misbehave plugin: `ok 1..=good`, an on-time and a
/// late event for WO-7, and a map error.
pub fn mixed_traffic(good: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = (1..=good)
        .map(|n| (format!("ok {n}"), format!("ok{n}")))
        .collect();
    out.push(("at 2026-03-02T10:00:00Z WO-7".into(), "at1".into()));
    out.push(("at 2026-03-02T09:00:00Z WO-7".into(), "at2".into()));
    out.push(("reject".into(), "reject".into()));
    out
}

/// A message read back from a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub sequence: u64,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Stored {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the messages of `stream` matching `filter` until `count` have arrived (or `PATIENCE`
/// runs out), then keeps reading for `settle` to catch any extra (duplicate) message.
pub async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    count: usize,
    settle: Duration,
) -> Vec<Stored> {
    let started = Instant::now();
    let stream_handle = loop {
        match js.get_stream(stream).await {
            Ok(s) => break s,
            Err(_) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("stream {stream}: {e}"),
        }
    };
    let consumer = stream_handle
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    let mut deadline = Instant::now() + PATIENCE;
    let mut settled = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, messages.next()).await {
            Ok(Some(Ok(m))) => {
                let info = m.info().unwrap();
                let sequence = info.stream_sequence;
                let mut headers = Vec::new();
                if let Some(h) = &m.headers {
                    for (name, values) in h.iter() {
                        for v in values {
                            headers.push((name.to_string(), v.as_str().to_owned()));
                        }
                    }
                }
                out.push(Stored {
                    subject: m.subject.to_string(),
                    sequence,
                    headers,
                    payload: m.payload.to_vec(),
                });
            }
            Ok(Some(Err(e))) => panic!("reading {stream}: {e}"),
            Ok(None) | Err(_) => break,
        }
        if out.len() >= count && !settled {
            settled = true;
            deadline = Instant::now() + settle;
        }
    }
    assert!(
        out.len() >= count,
        "{stream} {filter}: expected {count} messages, got {}",
        out.len()
    );
    out
}

/// The number of messages stored in a stream.
pub async fn stream_len(js: &jetstream::Context, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

/// Runs the `millrace` binary to completion.
pub fn millrace(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Asserts a command failed cleanly: a non-zero exit, `needle` in its output, no panic.
pub fn assert_clean_failure(o: &std::process::Output, needle: &str) {
    let t = text(o);
    assert!(!o.status.success(), "should fail: {t}");
    assert!(t.contains(needle), "expected {needle:?} in: {t}");
    assert!(!t.contains("panicked"), "panicked: {t}");
}

/// stdout and stderr of a finished command.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The number of messages in a stream, or `None` while the server cannot answer.
pub async fn try_stream_len(js: &jetstream::Context, stream: &str) -> Option<u64> {
    let mut stream = js.get_stream(stream).await.ok()?;
    Some(stream.info().await.ok()?.state.messages)
}

/// A route section `name` serving the plugin folder `dir` on `subject`, with the route
/// configuration its golden fixtures run with, and `extra` lines.
pub fn fixture_route(name: &str, dir: &Path, subject: &str, extra: &str) -> String {
    let manifest = millrace::registry::Manifest::load(dir).unwrap();
    let config: Vec<String> = manifest
        .fixtures
        .config
        .iter()
        .map(|(k, v)| format!("{k:?} = {v:?}"))
        .collect();
    format!(
        "[routes.{name}]\nsubjects = [{subject:?}]\nplugin = {:?}\nconfig = {{ {} }}\n{extra}\n",
        dir.display().to_string(),
        config.join(", ")
    )
}

/// A copy of a built plugin under another version, served from a folder that needs no build.
pub fn plugin_version(relative: &str, version: &str, into: &Path) -> PathBuf {
    let dir = plugin(relative);
    let built = LocalPlugin::locate(&dir).unwrap();
    let copy = into.join(format!("{}-{version}", built.name()));
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&built.component, copy.join("plugin.wasm")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))
        .unwrap()
        .replacen(
            &format!("version = \"{}\"", built.version()),
            &format!("version = \"{version}\""),
            1,
        );
    std::fs::write(
        copy.join("plugin.toml"),
        format!("{manifest}\n[build]\ncommand = [\"true\"]\ncomponent = \"plugin.wasm\"\n"),
    )
    .unwrap();
    let fixtures = dir.join("fixtures");
    if fixtures.is_dir() {
        std::fs::create_dir_all(copy.join("fixtures")).unwrap();
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, copy.join("fixtures").join(path.file_name().unwrap())).unwrap();
        }
    }
    copy
}

/// Canonical events plus dead letters stored so far; `None` while the server cannot answer.
pub async fn processed(js: &jetstream::Context) -> Option<u64> {
    Some(try_stream_len(js, "CANONICAL").await? + try_stream_len(js, "DLQ").await?)
}

pub async fn wait_processed(js: &jetstream::Context, at_least: u64, host: &Host) {
    let started = Instant::now();
    while processed(js).await.unwrap_or(0) < at_least {
        assert!(
            started.elapsed() < PATIENCE,
            "no progress:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `payload(n)` for n in 0..total, retrying through server outages; the same
/// `Nats-Msg-Id` on a retry keeps it stored once.
pub fn spawn_publisher(
    js: jetstream::Context,
    total: usize,
    payload: fn(usize) -> String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for n in 0..total {
            let subject = format!("raw.test.s{}.cmd", n % 8);
            loop {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("n{n}").as_str());
                let sent = js
                    .publish_with_headers(subject.clone(), headers, payload(n).into())
                    .await;
                let stored = match sent {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if stored {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

/// Mixed traffic: message `n` is `reject` every 101st, else `ok <n>`.
pub fn mixed(n: usize) -> String {
    if n.is_multiple_of(101) {
        "reject".into()
    } else {
        format!("ok {n}")
    }
}

/// Every raw message of `mixed` is accounted for: its event once, or its dead letter once.
pub async fn assert_accounted(js: &jetstream::Context, total: usize) {
    let rejects: BTreeSet<String> = (0..total)
        .filter(|n| n % 101 == 0)
        .map(|n| format!("n{n}"))
        .collect();
    let oks: BTreeSet<String> = (0..total)
        .filter(|n| n % 101 != 0)
        .map(|n| format!("WO-{n}"))
        .collect();
    let events = read_stream(
        js,
        "CANONICAL",
        "canonical.>",
        oks.len(),
        Duration::from_secs(3),
    )
    .await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orders.len(), oks.len(), "no canonical event is duplicated");
    assert_eq!(
        orders.iter().cloned().collect::<BTreeSet<_>>(),
        oks,
        "no canonical event is lost"
    );
    let letters = read_stream(js, "DLQ", "dlq.>", rejects.len(), Duration::from_secs(1)).await;
    let ids: Vec<String> = letters
        .iter()
        .map(|l| l.header("Millrace-Raw-Msg-Id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), rejects.len(), "no dead letter is duplicated");
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<_>>(),
        rejects,
        "no dead letter is lost"
    );
}

/// Everything the projection holds, as the query API returns it, without the ages (which
/// grow while the test runs).
pub async fn projected_state(
    visibility: &millrace::projection::query::Visibility,
) -> serde_json::Value {
    let mut sources = serde_json::to_value(visibility.sources().await.unwrap()).unwrap();
    for source in sources.as_array_mut().unwrap() {
        let age = source
            .as_object_mut()
            .unwrap()
            .remove("age_seconds")
            .unwrap();
        assert!(age.as_i64().unwrap() >= 0);
    }
    serde_json::json!({
        "inventory": visibility.inventory(&Default::default()).await.unwrap(),
        "work_orders": visibility.work_orders(&Default::default()).await.unwrap(),
        "holds": visibility.holds(&Default::default()).await.unwrap(),
        "commitments": visibility.commitments(&Default::default()).await.unwrap(),
        "sources": sources,
    })
}

/// A deploy body (`POST /api/v1/plugins`) for the misbehave plugin under `version`.
pub fn upload(version: &str, into: &Path) -> serde_json::Value {
    use base64::Engine as _;
    let dir = plugin_version("tests/guests/misbehave", version, into);
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    serde_json::json!({
        "manifest": std::fs::read_to_string(dir.join("plugin.toml")).unwrap(),
        "component": b64(std::fs::read(dir.join("plugin.wasm")).unwrap()),
        "fixtures": deploy_fixtures(&dir),
    })
}

/// The golden fixtures of a plugin folder as a deploy body lists them: name, base64 input,
/// expectation text.
pub fn deploy_fixtures(dir: &Path) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("fixtures")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expected.json") {
            continue;
        }
        let expected = path.with_file_name(name.replace(".txt", ".expected.json"));
        out.push(serde_json::json!({
            "name": name,
            "input": base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap()),
            "expected": std::fs::read_to_string(expected).unwrap(),
        }));
    }
    out
}

/// The Prometheus text a host's admin server (without read tokens) serves at `/metrics`.
pub async fn metrics_text(admin: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `millrace run` refuses to start with `config`; returns what it said.
pub fn host_refused(config: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("millrace kept running with {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "millrace must fail");
    text(&output)
}
