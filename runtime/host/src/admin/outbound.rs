//! `GET /api/v1/outbound`: the outbound routes (versions served, targets, gate), the targets
//! (breaker, postings in hand, oldest pending) and the events held at a gate, with why.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AdminState;
use crate::outbound::gate::HeldEvent;
use crate::routes::Serving;

/// One outbound route.
#[derive(Debug, Serialize)]
pub struct OutboundRouteView {
    /// The route.
    pub name: String,
    /// The canonical subjects it consumes.
    pub subjects: Vec<String>,
    /// The versions it serves.
    pub serving: Vec<Serving>,
    /// Its targets.
    pub targets: Vec<String>,
    /// Its gate, when it has one.
    pub gate: Option<String>,
}

/// One target.
#[derive(Debug, Serialize)]
pub struct TargetView {
    /// The target.
    pub name: String,
    /// `http` or `nats`.
    pub kind: String,
    /// True while its breaker pauses the routes posting to it.
    pub down: bool,
    /// Postings this host has in hand for it.
    pub backlog: usize,
    /// Why its requests are being tried again, and since when, while they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrying: Option<crate::outbound::target::Retrying>,
}

/// The outbound half of the host.
#[derive(Debug, Serialize)]
pub struct OutboundView {
    /// Outbound routes.
    pub routes: Vec<OutboundRouteView>,
    /// Targets.
    pub targets: Vec<TargetView>,
    /// Events held at a gate, with why they wait.
    pub held: Vec<HeldEvent>,
}

pub async fn outbound(State(state): State<AdminState>) -> Json<OutboundView> {
    let host = &state.host;
    let routes = host
        .table
        .outbound()
        .iter()
        .map(|route| {
            let configured = host.config.outbound.get(&*route.name);
            OutboundRouteView {
                name: route.name.to_string(),
                subjects: route.subjects.clone(),
                serving: route.serving(),
                targets: configured.map(|c| c.targets.clone()).unwrap_or_default(),
                gate: configured
                    .and_then(|c| c.gate)
                    .map(|_| "lot-not-on-hold".to_owned()),
            }
        })
        .collect();
    let backlog = host.observer.metrics.outbound.backlog_by_target();
    let (targets, held) = match &host.outbound {
        Some(driver) => (
            host.config
                .targets
                .iter()
                .map(|(name, config)| TargetView {
                    name: name.clone(),
                    kind: format!("{:?}", config.kind).to_lowercase(),
                    down: driver.target(name).is_some_and(|t| t.breaker.is_open()),
                    backlog: backlog.get(name).copied().unwrap_or(0),
                    retrying: driver.target(name).and_then(|t| t.retrying_now()),
                })
                .collect(),
            driver.gates().held_events(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Json(OutboundView {
        routes,
        targets,
        held,
    })
}
