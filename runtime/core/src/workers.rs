//! The worker pool: plugin calls are synchronous and short, so they run on a fixed set of
//! threads fed by bounded channels, never on the async reactor.
//!
//! Jobs wait in one bounded queue that every worker takes from, so a job waits for the first
//! free worker rather than behind a slow call on a particular one. Order needs nothing from
//! the pool: a lane has one message in flight at a time. Each worker keeps its own sessions (a
//! store with a live instance per route and plugin version), reusing them across calls.
//! Routes take a permit per call (see `Route::admission`), so one route's slow or hostile
//! calls cannot hold every worker.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::canonical::MappedEvent;
use crate::rules::{self, Failure};
use crate::sandbox::{CallError, PluginComponent, RawMessage, RouteContext, Session};

/// Jobs waiting per worker before senders wait: the back-pressure point.
const QUEUE_PER_WORKER: usize = 64;

/// Sessions a worker keeps before it drops them all (plugins swapped out leave theirs behind).
const MAX_SESSIONS: usize = 256;

struct Job {
    plugin: Arc<PluginComponent>,
    route: Arc<RouteContext>,
    raw: RawMessage,
    reply: oneshot::Sender<Result<Vec<MappedEvent>, Failure>>,
}

/// The host cannot run plugin calls now (its workers are stopping): a host failure, not the
/// plugin's, so the message is redelivered and never dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host cannot run plugin calls now: {0}")]
pub struct Unavailable(pub &'static str);

/// A fixed pool of threads running plugin calls.
pub struct WorkerPool {
    queue: async_channel::Sender<Job>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `workers` threads.
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (queue, jobs) = async_channel::bounded(QUEUE_PER_WORKER * workers);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let jobs = jobs.clone();
            let thread = std::thread::Builder::new()
                .name(format!("millrace-worker-{i}"))
                .spawn(move || work(jobs))?;
            threads.push(thread);
        }
        Ok(Self { queue, threads })
    }

    /// How many worker threads run calls.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Maps one raw message on the first free worker, and checks the events. `Err` when the
    /// pool is shut down: nothing is known about the message then.
    pub async fn call(
        &self,
        plugin: Arc<PluginComponent>,
        route: Arc<RouteContext>,
        raw: RawMessage,
    ) -> Result<Result<Vec<MappedEvent>, Failure>, Unavailable> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            plugin,
            route,
            raw,
            reply,
        };
        let gone = Unavailable("the worker pool is shut down");
        self.queue.send(job).await.map_err(|_| gone.clone())?;
        answer.await.map_err(|_| gone)
    }

    /// Takes no more calls: the ones queued still run, later ones are [`Unavailable`].
    pub fn close(&self) {
        self.queue.close();
    }

    /// Stops the workers once their queued jobs are done.
    pub fn shutdown(self) {
        self.close();
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}

/// Maps `raw` once in a new session, checked as the pool checks every call: what `millrace
/// plugin run`, `plugin test` and admission's golden fixtures run, so a fixture passes exactly
/// when the live call would give the same outcome.
pub fn map_once(
    plugin: &PluginComponent,
    route: &RouteContext,
    raw: &RawMessage,
) -> Result<Vec<MappedEvent>, Failure> {
    let result = Session::new(plugin, route).and_then(|mut session| session.call(raw));
    checked(result, plugin, route)
}

/// The host-side checks of a call's events ([`rules::accept`] under the plugin's limits).
fn checked(
    result: Result<Vec<MappedEvent>, CallError>,
    plugin: &PluginComponent,
    route: &RouteContext,
) -> Result<Vec<MappedEvent>, Failure> {
    result
        .map_err(Failure::from)
        .and_then(|events| rules::accept(events, &plugin.limits_on(&route.limits)))
}

fn work(jobs: async_channel::Receiver<Job>) {
    let mut sessions: HashMap<(Arc<str>, String), Session> = HashMap::new();
    while let Ok(job) = jobs.recv_blocking() {
        let key = (job.route.route.clone(), job.plugin.digest.clone());
        if !sessions.contains_key(&key) && sessions.len() >= MAX_SESSIONS {
            sessions.clear();
        }
        // A panic in the host while calling a plugin must cost one message, not the worker.
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let session = match sessions.entry(key.clone()) {
                Entry::Occupied(entry) => Ok(entry.into_mut()),
                Entry::Vacant(entry) => {
                    Session::new(&job.plugin, &job.route).map(|s| entry.insert(s))
                }
            };
            let mut spent = false;
            let result = session.and_then(|session| {
                let result = session.call(&job.raw);
                spent = session.is_spent();
                result
            });
            (result, spent)
        }));
        let result = match call {
            Ok((result, spent)) => {
                if spent {
                    sessions.remove(&key);
                }
                result
            }
            Err(_) => {
                sessions.remove(&key);
                tracing::error!(
                    route = &*job.route.route,
                    plugin = job.plugin.id(),
                    "the host panicked calling the plugin; the session is dropped"
                );
                Err(CallError::Trap(
                    "the host panicked while calling the plugin".into(),
                ))
            }
        };
        let result = checked(result, &job.plugin, &job.route);
        // The caller may have gone (shutdown); the outcome is then redelivered by JetStream.
        let _ = job.reply.send(result);
    }
}
