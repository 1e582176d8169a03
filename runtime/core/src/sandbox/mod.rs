//! The sandbox: runs mapping plugins as WebAssembly components under limits.
//!
//! One [`Sandbox`] owns the wasmtime `Engine` (with epoch interruption for deadlines and an
//! on-disk cache of compiled code keyed by the component's digest and the engine), and the
//! `Linker` that grants a plugin the `host` interface and a WASI with nothing in it: no
//! preopened folders, no environment, no network, a frozen clock and fixed randomness, and
//! stdout/stderr going to the host log.
//!
//! A [`PluginComponent`] is one compiled plugin version, ready to instantiate. A [`Session`] is
//! a `Store` with an instance of it for one route, reused across calls and recycled after a
//! trap or a set number of calls. Sessions are not `Sync`: each worker thread keeps its own.

mod acknowledger;
mod bindings;
mod convert;
mod guest;
mod poster;
mod precompiled;
mod profiler;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

pub use self::acknowledger::{
    ACKNOWLEDGER_WIT, AckControl, AckDocument, AcknowledgeError, AcknowledgerComponent,
    InboundOutcome,
};
pub use self::bindings::exports::{MapError as WitMapError, RawMessage};
use self::bindings::{poster_v1_0, v1_0, v1_1};
use self::guest::GuestState;
pub use self::guest::{LOG_BYTES_BUDGET, LOG_RECORDS_BUDGET};
pub use self::precompiled::{
    ArtifactRefused, ArtifactStore, Compilation, CompileLimits, write_atomic,
};
pub use self::profiler::{PROFILER_ENV, Profiler};
use crate::canonical::MappedEvent;
use crate::config::Limits;
use crate::posting::{CanonicalEvent, RenderError, Request, Response, Verdict};
pub use millrace_model::mapping::MapError;

/// The mapping WIT packages this host serves, oldest first. A plugin built against any of them
/// runs.
pub const SERVED_WIT: [&str; 2] = ["millrace:mapping@1.0.0", "millrace:mapping@1.1.0"];

/// The outbound WIT packages this host serves (world `poster`).
pub const SERVED_OUTBOUND_WIT: [&str; 1] = ["millrace:outbound@1.0.0"];

/// The world of a plugin: what it exports and so which direction it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `millrace:mapping`: raw messages in, canonical events out (inbound routes).
    Mapper,
    /// `millrace:outbound`: canonical events in, requests to targets out (outbound routes).
    Poster,
}

impl World {
    /// The world's name in WIT.
    pub fn name(self) -> &'static str {
        match self {
            World::Mapper => "mapper",
            World::Poster => "poster",
        }
    }
}

/// How often the epoch ticks; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The folder of wasmtime's own compile cache inside a sandbox's cache folder.
const WASMTIME_CACHE: &str = "wasmtime";

/// A session is recycled after this many calls, so leaks in a plugin stay bounded.
const CALLS_PER_SESSION: u64 = 10_000;

/// What wasmtime says when a guest hands the host more data than the store's hostcall fuel
/// allows (its error type is private, so the text is what can be recognised).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// How many bytes the host may allocate to copy one call's results (or one host call's
/// arguments) out of the sandbox: four times the route's output limit, since a record costs
/// its in-memory size where the limit counts its JSON, plus room for the smallest limits.
/// wasmtime's default is 128 MiB whatever the route allows; a plugin returning more than that
/// was a trap, retried, after the host had copied it.
fn hostcall_fuel(limits: &Limits) -> usize {
    let bytes = limits
        .output_kib
        .saturating_mul(4 * 1024)
        .saturating_add(4 * 1024 * 1024);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid component, or do not compile.
    #[error("plugin {plugin} is not a valid WebAssembly component: {reason}")]
    Compile {
        /// `name@version`.
        plugin: String,
        /// What wasmtime said.
        reason: String,
    },
    /// Compiling the component broke one of the host's compile limits (time or memory), or
    /// killed the compiler process: a component that cannot be compiled within them is refused,
    /// never compiled in the serving process instead.
    #[error("plugin {plugin} cannot be compiled within this host's limits: {reason}")]
    CompileLimit {
        /// `name@version`.
        plugin: String,
        /// Which limit, and how far the compile got.
        reason: String,
    },
    /// The component does not fit any world this host serves.
    #[error(
        "plugin {plugin} does not fit a world this host serves (`mapper` of {}, `poster` or `acknowledger` of {}): {reason}",
        SERVED_WIT.join(", "),
        SERVED_OUTBOUND_WIT.join(", ")
    )]
    World {
        /// `name@version`.
        plugin: String,
        /// What wasmtime said.
        reason: String,
    },
}

