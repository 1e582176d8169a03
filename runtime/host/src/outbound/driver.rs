//! The outbound stage: one canonical event through its route's poster plugin to its targets.
//!
//! ```text
//! CloudEvent ─► pick the versions (active / canary / shadow) ─► gate (held until allowed)
//!   ─► render on the worker pool (the plugin-call stage inbound mapping uses: admission,
//!      breaker, retries) ─► shadow: the candidate renders too, the requests are compared,
//!      never sent ─► for each request, in order: target (breaker, rate limit, Idempotency-Key)
//!   ─► interpret ─► posted (acknowledgement) / rejected (dead letter) / try again (backoff)
//! ```
//!
//! Plugin failures (render errors, traps after their retries, requests the host refuses) and a
//! target's rejection end in a dead letter on `dlq.outbound.<route>`. A target that does not
//! answer, or answers "try again", keeps the event pending: retried with backoff for as long as
//! it takes (the breaker pauses the route while the target is down). A host failure (NATS
//! unavailable, the host stopping) leaves the event to redelivery; the target's deduplication
//! on `Idempotency-Key` makes the second send harmless.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::acknowledgement::{Acknowledgement, PostingOutcome};
use super::gate::GateCheck;
use super::input::EventInput;
use super::letter::OutboundLetter;
use super::target::{Target, TargetError};
use crate::delivery::Mode;
use crate::observability::outbound::{DelayLabels, OutcomeLabels, ReasonLabels};
use crate::observability::{At, Observer};
use crate::operations::shadow::{ShadowReport, differences_of};
use crate::pipeline::{HostFailure, PluginCalls};
use crate::routes::Route;
use millrace_core::posting::{CanonicalEvent, Request, Response, Verdict};
use millrace_core::rules::Failure;
use millrace_core::sandbox::PluginComponent;

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Every request posted (the document ids, in request order); none when the plugin
    /// rendered no requests.
    Posted(Vec<String>),
    /// Dead-lettered (or, on redrive, failed again) for this reason.
    Rejected(String),
}

/// The outbound driver of a host: shared by every outbound route's lanes and by redrive.
pub struct OutboundDriver {
    calls: PluginCalls,
    targets: BTreeMap<String, Arc<Target>>,
    route_targets: BTreeMap<String, Vec<String>>,
    gates: GateCheck,
    js: jetstream::Context,
    observer: Arc<Observer>,
}

impl OutboundDriver {
    /// A driver calling plugins through `calls`, posting to `targets`.
    pub fn new(
        calls: PluginCalls,
        targets: BTreeMap<String, Arc<Target>>,
        route_targets: BTreeMap<String, Vec<String>>,
        gates: GateCheck,
        js: jetstream::Context,
        observer: Arc<Observer>,
    ) -> Self {
        Self {
            calls,
            targets,
            route_targets,
            gates,
            js,
            observer,
        }
    }

    /// The targets of a route.
    pub fn targets_of(&self, route: &str) -> Vec<Arc<Target>> {
        self.route_targets
            .get(route)
            .into_iter()
            .flatten()
            .filter_map(|t| self.targets.get(t).cloned())
            .collect()
    }

    /// The target `name`.
    pub fn target(&self, name: &str) -> Option<&Arc<Target>> {
        self.targets.get(name)
    }

    /// The gates, for the admin API's list of held events.
    pub fn gates(&self) -> &GateCheck {
        &self.gates
    }

    /// Whether `route`'s gate holds the event of `payload` now (an event that does not read
    /// is not held: [`OutboundDriver::process`] dead-letters it).
    pub async fn held_at_gate(&self, route: &Route, payload: &[u8]) -> bool {
        let Some(gate) = self.gates.gate_of(&route.name) else {
            return false;
        };
        match CanonicalEvent::from_payload(payload) {
            Ok(event) => self.gates.why_held(gate, &event).await.is_some(),
            Err(_) => false,
        }
    }

