//! EDI functional acknowledgements: after the pipeline finishes a raw interchange (its events
//! published, or its dead letter written), the route's acknowledger plugin answers it with what
//! the trading partner expects (an X12 997, an EDIFACT CONTRL), published on
//! `ack.<route>.<partner>` (stream `streams.acks`).
//!
//! ```text
//! Pipeline::process ─► Delivered ─► Acknowledgements::acknowledge
//!     claim of this raw message? ── yes ─► its number and time
//!         └─ no: call the plugin once to learn the partner, draw the next number of
//!            `<route>.<partner>` (compare-and-swap counter), claim it for the message
//!     call the plugin with the number and time ─► publish, Nats-Msg-Id `ack:<route>:<raw id>`
//! ```
//!
//! Only the live flow acknowledges (`Mode::acknowledge`): a redrive or a replay reprocesses
//! what the partner was already answered for. A failure of NATS here is a host failure (the
//! raw message is redelivered and the same claim gives the same bytes, which the stream's
//! duplicate window drops); a plugin that refuses, traps or breaches a limit is logged and
//! publishes nothing, and never fails the raw message.

pub mod control;
pub mod fixtures;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::header;
use async_nats::jetstream;

use self::control::{Claim, ControlNumbers};
use crate::delivery::Delivered;
use crate::observability::{At, Observer};
use crate::pipeline::input::RawInput;
use crate::registry::store::Registry;
use crate::registry::{AdmissionBounds, LocalPlugin};
use crate::routes::Route;
use millrace_core::config::{Config, PluginSource};
use millrace_core::rules::Failure;
use millrace_core::sandbox::{
    ACKNOWLEDGER_WIT, AckControl, AckDocument, AcknowledgeError, AcknowledgerComponent, CallError,
    InboundOutcome, MapError, Sandbox,
};
use millrace_transport::{Replication, replicated_key_value};

/// Header of a published acknowledgement: the identity of the raw message it answers.
pub const RAW_ID_HEADER: &str = "Millrace-Raw-Id";
/// Header of a published acknowledgement: its control number.
pub const CONTROL_NUMBER_HEADER: &str = "Millrace-Control-Number";
/// Header of a published acknowledgement: `name@version` of the plugin that made it.
pub const PLUGIN_HEADER: &str = "Millrace-Plugin";

/// The acknowledgers of the routes that name one, and where their control numbers come from.
pub struct Acknowledgements {
    acknowledgers: HashMap<String, Arc<AcknowledgerComponent>>,
    numbers: ControlNumbers,
    js: jetstream::Context,
}

impl Acknowledgements {
    /// Loads the acknowledger of every route that names one and opens the control-number
    /// buckets; `None` when no route acknowledges.
    pub async fn open(
        config: &Config,
        js: &jetstream::Context,
        sandbox: &Sandbox,
        registry: Option<&Registry>,
    ) -> anyhow::Result<Option<Self>> {
        let mut acknowledgers = HashMap::new();
        for (route, settings) in &config.routes {
            let Some(source) = settings.acknowledger_source() else {
                continue;
            };
            let plugin = load(config, sandbox, registry, route, source).await?;
            tracing::info!(
                route,
                acknowledger = plugin.id(),
                "acknowledging interchanges"
            );
            acknowledgers.insert(route.clone(), Arc::new(plugin));
        }
        if acknowledgers.is_empty() {
            return Ok(None);
        }
        let replication = Replication::of(&config.streams);
        let governance = &config.governance;
        let counters = replicated_key_value(
            js,
            &governance.control_number_bucket,
            Duration::ZERO,
            "millrace: the last acknowledgement control number, per route and partner",
            &replication,
        )
        .await?;
        let claims = replicated_key_value(
            js,
            &governance.acknowledgement_bucket,
            governance.horizon.get(),
            "millrace: the control number each raw message was acknowledged with",
            &replication,
        )
        .await?;
        Ok(Some(Self {
            acknowledgers,
            numbers: ControlNumbers::new(counters, claims),
            js: js.clone(),
        }))
    }