/// Why one plugin call did not produce events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin refused the message (a case of the WIT `map-error`): permanent, never
    /// retried.
    #[error("{0}")]
    Map(MapError),
    /// The call ran past the route's deadline.
    #[error("deadline exceeded: the plugin ran longer than {0:?}")]
    Deadline(Duration),
    /// The plugin tried to grow its memory past the route's limit.
    #[error("memory limit exceeded: the plugin tried to grow its memory past {0} MiB")]
    Memory(u64),
    /// The plugin returned more than the route allows.
    #[error("output limit exceeded: {0}")]
    Output(String),
    /// The plugin trapped (a panic, an abort, an out-of-bounds access...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin could not be instantiated.
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// An outbound plugin refused to render requests for the event: permanent, never retried.
    #[error("{}: {}", .0.kind(), .0.message())]
    Render(RenderError),
}

impl CallError {
    /// A short stable name of the error kind, for dead letters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Map(e) => e.kind(),
            CallError::Render(e) => e.kind(),
            CallError::Deadline(_) => "deadline",
            CallError::Memory(_) => "memory-limit",
            CallError::Output(_) => "output-limit",
            CallError::Trap(_) => "trap",
            CallError::Instantiate(_) => "instantiate",
        }
    }

    /// True when trying again may succeed (traps and breached run-time limits); map errors
    /// and output breaches are deterministic and go to the dead letters at once.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::Deadline(_)
                | CallError::Memory(_)
                | CallError::Trap(_)
                | CallError::Instantiate(_)
        )
    }
}

/// The route-specific part of a session: configuration and limits.
#[derive(Debug, Clone)]
pub struct RouteContext {
    /// The route name, for logs.
    pub route: Arc<str>,
    /// The key/values the plugin may read.
    pub config: Arc<BTreeMap<String, String>>,
    /// The limits of each call.
    pub limits: Limits,
}

/// The wasmtime engine, linker and epoch clock shared by every plugin.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    _ticker: Arc<EpochTicker>,
    /// The engine's compatibility hash, hex.
    compatibility: Arc<str>,
    /// Where precompiled artifacts are kept, when they are.
    artifacts: Option<Arc<ArtifactStore>>,
}

impl Sandbox {
    /// Builds the engine; compiled code is cached in `cache_dir/wasmtime` when given. That
    /// folder is wasmtime's alone: its cache cleans it of every file it does not recognise, so
    /// anything else kept in `cache_dir` (the precompiled artifacts) lives beside it. The
    /// profiler is the one [`PROFILER_ENV`] names, if any.
    pub fn new(cache_dir: Option<&Path>) -> anyhow::Result<Self> {
        Self::with_profiler(cache_dir, Profiler::from_env()?)
    }

