//! The state a plugin instance lives in: its WASI context (granting nothing), its memory
//! limiter, the route configuration it may read, and where its logs and stdout go.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::RouteContext;
use super::bindings::v1_0::millrace::mapping::host::LogLevel;
use super::bindings::{v1_0, v1_1};
use crate::config::Limits;

/// Guest stdout and stderr beyond this many bytes per call are dropped.
const OUTPUT_BUDGET: usize = 16 * 1024;

/// `host.log` records beyond this many per call are dropped, like stdout beyond its budget:
/// a plugin logging in a loop until its deadline would otherwise write without bound.
pub const LOG_RECORDS_BUDGET: usize = 100;

/// `host.log` bytes (message and fields) beyond this many per call are dropped.
pub const LOG_BYTES_BUDGET: usize = 32 * 1024;

/// The store data of one plugin instance.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    route: Arc<str>,
    plugin: Arc<str>,
    config: Arc<BTreeMap<String, String>>,
    stdout: GuestOutput,
    stderr: GuestOutput,
    log_budget: LogBudget,
}

/// What the guest wrote through `host.log` during the current call.
#[derive(Debug, Default)]
struct LogBudget {
    records: usize,
    bytes: usize,
    dropped_records: usize,
    dropped_bytes: usize,
}

impl LogBudget {
    /// Takes `bytes` from the budget; false when the record must be dropped.
    fn admit(&mut self, bytes: usize) -> bool {
        if self.records < LOG_RECORDS_BUDGET && self.bytes.saturating_add(bytes) <= LOG_BYTES_BUDGET
        {
            self.records += 1;
            self.bytes += bytes;
            return true;
        }
        self.dropped_records += 1;
        self.dropped_bytes = self.dropped_bytes.saturating_add(bytes);
        false
    }

    /// Says in the log when the cap cut the call's records, and starts the next call afresh.
    fn report(&mut self, route: &str, plugin: &str) {
        if self.dropped_records > 0 {
            tracing::warn!(
                route,
                plugin,
                "guest log over {LOG_RECORDS_BUDGET} records or {LOG_BYTES_BUDGET} bytes in one \
                 call: {} records ({} bytes) dropped",
                self.dropped_records,
                self.dropped_bytes
            );
        }
        *self = Self::default();
    }
}

