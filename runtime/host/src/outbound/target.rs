//! Targets: where outbound requests go. An HTTP(S) target appends the request's path to its base
//! URL and adds the host's headers (`Idempotency-Key`, `Content-Type`, the credentials); a NATS
//! target publishes the body to `out.<target>.<site>` on JetStream. Every target has a rate
//! limit (no burst: one request per `per / requests`, so a fixed window of `per` never sees more
//! than `requests + 1`), which a 429's `Retry-After` also pauses, and a breaker that pauses the
//! routes posting to it while it is down.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use base64::Engine as _;
use tokio::sync::Mutex;
use tokio::time::Instant;

use millrace_core::config::{Credentials, TargetConfig, TargetKind};
use millrace_core::posting::{Method, Request, Response, header_refusal, path_refusal};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The plugin's request is not one the host will send (permanent: the event is
    /// dead-lettered).
    #[error("refused request: {0}")]
    Refused(String),
    /// The target did not answer (connection refused, timeout, NATS unavailable): retried.
    #[error("{0}")]
    Unreachable(String),
}

enum Connection {
    Http {
        client: reqwest::Client,
        /// The target's URL, without a trailing `/`.
        base: String,
        /// The same, parsed: every request's URL must stay under it.
        base_url: reqwest::Url,
        authorization: Option<String>,
    },
    Nats {
        js: jetstream::Context,
    },
}

/// One configured target.
pub struct Target {
    /// The target's name.
    pub name: Arc<str>,
    connection: Connection,
    /// Its settings.
    pub config: TargetConfig,
    pace: Mutex<Instant>,
    /// Its breaker.
    pub breaker: TargetBreaker,
    /// Why the last request to it is being tried again (unreachable, or its answer read as
    /// "try again": an expired credential, a redirect), and since when; cleared by an answer
    /// that settles a request. Shown by `GET /api/v1/outbound` and `millrace status`.
    retrying: std::sync::Mutex<Option<Retrying>>,
}

/// Why a target's requests are being tried again.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Retrying {
    /// The last reason.
    pub reason: String,
    /// When the requests began to be tried again (RFC 3339).
    pub since: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "target {}", self.name)
    }
}

impl Target {
    /// The target `name` as configured.
    pub fn new(name: &str, config: &TargetConfig, js: &jetstream::Context) -> anyhow::Result<Self> {
        if let Some(why) = &config.auth.unreadable {
            anyhow::bail!("target `{name}` cannot post without its credentials: {why}");
        }
        let connection = match config.kind {
            TargetKind::Http => {
                // Redirects are not followed: a 302 answered to a POST would be followed by a
                // GET (of a login page, say) whose 200 the plugin would read as posted, and a
                // 307 would carry the body and credentials elsewhere. The plugin reads the 3xx.
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(config.timeout.get())
                    .build()
                    .with_context(|| format!("cannot build the HTTP client of target `{name}`"))?;
                let base = config
                    .url
                    .clone()
                    .with_context(|| format!("target `{name}` has no url"))?
                    .trim_end_matches('/')
                    .to_owned();
                let base_url = reqwest::Url::parse(&base)
                    .with_context(|| format!("target `{name}`: `{base}` is not a URL"))?;
                let authorization =
                    config
                        .auth
                        .credentials
                        .as_ref()
                        .map(|credentials| match credentials {
                            Credentials::Bearer(token) => format!("Bearer {token}"),
                            Credentials::Basic { username, password } => format!(
                                "Basic {}",
                                base64::engine::general_purpose::STANDARD
                                    .encode(format!("{username}:{password}"))
                            ),
                        });
                Connection::Http {
                    client,
                    base,
                    base_url,
                    authorization,
                }
            }
            TargetKind::Nats => Connection::Nats { js: js.clone() },
        };
        Ok(Self {
            name: name.into(),
            connection,
            config: config.clone(),
            pace: Mutex::new(Instant::now()),
            breaker: TargetBreaker::new(config.breaker.failures, config.breaker.pause.get()),
            retrying: std::sync::Mutex::new(None),
        })
    }