    /// [`Sandbox::new`] with `profiler` told the names of the plugins' compiled functions.
    pub fn with_profiler(cache_dir: Option<&Path>, profiler: Profiler) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.profiler(profiler.strategy());
        if let Some(dir) = cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(std::path::absolute(dir.join(WASMTIME_CACHE))?);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        guest::freeze_clock_waits(&mut linker)?;
        v1_0::Mapper::add_to_linker::<_, HasSelf<GuestState>>(&mut linker, |state| state)?;
        v1_1::Mapper::add_to_linker::<_, HasSelf<GuestState>>(&mut linker, |state| state)?;
        // A poster imports only 1.1.0's `host`, already linked above.
        acknowledger::add_to_linker(&mut linker)?;
        let ticker = EpochTicker::start(engine.clone()).map_err(|e| {
            anyhow::anyhow!("cannot start the epoch thread that enforces deadlines: {e}")
        })?;
        Ok(Self {
            compatibility: precompiled::compatibility_hash(&engine).into(),
            engine,
            linker: Arc::new(linker),
            _ticker: Arc::new(ticker),
            artifacts: None,
        })
    }

    /// Compiles (or takes from the cache or a precompiled artifact) a component and checks it
    /// fits the `mapper` world of the WIT version it imports.
    pub fn load(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<PluginComponent, LoadError> {
        let plugin = format!("{name}@{version}");
        let (component, compilation) = self.compile(&plugin, bytes)?;
        let world_error = |reason: String| LoadError::World {
            plugin: plugin.clone(),
            reason,
        };
        let world = world_of(&self.engine, &component);
        let exports_acknowledge = || {
            component
                .component_type()
                .exports(&self.engine)
                .any(|(name, _)| name == "acknowledge")
        };
        if world == World::Mapper && exports_acknowledge() {
            return Err(world_error(
                "it exports `acknowledge`: it is an acknowledger, which maps no raw messages (a \
                 route names it as its `acknowledger`; its plugin.toml says world = \"acknowledger\")"
                    .into(),
            ));
        }
        let imports: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let wit = match world {
            World::Poster => SERVED_OUTBOUND_WIT[0],
            World::Mapper => wit_version(&imports).ok_or_else(|| {
                let ours: Vec<&str> = imports
                    .iter()
                    .map(String::as_str)
                    .filter(|name| name.starts_with("millrace:"))
                    .collect();
                world_error(if ours.is_empty() {
                    "it imports no millrace:mapping interface, so it was not built against this \
                     host's WIT"
                        .into()
                } else {
                    format!(
                        "it imports {}, of no served millrace:mapping version: rebuild it \
                         against one of those",
                        ours.join(", ")
                    )
                })
            })?,
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| world_error(format!("{e:#}")))?;
        let pre = match (world, wit) {
            (World::Poster, _) => poster_v1_0::PosterPre::new(pre).map(Pre::Poster),
            (World::Mapper, "millrace:mapping@1.1.0") => v1_1::MapperPre::new(pre).map(Pre::V1_1),
            (World::Mapper, _) => v1_0::MapperPre::new(pre).map(Pre::V1_0),
        }
        .map_err(|e| world_error(format!("{e:#}")))?;
        Ok(PluginComponent {
            name: name.into(),
            version: version.into(),
            digest: crate::digest::sha256_hex(bytes),
            wit,
            world,
            limits: crate::config::PluginLimits::default(),
            compilation,
            sandbox: self.clone(),
            pre,
        })
    }
}

/// The served WIT package a component was built against, read from its imports (the newest
/// one it names, should it name several).
fn wit_version(imports: &[String]) -> Option<&'static str> {
    SERVED_WIT.iter().rev().copied().find(|wit| {
        let version = wit.trim_start_matches("millrace:mapping");
        imports
            .iter()
            .any(|i| i.starts_with("millrace:mapping/") && i.ends_with(version))
    })
}

/// The world a component exports: a poster exports `render`, anything else is taken for a
/// mapper (and fails to load as one when it is not).
fn world_of(engine: &Engine, component: &Component) -> World {
    if component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name == "render")
    {
        World::Poster
    } else {
        World::Mapper
    }
}

/// A plugin ready to instantiate, for its WIT version.
enum Pre {
    V1_0(v1_0::MapperPre<GuestState>),
    V1_1(v1_1::MapperPre<GuestState>),
    Poster(poster_v1_0::PosterPre<GuestState>),
}

/// A live plugin instance, for its WIT version.
enum Instance {
    V1_0(v1_0::Mapper),
    V1_1(v1_1::Mapper),
    Poster(poster_v1_0::Poster),
}

/// One compiled plugin version, ready to instantiate.
pub struct PluginComponent {
    /// The plugin name.
    pub name: String,
    /// The plugin version.
    pub version: String,
    /// The sha256 of the component, hex.
    pub digest: String,
    /// The WIT package it was built against, e.g. `millrace:mapping@1.0.0`.
    pub wit: &'static str,
    /// The world it exports.
    pub world: World,
    /// The limits its manifest asks for; a route never gives it more.
    pub limits: crate::config::PluginLimits,
    /// How its machine code came to be: compiled here, by a child process, or precompiled.
    pub compilation: Compilation,
    sandbox: Sandbox,
    pre: Pre,
}