    /// Acknowledges `input`, which `route` delivered as `delivered`; each plugin call is
    /// counted with `observer` as a mapper's is. An `Err` is a host failure: the raw message
    /// must be redelivered.
    pub async fn acknowledge(
        &self,
        route: &Route,
        input: &RawInput,
        delivered: &Delivered,
        observer: &Observer,
    ) -> anyhow::Result<()> {
        let Some(plugin) = self.acknowledgers.get(&*route.name) else {
            return Ok(());
        };
        let outcome = match delivered {
            Delivered::Events {
                published,
                duplicates,
                existing,
                ..
            } => InboundOutcome::Mapped(
                u32::try_from(published + duplicates + existing).unwrap_or(u32::MAX),
            ),
            Delivered::Failed(failure) => {
                InboundOutcome::Failed(format!("{}: {}", failure.kind(), failure.message()))
            }
        };
        let claim = match self.numbers.claimed(&route.name, &input.identity).await? {
            Some(claim) => claim,
            None => {
                // The counter is per partner, and only the plugin knows the partner: a first
                // call with number 0 names it (a plugin is a pure function of its input).
                let now = now();
                let probe = AckControl {
                    number: 0,
                    now: now.clone(),
                };
                let Some(made) = self
                    .call(plugin, route, input, observer, &outcome, probe)
                    .await?
                else {
                    return Ok(());
                };
                self.numbers
                    .claim(&route.name, &input.identity, &made.partner, now)
                    .await?
            }
        };
        let control = AckControl {
            number: claim.number,
            now: claim.now.clone(),
        };
        let Some(made) = self
            .call(plugin, route, input, observer, &outcome, control)
            .await?
        else {
            return Ok(());
        };
        if made.partner != claim.partner {
            let why = format!(
                "the acknowledger named partner {} after {}: it is not a pure function of its input; nothing published",
                millrace_core::posting::clip(made.partner),
                claim.partner
            );
            failed(observer, route, plugin, input, why);
            return Ok(());
        }
        self.publish(route, input, plugin, observer, &claim, made)
            .await
    }

    /// Calls the plugin off the reactor for `input` of `route`, timed and counted by the
    /// observer (`millrace_plugin_call_seconds`, `millrace_plugin_failures_total` under the
    /// acknowledger's `name@version`); `None` when it made nothing to publish (it wants no
    /// acknowledgement, or it failed, which is logged).
    async fn call(
        &self,
        plugin: &Arc<AcknowledgerComponent>,
        route: &Route,
        input: &RawInput,
        observer: &Observer,
        outcome: &InboundOutcome,
        control: AckControl,
    ) -> anyhow::Result<Option<AckDocument>> {
        let (plugin, context, raw, outcome) = (
            plugin.clone(),
            route.context.clone(),
            input.message(),
            outcome.clone(),
        );
        let id = plugin.id();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            plugin.acknowledge(&context, &raw, &outcome, &control)
        })
        .await
        .context("an acknowledger call was interrupted")?;
        // A partner that is no subject token cannot name the acknowledgement's subject: a
        // failure of the plugin's, counted as one (it was only logged, and whole: a 200 KiB
        // name made a 200 KiB log line per message).
        let result = match result {
            Ok(Some(made)) if !millrace_core::config::is_token(&made.partner) => Err(
                AcknowledgeError::Call(CallError::Map(MapError::other(format!(
                    "the acknowledger named partner {:?}, which is no subject token; nothing published",
                    millrace_core::posting::clip(made.partner)
                )))),
            ),
            result => result,
        };
        let failure = match &result {
            Ok(_) => None,
            // A refusal is the plugin's own error, counted as a mapper's `map-error` is.
            Err(AcknowledgeError::Refused(message)) => Some(Failure::Call(CallError::Map(
                MapError::malformed(message.clone()),
            ))),
            Err(AcknowledgeError::Call(e)) => Some(Failure::Call(e.clone())),
        };
        let at = At {
            route: &route.name,
            plugin_version: &id,
        };
        observer.plugin_call(at, started.elapsed(), failure.as_ref());
        match result {
            Ok(made) => Ok(made),
            Err(e @ (AcknowledgeError::Refused(_) | AcknowledgeError::Call(_))) => {
                tracing::warn!(
                    route = &*route.name,
                    acknowledger = id,
                    raw_id = input.identity.as_str(),
                    "no acknowledgement: {e}"
                );
                Ok(None)
            }
        }
    }

    async fn publish(
        &self,
        route: &Route,
        input: &RawInput,
        plugin: &AcknowledgerComponent,
        observer: &Observer,
        claim: &Claim,
        made: AckDocument,
    ) -> anyhow::Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        let message_id = format!("ack:{}:{}", route.name, input.identity);
        headers.insert(header::NATS_MESSAGE_ID, message_id.as_str());
        headers.insert(RAW_ID_HEADER, input.identity.as_str());
        headers.insert(CONTROL_NUMBER_HEADER, claim.number.to_string().as_str());
        headers.insert(PLUGIN_HEADER, plugin.id().as_str());
        let subject = millrace_core::subjects::acknowledgement(&route.name, &made.partner);
        let max = millrace_transport::max_payload(&self.js.client());
        if let Err(too_large) = millrace_transport::fits(Some(&headers), made.document.len(), max) {
            // As with a document the acknowledger refused: the raw message is delivered, the
            // partner gets no acknowledgement, the failure is counted and the log says why.
            let why = format!("no acknowledgement: the document is {too_large}");
            failed(observer, route, plugin, input, why);
            return Ok(());
        }
        self.js
            .publish_with_headers(subject.clone(), headers, made.document.into())
            .await
            .context("cannot publish an acknowledgement")?
            .await
            .context("JetStream did not store an acknowledgement")?;
        tracing::info!(
            route = &*route.name,
            raw_id = input.identity.as_str(),
            control_number = claim.number,
            subject,
            "acknowledgement published"
        );
        Ok(())
    }
}

