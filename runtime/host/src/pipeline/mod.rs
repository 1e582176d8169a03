//! The message pipeline: the one way a raw message becomes canonical events (or a dead letter).
//!
//! ```text
//! RawInput ─► pick the version (active / canary / shadow) ─► call the plugin on the worker
//!   pool (admission, breaker, retries with backoff) ─► shadow comparison ─► delivery
//!   (ownership, idempotency, ordering, publish, or the dead letter) ─► Processed
//! ```
//!
//! Live lanes ([`crate::host`]), dead-letter redrive ([`crate::operations::redrive`]) and
//! `millrace replay` are thin drivers of [`Pipeline::process`]: they differ only in where the
//! input comes from and in the delivery [`Mode`]. The split between the plugin's failures and
//! the host's is made here once: a plugin failure ends in a dead letter, a host failure (the
//! worker pool stopping, NATS unavailable) in [`Processed::outcome`] being `Err`, after which
//! the driver leaves the message to be redelivered.

mod call;
pub mod input;
pub mod mapping;

use std::sync::Arc;

use async_nats::jetstream;
use tracing::Instrument;

use self::mapping::Outcome;
use crate::acknowledgements::Acknowledgements;
use crate::delivery::{Delivered, Delivering, Delivery, Mode};
use crate::observability::{At, Observer, trace};
use crate::operations::shadow::{ShadowReport, differences};
use crate::routes::Route;
use millrace_core::canonical::MappedEvent;
use millrace_core::rules::Failure;
use millrace_core::sandbox::{PluginComponent, RawMessage, RouteContext};
use millrace_core::workers::{Unavailable, WorkerPool};

pub use self::call::PluginCalls;
pub use self::input::{RawInput, plugin_headers};

/// The host could not finish a message: nothing final happened, and the message must be
/// redelivered (never dead-lettered).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct HostFailure(anyhow::Error);

impl HostFailure {
    /// A host failure for `why`.
    pub fn new(why: anyhow::Error) -> Self {
        Self(why)
    }
}

impl From<Unavailable> for HostFailure {
    fn from(e: Unavailable) -> Self {
        Self(e.into())
    }
}

/// What became of one raw message.
#[derive(Debug)]
pub struct Processed {
    /// `name@version` of the plugin version that mapped it.
    pub plugin: String,
    /// Done (its events stored, or its failure dead-lettered or reported), or a host failure
    /// after which it must be redelivered.
    pub outcome: Result<Delivered, HostFailure>,
}

/// A message [`Pipeline::begin`] took up to the publish, for [`Pipeline::finish`].
#[must_use = "a message is done only once finished"]
pub struct Begun {
    plugin: String,
    span: tracing::Span,
    delivering: Result<Delivering, HostFailure>,
}

impl Begun {
    /// The host failure that stopped the message before its events were sent, if one did.
    pub fn host_failure(&self) -> Option<&HostFailure> {
        self.delivering.as_ref().err()
    }
}

/// A raw message mapped by [`Pipeline::map`].
pub struct Mapped {
    /// The version that mapped it.
    pub plugin: Arc<PluginComponent>,
    /// Its events, checked, or the plugin's failure.
    pub outcome: Result<Vec<MappedEvent>, Failure>,
}

/// The pipeline: a worker pool for plugin calls and the delivery stage.
pub struct Pipeline {
    calls: PluginCalls,
    delivery: Delivery,
    js: jetstream::Context,
    acknowledgements: Option<Arc<Acknowledgements>>,
}

impl Pipeline {
    /// A pipeline calling plugins on `pool` and delivering through `delivery`; shadow reports
    /// are published with `js`.
    pub fn new(pool: WorkerPool, delivery: Delivery, js: jetstream::Context) -> Self {
        Self {
            calls: PluginCalls::new(pool),
            delivery,
            js,
            acknowledgements: None,
        }
    }

    /// The plugin-call stage, to share its workers with the outbound half.
    pub fn calls(&self) -> &PluginCalls {
        &self.calls
    }

    /// Answers each message it finishes live with the route's acknowledger, if it has one.
    #[must_use]
    pub fn acknowledging(mut self, acknowledgements: Option<Arc<Acknowledgements>>) -> Self {
        self.acknowledgements = acknowledgements;
        self
    }

