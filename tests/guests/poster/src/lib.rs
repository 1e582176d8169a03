//! A millrace outbound plugin for the host's tests (world `poster` of `millrace:outbound@1.0.0`).
//!
//! | event | requests |
//! |---|---|
//! | `production-completion`, `material-consumption` | `POST /goods-movements` to `erp`, JSON `{"event", "movement", "work_order", "item", "lot", "quantity", "uom"}` |
//! | `quality-hold` | `PUT /stock-status` to `erp`, then `POST /shipment-blocks` to `wms`, then `POST /notify` to `notify` |
//! | `shipment-notice` | `POST /inbound-deliveries` to `erp`, JSON `{"event", "shipment", "lot", "serials"}` (the serial numbers counted, the first line's lot) |
//! | anything else | none |
//!
//! A completion whose work order is `WO-INCOMPLETE` is refused with `incomplete-event`. Three
//! work orders make the request one a hostile or careless plugin would render, which the host
//! must refuse without sending: `WO-HEADER-SPLIT` (a header value with a line break and a
//! second header after it), `WO-PATH-ESCAPE` (the path `/../wms/goods-movements`, out of the
//! target's URL into another's) and `WO-NATS-HEADER` (`Nats-Rollup: all`, which would purge a
//! NATS target's outbox stream). `WO-HUGE-BODY` renders a body of 2 MiB, over the route's
//! output limit (1024 KiB by default). `WO-ANSWER-TRAP` is rendered as any other, but reading
//! a 2xx answer to it traps: the target booked it and the plugin cannot say so. The route
//! configuration `version = "<text>"` adds `"version": "<text>"` to every body (for shadow tests).
//! Built with the feature `v2` (the `poster-v2` guest, version 2.0.0), every body also carries
//! `"format": 2`: a shadow of version 2 renders requests that differ from version 1's.
//!
//! Answers: 2xx is `posted` with the body's `document` (or empty), 429 and 5xx `try-again`, any
//! other status `rejected` with the body as text.
#![allow(unsafe_code, missing_docs)] // the wit-bindgen export glue

wit_bindgen::generate!({
    path: "../../../wit/outbound@1.0.0",
    world: "poster",
    generate_all,
});

use millrace::mapping::canonical::EventData;
use millrace::mapping::host;
use millrace::outbound::posting::Method;

struct Poster;

fn request(target: &str, method: Method, path: &str, body: serde_json::Value) -> Request {
    let mut body = body;
    if let (Some(version), Some(object)) = (host::get_config("version"), body.as_object_mut()) {
        object.insert("version".into(), version.into());
    }
    if let (true, Some(object)) = (cfg!(feature = "v2"), body.as_object_mut()) {
        object.insert("format".into(), 2.into());
    }
    Request {
        target: target.into(),
        method,
        path: path.into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

impl Guest for Poster {
    fn render(event: Event) -> Result<Vec<Request>, RenderError> {
        let id = event.envelope.id.clone();
        Ok(match event.data {
            EventData::ProductionCompletion(p) => {
                if p.work_order == "WO-INCOMPLETE" {
                    return Err(RenderError::IncompleteEvent("no lot to receive".into()));
                }
                let hostile = p.work_order.clone();
                let mut movement = request(
                    "erp",
                    Method::Post,
                    "/goods-movements",
                    serde_json::json!({
                        "event": id, "movement": "101", "work_order": p.work_order,
                        "item": p.item, "lot": p.lot, "quantity": p.good_quantity.amount,
                        "uom": p.good_quantity.uom,
                    }),
                );
                match hostile.as_str() {
                    "WO-HEADER-SPLIT" => movement
                        .headers
                        .push(("X-Note".into(), "ok\r\nX-Injected: yes".into())),
                    "WO-PATH-ESCAPE" => movement.path = "/../wms/goods-movements".into(),
                    "WO-NATS-HEADER" => movement.headers.push(("Nats-Rollup".into(), "all".into())),
                    "WO-HUGE-BODY" => movement.body = vec![b' '; 2 * 1024 * 1024],
                    _ => {}
                }
                vec![movement]
            }
            EventData::MaterialConsumption(c) => vec![request(
                "erp",
                Method::Post,
                "/goods-movements",
                serde_json::json!({
                    "event": id, "movement": "261", "work_order": c.work_order,
                    "item": c.item, "lot": c.lot, "quantity": c.quantity.amount,
                    "uom": c.quantity.uom,
                }),
            )],
            EventData::QualityHold(h) => {
                let placed = matches!(h.action, millrace::mapping::canonical::HoldAction::Placed);
                let (status, block) = if placed {
                    ("blocked", true)
                } else {
                    ("unrestricted", false)
                };
                let scope = serde_json::json!({ "item": h.scope.item, "lot": h.scope.lot });
                vec![
                    request(
                        "erp",
                        Method::Put,
                        "/stock-status",
                        serde_json::json!({
                        "event": id, "hold": h.hold_id, "scope": scope, "status": status }),
                    ),
                    request(
                        "wms",
                        Method::Post,
                        "/shipment-blocks",
                        serde_json::json!({
                        "event": id, "hold": h.hold_id, "scope": scope, "block": block }),
                    ),
                    request(
                        "notify",
                        Method::Post,
                        "/notify",
                        serde_json::json!({
                        "event": id, "hold": h.hold_id, "scope": scope,
                        "text": format!("hold {} {}", h.hold_id, if placed { "placed" } else { "released" }) }),
                    ),
                ]
            }
            EventData::ShipmentNotice(n) => vec![request(
                "erp",
                Method::Post,
                "/inbound-deliveries",
                serde_json::json!({
                    "event": id, "shipment": n.shipment_id,
                    "lot": n.lines.first().and_then(|l| l.lot.clone()),
                    "serials": n.lines.iter().map(|l| l.serials.len()).sum::<usize>(),
                }),
            )],
            _ => Vec::new(),
        })
    }

    #[allow(clippy::panic)] // the trap is the point
    fn interpret(event: Event, _request: Request, response: Response) -> Verdict {
        if let EventData::ProductionCompletion(p) = &event.data
            && p.work_order == "WO-ANSWER-TRAP"
            && (200..300).contains(&response.status)
        {
            panic!("cannot read the answer to {}", event.envelope.id);
        }
        match response.status {
            200..=299 => Verdict::Posted(
                serde_json::from_slice::<serde_json::Value>(&response.body)
                    .ok()
                    .and_then(|v| {
                        v.get("document")
                            .and_then(|d| d.as_str())
                            .map(str::to_owned)
                    })
                    .unwrap_or_default(),
            ),
            429 | 500..=599 => Verdict::TryAgain(format!("status {}", response.status)),
            status => Verdict::Rejected(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&response.body)
            )),
        }
    }
}

export!(Poster);
