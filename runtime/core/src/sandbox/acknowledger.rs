//! The `acknowledger` world of `millrace:outbound@1.0.0`: a plugin that answers an inbound
//! interchange with the functional acknowledgement its trading partner expects (an X12 997, an
//! EDIFACT CONTRL).
//!
//! Kept beside the mapping bindings, not inside them: the world imports the same `host`
//! interface of `millrace:mapping@1.1.0`, so its bindings reuse that version's generated
//! interfaces (`with`) and the linker serves both worlds from one `GuestState`. A call
//! instantiates the plugin afresh (one per raw interchange, rare beside mapping calls), under the
//! route's limits, deadline and the same empty WASI.

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::guest::GuestState;
use super::{
    CallError, LoadError, RawMessage, RouteContext, Sandbox, classify_trap, deadline_ticks,
    hostcall_fuel,
};
use crate::config::{Limits, PluginLimits};

/// The WIT package acknowledger plugins are built against.
pub const ACKNOWLEDGER_WIT: &str = "millrace:outbound@1.0.0";

// Generated items carry the WIT docs where bindgen keeps them; it does not for all.
#[allow(missing_docs)]
mod world {
    wasmtime::component::bindgen!({
        path: "../../wit/outbound@1.0.0",
        world: "acknowledger",
        with: {
            "millrace:mapping/host@1.1.0": super::super::bindings::v1_1::millrace::mapping::host,
            "millrace:mapping/types@1.1.0": super::super::bindings::v1_1::millrace::mapping::types,
            "millrace:mapping/canonical@1.1.0": super::super::bindings::v1_1::millrace::mapping::canonical,
        },
    });
}

use self::world::millrace::outbound::acknowledging as wit;

/// Adds what the acknowledger world imports beyond the mapping worlds (its type-only
/// interface) to the sandbox's linker.
pub(super) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<_, HasSelf<GuestState>>(linker, |state| state)
}

impl wit::Host for GuestState {}

/// What became of a raw message on its inbound route, as the acknowledger is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Mapped into this many canonical events.
    Mapped(u32),
    /// Dead-lettered with this reason (`<kind>: <message>`).
    Failed(String),
}

/// The control number and time the host allots to one acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckControl {
    /// The acknowledgement interchange's control number.
    pub number: u64,
    /// When it is made, RFC 3339 in UTC.
    pub now: String,
}

/// An acknowledgement a plugin made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckDocument {
    /// The partner it is for: the last token of `ack.<route>.<partner>`.
    pub partner: String,
    /// The complete interchange.
    pub document: Vec<u8>,
}

/// Why an acknowledger call made no acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcknowledgeError {
    /// The plugin found no envelope to acknowledge.
    #[error("the acknowledger refused the document: {0}")]
    Refused(String),
    /// The call trapped, breached a limit or could not start.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// One compiled acknowledger plugin version.
pub struct AcknowledgerComponent {
    /// The plugin name.
    pub name: String,
    /// The plugin version.
    pub version: String,
    /// The sha256 of the component, hex.
    pub digest: String,
    /// The limits its manifest asks for; a route never gives it more.
    pub limits: PluginLimits,
    sandbox: Sandbox,
    pre: world::AcknowledgerPre<GuestState>,
}

impl std::fmt::Debug for AcknowledgerComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({})", self.name, self.version, self.digest)
    }
}

impl Sandbox {
    /// Compiles (or takes from the cache) a component and checks it fits the `acknowledger`
    /// world.
    pub fn load_acknowledger(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<AcknowledgerComponent, LoadError> {
        let plugin = format!("{name}@{version}");
        let (component, _) = self.compile(&plugin, bytes)?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            plugin: plugin.clone(),
            reason: format!("it is not an `acknowledger` of {ACKNOWLEDGER_WIT}: {e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(world::AcknowledgerPre::new)
            .map_err(world_error)?;
        Ok(AcknowledgerComponent {
            name: name.into(),
            version: version.into(),
            digest: crate::digest::sha256_hex(bytes),
            limits: PluginLimits::default(),
            sandbox: self.clone(),
            pre,
        })
    }
}

impl AcknowledgerComponent {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The same version with the limits its manifest asks for.
    #[must_use]
    pub fn with_limits(mut self, limits: PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Makes the acknowledgement of `raw` (blocking: run it off the async reactor), under the
    /// limits of `route` tightened by the plugin's own.
    pub fn acknowledge(
        &self,
        route: &RouteContext,
        raw: &RawMessage,
        outcome: &InboundOutcome,
        control: &AckControl,
    ) -> Result<Option<AckDocument>, AcknowledgeError> {
        let limits: Limits = route.limits.tightened(&self.limits);
        let mut store = Store::new(
            &self.sandbox.engine,
            GuestState::new(route, &self.id(), &limits),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        // What the host copies out of the call is bounded by the route's output limit, as for
        // a mapper or a poster: without it a 50 MiB acknowledgement was copied in whole (and
        // one past wasmtime's 128 MiB default was refused naming a limit never applied).
        store.set_hostcall_fuel(hostcall_fuel(&limits));
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify_trap(&store, e, limits))?;
        let raw = super::bindings::v1_1::millrace::mapping::types::RawMessage {
            subject: raw.subject.clone(),
            headers: raw.headers.clone(),
            payload: raw.payload.clone(),
        };
        let outcome = match outcome {
            InboundOutcome::Mapped(events) => wit::Outcome::Mapped(*events),
            InboundOutcome::Failed(reason) => wit::Outcome::Failed(reason.clone()),
        };
        let control = wit::Control {
            number: control.number,
            now: control.now.clone(),
        };
        let result = instance.call_acknowledge(&mut store, &raw, &outcome, &control);
        store.data_mut().flush_output();
        match result {
            Ok(Ok(Some(ack))) => {
                let (size, limit) = (
                    ack.document.len() as u64,
                    limits.output_kib.saturating_mul(1024),
                );
                if size > limit {
                    return Err(CallError::Output(format!(
                        "the acknowledgement is {} KiB, the route allows {} KiB",
                        size.div_ceil(1024),
                        limits.output_kib
                    ))
                    .into());
                }
                Ok(Some(AckDocument {
                    partner: ack.partner,
                    document: ack.document,
                }))
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Err(reason)) => Err(AcknowledgeError::Refused(crate::posting::clip(reason))),
            Err(e) => Err(classify_trap(&store, e, limits).into()),
        }
    }
}