    fn observer(&self) -> &Observer {
        self.delivery.observer()
    }

    /// Takes `input` through `route`: picks the version, maps (with retries), compares a
    /// shadow, delivers as `mode` says.
    pub async fn process(&self, route: &Route, input: &RawInput, mode: &Mode<'_>) -> Processed {
        let begun = self.begin(route, input, mode).await;
        self.finish(route, input, mode, begun).await
    }

    /// [`process`](Self::process) up to the publish: the message is mapped and its events are
    /// sent (or its dead letter stored); [`finish`](Self::finish) awaits JetStream's acks.
    /// A lane begins its next message while this one's acks are on their way.
    pub async fn begin(&self, route: &Route, input: &RawInput, mode: &Mode<'_>) -> Begun {
        // The versions the message starts on are the ones it finishes on, whatever swaps.
        let pick = route.versions().pick(&input.identity);
        let plugin = pick.plugin;
        let span = trace::message_span(
            &route.name,
            &plugin.id(),
            input.sequence,
            input.headers.as_ref(),
        );
        let shadow = pick.shadow;
        let delivering = async {
            let (mapped, attempts) = self.map_on(route, &plugin, shadow, input).await?;
            let traceparent = trace::outgoing(&span, input.headers.as_ref());
            self.delivery
                .begin(
                    route,
                    &plugin,
                    input,
                    traceparent.as_deref(),
                    mapped,
                    attempts,
                    mode,
                )
                .await
                .map_err(HostFailure)
        }
        .instrument(span.clone())
        .await;
        Begun {
            plugin: plugin.id(),
            span,
            delivering,
        }
    }

    /// Ends what [`begin`](Self::begin) started: waits until JetStream stored the events, then
    /// answers the trading partner (live, when the route has an acknowledger).
    pub async fn finish(
        &self,
        route: &Route,
        input: &RawInput,
        mode: &Mode<'_>,
        begun: Begun,
    ) -> Processed {
        let Begun {
            plugin,
            span,
            delivering,
        } = begun;
        let outcome = async {
            let delivered = delivering?.stored().await.map_err(HostFailure)?;
            if let Some(acknowledgements) =
                self.acknowledgements.as_ref().filter(|_| mode.acknowledge)
            {
                acknowledgements
                    .acknowledge(route, input, &delivered, self.observer())
                    .await
                    .map_err(HostFailure)?;
            }
            match &delivered {
                Delivered::Events { event_ids, .. } => {
                    span.record("outcome", "published");
                    span.record("event_ids", event_ids.join(",").as_str());
                }
                Delivered::Failed(failure) => {
                    span.record("outcome", failure.class());
                }
            }
            Ok(delivered)
        }
        .instrument(span.clone())
        .await;
        Processed { plugin, outcome }
    }

    /// The mapping half of [`begin`](Self::begin), for a driver that delivers elsewhere (the
    /// bench's core-NATS arm): picks the version, maps `input` (admission, breaker, retries,
    /// the event checks) and compares a shadow. `Ok` holds the version and its outcome.
    pub async fn map(&self, route: &Route, input: &RawInput) -> Result<Mapped, HostFailure> {
        let pick = route.versions().pick(&input.identity);
        let (outcome, _) = self.map_on(route, &pick.plugin, pick.shadow, input).await?;
        Ok(Mapped {
            plugin: pick.plugin,
            outcome,
        })
    }

    /// Maps `input` with `plugin`, then runs the `shadow` candidate when there is one.
    async fn map_on(
        &self,
        route: &Route,
        plugin: &Arc<PluginComponent>,
        shadow: Option<Arc<PluginComponent>>,
        input: &RawInput,
    ) -> Result<(Result<Vec<MappedEvent>, Failure>, u32), HostFailure> {
        // Built once and shared with the worker (and each retry) rather than copied per try.
        let raw = Arc::new(input.message());
        self.observer().message_in(At {
            route: &route.name,
            plugin_version: &plugin.id(),
        });
        let (mapped, attempts) = self.call(route, plugin, &raw).await?;
        if let Some(candidate) = shadow {
            self.shadow(route, plugin, candidate, raw, &mapped, input.sequence);
        }
        Ok((mapped, attempts))
    }