/// Counts the acknowledger's output the host refused after its call as a failure of the plugin's
/// (`millrace_plugin_failures_total`), and logs why.
fn failed(
    observer: &Observer,
    route: &Route,
    plugin: &AcknowledgerComponent,
    input: &RawInput,
    why: String,
) {
    let id = plugin.id();
    let at = At {
        route: &route.name,
        plugin_version: &id,
    };
    tracing::warn!(
        route = &*route.name,
        acknowledger = id,
        raw_id = input.identity.as_str(),
        "{why}"
    );
    observer.plugin_failed(at, &Failure::Call(CallError::Map(MapError::other(why))));
}

/// Loads the acknowledger `source` names for `route`: a deployed version (fetched, signature
/// checked, admitted by its golden fixtures) or a plugin folder or component on disk.
pub async fn load(
    config: &Config,
    sandbox: &Sandbox,
    registry: Option<&Registry>,
    route: &str,
    source: PluginSource,
) -> anyhow::Result<AcknowledgerComponent> {
    match source {
        PluginSource::Registry(id) => {
            let registry = registry.with_context(|| {
                format!(
                    "route `{route}` names the deployed acknowledger {id}, but there is no registry"
                )
            })?;
            let (record, component) = registry.fetch(&id).await?;
            crate::registry::signing::check(&record, &config.registry)?;
            let sandbox = sandbox.clone();
            tokio::task::spawn_blocking(move || {
                fixtures::admit(&sandbox, &record, &component, &AdmissionBounds::default())
            })
            .await
            .context("loading an acknowledger was interrupted")?
        }
        PluginSource::Path(path) => {
            if config.registry.require_signatures {
                anyhow::bail!(
                    "route `{route}` loads its acknowledger {} from disk, but registry.require_signatures is on: deploy it signed and name it as name@version",
                    path.display()
                );
            }
            let path = config.resolve(&path);
            let sandbox = sandbox.clone();
            let route = route.to_owned();
            tokio::task::spawn_blocking(move || load_local(&sandbox, &path))
                .await
                .context("loading an acknowledger was interrupted")?
                .with_context(|| format!("route `{route}`: cannot load its acknowledger"))
        }
    }
}

/// An acknowledger folder (built when needed) or component on disk.
pub fn load_local(sandbox: &Sandbox, path: &Path) -> anyhow::Result<AcknowledgerComponent> {
    load_located(sandbox, &LocalPlugin::locate(path)?)
}

/// An acknowledger already located on disk (its folder checked and built).
pub fn load_located(
    sandbox: &Sandbox,
    plugin: &LocalPlugin,
) -> anyhow::Result<AcknowledgerComponent> {
    if let Some(manifest) = &plugin.manifest
        && (!manifest.is_acknowledger() || manifest.wit != ACKNOWLEDGER_WIT)
    {
        anyhow::bail!(
            "{} is not an acknowledger: its plugin.toml needs world = \"acknowledger\" and wit = \"{ACKNOWLEDGER_WIT}\"",
            plugin.dir.as_deref().unwrap_or(&plugin.component).display()
        );
    }
    let bytes = std::fs::read(&plugin.component)
        .with_context(|| format!("cannot read component {}", plugin.component.display()))?;
    let component = sandbox.load_acknowledger(&plugin.name(), &plugin.version(), &bytes)?;
    Ok(match &plugin.manifest {
        Some(manifest) => component.with_limits(manifest.limits),
        None => component,
    })
}

/// Now, RFC 3339 in UTC to the second: the time an acknowledgement is stamped with.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
