//! EDI functional acknowledgements through a real host, nats-server and the compiled
//! `edi-ack` plugin: the 997 or CONTRL published on `ack.<route>.<partner>` is byte-compared
//! with the plugin's golden `.ack` files.
//!
//! Determinism: the control number is fixed by setting the route and partner's counter in the
//! control-number bucket to the one before the fixture's (the host draws the next); the time
//! is the one the host claimed for the raw message (read from the acknowledgement bucket), put
//! into the golden document's date and time fields (ISA09/ISA10, GS04/GS05, UNB 0017/0019),
//! which are the only fields that depend on it. Every other byte is compared as written.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use millrace::acknowledgements::control::{Claim, ControlNumbers};

use crate::support::{
    InProcessHost, Nats, PATIENCE, fixture_route, metrics_text, plugin, publish, read_stream,
};

/// An acknowledgement is bounded by the route's output limit, as a mapper's events and a
/// poster's requests are: a hostile acknowledger's 50 MiB document was copied in whole.
#[test]
fn an_acknowledgement_over_the_routes_output_limit_is_refused() {
    use millrace::sandbox::{AckControl, AcknowledgeError, CallError, InboundOutcome, RawMessage};
    let sandbox = millrace::sandbox::Sandbox::new(None).unwrap();
    let acknowledger = millrace::acknowledgements::load_local(&sandbox, &ack_plugin()).unwrap();
    // Sixty sets, sixty AK2/AK5 pairs: a 997 of some 1.6 KiB.
    let (isa, sets) = (
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260714*1200*U*00401*000000001*0*P*>~",
        (1..=60)
            .map(|n| format!("ST*856*{n:04}~BSN*00*S{n}*20260714*1200~SE*3*{n:04}~"))
            .collect::<String>(),
    );
    let payload = format!(
        "{isa}GS*SH*SENDER*RECEIVER*20260714*1200*7*X*004010~{sets}GE*60*7~IEA*1*000000001~"
    );
    let raw = RawMessage {
        subject: "raw.edi.plant1.x12-856".into(),
        headers: Vec::new(),
        payload: payload.into_bytes(),
    };
    let control = AckControl {
        number: 1,
        now: "2026-12-01T10:00:00Z".into(),
    };
    let route = |output_kib: u64| millrace::sandbox::RouteContext {
        route: "x12".into(),
        config: Default::default(),
        limits: millrace::config::Limits {
            output_kib,
            ..Default::default()
        },
    };
    let ack = acknowledger
        .acknowledge(&route(256), &raw, &InboundOutcome::Mapped(60), &control)
        .unwrap()
        .unwrap();
    assert!(ack.document.len() > 1024, "{} bytes", ack.document.len());
    let refused = acknowledger
        .acknowledge(&route(1), &raw, &InboundOutcome::Mapped(60), &control)
        .unwrap_err();
    assert!(
        matches!(&refused, AcknowledgeError::Call(CallError::Output(why))
            if why.contains("KiB, the route allows 1 KiB")),
        "{refused}"
    );
}

const COUNTERS: &str = "millrace-control-numbers";
const CLAIMS: &str = "millrace-acknowledgements";

fn ack_plugin() -> PathBuf {
    plugin("plugins/edi-ack")
}

fn fixture(name: &str) -> PathBuf {
    ack_plugin().join("fixtures").join(name)
}

/// Routes mapping X12 856 and EDIFACT DESADV, both acknowledged by `edi-ack`.
fn routes() -> String {
    let acknowledger = format!("acknowledger = {:?}", ack_plugin().display().to_string());
    fixture_route(
        "x12",
        &plugin("plugins/x12-856"),
        "raw.edi.plant1.x12-856",
        &acknowledger,
    ) + &fixture_route(
        "edifact",
        &plugin("plugins/edifact-desadv"),
        "raw.edi.plant1.edifact-desadv",
        &acknowledger,
    )
}

/// The fixture's control number and time.
fn control_of(case: &str) -> (u64, String) {
    let text = std::fs::read_to_string(fixture(&format!("{case}.control.json"))).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        spec["control"]["number"].as_u64().unwrap(),
        spec["control"]["now"].as_str().unwrap().to_owned(),
    )
}

/// `(CCYYMMDD, YYMMDD, HHMM)` of an RFC 3339 UTC time.
fn stamp(now: &str) -> (String, String, String) {
    let date = format!("{}{}{}", &now[0..4], &now[5..7], &now[8..10]);
    (
        date.clone(),
        date[2..].to_owned(),
        format!("{}{}", &now[11..13], &now[14..16]),
    )
}