    /// Posts one event through `route`. `Err` is a host failure: nothing final happened and
    /// the event must be redelivered. (A live event is kept from redelivery meanwhile by the
    /// lanes that hold it, see [`crate::lanes`].)
    pub async fn process(
        &self,
        route: &Route,
        input: &EventInput,
        mode: &Mode<'_>,
        stop: &CancellationToken,
    ) -> Result<Posted, HostFailure> {
        let event = match CanonicalEvent::from_payload(&input.payload) {
            Ok(event) => event,
            Err(e) => {
                let letter =
                    OutboundLetter::new(route, input, None, "not-canonical", e.to_string());
                return self.dead_letter(route, letter, mode).await;
            }
        };
        let pick = route.versions().pick(&event.envelope.id);
        let plugin = pick.plugin;
        if let Some(gate) = self.gates.gate_of(&route.name) {
            self.gates
                .wait(gate, &route.name, &event, input, stop)
                .await?;
        }
        let (rendered, attempts) = {
            let event = event.clone();
            self.calls
                .call(&self.observer, route, &plugin, move |session| {
                    session.render(&event).map_err(Failure::from)
                })
                .await?
        };
        if let Some(candidate) = pick.shadow {
            self.shadow(route, &plugin, candidate, &event, input, &rendered);
        }
        let requests = match rendered {
            Ok(requests) => requests,
            Err(failure) => {
                self.rejected_metric("render", failure.kind());
                let letter = OutboundLetter::new(
                    route,
                    input,
                    Some(&plugin),
                    failure.kind(),
                    failure.message(),
                )
                .after(attempts);
                return self.dead_letter(route, letter, mode).await;
            }
        };
        let allowed = self.route_targets.get(&*route.name);
        if let Some(stray) = requests
            .iter()
            .find(|r| !allowed.is_some_and(|a| a.contains(&r.target)))
        {
            let letter = OutboundLetter::new(
                route,
                input,
                Some(&plugin),
                "refused-request",
                format!(
                    "the plugin rendered a request to target `{}`, which route `{}` does not list",
                    stray.target, route.name
                ),
            )
            .with_requests(&requests);
            return self.dead_letter(route, letter, mode).await;
        }
        let mut documents = Vec::with_capacity(requests.len());
        let mut sent_to: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, request) in requests.iter().enumerate() {
            let nth = sent_to.entry(&request.target).or_default();
            // The event id is the key of its first request to a target; a second request of
            // the same event to the same target needs a key of its own.
            let key = match *nth {
                0 => event.envelope.id.clone(),
                n => format!("{}-{n}", event.envelope.id),
            };
            *nth += 1;
            let Some(target) = self.targets.get(&request.target).cloned() else {
                continue;
            };
            let source_time = OffsetDateTime::parse(
                &event.envelope.time,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
            let metrics = &self.observer.metrics.outbound;
            metrics.pending_started(&target.name, &key, source_time);
            let outcome = self
                .post(route, &plugin, &target, &event, request, &key, stop)
                .await;
            metrics.pending_ended(&target.name, &key);
            let (verdict, response) = match outcome? {
                Sent::Answered(verdict, response) => (verdict, response),
                Sent::Refused(why) => {
                    self.rejected_metric(&target.name, "refused-request");
                    let letter =
                        OutboundLetter::new(route, input, Some(&plugin), "refused-request", why)
                            .with_requests(&requests)
                            .at_request(index, None);
                    return self.dead_letter(route, letter, mode).await;
                }
                Sent::GaveUp(why, tries, answer) => {
                    self.rejected_metric(&target.name, "gave-up");
                    let after = target.config.retry.give_up_after.map(|a| a.get());
                    let letter = OutboundLetter::new(
                        route,
                        input,
                        Some(&plugin),
                        "gave-up",
                        format!(
                            "target `{}` still could not take it after {tries} tries, past its \
                             retry.give_up_after ({}s): {why}",
                            target.name,
                            after.unwrap_or_default().as_secs()
                        ),
                    )
                    .with_requests(&requests)
                    .at_request(index, answer);
                    return self.dead_letter(route, letter, mode).await;
                }
                Sent::PluginFailed(failure, response, attempts) => {
                    self.rejected_metric(&target.name, failure.kind());
                    // The target answered, and may have booked it: the letter keeps the answer
                    // (a document id in a 201 is no longer lost), and a redrive sends the
                    // request again under the same key, which the target's deduplication meets.
                    let letter = OutboundLetter::new(
                        route,
                        input,
                        Some(&plugin),
                        failure.kind(),
                        format!(
                            "target `{}` answered {}, which the plugin failed to read, so the \
                             target may hold a booking: {}",
                            target.name,
                            response.status,
                            failure.message()
                        ),
                    )
                    .with_requests(&requests)
                    .at_request(index, Some(response))
                    .after(attempts);
                    return self.dead_letter(route, letter, mode).await;
                }
            };
            let acknowledgement = Acknowledgement::new(
                &route.name,
                &plugin.id(),
                &event,
                index,
                &key,
                &target.name,
                &verdict,
                &response,
                source_time,
            );
            self.acknowledge(&acknowledgement).await?;
            match verdict {
                Verdict::Posted(document) => {
                    documents.push(document);
                }
                Verdict::Rejected(reason) => {
                    self.rejected_metric(&target.name, "rejected");
                    let letter = OutboundLetter::new(
                        route,
                        input,
                        Some(&plugin),
                        "rejected",
                        format!("target `{}` rejected it: {reason}", target.name),
                    )
                    .with_requests(&requests)
                    .at_request(index, Some(response));
                    return self.dead_letter(route, letter, mode).await;
                }
                Verdict::TryAgain(_) => {}
            }
        }
        Ok(Posted::Posted(documents))
    }

