//! A stand-in ERP started by the outbound and console tests, and the canonical events they post
//! to it: production completions and quality holds as the inbound half publishes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// The stand-in ERP's rate limit: requests per window.
pub(crate) const RATE: usize = 20;
/// Its window.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// The bearer token it expects.
pub(crate) const TOKEN: &str = "s3cret-erp-token";

/// What the stand-in ERP saw and booked.
#[derive(Default)]
pub(crate) struct Ledger {
    /// Idempotency-Key → material document booked for it.
    pub(crate) bookings: BTreeMap<String, String>,
    /// Idempotency-Key → times it was booked (must stay 1).
    pub(crate) booked: BTreeMap<String, usize>,
    /// Requests that arrived, per window index since the start.
    pub(crate) arrivals: BTreeMap<u64, usize>,
    /// Requests in all.
    pub(crate) requests: u64,
    /// Requests without the right credentials or key.
    pub(crate) unauthorized: u64,
    /// Requests answered 429.
    pub(crate) limited: u64,
    /// Every request in arrival order: (path, Idempotency-Key, body).
    pub(crate) log: Vec<(String, String, Value)>,
}

/// A stand-in ERP: books goods movements (and stock status, shipment blocks, notifications) at
/// any path, answers with document ids, dedupes on `Idempotency-Key`, refuses a movement of lot
/// `LOT-UNKNOWN` with 422 (for good), fails every movement of lot `LOT-POISON` with 500, redirects what is posted under `/session-expired/` to a
/// sign-in page that answers 200, refuses what is posted under `/huge/` with a 5 MiB error
/// page, rate-limits with 429 and
/// `Retry-After`, fails 10% of requests with 500 (half of them after booking: the answer is
/// lost, not the booking), and can go down (its port closed) and come back.
#[derive(Clone)]
pub(crate) struct StandInErp {
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    started: Instant,
    addr: SocketAddr,
    stop: Arc<Mutex<CancellationToken>>,
    chaos: bool,
}

impl StandInErp {
    pub(crate) async fn start(chaos: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let erp = Self {
            ledger: Arc::default(),
            started: Instant::now(),
            addr,
            stop: Arc::new(Mutex::new(CancellationToken::new())),
            chaos,
        };
        erp.serve(listener);
        erp
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new().fallback(book).with_state(self.clone());
        let stop = self.stop.lock().unwrap().clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes its port for `outage`, then opens it again.
    pub(crate) async fn outage(&self, outage: Duration) {
        let stop = std::mem::take(&mut *self.stop.lock().unwrap());
        stop.cancel();
        tokio::time::sleep(outage).await;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve(listener);
    }

    pub(crate) fn booked(&self) -> usize {
        self.ledger.lock().unwrap().bookings.len()
    }
}

async fn book(
    State(erp): State<StandInErp>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let window = erp.started.elapsed().as_millis() as u64 / WINDOW.as_millis() as u64;
    let mut ledger = erp.ledger.lock().unwrap();
    // An expired session, as some ERP gateways answer it: a redirect to a sign-in page that
    // answers 200 and books nothing; and a refusal whose error page never ends (5 MiB). All
    // are logged, key or not.
    if uri.path().starts_with("/session-expired/")
        || uri.path() == "/login"
        || uri.path().starts_with("/huge/")
    {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        ledger.log.push((uri.path().to_owned(), key, Value::Null));
        return if uri.path() == "/login" {
            (StatusCode::OK, "<html>Please sign in</html>").into_response()
        } else if uri.path().starts_with("/huge/") {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "x".repeat(5 * 1024 * 1024),
            )
                .into_response()
        } else {
            (StatusCode::FOUND, [("location", "/login")], "").into_response()
        };
    }
    ledger.requests += 1;
    *ledger.arrivals.entry(window).or_default() += 1;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    let (Some(key), true) = (key, authorized) else {
        ledger.unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            "credentials and Idempotency-Key required",
        )
            .into_response();
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let unknown_lot = body["lot"] == "LOT-UNKNOWN";
    let poisoned_lot = body["lot"] == "LOT-POISON";
    ledger.log.push((uri.path().to_owned(), key.clone(), body));
    if erp.chaos && ledger.arrivals[&window] > RATE {
        ledger.limited += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    if poisoned_lot {
        // A payload the ERP fails on every time, healthy for everything else.
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    if unknown_lot {
        // A business rule of the ERP: rejected for good, whatever the retries.
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "lot LOT-UNKNOWN is not known to the ERP",
        )
            .into_response();
    }
    if let Some(document) = ledger.bookings.get(&key) {
        // A retry of something booked: the same document, nothing booked again.
        return (StatusCode::OK, axum::Json(json!({ "document": document }))).into_response();
    }
    let n = ledger.requests;
    if erp.chaos && n % 20 == 3 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response();
    }
    let document = format!("49{:08}", ledger.bookings.len() + 1);
    ledger.bookings.insert(key.clone(), document.clone());
    *ledger.booked.entry(key).or_default() += 1;
    if erp.chaos && n % 20 == 13 {
        // Booked, but the answer is lost: the retry must not book twice.
        return (StatusCode::INTERNAL_SERVER_ERROR, "booked, then failed").into_response();
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({ "document": document })),
    )
        .into_response()
}