    /// Records that a request to it is tried again, for `reason`.
    pub fn retrying(&self, reason: &str) {
        let mut retrying = self.retrying.lock().unwrap_or_else(|e| e.into_inner());
        let since = retrying.take().map_or_else(
            || {
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            },
            |r| r.since,
        );
        // Clipped: a reason is the plugin's text or an error's.
        let reason: String = reason.chars().take(512).collect();
        *retrying = Some(Retrying { reason, since });
    }

    /// Records that a request to it was settled (posted or rejected): it answers.
    pub fn settled(&self) {
        *self.retrying.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Why its requests are being tried again, if they are.
    pub fn retrying_now(&self) -> Option<Retrying> {
        self.retrying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the rate limit's next slot, and for the end of a pause a 429 asked for
    /// ([`Target::pause`]) whether or not the target has a rate limit.
    pub async fn paced(&self) {
        let interval = self
            .config
            .rate
            .map_or(Duration::ZERO, |rate| rate.per.get() / rate.requests.max(1));
        let slot = {
            let mut next = self.pace.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// True when a request first sent at `first` that failed again is to be given up: its
    /// `retry.give_up_after` has passed.
    pub fn gives_up(&self, first: Instant) -> bool {
        self.config
            .retry
            .give_up_after
            .is_some_and(|after| first.elapsed() >= after.get())
    }

    /// Sends nothing until `after` from now (a 429's `Retry-After`).
    pub async fn pause(&self, after: Duration) {
        let mut next = self.pace.lock().await;
        *next = (*next).max(Instant::now() + after);
    }

    /// How long a 429 answer to the `attempt`-th try pauses the target: its `Retry-After`, but
    /// never less than the backoff. A `Retry-After` of 0 or of a date past (a gateway with a
    /// skewed clock, a rate window just ended) would otherwise be retried at once, some 90
    /// requests a second against a server asking for fewer.
    pub fn rate_limited_pause(&self, response: &Response, attempt: u32) -> Duration {
        let backoff = self.backoff(attempt);
        retry_after(response).map_or(backoff, |after| after.max(backoff))
    }

    /// Sends one request for the event `idempotency_key` at `site` and returns the answer.
    pub async fn send(
        &self,
        request: &Request,
        idempotency_key: &str,
        site: &str,
    ) -> Result<Response, TargetError> {
        let nats = matches!(self.connection, Connection::Nats { .. });
        if let Some(why) = header_refusal(&request.headers, nats) {
            return Err(TargetError::Refused(why));
        }
        let content_type = request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        let default_type = if serde_json::from_slice::<serde_json::Value>(&request.body).is_ok() {
            "application/json"
        } else {
            "application/octet-stream"
        };
        match &self.connection {
            Connection::Http {
                client,
                base,
                base_url,
                authorization,
            } => {
                let url = url_under(base, base_url, &request.path).map_err(TargetError::Refused)?;
                let mut builder = client
                    .request(http_method(request.method), url)
                    .header("Idempotency-Key", idempotency_key)
                    .body(request.body.clone());
                for (name, value) in &request.headers {
                    builder = builder.header(name, value);
                }
                if !content_type {
                    builder = builder.header("Content-Type", default_type);
                }
                if let Some(authorization) = authorization {
                    builder = builder.header("Authorization", authorization);
                }
                let answer = builder.send().await.map_err(|e| {
                    // A request reqwest cannot build is the plugin's, and no outage: it would
                    // fail the same on every retry.
                    if e.is_builder() {
                        TargetError::Refused(with_causes(e))
                    } else if e.is_timeout() {
                        TargetError::Unreachable(format!("timed out: {}", with_causes(e)))
                    } else {
                        TargetError::Unreachable(with_causes(e))
                    }
                })?;
                let status = answer.status().as_u16();
                let headers = answer
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_ascii_lowercase(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let body = read_answer(answer).await.map_err(|e| {
                    TargetError::Unreachable(format!("reading the answer: {}", with_causes(e)))
                })?;
                Ok(Response {
                    target: self.name.to_string(),
                    status,
                    headers,
                    body,
                })
            }
            Connection::Nats { js } => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, idempotency_key);
                headers.insert("Idempotency-Key", idempotency_key);
                for (name, value) in &request.headers {
                    headers.append(name.as_str(), value.as_str());
                }
                if !content_type {
                    headers.insert("Content-Type", default_type);
                }
                let subject = millrace_core::subjects::outbox(&self.name, site);
                let max = millrace_transport::max_payload(&js.client());
                millrace_transport::fits(Some(&headers), request.body.len(), max).map_err(
                    |too_large| {
                        TargetError::Refused(format!(
                            "the request to NATS target `{}` is {too_large}",
                            self.name
                        ))
                    },
                )?;
                let ack = js
                    .publish_with_headers(subject, headers, request.body.clone().into())
                    .await
                    .map_err(|e| TargetError::Unreachable(format!("publish: {e}")))?
                    .await
                    .map_err(|e| {
                        TargetError::Unreachable(format!("publish not acknowledged: {e}"))
                    })?;
                Ok(Response {
                    target: self.name.to_string(),
                    status: 200,
                    headers: vec![
                        ("nats-stream".into(), ack.stream.clone()),
                        ("nats-sequence".into(), ack.sequence.to_string()),
                    ],
                    body: serde_json::json!({
                        "stream": ack.stream,
                        "sequence": ack.sequence,
                        "duplicate": ack.duplicate,
                        "document": format!("{}:{}", ack.stream, ack.sequence),
                    })
                    .to_string()
                    .into_bytes(),
                })
            }
        }
    }

    /// The wait before try number `attempt` (1 for the first retry): the target's backoff
    /// doubled per try, at most its cap, less a random part of up to half (jitter, so retries
    /// of many events do not arrive together).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let retry = self.config.retry;
        let full = retry
            .backoff
            .get()
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(retry.max_backoff.get());
        let jitter = getrandom::u64().unwrap_or(0) % 1000;
        full - full.mul_f64(jitter as f64 / 2000.0)
    }
}

/// The URL of a request's `path` under the target's `base`, or why the host will not send to
/// it: the path passes [`path_refusal`], and (in depth) the URL it makes stays under the
/// target's once the URL parser has resolved it, so a plugin reaches no other path, host or
/// port than its target's, with the target's credentials.
fn url_under(base: &str, base_url: &reqwest::Url, path: &str) -> Result<reqwest::Url, String> {
    if let Some(why) = path_refusal(path) {
        return Err(why);
    }
    let url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| format!("the path {path:?} makes no URL with the target's: {e}"))?;
    let prefix = base_url.path().trim_end_matches('/');
    let same_place = url.scheme() == base_url.scheme()
        && url.host_str() == base_url.host_str()
        && url.port_or_known_default() == base_url.port_or_known_default()
        && url.username() == base_url.username()
        && url.password() == base_url.password();
    let under = url.path() == prefix || url.path().starts_with(&format!("{prefix}/"));
    if !(same_place && under) {
        return Err(format!(
            "the path {path:?} resolves to {:?}, outside the target's URL (path {:?})",
            url.path(),
            if prefix.is_empty() { "/" } else { prefix }
        ));
    }
    Ok(url)
}

/// The most of an answer's body the host reads and hands to the plugin: a target (or what
/// stands in its place) answering without end must not fill the host's memory.
pub const ANSWER_MAX: usize = 1024 * 1024;

/// An answer's body, its first [`ANSWER_MAX`] bytes at most (the rest is not read).
async fn read_answer(mut answer: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        let room = ANSWER_MAX - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP method of a WIT method.
fn http_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// `Retry-After`, in seconds or as an HTTP-date (RFC 9110; a date past is no wait), at most a
/// minute; a value that is neither is read as one second.
pub fn retry_after(response: &Response) -> Option<Duration> {
    let (_, value) = response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?;
    let value = value.trim();
    let wait = match (value.parse::<f64>(), httpdate::parse_http_date(value)) {
        (Ok(seconds), _) if seconds.is_finite() => {
            Duration::from_secs_f64(seconds.clamp(0.0, 60.0))
        }
        (_, Ok(at)) => at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
        _ => Duration::from_secs(1),
    };
    Some(wait.min(Duration::from_secs(60)))
}

/// The breaker of one target: `failures` consecutive failures (no answer, 5xx) open it; while
/// open, requests wait (no busy retry) and the routes posting to the target take no new events
/// into their lanes; after `pause`, one probe request goes, and its outcome closes or re-opens
/// it.
///
/// A request whose probe failed gives the next probe to another request waiting for the
/// target, when there is one: one event the target answers 5xx every time (an ERP failing on
/// one payload) was every probe, so the breaker never closed and every route posting to a
/// healthy target stopped. During an outage the probes go round the waiting requests.
#[derive(Debug)]
pub struct TargetBreaker {
    threshold: u32,
    pause: Duration,
    state: std::sync::Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    /// The request (its `Idempotency-Key`) whose probe is under way.
    probing: Option<String>,
    /// The request whose probe failed last.
    failed_probe: Option<String>,
    /// Whether another request has asked to go since that probe failed.
    others_waiting: bool,
    /// Whether a probe failed since the breaker opened.
    probe_failed: bool,
}

impl TargetBreaker {
    fn new(threshold: u32, pause: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            pause,
            state: std::sync::Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True while the breaker is open (a probe may be under way).
    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }

    /// True during the first pause after the breaker opened: the routes posting to the target
    /// take no new events meanwhile. Once a probe failed, events go into the lanes again (each
    /// lane holds one at a time, waiting here), so that the next probe can be another request
    /// than the one that failed: the probe comes back within milliseconds, and a route waiting
    /// for the pause to end never saw it end.
    pub fn pausing(&self) -> bool {
        let state = self.state();
        !state.probe_failed && state.open_until.is_some_and(|until| Instant::now() < until)
    }

    /// How long the request `key` must wait before it may go: `None` when it may go now (the
    /// breaker is closed, or this request is the probe).
    pub fn wait(&self, key: &str) -> Option<Duration> {
        let mut state = self.state();
        let until = state.open_until?;
        if state.failed_probe.as_deref() != Some(key) {
            state.others_waiting = true;
        }
        let now = Instant::now();
        if now < until {
            return Some(until - now);
        }
        let recheck = self.pause.min(Duration::from_millis(250));
        if state.probing.is_some()
            || (state.others_waiting && state.failed_probe.as_deref() == Some(key))
        {
            return Some(recheck);
        }
        state.probing = Some(key.to_owned());
        None
    }

    /// Frees the probe when the request `key` was to be it but was never sent: refused before
    /// sending (a path out of the target's URL, a header with a line break), or the host
    /// stopping. The next request waiting probes instead; without this every request to the
    /// target waited for an outcome that would never come, until the host restarted.
    pub fn release(&self, key: &str) {
        let mut state = self.state();
        if state.probing.as_deref() == Some(key) {
            state.probing = None;
        }
    }

    /// Records the outcome of the request `key`: `answered` when the target answered below
    /// 500. Returns true when this opened the breaker.
    pub fn record(&self, key: &str, answered: bool) -> bool {
        let mut state = self.state();
        if answered {
            *state = BreakerState::default();
            return false;
        }
        state.failures = state.failures.saturating_add(1);
        let probe = state.probing.as_deref() == Some(key);
        let was_open = state.open_until.is_some() && state.probing.is_none();
        if probe || state.failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.pause);
            if probe || state.probing.is_none() {
                state.probing = None;
                state.failed_probe = Some(key.to_owned());
                state.others_waiting = false;
            }
            state.probe_failed |= probe;
            return !was_open;
        }
        false
    }
}