impl GuestState {
    pub(super) fn new(route: &RouteContext, plugin: &str, limits: &Limits) -> Self {
        let route_name = route.route.clone();
        let plugin: Arc<str> = plugin.into();
        let stdout = GuestOutput::new("stdout", route_name.clone(), plugin.clone());
        let stderr = GuestOutput::new("stderr", route_name.clone(), plugin.clone());
        // Nothing is granted: no preopens, env, args or network (the builder's defaults);
        // the clock is frozen at the Unix epoch and randomness is a fixed sequence, so that a
        // mapping is a pure function of its input and replays give the same events.
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![42]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![7]))
            .insecure_random_seed(0)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        let max_memory =
            usize::try_from(limits.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_memory,
                memory_used: 0,
                memory_exceeded: false,
                instances: limits.instances,
                tables: limits.tables,
                table_elements: limits.table_elements,
            },
            route: route_name,
            plugin,
            config: route.config.clone(),
            stdout,
            stderr,
            log_budget: LogBudget::default(),
        }
    }

    /// Writes out what the guest printed during the last call and resets the budgets;
    /// returns the last line it wrote to stderr (where a Rust panic message lands).
    pub(super) fn flush_output(&mut self) -> Option<String> {
        self.log_budget.report(&self.route, &self.plugin);
        self.stdout.flush_to_log();
        self.stderr.flush_to_log()
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl GuestState {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) {
        if !self.log_budget.admit(record_bytes(&message, &fields)) {
            return;
        }
        // The fields are formatted only for a record the subscriber takes: a plugin's debug
        // record at the default `info` level cost ~6,500 instructions a call to throw away
        // (docs/PERFORMANCE.md, the guest's mapping code).
        let enabled = match level {
            LogLevel::Trace => tracing::enabled!(tracing::Level::TRACE),
            LogLevel::Debug => tracing::enabled!(tracing::Level::DEBUG),
            LogLevel::Info => tracing::enabled!(tracing::Level::INFO),
            LogLevel::Warn => tracing::enabled!(tracing::Level::WARN),
            LogLevel::Error => tracing::enabled!(tracing::Level::ERROR),
        };
        if !enabled {
            return;
        }
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (route, plugin) = (&*self.route, &*self.plugin);
        let message = crate::posting::shown(&message);
        match level {
            LogLevel::Trace => tracing::trace!(route, plugin, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(route, plugin, fields, "{message}"),
            LogLevel::Info => tracing::info!(route, plugin, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(route, plugin, fields, "{message}"),
            LogLevel::Error => tracing::error!(route, plugin, fields, "{message}"),
        }
    }

    fn get_config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn get_config_all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// What a guest log record writes: its message, and each field as ` key="value"` with the
/// value escaped. Counting keys and values alone let 100 records of 5,000 empty fields write
/// 3 MB in one call past a 32 KiB budget.
fn record_bytes(message: &str, fields: &[(String, String)]) -> usize {
    fields.iter().fold(message.len(), |n, (k, v)| {
        let value: usize = v.chars().map(|c| c.escape_debug().len()).sum();
        n.saturating_add(k.len() + value + 4)
    })
}

/// The `host` interface is the same in every served version; each version's trait delegates.
macro_rules! serve_host {
    ($($version:ident),+) => {$(
        impl $version::millrace::mapping::host::Host for GuestState {
            fn log(
                &mut self,
                level: $version::millrace::mapping::host::LogLevel,
                message: String,
                fields: Vec<(String, String)>,
            ) {
                GuestState::log(self, level.into(), message, fields)
            }
            fn get_config(&mut self, key: String) -> Option<String> {
                GuestState::get_config(self, key)
            }
            fn get_config_all(&mut self) -> Vec<(String, String)> {
                GuestState::get_config_all(self)
            }
        }
        // The type-only interfaces have nothing to implement.
        impl $version::millrace::mapping::canonical::Host for GuestState {}
        impl $version::millrace::mapping::types::Host for GuestState {}
    )+};
}

serve_host!(v1_0, v1_1);

impl From<v1_1::millrace::mapping::host::LogLevel> for LogLevel {
    fn from(level: v1_1::millrace::mapping::host::LogLevel) -> Self {
        use v1_1::millrace::mapping::host::LogLevel as L;
        match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, so the trap that follows is
/// reported as a memory breach rather than as a bare trap.
pub(super) struct MemoryLimiter {
    /// The cap on all the plugin's linear memories together: a component may have several
    /// (up to [`MemoryLimiter::memories`]), and capping each alone let one with 16 memories
    /// hold 16 times the cap.
    max_memory: usize,
    /// What its memories hold together now.
    memory_used: usize,
    pub(super) memory_exceeded: bool,
    instances: usize,
    tables: usize,
    table_elements: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.memory_used - current.min(self.memory_used)).saturating_add(desired);
        if total > self.max_memory {
            self.memory_exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit exceeded: growing to {desired} bytes ({total} in all memories)"
            ));
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        16
    }
}

/// A wall and monotonic clock that never moves.
struct FrozenClock;

/// Makes the monotonic clock's subscriptions ready at once, as a clock that never moves has
/// nothing to wait for. WASI's own wait on the host's real clock, and the linker is
/// synchronous: a plugin that sleeps (`std::thread::sleep`, `time.sleep`, a `poll` timeout)
/// blocked its worker thread inside a host call, where the epoch deadline cannot interrupt it,
/// for as long as it asked (forever, if it asked), holding a worker from every route, an
/// admission slot, and the host's stop. Now a sleep returns at once, and a plugin that waits
/// for the clock to move loops in its own code until the deadline stops it.
pub(super) fn freeze_clock_waits(
    linker: &mut wasmtime::component::Linker<GuestState>,
) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::{DynPollable, subscribe};
    fn ready(
        mut store: wasmtime::StoreContextMut<'_, GuestState>,
    ) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let table = &mut store.data_mut().table;
        let now = table.push(Ready)?;
        Ok((subscribe(table, now)?,))
    }
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |store, (_,): (u64,)| ready(store))?;
    clock.func_wrap("subscribe-instant", |store, (_,): (u64,)| ready(store))?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic clock interface as wasmtime-wasi links it (guests importing an earlier 0.2
/// version are served by it too).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A pollable that is ready at once.
struct Ready;

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for Ready {
    async fn ready(&mut self) {}
}

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Guest stdout or stderr: collected during a call, then written to the host log line by line,
/// at most [`OUTPUT_BUDGET`] bytes per call so a chatty plugin cannot flood the log.
#[derive(Clone)]
struct GuestOutput {
    stream: &'static str,
    route: Arc<str>,
    plugin: Arc<str>,
    buffer: Arc<std::sync::Mutex<OutputBuffer>>,
}

#[derive(Default)]
struct OutputBuffer {
    bytes: Vec<u8>,
    dropped: usize,
    /// The last [`OUTPUT_TAIL`] bytes or more written in the call, whatever the budget: a
    /// plugin that wrote more than the budget before it panicked still leaves its panic
    /// message here.
    tail: Vec<u8>,
}

/// How much of the end of a call's output is kept for the plugin's last words.
const OUTPUT_TAIL: usize = 4096;

/// What a plugin said last on stderr: a Rust panic's message (the lines after `panicked at
/// <place>:`, joined with ` / `), else the last line that is not blank or Rust's hint about
/// `RUST_BACKTRACE`; at most 512 characters.
fn last_words(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .collect();
    let words = match lines.iter().rposition(|l| l.contains(" panicked at ")) {
        Some(at) if at + 1 < lines.len() => lines[at + 1..].join(" / "),
        _ => (*lines.last()?).to_owned(),
    };
    Some(words.chars().take(512).collect())
}

impl GuestOutput {
    fn new(stream: &'static str, route: Arc<str>, plugin: Arc<str>) -> Self {
        Self {
            stream,
            route,
            plugin,
            buffer: Arc::default(),
        }
    }

    fn flush_to_log(&self) -> Option<String> {
        let Ok(mut buffer) = self.buffer.lock() else {
            return None;
        };
        if buffer.bytes.is_empty() && buffer.dropped == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&buffer.bytes);
        let (route, plugin, stream) = (&*self.route, &*self.plugin, self.stream);
        for line in text.lines() {
            let line = crate::posting::shown(line);
            tracing::info!(route, plugin, stream, "guest: {line}");
        }
        if buffer.dropped > 0 {
            tracing::warn!(
                route,
                plugin,
                stream,
                "guest output over {OUTPUT_BUDGET} bytes in one call: {} bytes dropped",
                buffer.dropped
            );
        }
        let last = last_words(&buffer.tail);
        buffer.bytes.clear();
        buffer.dropped = 0;
        buffer.tail.clear();
        last
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp2 plugins are served; p3 streams get nothing.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        if let Ok(mut buffer) = self.buffer.lock() {
            let room = OUTPUT_BUDGET.saturating_sub(buffer.bytes.len());
            let take = room.min(bytes.len());
            buffer.bytes.extend_from_slice(&bytes[..take]);
            buffer.dropped += bytes.len() - take;
            let keep = bytes.len().min(OUTPUT_TAIL);
            buffer.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
            if buffer.tail.len() > 2 * OUTPUT_TAIL {
                let cut = buffer.tail.len() - OUTPUT_TAIL;
                buffer.tail.drain(..cut);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_record_is_counted_as_it_is_written() {
        let empty = vec![(String::new(), String::new()); 5000];
        assert_eq!(record_bytes("m", &empty), 1 + 5000 * 4);
        let escaped = vec![("k".to_owned(), "\u{1}\"".to_owned())];
        // ` k="\u{1}\""`: the control character and the quote escaped.
        assert_eq!(record_bytes("", &escaped), 1 + 5 + 2 + 4);
    }

    /// A plugin that wrote more than the output budget before it panicked: its panic message
    /// was dropped with the rest, and the dead letter named a debug line instead. A message of
    /// several lines was cut to its last.
    #[test]
    fn a_plugins_last_words_survive_the_output_budget() {
        let mut stderr = GuestOutput::new("stderr", "r".into(), "p".into());
        for n in 0..250 {
            let line = format!("debug-line-{n}-{}\n", "x".repeat(100));
            assert!(stderr.write(line.into()).is_ok());
        }
        let panic = "\nthread '<unnamed>' panicked at src/lib.rs:9:5:\nfirst line\nsecond line\n\
                     note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert!(stderr.write(panic.into()).is_ok());
        assert_eq!(
            stderr.flush_to_log().as_deref(),
            Some("first line / second line")
        );
        assert!(
            stderr
                .write("Traceback...\nValueError: bad\n".into())
                .is_ok()
        );
        assert_eq!(stderr.flush_to_log().as_deref(), Some("ValueError: bad"));
        assert_eq!(stderr.flush_to_log(), None, "nothing said in this call");
    }

    #[test]
    fn the_log_budget_caps_records_and_bytes_per_call() {
        let mut budget = LogBudget::default();
        let admitted = (0..1000).filter(|_| budget.admit(10)).count();
        assert_eq!(admitted, LOG_RECORDS_BUDGET);
        assert_eq!(budget.dropped_records, 1000 - LOG_RECORDS_BUDGET);
        budget.report("r", "p");
        assert!(
            budget.admit(LOG_BYTES_BUDGET),
            "a fresh call has the whole budget"
        );
        assert!(!budget.admit(1), "no byte beyond the budget");
        assert_eq!(budget.dropped_bytes, 1);
    }
}