    fn rejected_metric(&self, target: &str, reason: &str) {
        self.observer
            .metrics
            .outbound
            .rejections
            .get_or_create(&ReasonLabels {
                target: target.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sends one request until the plugin reads a final verdict from an answer: waits on the
    /// target's breaker and rate limit, retries with backoff what the target could not take.
    #[allow(clippy::too_many_arguments)]
    async fn post(
        &self,
        route: &Route,
        plugin: &Arc<PluginComponent>,
        target: &Target,
        event: &CanonicalEvent,
        request: &Request,
        key: &str,
        stop: &CancellationToken,
    ) -> Result<Sent, HostFailure> {
        let metrics = &self.observer.metrics.outbound;
        let retried = |why: &str| {
            metrics
                .retries
                .get_or_create(&ReasonLabels {
                    target: target.name.to_string(),
                    reason: why.to_owned(),
                })
                .inc();
        };
        let mut attempt = 0u32;
        let mut first_sent = None;
        loop {
            if let Some(wait) = target.breaker.wait(key) {
                self.wait(wait, stop).await?;
                continue;
            }
            // Frees the probe, if this request is it, on every way out that records no outcome.
            let _unsent = Unsent { target, key };
            tokio::select! {
                () = stop.cancelled() => return Err(stopping()),
                () = target.paced() => {}
            }
            let first = *first_sent.get_or_insert_with(tokio::time::Instant::now);
            let sent = tokio::select! {
                () = stop.cancelled() => return Err(stopping()),
                sent = target.send(request, key, &event.envelope.site) => sent,
            };
            let response = match sent {
                Ok(response) => response,
                Err(TargetError::Refused(why)) => return Ok(Sent::Refused(why)),
                Err(TargetError::Unreachable(why)) => {
                    self.breaker_record(target, key, false);
                    attempt += 1;
                    if target.gives_up(first) {
                        return Ok(Sent::GaveUp(format!("unreachable: {why}"), attempt, None));
                    }
                    retried("unreachable");
                    target.retrying(&format!("unreachable: {why}"));
                    tracing::info!(
                        route = &*route.name,
                        target = &*target.name,
                        event = &*event.envelope.id,
                        attempt,
                        "target unreachable, retrying: {why}"
                    );
                    self.wait(target.backoff(attempt), stop).await?;
                    continue;
                }
            };
            self.breaker_record(target, key, response.status < 500);
            if response.status == 429 {
                target
                    .pause(target.rate_limited_pause(&response, attempt + 1))
                    .await;
                retried("rate-limited");
            }
            let (interpreted, attempts) = {
                let (event, request, response) = (event.clone(), request.clone(), response.clone());
                self.calls
                    .call(&self.observer, route, plugin, move |session| {
                        session
                            .interpret(&event, &request, &response)
                            .map_err(Failure::from)
                    })
                    .await?
            };
            match interpreted {
                Err(failure) => return Ok(Sent::PluginFailed(failure, response, attempts)),
                Ok(Verdict::TryAgain(why)) => {
                    attempt += 1;
                    // Plugins often name the status themselves ("status 500"): said once.
                    let status = format!("status {}", response.status);
                    let why = if why.starts_with(&status) {
                        why
                    } else {
                        format!("{status}: {why}")
                    };
                    if target.gives_up(first) {
                        return Ok(Sent::GaveUp(why, attempt, Some(response)));
                    }
                    target.retrying(&why);
                    if response.status != 429 {
                        retried("try-again");
                    }
                    // As loud as an unreachable target: an expired credential or a wrong URL
                    // (a 401, a redirect) keeps every event pending, and only this says why.
                    tracing::info!(
                        route = &*route.name,
                        target = &*target.name,
                        event = &*event.envelope.id,
                        attempt,
                        status = response.status,
                        "target asks to try again: {why}"
                    );
                    // A 429 already paused the target's pace; anything else backs off.
                    if response.status != 429 {
                        self.wait(target.backoff(attempt), stop).await?;
                    }
                }
                Ok(verdict) => {
                    target.settled();
                    return Ok(Sent::Answered(verdict, response));
                }
            }
        }
    }

    fn breaker_record(&self, target: &Target, key: &str, answered: bool) {
        if target.breaker.record(key, answered) {
            tracing::warn!(
                target = &*target.name,
                "target down: its breaker is open, the routes posting to it pause"
            );
        }
        self.observer
            .metrics
            .outbound
            .breaker_open
            .get_or_create(&crate::observability::outbound::TargetOnly {
                target: target.name.to_string(),
            })
            .set(i64::from(target.breaker.is_open()));
    }

    /// Waits `how_long`, or fails when the host stops.
    async fn wait(&self, how_long: Duration, stop: &CancellationToken) -> Result<(), HostFailure> {
        tokio::select! {
            () = stop.cancelled() => Err(stopping()),
            () = tokio::time::sleep(how_long) => Ok(()),
        }
    }

    async fn acknowledge(&self, acknowledgement: &Acknowledgement) -> Result<(), HostFailure> {
        let metrics = &self.observer.metrics.outbound;
        let outcome = match acknowledgement.outcome {
            PostingOutcome::Posted => "posted",
            PostingOutcome::Rejected => "rejected",
        };
        let body = serde_json::to_vec(acknowledgement)
            .map_err(|e| HostFailure::new(anyhow::anyhow!("encoding an acknowledgement: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_MESSAGE_ID,
            acknowledgement.message_id().as_str(),
        );
        headers.insert("Content-Type", "application/json");
        let subject =
            millrace_core::subjects::posting(&acknowledgement.target, &acknowledgement.site);
        publish(&self.js, subject, headers, body.into()).await?;
        metrics
            .postings
            .get_or_create(&OutcomeLabels {
                route: acknowledgement.route.clone(),
                target: acknowledgement.target.clone(),
                outcome: outcome.into(),
            })
            .inc();
        if acknowledgement.outcome == PostingOutcome::Posted {
            metrics
                .posting_delay_seconds
                .get_or_create(&DelayLabels {
                    site: acknowledgement.site.clone(),
                    kind: acknowledgement.kind.clone(),
                    target: acknowledgement.target.clone(),
                })
                .observe(acknowledgement.delay_seconds.max(0.0));
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        route: &Route,
        letter: OutboundLetter,
        mode: &Mode<'_>,
    ) -> Result<Posted, HostFailure> {
        let reason = format!("{}: {}", letter.kind, letter.reason);
        tracing::warn!(
            route = &*route.name,
            event = letter.event_id.as_deref().unwrap_or("?"),
            "outbound dead letter: {reason}"
        );
        if mode.dead_letter {
            let headers = letter.headers();
            let room = millrace_transport::max_payload(&self.js.client())
                .saturating_sub(millrace_transport::message_size(Some(&headers), 0));
            let body = letter
                .encode(room)
                .map_err(|e| HostFailure::new(anyhow::anyhow!("encoding a dead letter: {e}")))?;
            publish(
                &self.js,
                millrace_core::subjects::outbound_dead_letters(&route.name),
                headers,
                body.into(),
            )
            .await?;
        }
        Ok(Posted::Rejected(reason))
    }

    /// Renders the event with the shadow candidate too and reports where its requests differ.
    /// Never sends them, never affects the posting, nor delays it: as an inbound route's
    /// shadow, the run is a task of its own, its call on the worker pool's spare threads, and a
    /// route with [`SHADOW_RUNS`](crate::routes::SHADOW_RUNS) in flight leaves the event
    /// unshadowed (counted in `millrace_shadows_skipped_total`).
    fn shadow(
        &self,
        route: &Route,
        active: &PluginComponent,
        candidate: Arc<PluginComponent>,
        event: &CanonicalEvent,
        input: &EventInput,
        rendered: &Result<Vec<Request>, Failure>,
    ) {
        let Ok(in_flight) = route.shadow_runs.clone().try_acquire_owned() else {
            self.observer.shadow_skipped(At {
                route: &route.name,
                plugin_version: &candidate.id(),
            });
            return;
        };
        let (calls, js, context) = (self.calls.clone(), self.js.clone(), route.context.clone());
        let (event, rendered) = (event.clone(), rendered.clone());
        let report = ShadowReport {
            route: route.name.to_string(),
            raw_subject: input.subject.clone(),
            raw_sequence: input.sequence,
            active: active.id(),
            candidate: candidate.id(),
            differences: Vec::new(),
            omitted: None,
        };
        tokio::spawn(async move {
            let shadowed = calls
                .pool()
                .spare(candidate, context, move |session| {
                    session.render(&event).map_err(Failure::from)
                })
                .await;
            let Ok(shadowed) = shadowed else { return };
            let as_json = |r: &Result<Vec<Request>, Failure>| match r {
                Ok(requests) => serde_json::json!({ "requests": requests }),
                Err(f) => {
                    serde_json::json!({ "error": { "kind": f.kind(), "message": f.message() } })
                }
            };
            let differences = differences_of(&as_json(&rendered), &as_json(&shadowed));
            if differences.is_empty() {
                return;
            }
            let report = ShadowReport {
                differences,
                ..report
            };
            let route = report.route.clone();
            if let Err(e) = report.publish(&js).await {
                tracing::warn!(route, "cannot publish a shadow report: {e}");
            }
            drop(in_flight);
        });
    }
}

/// How one request ended.
enum Sent {
    /// The plugin read a final verdict (posted or rejected) from this answer.
    Answered(Verdict, Response),
    /// The host refused to send it.
    Refused(String),
    /// Interpreting this answer failed (a trap after its retries, how many calls).
    PluginFailed(Failure, Response, u32),
    /// The target still could not take it (why, after how many tries, its last answer) when
    /// its `retry.give_up_after` had passed.
    GaveUp(String, u32, Option<Response>),
}

/// On drop, frees the target's probe if the request `key` took it and recorded no outcome
/// (refused before sending, the host stopping, the call's future dropped).
struct Unsent<'a> {
    target: &'a Target,
    key: &'a str,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        self.target.breaker.release(self.key);
    }
}

fn stopping() -> HostFailure {
    HostFailure::new(anyhow::anyhow!(
        "the host is stopping: the event is left to redelivery"
    ))
}

/// Publishes and waits for JetStream's acknowledgement; a failure is the host's.
async fn publish(
    js: &jetstream::Context,
    subject: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(), HostFailure> {
    js.publish_with_headers(subject.clone(), headers, body)
        .await
        .map_err(|e| HostFailure::new(anyhow::anyhow!("cannot publish to {subject}: {e}")))?
        .await
        .map_err(|e| {
            HostFailure::new(anyhow::anyhow!(
                "{subject}: the publish was not acknowledged: {e}"
            ))
        })?;
    Ok(())
}