    /// Maps the raw message, through the plugin-call stage (admission, breaker, retries);
    /// the events are checked by the rules on the worker thread.
    async fn call(
        &self,
        route: &Route,
        plugin: &Arc<PluginComponent>,
        raw: &Arc<RawMessage>,
    ) -> Result<(Result<Vec<MappedEvent>, Failure>, u32), HostFailure> {
        let limits = plugin.limits_on(&route.context.limits);
        let raw = raw.clone();
        self.calls
            .call(self.observer(), route, plugin, move |session| {
                millrace_core::workers::map(session, &raw, &limits)
            })
            .await
    }

    /// Runs a shadow candidate on the same message, beside the live flow, and publishes where
    /// it differs from the active version's outcome. Never affects the message's delivery, nor
    /// delays it: the run is a task of its own, its call runs on the worker pool's spare threads
    /// (never holding a live call's worker), and when the route already has
    /// [`SHADOW_RUNS`](crate::routes::SHADOW_RUNS) in flight the message is not shadowed
    /// (counted in `millrace_shadows_skipped_total`).
    fn shadow(
        &self,
        route: &Route,
        active: &PluginComponent,
        candidate: Arc<PluginComponent>,
        raw: Arc<RawMessage>,
        outcome: &Result<Vec<MappedEvent>, Failure>,
        sequence: u64,
    ) {
        let Ok(in_flight) = route.shadow_runs.clone().try_acquire_owned() else {
            self.observer().shadow_skipped(At {
                route: &route.name,
                plugin_version: &candidate.id(),
            });
            tracing::debug!(
                route = &*route.name,
                raw_sequence = sequence,
                "not shadowed: the route's shadow runs are all in flight"
            );
            return;
        };
        let run = ShadowRun {
            route: route.name.clone(),
            context: route.context.clone(),
            calls: self.calls.clone(),
            js: self.js.clone(),
            active: active.id(),
            outcome: outcome.clone(),
            sequence,
        };
        tokio::spawn(async move {
            run.run(candidate, Arc::unwrap_or_clone(raw)).await;
            drop(in_flight);
        });
    }

    /// Takes no more plugin calls: messages still arriving end as host failures (redelivered).
    pub fn close(&self) {
        self.calls.close();
    }

    /// Stops the worker threads once the calls queued are done.
    pub async fn shutdown(self) {
        self.calls.shutdown().await;
    }
}

/// One shadow run, owning what it needs so that it runs beside the live flow.
struct ShadowRun {
    route: Arc<str>,
    context: Arc<RouteContext>,
    calls: PluginCalls,
    js: jetstream::Context,
    active: String,
    outcome: Result<Vec<MappedEvent>, Failure>,
    sequence: u64,
}

impl ShadowRun {
    /// Calls `candidate` on `raw` (one try, on the worker pool's spare threads, so it never
    /// holds a live call's worker) and publishes a report when its outcome differs.
    async fn run(self, candidate: Arc<PluginComponent>, raw: RawMessage) {
        let (route, sequence) = (&*self.route, self.sequence);
        let raw_subject = raw.subject.clone();
        let candidate_id = candidate.id();
        let limits = candidate.limits_on(&self.context.limits);
        let shadowed = self
            .calls
            .pool()
            .spare(candidate, self.context, move |session| {
                millrace_core::workers::map(session, &raw, &limits)
            })
            .await;
        let Ok(shadowed) = shadowed else { return };
        let differences = differences(&Outcome::from(self.outcome), &Outcome::from(shadowed));
        if differences.is_empty() {
            tracing::debug!(route, raw_sequence = sequence, "shadow agrees");
            return;
        }
        tracing::info!(
            route,
            raw_sequence = sequence,
            candidate = candidate_id,
            differences = differences.len(),
            "shadow differs"
        );
        let report = ShadowReport {
            route: route.to_owned(),
            raw_subject,
            raw_sequence: sequence,
            active: self.active,
            candidate: candidate_id,
            differences,
            omitted: None,
        };
        if let Err(e) = report.publish(&self.js).await {
            tracing::warn!(route, "cannot publish a shadow report: {e}");
        }
    }
}