impl std::fmt::Debug for PluginComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({})", self.name, self.version, self.digest)
    }
}

impl PluginComponent {
    /// The same version with the limits its manifest asks for.
    pub fn with_limits(mut self, limits: crate::config::PluginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// What a route's limits become for this plugin.
    pub fn limits_on(&self, route: &Limits) -> Limits {
        route.tightened(&self.limits)
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A store with a live instance of one plugin for one route, reused across calls.
pub struct Session {
    store: Store<GuestState>,
    instance: Instance,
    calls: u64,
    poisoned: bool,
    limits: Limits,
}

impl Session {
    /// Instantiates `plugin` for a route.
    pub fn new(plugin: &PluginComponent, route: &RouteContext) -> Result<Self, CallError> {
        let limits = plugin.limits_on(&route.limits);
        let state = GuestState::new(route, &plugin.id(), &limits);
        let mut store = Store::new(&plugin.sandbox.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        store.set_hostcall_fuel(hostcall_fuel(&limits));
        let instance = match &plugin.pre {
            Pre::V1_0(pre) => pre.instantiate(&mut store).map(Instance::V1_0),
            Pre::V1_1(pre) => pre.instantiate(&mut store).map(Instance::V1_1),
            Pre::Poster(pre) => pre.instantiate(&mut store).map(Instance::Poster),
        }
        .map_err(|e| classify_trap(&store, e, limits))?;
        Ok(Self {
            store,
            instance,
            calls: 0,
            poisoned: false,
            limits,
        })
    }

    /// True when this session must not be used again (it trapped, or served its share of calls).
    pub fn is_spent(&self) -> bool {
        self.poisoned || self.calls >= CALLS_PER_SESSION
    }

    /// Maps one raw message under the route's limits.
    pub fn call(&mut self, input: &RawMessage) -> Result<Vec<MappedEvent>, CallError> {
        self.calls += 1;
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.deadline));
        let lift = |events: Vec<_>| events.into_iter().map(MappedEvent::from).collect();
        let result = match &self.instance {
            Instance::V1_0(mapper) => mapper
                .call_map(&mut self.store, input)
                .map(|r| r.map(lift).map_err(map_error)),
            Instance::V1_1(mapper) => {
                use v1_1::millrace::mapping::types as v1_1_types;
                let input = v1_1_types::RawMessage {
                    subject: input.subject.clone(),
                    headers: input.headers.clone(),
                    payload: input.payload.clone(),
                };
                let lift = |events: Vec<_>| events.into_iter().map(MappedEvent::from).collect();
                mapper.call_map(&mut self.store, &input).map(|r| {
                    r.map(lift).map_err(|e| {
                        map_error(match e {
                            v1_1_types::MapError::MalformedInput(m) => {
                                WitMapError::MalformedInput(m)
                            }
                            v1_1_types::MapError::UnsupportedDocument(m) => {
                                WitMapError::UnsupportedDocument(m)
                            }
                            v1_1_types::MapError::RejectedByRule(m) => {
                                WitMapError::RejectedByRule(m)
                            }
                            v1_1_types::MapError::Other(m) => WitMapError::Other(m),
                        })
                    })
                })
            }
            Instance::Poster(_) => {
                return Err(CallError::Instantiate(
                    "a poster plugin cannot map raw messages: serve it on an outbound route".into(),
                ));
            }
        };
        let last_stderr = self.store.data_mut().flush_output();
        match result {
            Ok(Ok(events)) => {
                let events: Vec<MappedEvent> = events;
                if events.len() > self.limits.max_events {
                    return Err(CallError::Output(format!(
                        "{} events returned, the route allows {}",
                        events.len(),
                        self.limits.max_events
                    )));
                }
                Ok(events)
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(self.trapped(e, last_stderr)),
        }
    }

    /// A trap ends the session: a component instance that trapped may not be entered again.
    fn trapped(&mut self, e: wasmtime::Error, last_stderr: Option<String>) -> CallError {
        self.poisoned = true;
        let error = classify_trap(&self.store, e, self.limits);
        match (error, last_stderr) {
            (CallError::Trap(trap), Some(said)) => {
                CallError::Trap(format!("{trap} (the plugin's last words: {said})"))
            }
            (error, _) => error,
        }
    }

    fn not_a_poster() -> CallError {
        CallError::Instantiate(
            "a mapper plugin cannot post canonical events: serve it on an inbound route".into(),
        )
    }

    /// Renders the requests of one canonical event (a poster plugin) under the route's limits;
    /// the plugin's refusal is a [`CallError::Render`].
    pub fn render(&mut self, event: &CanonicalEvent) -> Result<Vec<Request>, CallError> {
        self.calls += 1;
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.deadline));
        let Instance::Poster(poster) = &self.instance else {
            return Err(Self::not_a_poster());
        };
        let result = poster.call_render(&mut self.store, &poster::event(event));
        let last_stderr = self.store.data_mut().flush_output();
        match result {
            Ok(Ok(requests)) => {
                if requests.len() > self.limits.max_events {
                    return Err(CallError::Output(format!(
                        "{} requests rendered, the route allows {}",
                        requests.len(),
                        self.limits.max_events
                    )));
                }
                let requests: Vec<Request> =
                    requests.into_iter().map(poster::lift_request).collect();
                // The route's output limit holds for requests as for events: one render sent
                // a 51 MB body, another 500 requests of 100 KiB.
                let size = requests.iter().fold(0u64, |n, r| {
                    let headers: usize = r.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
                    let bytes = r.target.len() + r.path.len() + headers + r.body.len();
                    n.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX))
                });
                let limit = self.limits.output_kib.saturating_mul(1024);
                if size > limit {
                    return Err(CallError::Output(format!(
                        "the requests are {} KiB, the route allows {} KiB",
                        size.div_ceil(1024),
                        self.limits.output_kib
                    )));
                }
                Ok(requests)
            }
            Ok(Err(e)) => Err(CallError::Render(poster::lift_render_error(e))),
            Err(e) => Err(self.trapped(e, last_stderr)),
        }
    }

    /// Reads a target's answer to one rendered request (a poster plugin).
    pub fn interpret(
        &mut self,
        event: &CanonicalEvent,
        request: &Request,
        response: &Response,
    ) -> Result<Verdict, CallError> {
        self.calls += 1;
        self.store
            .set_epoch_deadline(deadline_ticks(self.limits.deadline));
        let Instance::Poster(poster) = &self.instance else {
            return Err(Self::not_a_poster());
        };
        let result = poster.call_interpret(
            &mut self.store,
            &poster::event(event),
            &poster::request(request),
            &poster::response(response),
        );
        let last_stderr = self.store.data_mut().flush_output();
        match result {
            Ok(verdict) => Ok(poster::lift_verdict(verdict)),
            Err(e) => Err(self.trapped(e, last_stderr)),
        }
    }
}

