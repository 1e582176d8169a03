//! The worker pool: plugin calls are synchronous and short, so they run on a fixed set of
//! threads fed by bounded channels, never on the async reactor.
//!
//! Jobs wait in one bounded queue that every worker takes from, so a job waits for the first
//! free worker rather than behind a slow call on a particular one. Order needs nothing from
//! the pool: a lane has one message in flight at a time. Each worker keeps its own sessions (a
//! store with a live instance per route and plugin version), reusing them across calls.
//! Routes take a permit per call (see `Route::admission`), so one route's slow or hostile
//! calls cannot hold every worker.
//!
//! Spare work (a shadow candidate's calls, see [`WorkerPool::spare`]) has threads and a queue
//! of its own ([`spare_threads`]): a slow or hostile candidate shares the CPU with the live
//! calls, but never makes one wait for a worker.

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

/// Sessions a worker keeps before it drops them all.
const MAX_SESSIONS: usize = 256;

/// Sessions a worker keeps per route: its active version and its candidate. A session of a
/// version the route no longer serves is dropped when a third is made, the least recently
/// used first; kept until 256 piled up, each version switch left its sessions' memory behind
/// in every worker (121 MiB a switch for a plugin near its 64 MiB cap, never returned).
const SESSIONS_PER_ROUTE: usize = 2;

/// One plugin call, run on a worker thread with that worker's sessions; it sends its own reply.
type Job = Box<dyn FnOnce(&mut Sessions) + Send>;

/// The host cannot run plugin calls now (its workers are stopping): a host failure, not the
/// plugin's, so the message is redelivered and never dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host cannot run plugin calls now: {0}")]
pub struct Unavailable(pub &'static str);

/// A fixed pool of threads running plugin calls.
pub struct WorkerPool {
    queue: async_channel::Sender<Job>,
    spare: async_channel::Sender<Job>,
    /// The spare queue's jobs not yet taken, dropped on close.
    spare_jobs: async_channel::Receiver<Job>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl WorkerPool {
    /// Starts `workers` threads.
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (queue, jobs) = async_channel::bounded(QUEUE_PER_WORKER * workers);
        let spares = spare_threads(workers);
        let (spare, spare_jobs) = async_channel::bounded(QUEUE_PER_WORKER * spares);
        let mut threads = Vec::with_capacity(workers + spares);
        for (i, jobs) in std::iter::repeat_n(&jobs, workers)
            .chain(std::iter::repeat_n(&spare_jobs, spares))
            .enumerate()
        {
            let (jobs, kind) = (jobs.clone(), if i < workers { "worker" } else { "spare" });
            let thread = std::thread::Builder::new()
                .name(format!("millrace-{kind}-{i}"))
                .spawn(move || work(&jobs))?;
            threads.push(thread);
        }
        Ok(Self {
            queue,
            spare,
            spare_jobs,
            threads: std::sync::Mutex::new(threads),
            workers,
        })
    }

    /// How many worker threads run calls.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Maps one raw message on the first free worker, and checks the events. `Err` when the
    /// pool is shut down: nothing is known about the message then.
    pub async fn call(
        &self,
        plugin: Arc<PluginComponent>,
        route: Arc<RouteContext>,
        raw: RawMessage,
    ) -> Result<Result<Vec<MappedEvent>, Failure>, Unavailable> {
        let limits = plugin.limits_on(&route.limits);
        self.run(plugin, route, move |session| map(session, &raw, &limits))
            .await
    }

    /// Runs `work` on the first free worker, in that worker's session of `plugin` for `route`
    /// (made on first use): the one way any plugin call (map, render, interpret) reaches a
    /// worker. A trap or a host panic costs the session, never the worker. `Err` when the pool
    /// is shut down.
    pub async fn run<T, W>(
        &self,
        plugin: Arc<PluginComponent>,
        route: Arc<RouteContext>,
        work: W,
    ) -> Result<Result<T, Failure>, Unavailable>
    where
        T: Send + 'static,
        W: FnOnce(&mut Session) -> Result<T, Failure> + Send + 'static,
    {
        Self::queued(&self.queue, plugin, route, work).await
    }

    /// [`run`](Self::run) as spare work, beside the live calls (a shadow candidate's call): on
    /// the pool's spare threads, never in a live call's way. `Err` when the pool is shut down.
    pub async fn spare<T, W>(
        &self,
        plugin: Arc<PluginComponent>,
        route: Arc<RouteContext>,
        work: W,
    ) -> Result<Result<T, Failure>, Unavailable>
    where
        T: Send + 'static,
        W: FnOnce(&mut Session) -> Result<T, Failure> + Send + 'static,
    {
        Self::queued(&self.spare, plugin, route, work).await
    }

    async fn queued<T, W>(
        queue: &async_channel::Sender<Job>,
        plugin: Arc<PluginComponent>,
        route: Arc<RouteContext>,
        work: W,
    ) -> Result<Result<T, Failure>, Unavailable>
    where
        T: Send + 'static,
        W: FnOnce(&mut Session) -> Result<T, Failure> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |sessions: &mut Sessions| {
            let result = sessions.with(&plugin, &route, work);
            // The caller may have gone (shutdown); the outcome is then redelivered by JetStream.
            let _ = reply.send(result);
        });
        let gone = Unavailable("the worker pool is shut down");
        queue.send(job).await.map_err(|_| gone.clone())?;
        answer.await.map_err(|_| gone)
    }

    /// Takes no more calls: the live ones queued still run, spare ones not yet started are
    /// dropped (their callers get [`Unavailable`]), later ones are [`Unavailable`].
    pub fn close(&self) {
        self.queue.close();
        self.spare.close();
        while self.spare_jobs.try_recv().is_ok() {}
    }

    /// Stops the workers once their queued jobs are done.
    pub fn shutdown(&self) {
        self.close();
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(_) => return,
        };
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}