/// The golden document of `case` with its date and time fields moved from the fixture's time
/// to `now`.
fn golden_at(case: &str, now: &str) -> Vec<u8> {
    let golden = std::fs::read_to_string(fixture(&format!("{case}.ack"))).unwrap();
    let (_, fixture_now) = control_of(case);
    let (from8, from6, from_time) = stamp(&fixture_now);
    let (to8, to6, to_time) = stamp(now);
    let mut text = golden;
    for (separator, joint) in [('*', '*'), ('|', '|'), ('+', ':')] {
        text = text
            .replace(
                &format!("{separator}{from6}{joint}{from_time}{separator}"),
                &format!("{separator}{to6}{joint}{to_time}{separator}"),
            )
            .replace(
                &format!("{separator}{from8}{joint}{from_time}{separator}"),
                &format!("{separator}{to8}{joint}{to_time}{separator}"),
            );
    }
    text.into_bytes()
}

async fn claim_of(js: &jetstream::Context, route: &str, raw_id: &str) -> Claim {
    let claims = js.get_key_value(CLAIMS).await.unwrap();
    let key = format!(
        "{route}.{}",
        &millrace::digest::sha256_hex(raw_id.as_bytes())[..40]
    );
    serde_json::from_slice(&claims.get(&key).await.unwrap().unwrap()).unwrap()
}

/// Makes the next number the host draws for `route` and `partner` be `number`.
async fn next_number_is(js: &jetstream::Context, route: &str, partner: &str, number: u64) {
    let counters = js.get_key_value(COUNTERS).await.unwrap();
    counters
        .put(
            format!("{route}.{partner}"),
            (number - 1).to_string().into(),
        )
        .await
        .unwrap();
}