/// A plugin's map error, its text clipped to [`crate::posting::PLUGIN_TEXT_MAX`]: it travels into the
/// log, dead letters, shadow reports and partners' acknowledgements, and a plugin quoting a
/// whole document in it must not make any of them as large as the document.
fn map_error(e: WitMapError) -> CallError {
    use crate::posting::clip;
    CallError::Map(match e {
        WitMapError::MalformedInput(m) => MapError::MalformedInput(clip(m)),
        WitMapError::UnsupportedDocument(m) => MapError::UnsupportedDocument(clip(m)),
        WitMapError::RejectedByRule(m) => MapError::RejectedByRule(clip(m)),
        WitMapError::Other(m) => MapError::Other(clip(m)),
    })
}

fn classify_trap(store: &Store<GuestState>, e: wasmtime::Error, limits: Limits) -> CallError {
    if store.data().limiter.memory_exceeded {
        return CallError::Memory(limits.memory_mib);
    }
    if format!("{e:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        return CallError::Output(format!(
            "the plugin handed over more than the host copies for a route allowing {} KiB \
             of output",
            limits.output_kib
        ));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline(limits.deadline),
        // The trap code is what a user can act on; the wasm backtrace goes to the debug log.
        Some(trap) => {
            tracing::debug!("plugin trap: {e:?}");
            CallError::Trap(trap.to_string())
        }
        None => CallError::Trap(format!("{e:#}")),
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}

/// Advances the engine's epoch on a background thread until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("millrace-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