/// Maps `raw` in `session` and checks the events by the rules that need only them
/// ([`rules::accept`] under `limits`: output size, event count, every event valid): the work
/// of every mapping call, on a worker of the pool or in a run without one.
pub fn map(
    session: &mut Session,
    raw: &RawMessage,
    limits: &crate::config::Limits,
) -> Result<Vec<MappedEvent>, Failure> {
    let events = session.call(raw)?;
    rules::accept(events, limits)
}

/// The threads for spare work beside `workers` live ones: half as many, at least one, so a
/// hostile candidate takes a bounded share of the CPU.
pub fn spare_threads(workers: usize) -> usize {
    (workers / 2).max(1)
}

fn work(jobs: &async_channel::Receiver<Job>) {
    let mut sessions = Sessions::default();
    while let Ok(job) = jobs.recv_blocking() {
        job(&mut sessions);
    }
}

/// A worker's sessions: a store with a live instance per route and plugin version.
#[derive(Default)]
struct Sessions {
    /// By route and plugin digest: the session and when it was last used.
    sessions: HashMap<(Arc<str>, String), (Session, u64)>,
    /// Counts the calls, to order the sessions by use.
    calls: u64,
}

impl Sessions {
    /// Room for one more session of `route`: the route's least recently used session goes
    /// when it has [`SESSIONS_PER_ROUTE`], and all go past [`MAX_SESSIONS`].
    fn make_room(&mut self, route: &str) {
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.clear();
        }
        let of_route = self.sessions.iter().filter(|((r, _), _)| &**r == route);
        if of_route.clone().count() >= SESSIONS_PER_ROUTE
            && let Some(oldest) = of_route
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            self.sessions.remove(&oldest);
        }
    }

    /// Runs `work` in the session of `plugin` for `route`, made when there is none.
    fn with<T>(
        &mut self,
        plugin: &Arc<PluginComponent>,
        route: &RouteContext,
        work: impl FnOnce(&mut Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let key = (route.route.clone(), plugin.digest.clone());
        if !self.sessions.contains_key(&key) {
            self.make_room(&route.route);
        }
        self.calls += 1;
        let now = self.calls;
        // A panic in the host while calling a plugin must cost one message, not the worker.
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let session = match self.sessions.entry(key.clone()) {
                Entry::Occupied(entry) => {
                    let (session, used) = entry.into_mut();
                    *used = now;
                    Ok(session)
                }
                Entry::Vacant(entry) => {
                    Session::new(plugin, route).map(|s| &mut entry.insert((s, now)).0)
                }
            };
            let mut spent = false;
            let result = session.map_err(Failure::from).and_then(|session| {
                let result = work(session);
                spent = session.is_spent();
                result
            });
            (result, spent)
        }));
        match call {
            Ok((result, spent)) => {
                if spent {
                    self.sessions.remove(&key);
                }
                result
            }
            Err(_) => {
                self.sessions.remove(&key);
                tracing::error!(
                    route = &*route.route,
                    plugin = plugin.id(),
                    "the host panicked calling the plugin; the session is dropped"
                );
                Err(Failure::Call(CallError::Trap(
                    "the host panicked while calling the plugin".into(),
                )))
            }
        }
    }
}