/// An HTTP client error with the errors beneath it (`error sending request for url (…)` says
/// nothing of a refused connection, a timeout or a TLS failure; its sources do), in anyhow's
/// alternate form, as the host writes every error chain.
fn with_causes(error: reqwest::Error) -> String {
    format!("{:#}", anyhow::Error::new(error))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_target_is_named_with_the_cause_beneath_the_client_error() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let named = with_causes(error);
        assert!(
            named.to_lowercase().contains("refused"),
            "the cause, not only the client's own words: {named}"
        );
    }

    #[test]
    fn the_breaker_opens_after_the_failures_pauses_and_lets_one_probe_through() {
        let long = TargetBreaker::new(2, Duration::from_secs(3600));
        assert_eq!(long.wait("a"), None);
        assert!(!long.record("a", false));
        assert!(long.record("a", false), "the second failure opens it");
        assert!(long.wait("a").unwrap() > Duration::from_secs(3000));
        assert!(long.is_open() && long.pausing());

        let short = TargetBreaker::new(1, Duration::from_millis(1));
        assert!(short.record("a", false));
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            short.is_open() && !short.pausing(),
            "paused, then waiting for a probe"
        );
        assert_eq!(short.wait("a"), None, "after the pause one probe goes");
        assert!(short.wait("b").is_some(), "the others wait for the probe");
        short.record("a", true);
        assert!(!short.is_open());
        assert_eq!(short.wait("b"), None);
    }

    /// One request the target answers 5xx every time must not be every probe: the breaker
    /// would never close, and every route posting to a healthy target would stop.
    #[test]
    fn a_request_whose_probe_failed_gives_the_next_probe_to_another() {
        let breaker = TargetBreaker::new(1, Duration::from_millis(1));
        let after_the_pause = || std::thread::sleep(Duration::from_millis(5));
        assert!(breaker.record("poison", false));
        after_the_pause();
        // Alone, it probes again (an outage with one event in hand).
        assert_eq!(breaker.wait("poison"), None);
        assert!(
            breaker.record("poison", false),
            "its probe failed: open again"
        );
        assert!(
            breaker.is_open() && !breaker.pausing(),
            "the routes take events again, so another request can probe"
        );
        // Another request asks to go during the pause: the next probe is its.
        assert!(breaker.wait("good").is_some());
        after_the_pause();
        assert!(breaker.wait("poison").is_some(), "it gives the probe away");
        assert_eq!(breaker.wait("good"), None);
        breaker.record("good", true);
        assert!(!breaker.is_open(), "the target answered: closed");
        // During an outage the probes go round: the other's failed too, the first goes next.
        assert!(breaker.record("poison", false));
        after_the_pause();
        assert_eq!(breaker.wait("good"), None);
        assert!(breaker.record("good", false));
        assert!(breaker.wait("poison").is_some());
        after_the_pause();
        assert!(breaker.wait("good").is_some());
        assert_eq!(breaker.wait("poison"), None);
    }

    /// A probe refused before it was sent says nothing of the target: the next request probes.
    #[test]
    fn a_probe_never_sent_frees_the_probe_for_the_next_request() {
        let breaker = TargetBreaker::new(1, Duration::from_millis(1));
        assert!(breaker.record("down", false));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(breaker.wait("refused"), None, "it is the probe");
        assert!(breaker.wait("good").is_some(), "the others wait for it");
        breaker.release("good");
        assert!(
            breaker.wait("good").is_some(),
            "only the probe's own request frees it"
        );
        breaker.release("refused");
        assert!(breaker.is_open(), "no outcome: still open");
        assert_eq!(breaker.wait("good"), None, "the next request probes");
        breaker.record("good", true);
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_request_path_stays_under_the_targets_url() {
        let base = "https://erp.example.com:8443/tenant-a/api";
        let base_url = reqwest::Url::parse(base).unwrap();
        let ok = |path: &str| url_under(base, &base_url, path).unwrap().to_string();
        let refused = |path: &str| url_under(base, &base_url, path).unwrap_err();
        assert_eq!(
            ok("/goods-movements?plant=P1&x=../y"),
            "https://erp.example.com:8443/tenant-a/api/goods-movements?plant=P1&x=../y"
        );
        assert_eq!(
            ok("/b%20c"),
            "https://erp.example.com:8443/tenant-a/api/b%20c"
        );
        for escape in [
            "/../../tenant-b/api/goods",
            "/%2e%2e/%2E%2E/tenant-b",
            "/./../",
        ] {
            assert!(
                refused(escape).contains("which would climb out"),
                "{escape}"
            );
        }
        assert!(refused("/..\\..\\tenant-b").contains("backslash"));
        assert!(refused("/goods\nmovements").contains("'\\n'"));
        assert!(refused("goods").contains("does not start with `/`"));

        let root = "http://wms.example.com";
        let root_url = reqwest::Url::parse(root).unwrap();
        let at_root = url_under(root, &root_url, "//evil.example/x").unwrap();
        assert_eq!(at_root.host_str(), Some("wms.example.com"));
    }

    /// An HTTP target `erp` with the default settings, and its config.
    async fn http_target() -> (Target, TargetConfig) {
        // A client that never connects: the HTTP target does not use it.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .unwrap();
        let config = TargetConfig {
            url: Some("http://127.0.0.1:9".into()),
            ..TargetConfig::default()
        };
        let target = Target::new("erp", &config, &jetstream::new(client)).unwrap();
        (target, config)
    }

    #[tokio::test]
    async fn a_target_whose_credentials_could_not_be_read_is_not_built() {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .unwrap();
        let mut config = TargetConfig {
            url: Some("http://127.0.0.1:9".into()),
            ..TargetConfig::default()
        };
        config.auth.unreadable =
            Some("targets.erp.auth.bearer_env names $ERP_TOKEN, which is not set".into());
        let error = Target::new("erp", &config, &jetstream::new(client))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("target `erp` cannot post") && error.contains("$ERP_TOKEN"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_target_says_why_it_is_retried_since_the_first_retry_until_an_answer_settles() {
        let (target, _) = http_target().await;
        assert!(target.retrying_now().is_none());
        target.retrying("status 401: the token expired");
        let first = target.retrying_now().unwrap();
        target.retrying("unreachable: Connection refused");
        let now = target.retrying_now().unwrap();
        assert_eq!(
            now.reason, "unreachable: Connection refused",
            "the last reason"
        );
        assert_eq!(now.since, first.since, "since the first retry");
        target.settled();
        assert!(target.retrying_now().is_none());
        target.retrying(&"x".repeat(10_000));
        assert_eq!(target.retrying_now().unwrap().reason.len(), 512, "clipped");
    }

    #[tokio::test]
    async fn a_429s_pause_holds_a_target_without_a_rate_limit() {
        let (target, config) = http_target().await;
        assert!(config.rate.is_none());
        let start = Instant::now();
        target.paced().await;
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "no pause, no wait"
        );
        target.pause(Duration::from_millis(300)).await;
        target.paced().await;
        // It was retried at once, 137 requests in 6 s against Retry-After: 5.
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_429_pauses_at_least_the_backoff_whatever_its_retry_after() {
        let (target, config) = http_target().await;
        let floor = config.retry.backoff.get() / 2;
        let answer = |retry_after: Option<&str>| Response {
            target: "erp".into(),
            status: 429,
            headers: retry_after
                .map(|v| ("Retry-After".to_owned(), v.to_owned()))
                .into_iter()
                .collect(),
            body: Default::default(),
        };
        // Retried at once, ~90 requests a second, for these two.
        for asked in [Some("0"), Some("Sun, 06 Nov 1994 08:49:37 GMT"), None] {
            let pause = target.rate_limited_pause(&answer(asked), 1);
            assert!(pause >= floor, "{asked:?}: {pause:?}");
        }
        // A later try backs off longer; a longer Retry-After is kept.
        assert!(target.rate_limited_pause(&answer(Some("0")), 4) >= floor * 8);
        assert_eq!(
            target.rate_limited_pause(&answer(Some("50")), 1),
            Duration::from_secs(50)
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        let response = Response {
            target: "erp".into(),
            status: 429,
            headers: vec![("retry-after".into(), "2".into())],
            body: Default::default(),
        };
        assert_eq!(retry_after(&response), Some(Duration::from_secs(2)));
        let with = |value: String| Response {
            headers: vec![("Retry-After".into(), value)],
            ..response.clone()
        };
        // The HTTP-date form: 30 s from now is about 30 s (its resolution is a second).
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&with(soon)).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let past = "Sun, 06 Nov 1994 08:49:37 GMT".to_owned();
        assert_eq!(retry_after(&with(past)), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&with("3600".into())),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(&with("soon".into())),
            Some(Duration::from_secs(1))
        );
    }
}