/// A canonical event as the inbound half publishes it: `kind` at PLANT1 from `system`, mapped
/// by `plugin`@1.0.0 from raw message `n`.
#[allow(clippy::too_many_arguments)]
fn canonical(
    id: &str,
    kind: &str,
    system: &str,
    plugin: &str,
    time: &str,
    business_key: &str,
    n: usize,
    data: Value,
) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": format!("/PLANT1/{system}"),
        "type": format!("millrace.{kind}.v1"), "time": time, "subject": business_key,
        "datacontenttype": "application/json", "data": data,
        "route": system, "plugin": plugin, "pluginversion": "1.0.0", "rawsequence": n,
    })
}

/// A canonical production completion as the inbound half publishes it.
pub(crate) fn completion(n: usize, lot: &str) -> (String, Value) {
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let data = json!({
        "work_order": format!("WO-{n}"), "item": "ITEM-1", "lot": lot,
        "good_quantity": { "amount": "5", "uom": "EA" },
        "scrap_quantity": { "amount": "0", "uom": "EA" }
    });
    let event = canonical(
        &id,
        "production-completion",
        "mes",
        "mes-shift-report",
        "2026-11-30T03:00:00Z",
        &format!("WO-{n}@PLANT1"),
        n,
        data,
    );
    (id, event)
}

/// A canonical ship notice of one line shipping `serials` serial numbers (`SN-<8 digits>`).
pub(crate) fn shipment(n: usize, serials: usize) -> (String, Value) {
    let id = format!("00000000-0000-4000-a000-{n:012}");
    let data = json!({
        "shipment_id": format!("ASN-{n}"), "supplier": "SUPPLIER-1",
        "ship_date": "2026-11-30T03:00:00Z",
        "lines": [{
            "item": "ITEM-1", "lot": "LOT-1",
            "quantity": { "amount": serials.to_string(), "uom": "EA" },
            "serials": (0..serials).map(|i| format!("SN-{i:08}")).collect::<Vec<_>>(),
        }]
    });
    let event = canonical(
        &id,
        "shipment-notice",
        "edi",
        "x12-856",
        "2026-11-30T03:00:00Z",
        &format!("SUPPLIER-1/ASN-{n}@PLANT1"),
        n,
        data,
    );
    (id, event)
}

/// A canonical quality hold placed or released on a lot.
pub(crate) fn hold(n: usize, action: &str, lot: &str) -> (String, Value) {
    let id = format!("00000000-0000-4000-9000-{n:012}");
    let data = json!({
        "hold_id": "H-1", "action": action, "scope": { "item": "ITEM-1", "lot": lot },
        "reason": "contamination suspected"
    });
    let time = format!("2026-11-30T03:00:{n:02}Z");
    let event = canonical(
        &id,
        "quality-hold",
        "qms",
        "quality-webhook",
        &time,
        "H-1@PLANT1",
        n,
        data,
    );
    (id, event)
}

pub(crate) async fn publish_event(js: &jetstream::Context, subject: &str, id: &str, event: &Value) {
    publish(js, subject, event.to_string().as_bytes(), id).await;
}

pub(crate) fn targets(erp: &StandInErp, token_file: &Path, rate: bool) -> String {
    let rate = if rate {
        format!("rate = {{ requests = {RATE}, per = \"1s\" }}\n")
    } else {
        String::new()
    };
    let mut out = String::new();
    for name in ["erp", "wms", "notify"] {
        out.push_str(&format!(
            "[targets.{name}]\nurl = \"{}/{name}\"\ntimeout = \"2s\"\n{rate}retry = {{ backoff = \"100ms\", max_backoff = \"1s\" }}\nbreaker = {{ failures = 3, pause = \"500ms\" }}\nauth = {{ bearer_file = {:?} }}\n\n",
            erp.url(),
            token_file.display().to_string()
        ));
    }
    out
}

/// Waits until `done` holds, or fails the test after `PATIENCE` saying `what`.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every request the stand-in saw, in arrival order: (path, Idempotency-Key).
pub(crate) fn seen(erp: &StandInErp) -> Vec<(String, String)> {
    let ledger = erp.ledger.lock().unwrap();
    ledger
        .log
        .iter()
        .map(|(path, key, _)| (path.clone(), key.clone()))
        .collect()
}

