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
//! Spare work (a shadow candidate's calls, see [`WorkerPool::spare`]) waits in a queue of its
//! own, which a worker takes from only when no live call waits, and on at most all but one
//! worker at a time: a slow candidate costs the live flow at most the one spare call a worker
//! is already running, never a place in the live queue.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::canonical::MappedEvent;
use crate::rules::{self, Failure};
use crate::sandbox::{CallError, PluginComponent, RawMessage, RouteContext, Session};

/// Jobs waiting per worker before senders wait: the back-pressure point.
const QUEUE_PER_WORKER: usize = 64;

/// Sessions a worker keeps before it drops them all (plugins swapped out leave theirs behind).
const MAX_SESSIONS: usize = 256;

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
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl WorkerPool {
    /// Starts `workers` threads.
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (queue, jobs) = async_channel::bounded(QUEUE_PER_WORKER * workers);
        let (spare_queue, spare_jobs) = async_channel::bounded(QUEUE_PER_WORKER * workers);
        let spare = Spare {
            jobs: spare_jobs,
            busy: Arc::new(AtomicUsize::new(0)),
            limit: workers.saturating_sub(1).max(1),
        };
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (jobs, spare) = (jobs.clone(), spare.clone());
            let thread = std::thread::Builder::new()
                .name(format!("millrace-worker-{i}"))
                .spawn(move || work(&jobs, &spare))?;
            threads.push(thread);
        }
        Ok(Self {
            queue,
            spare: spare_queue,
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

    /// [`run`](Self::run) as spare work, beside the live calls (a shadow candidate's call):
    /// it runs when a worker has no live call to take, and on all workers but one at the most
    /// (see the module's text). `Err` when the pool is shut down.
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

    /// Takes no more calls: the ones queued still run (spare ones may be dropped), later ones
    /// are [`Unavailable`].
    pub fn close(&self) {
        self.queue.close();
        self.spare.close();
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

/// The spare queue and how many workers run its jobs now.
#[derive(Clone)]
struct Spare {
    jobs: async_channel::Receiver<Job>,
    busy: Arc<AtomicUsize>,
    limit: usize,
}

impl Spare {
    /// Takes one of the `limit` places for spare work, when one is free.
    fn reserve(&self) -> Option<SparePlace<'_>> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |busy| {
                (busy < self.limit).then_some(busy + 1)
            })
            .ok()
            .map(|_| SparePlace(&self.busy))
    }
}

/// A worker's place for spare work, given back when dropped.
struct SparePlace<'a>(&'a AtomicUsize);

impl Drop for SparePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A worker: live jobs first; a spare job only when no live one waits and a place for spare
/// work is free. Ends when the live queue is closed and empty.
fn work(jobs: &async_channel::Receiver<Job>, spare: &Spare) {
    use async_channel::TryRecvError;
    use futures::future::{Either, select};
    let mut sessions = Sessions::default();
    loop {
        match jobs.try_recv() {
            Ok(job) => {
                job(&mut sessions);
                continue;
            }
            Err(TryRecvError::Closed) => return,
            Err(TryRecvError::Empty) => {}
        }
        let Some(place) = spare.reserve() else {
            match jobs.recv_blocking() {
                Ok(job) => job(&mut sessions),
                Err(_) => return,
            }
            continue;
        };
        if let Ok(job) = spare.jobs.try_recv() {
            job(&mut sessions);
            continue;
        }
        // Nothing waits: the first job of either queue, live first when both have one.
        let (live, spared) = (
            std::pin::pin!(jobs.recv()),
            std::pin::pin!(spare.jobs.recv()),
        );
        let next = futures::executor::block_on(select(live, spared));
        match next {
            Either::Left((Ok(job), _)) => {
                drop(place);
                job(&mut sessions);
            }
            Either::Left((Err(_), _)) => return,
            Either::Right((Ok(job), _)) => job(&mut sessions),
            // The spare queue is closed: only live jobs from now on.
            Either::Right((Err(_), _)) => {
                drop(place);
                match jobs.recv_blocking() {
                    Ok(job) => job(&mut sessions),
                    Err(_) => return,
                }
            }
        }
    }
}

/// A worker's sessions: a store with a live instance per route and plugin version.
#[derive(Default)]
struct Sessions(HashMap<(Arc<str>, String), Session>);

impl Sessions {
    /// Runs `work` in the session of `plugin` for `route`, made when there is none.
    fn with<T>(
        &mut self,
        plugin: &Arc<PluginComponent>,
        route: &RouteContext,
        work: impl FnOnce(&mut Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let key = (route.route.clone(), plugin.digest.clone());
        if !self.0.contains_key(&key) && self.0.len() >= MAX_SESSIONS {
            self.0.clear();
        }
        // A panic in the host while calling a plugin must cost one message, not the worker.
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let session = match self.0.entry(key.clone()) {
                Entry::Occupied(entry) => Ok(entry.into_mut()),
                Entry::Vacant(entry) => Session::new(plugin, route).map(|s| entry.insert(s)),
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
                    self.0.remove(&key);
                }
                result
            }
            Err(_) => {
                self.0.remove(&key);
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