/// Publishes the input of `case` on `subject`, waits for the `count`-th acknowledgement of
/// `route`, and byte-compares it with the golden file.
async fn acknowledged_as_golden(
    js: &jetstream::Context,
    route: &str,
    partner: &str,
    subject: &str,
    case: &str,
    count: usize,
) {
    let (number, _) = control_of(case);
    next_number_is(js, route, partner, number).await;
    let raw = std::fs::read(fixture(&format!("{case}.edi"))).unwrap();
    publish(js, subject, &raw, case).await;
    let acks = read_stream(js, "ACKS", &format!("ack.{route}.>"), count, Duration::ZERO).await;
    let ack = &acks[count - 1];
    assert_eq!(ack.subject, format!("ack.{route}.{partner}"));
    assert_eq!(
        ack.header("Millrace-Control-Number"),
        Some(number.to_string().as_str())
    );
    assert_eq!(ack.header("Millrace-Raw-Id"), Some(case));
    let claim = claim_of(js, route, case).await;
    assert_eq!(claim.number, number);
    let expected = golden_at(case, &claim.now);
    assert_eq!(
        String::from_utf8_lossy(&ack.payload),
        String::from_utf8_lossy(&expected),
        "{case}: the published acknowledgement differs from fixtures/{case}.ack"
    );
    assert_eq!(ack.payload, expected, "{case}: not byte-identical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_997_and_a_contrl_match_the_golden_files_byte_for_byte() {
    let nats = Nats::start();
    let config = nats.config(&(routes() + "\n[admin]\nlisten = \"127.0.0.1:0\"\n"));
    let host = InProcessHost::start(&config).await;
    let js = jetstream::new(nats.client().await);

    // An accepted 856, then one whose SE01 miscounts its segments (dead-lettered inbound).
    acknowledged_as_golden(
        &js,
        "x12",
        "4405197800",
        "raw.edi.plant1.x12-856",
        "x12-856-accepted",
        1,
    )
    .await;
    acknowledged_as_golden(
        &js,
        "x12",
        "4405197800",
        "raw.edi.plant1.x12-856",
        "x12-856-se-count",
        2,
    )
    .await;
    // An accepted DESADV, then one whose UNT miscounts.
    let subject = "raw.edi.plant1.edifact-desadv";
    acknowledged_as_golden(
        &js,
        "edifact",
        "4012345000009",
        subject,
        "edifact-desadv-accepted",
        1,
    )
    .await;
    acknowledged_as_golden(
        &js,
        "edifact",
        "4012345000009",
        subject,
        "edifact-desadv-unt-count",
        2,
    )
    .await;

    let letters = read_stream(&js, "DLQ", "dlq.>", 2, Duration::ZERO).await;
    assert!(
        letters
            .iter()
            .all(|l| l.subject == "dlq.x12" || l.subject == "dlq.edifact"),
        "the miscounted interchanges are dead-lettered inbound and still acknowledged"
    );

    // Bytes with no interchange envelope: dead-lettered inbound, and refused by the
    // acknowledger (nothing to answer). Each acknowledger call is timed and each failure
    // counted as a mapper's are, under the acknowledger's own version.
    publish(
        &js,
        "raw.edi.plant1.x12-856",
        b"not EDI at all",
        "no-envelope",
    )
    .await;
    let admin = host
        .admin_addr()
        .expect("the config has an [admin] section");
    let refused = r#"millrace_plugin_failures_total{route="x12",plugin_version="edi-ack@1.0.0",reason="map-error"} 1"#;
    let started = std::time::Instant::now();
    let metrics = loop {
        let metrics = metrics_text(admin).await;
        if metrics.lines().any(|l| l == refused) {
            break metrics;
        }
        assert!(started.elapsed() < PATIENCE, "no {refused} in:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A first acknowledgement calls the plugin twice (number 0 names the partner, then the
    // real number); the refusal ends at the first call.
    for (route, calls) in [("x12", 5), ("edifact", 4)] {
        let count = format!(
            r#"millrace_plugin_call_seconds_count{{route="{route}",plugin_version="edi-ack@1.0.0"}} {calls}"#
        );
        assert!(
            metrics.lines().any(|l| l == count),
            "no {count} in:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains(r#"route="edifact",plugin_version="edi-ack@1.0.0",reason"#),
        "{metrics}"
    );
    host.stop().await;
}

/// The number each acknowledgement of route `x12` carried, in stream order.
async fn numbers(js: &jetstream::Context, count: usize) -> Vec<u64> {
    read_stream(js, "ACKS", "ack.x12.>", count, Duration::ZERO)
        .await
        .iter()
        .map(|m| {
            m.header("Millrace-Control-Number")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_numbers_increase_and_never_repeat_across_a_host_restart() {
    let nats = Nats::start();
    let config = nats.config(&routes());
    let js = jetstream::new(nats.client().await);
    let raw = std::fs::read(fixture("x12-856-accepted.edi")).unwrap();
    let subject = "raw.edi.plant1.x12-856";

    let host = InProcessHost::start(&config).await;
    publish(&js, subject, &raw, "first").await;
    numbers(&js, 1).await;
    // The same document resent under a new message id is a new interchange to acknowledge.
    publish(&js, subject, &raw, "second").await;
    let before = numbers(&js, 2).await;
    host.stop().await;

    let host = InProcessHost::start(&config).await;
    publish(&js, subject, &raw, "third").await;
    let after = numbers(&js, 3).await;
    host.stop().await;

    assert_eq!(after[..2], before[..]);
    assert_eq!(
        after,
        vec![1, 2, 3],
        "the counter goes on from the last number drawn"
    );
    // Each acknowledgement's own ISA13 carries its number.
    let acks = read_stream(&js, "ACKS", "ack.x12.>", 3, Duration::ZERO).await;
    for (ack, number) in acks.iter().zip(&after) {
        let text = String::from_utf8_lossy(&ack.payload);
        assert!(text.contains(&format!("*{number:09}*0*P*")), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_message_keeps_its_claim_and_concurrent_draws_never_collide() {
    let nats = Nats::start();
    let config = nats.config(&routes());
    // The host creates the buckets with the configured replicas.
    let host = InProcessHost::start(&config).await;
    host.stop().await;
    let js = jetstream::new(nats.client().await);
    let numbers = ControlNumbers::new(
        js.get_key_value(COUNTERS).await.unwrap(),
        js.get_key_value(CLAIMS).await.unwrap(),
    );

    let first = numbers
        .claim("r", "raw-1", "ACME", "2026-11-30T04:05:00Z".into())
        .await
        .unwrap();
    let again = numbers.claimed("r", "raw-1").await.unwrap();
    assert_eq!(
        again,
        Some(first.clone()),
        "a redelivered message finds its claim"
    );
    let racing = numbers
        .claim("r", "raw-1", "ACME", "2026-11-30T05:00:00Z".into())
        .await
        .unwrap();
    assert_eq!(
        racing, first,
        "a second claim for the same message gets the first one"
    );

    let draws = (0..40).map(|_| {
        let numbers = numbers.clone();
        tokio::spawn(async move { numbers.next("r", "ACME").await.unwrap() })
    });
    let mut drawn: Vec<u64> = futures::future::join_all(draws)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drawn.sort_unstable();
    drawn.dedup();
    assert_eq!(
        drawn.len(),
        40,
        "forty concurrent draws, forty distinct numbers"
    );
    assert!(drawn.iter().all(|n| *n > first.number));
}

#[test]
fn acknowledgers_are_admitted_by_their_golden_fixtures_and_refused_when_one_differs() {
    let dir = ack_plugin();
    let local = millrace::registry::LocalPlugin::locate(&dir).unwrap();
    let component = std::fs::read(&local.component).unwrap();
    let mut record = millrace::registry::store::VersionRecord::of(
        &local,
        &component,
        millrace::sandbox::ACKNOWLEDGER_WIT,
    )
    .unwrap();
    assert!(
        record.fixtures.len() >= 10,
        "{} cases stored",
        record.fixtures.len()
    );
    let sandbox = millrace::sandbox::Sandbox::new(None).unwrap();
    let bounds = millrace::registry::AdmissionBounds::default();
    let admitted =
        millrace::acknowledgements::fixtures::admit(&sandbox, &record, &component, &bounds)
            .unwrap();
    assert_eq!(admitted.id(), "edi-ack@1.0.0");

    // A golden document one byte off refuses the version.
    let case = record
        .fixtures
        .iter_mut()
        .find(|f| f.name == "x12-856-se-count.edi")
        .unwrap();
    case.expected = case
        .expected
        .replace("\"partner\":\"4405197800\"", "\"partner\":\"OTHER\"");
    let refused =
        millrace::acknowledgements::fixtures::admit(&sandbox, &record, &component, &bounds)
            .unwrap_err();
    assert!(format!("{refused:#}").contains("1 of"), "{refused:#}");

    // A mapping plugin is no acknowledger.
    let mapper = plugin("plugins/x12-856");
    let error = millrace::acknowledgements::load_local(&sandbox, &mapper).unwrap_err();
    assert!(
        format!("{error:#}").contains("not an acknowledger"),
        "{error:#}"
    );
}

/// An acknowledger's output the host cannot publish is a failure of the plugin's, counted in
/// `millrace_plugin_failures_total` as a refusal is, and the raw message is delivered all the
/// same: a partner that is no subject token, a partner that changed between the host's two
/// calls (no pure function of its input), and a document larger than the server takes. Before,
/// the last two were only logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_the_host_cannot_publish_are_counted_as_the_plugins_failures() {
    let nats = Nats::start();
    let config = nats.config(&format!(
        "[routes.cmd]\nsubjects = [\"raw.test.lab.cmd\"]\nplugin = {:?}\nacknowledger = {:?}\nlimits = {{ output_kib = 2048 }}\n\n[admin]\nlisten = \"127.0.0.1:0\"\n",
        plugin("tests/guests/misbehave").display().to_string(),
        plugin("tests/guests/ack-misbehave").display().to_string(),
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    for (n, behaviour) in ["partner-dot", "flip", "huge", "fine"].iter().enumerate() {
        let payload = format!("ok {} {behaviour}", n + 1);
        publish(&js, "raw.test.lab.cmd", payload.as_bytes(), behaviour).await;
    }
    let acks = read_stream(&js, "ACKS", "ack.cmd.>", 1, Duration::from_millis(500)).await;
    assert_eq!(acks.len(), 1, "only the good acknowledgement is published");
    assert_eq!(acks[0].subject, "ack.cmd.P1");
    // The changed partner and the huge document drew P1's numbers 1 and 2 before they were
    // refused: a gap, never a number sent twice.
    assert_eq!(String::from_utf8_lossy(&acks[0].payload), "ACK 3");
    let events = read_stream(&js, "CANONICAL", "canonical.>", 4, Duration::ZERO).await;
    assert_eq!(
        events.len(),
        4,
        "every raw message is delivered all the same"
    );

    let admin = host
        .admin_addr()
        .expect("the config has an [admin] section");
    let failures = r#"millrace_plugin_failures_total{route="cmd",plugin_version="ack-misbehave@1.0.0",reason="map-error"} 3"#;
    let started = std::time::Instant::now();
    while !metrics_text(admin).await.lines().any(|l| l == failures) {
        assert!(
            started.elapsed() < PATIENCE,
            "no {failures} in:\n{}",
            metrics_text(admin).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.stop().await;
}
