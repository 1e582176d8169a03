//! Posting gates: governance before financial posting. A route with a gate holds an event back
//! until a rule over the visibility projection allows it, re-reading the projection until it
//! does; held events are listed (with why they wait) by the admin API.
//!
//! | gate | holds back | until |
//! |---|---|---|
//! | `lot-not-on-hold` | a production completion, material consumption or inventory movement of a lot under an open quality hold at its site (a hold naming an item holds that item's lot only) | the hold is released |
//!
//! The gate reads the projection as it stands: an event that arrives before the projection has
//! applied the hold placed just before it is not held. A projection that cannot be read, or
//! that has never run (its holds bucket does not exist), holds every event it governs (fail
//! closed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::input::EventInput;
use crate::observability::Observer;
use crate::observability::outbound::OutboundRouteOnly;
use crate::pipeline::HostFailure;
use millrace_core::canonical::EventData;
use millrace_core::config::Gate;
use millrace_core::posting::CanonicalEvent;
use millrace_projection::query::{Filter, Visibility};

/// How often a held event looks at the projection again.
const RECHECK: Duration = Duration::from_millis(250);

/// An event waiting at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldEvent {
    /// The outbound route.
    pub route: String,
    /// The gate.
    pub gate: &'static str,
    /// The event id.
    pub event_id: String,
    /// The event kind.
    pub kind: String,
    /// The site.
    pub site: String,
    /// The business key.
    pub business_key: String,
    /// The canonical subject.
    pub subject: String,
    /// The CANONICAL stream sequence.
    pub sequence: u64,
    /// Since when it waits, RFC 3339.
    pub since: String,
    /// Why it waits.
    pub why: String,
}

/// The gates of a host's outbound routes, and the events they hold now.
pub struct GateCheck {
    gates: BTreeMap<String, Gate>,
    visibility: Option<Visibility>,
    held: Mutex<BTreeMap<(String, String), HeldEvent>>,
    observer: Arc<Observer>,
}

impl GateCheck {
    /// The gates by route, reading the projection through `visibility`.
    pub fn new(
        gates: BTreeMap<String, Gate>,
        visibility: Option<Visibility>,
        observer: Arc<Observer>,
    ) -> Self {
        Self {
            gates,
            visibility,
            held: Mutex::default(),
            observer,
        }
    }

    /// The gate of `route`, when it has one.
    pub fn gate_of(&self, route: &str) -> Option<Gate> {
        self.gates.get(route).copied()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), HeldEvent>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The events held now, by route then event id.
    pub fn held_events(&self) -> Vec<HeldEvent> {
        self.held().values().cloned().collect()
    }

    fn count(&self, route: &str) {
        let n = self.held().keys().filter(|(r, _)| r == route).count();
        self.observer
            .metrics
            .outbound
            .held_events
            .get_or_create(&OutboundRouteOnly {
                route: route.to_owned(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Why `gate` holds `event` now, or `None` when it may pass.
    pub async fn why_held(&self, gate: Gate, event: &CanonicalEvent) -> Option<String> {
        match gate {
            Gate::LotNotOnHold => {
                let (item, lot) = match &event.data {
                    EventData::ProductionCompletion(p) => (&p.item, p.lot.as_ref()),
                    EventData::MaterialConsumption(c) => (&c.item, c.lot.as_ref()),
                    EventData::InventoryMovement(m) => (&m.item, m.lot.as_ref()),
                    _ => return None,
                };
                let lot = lot?;
                let Some(visibility) = &self.visibility else {
                    return Some("the gate cannot read the projection (no projection)".into());
                };
                // No projection has run: no holds bucket says nothing of the lot's holds.
                match visibility.has_run().await {
                    Err(e) => return Some(format!("the gate cannot read the projection: {e}")),
                    Ok((false, bucket)) => {
                        return Some(format!(
                            "no visibility projection has run (its holds bucket `{bucket}` does \
                             not exist), so the lot's holds are unknown: run it on a host \
                             (`[projection] enabled = true`)"
                        ));
                    }
                    Ok((true, _)) => {}
                }
                let filter = Filter {
                    site: Some(event.envelope.site.clone()),
                    item: None,
                    lot: Some(lot.clone()),
                };
                match visibility.holds(&filter).await {
                    Err(e) => Some(format!("the gate cannot read the projection: {e}")),
                    Ok(holds) => holds
                        .into_iter()
                        .find(|h| h.open && h.item.as_ref().is_none_or(|i| i == item))
                        .map(|h| {
                            format!(
                                "lot {lot} of item {item} is under quality hold {} at {} ({}): posted when the hold is released",
                                h.hold_id, h.site, h.reason
                            )
                        }),
                }
            }
        }
    }

    /// Waits until `gate` lets `event` pass, listed as held meanwhile. `Err` when the host
    /// stops first (the event is left to redelivery). A live event is kept from redelivery
    /// meanwhile by the lanes that hold it.
    pub async fn wait(
        &self,
        gate: Gate,
        route: &str,
        event: &CanonicalEvent,
        input: &EventInput,
        stop: &CancellationToken,
    ) -> Result<(), HostFailure> {
        let key = (route.to_owned(), event.envelope.id.clone());
        let result = loop {
            let Some(why) = self.why_held(gate, event).await else {
                break Ok(());
            };
            let listed = {
                let mut held = self.held();
                let fresh = !held.contains_key(&key);
                held.entry(key.clone())
                    .and_modify(|h| h.why = why.clone())
                    .or_insert_with(|| HeldEvent {
                        route: route.to_owned(),
                        gate: "lot-not-on-hold",
                        event_id: event.envelope.id.clone(),
                        kind: event.envelope.kind.clone(),
                        site: event.envelope.site.clone(),
                        business_key: event.envelope.business_key.clone(),
                        subject: input.subject.clone(),
                        sequence: input.sequence,
                        since: time::OffsetDateTime::now_utc()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        why: why.clone(),
                    });
                fresh
            };
            if listed {
                tracing::info!(
                    route,
                    event = &*event.envelope.id,
                    "held at the gate: {why}"
                );
                self.count(route);
            }
            tokio::select! {
                () = stop.cancelled() => break Err(HostFailure::new(anyhow::anyhow!(
                    "the host is stopping: the held event is left to redelivery"
                ))),
                () = tokio::time::sleep(RECHECK) => {}
            }
        };
        if self.held().remove(&key).is_some() {
            if result.is_ok() {
                tracing::info!(route, event = &*event.envelope.id, "released by the gate");
            }
            self.count(route);
        }
        result
    }
}