/// The configuration of the gate scenario: the projection, an admin server on `port`, the
/// outbound route `holds` (quality holds to erp, wms and notify, through `poster`) and the
/// outbound route `completions` (production completions to erp behind the gate
/// `lot-not-on-hold`), with the three targets at `erp`.
pub(crate) fn gate_scenario(
    erp: &StandInErp,
    token_file: &Path,
    poster: &Path,
    port: u16,
) -> String {
    format!(
        "[projection]\nenabled = true\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [outbound.holds]\nsubjects = [\"canonical.quality-hold.>\"]\nplugin = {plugin:?}\ntargets = [\"erp\", \"wms\", \"notify\"]\n\n\
         [outbound.completions]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {plugin:?}\ntargets = [\"erp\"]\ngate = \"lot-not-on-hold\"\n\n{}",
        targets(erp, token_file, false),
        plugin = poster.display().to_string(),
    )
}

/// The paths a quality hold's requests go to, in order: stock status at the ERP, shipment block
/// at the WMS, the notification.
pub(crate) const FAN_OUT: [&str; 3] = [
    "/erp/stock-status",
    "/wms/shipment-blocks",
    "/notify/notify",
];

/// The gate scenario running: nats-server, the stand-in ERP, a host on [`gate_scenario`] and
/// the projection beside it.
pub(crate) struct GateScenario {
    /// The server (stopped when dropped).
    _nats: Nats,
    /// The stand-in ERP behind the three targets.
    pub(crate) erp: StandInErp,
    /// The admin server's port.
    pub(crate) port: u16,
    /// The configuration and its file.
    pub(crate) config: millrace::config::Config,
    pub(crate) config_path: std::path::PathBuf,
    /// JetStream.
    pub(crate) js: jetstream::Context,
    host: InProcessHost,
    stop: CancellationToken,
    projecting: Option<tokio::task::JoinHandle<()>>,
}

impl GateScenario {
    pub(crate) async fn start() -> Self {
        let mut scenario = Self::new(true).await;
        scenario.start_projection().await;
        scenario
    }

    /// The scenario with no projection having run (`projection.enabled = false`: the host
    /// creates none of its buckets); [`start_projection`](Self::start_projection) starts one.
    pub(crate) async fn without_projection() -> Self {
        Self::new(false).await
    }

    async fn new(projection: bool) -> Self {
        let nats = Nats::start();
        let erp = StandInErp::start(false).await;
        let token = nats.dir.path().join("erp.token");
        std::fs::write(&token, TOKEN).unwrap();
        let poster = plugin("tests/guests/poster");
        let port = millrace::transport::local_server::free_port().unwrap();
        let config_path = nats.config(&gate_scenario(&erp, &token, &poster, port));
        // One lane a route: an event held at the gate must not keep the events of other lots
        // waiting behind it in its lane (it held every lot and site sharing the lane).
        let text = std::fs::read_to_string(&config_path).unwrap();
        let text = text.replacen("partitions = 8", "partitions = 1", 1);
        let text = if projection {
            text
        } else {
            text.replacen(
                "[projection]\nenabled = true",
                "[projection]\nenabled = false",
                1,
            )
        };
        std::fs::write(&config_path, text).unwrap();
        let config = millrace::config::Config::load(&config_path).unwrap();
        assert_eq!(config.host.partitions, 1);
        let js = jetstream::new(nats.client().await);
        let host = InProcessHost::start(&config_path).await;
        Self {
            _nats: nats,
            erp,
            port,
            config,
            config_path,
            js,
            host,
            stop: CancellationToken::new(),
            projecting: None,
        }
    }

    /// Starts the projection beside the host.
    pub(crate) async fn start_projection(&mut self) {
        let projection = millrace::projection::Projection::open(&self.js, &self.config)
            .await
            .unwrap();
        self.projecting = Some(tokio::spawn(projection.run(self.stop.clone())));
    }

    /// The paths the requests of event `id` went to, in arrival order.
    pub(crate) fn paths_of(&self, id: &str) -> Vec<String> {
        seen(&self.erp)
            .into_iter()
            .filter(|(_, key)| key == id)
            .map(|(path, _)| path)
            .collect()
    }

    /// Stops the host and the projection; the server goes on until the answer is dropped.
    pub(crate) async fn stop(self) -> Nats {
        self.host.stop().await;
        self.stop.cancel();
        if let Some(projecting) = self.projecting {
            let _ = projecting.await;
        }
        self._nats
    }
}
