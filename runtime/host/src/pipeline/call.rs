//! The plugin-call stage both directions share: a route's admission (its share of the
//! workers, and while it breaches limits the share all such routes have together), its
//! breaker (cool-down after deadline or memory breaches), the call on the worker
//! pool, the plugin-call metrics, and retries with backoff for traps and breached limits.
//! Mapping a raw message, rendering a canonical event's requests and interpreting a target's
//! answer all go through [`PluginCalls::call`].

use std::sync::Arc;
use std::time::Instant;

use super::HostFailure;
use crate::observability::{At, Observer};
use crate::routes::Route;
use millrace_core::rules::Failure;
use millrace_core::sandbox::{CallError, PluginComponent, Session};
use millrace_core::workers::{Unavailable, WorkerPool};

/// The plugin-call stage over one worker pool; cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PluginCalls {
    pool: Arc<WorkerPool>,
}

impl PluginCalls {
    /// Calls plugins on `pool`.
    pub fn new(pool: WorkerPool) -> Self {
        Self {
            pool: Arc::new(pool),
        }
    }

    /// The pool, for calls that bypass governance (a shadow candidate's one try).
    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }

    /// Runs `work` in `plugin`'s session for `route`, retrying traps and breached limits with
    /// backoff as the route says, through the route's admission and breaker. Returns the
    /// outcome and the number of calls made, or why the host could not call at all.
    pub async fn call<T, W>(
        &self,
        observer: &Observer,
        route: &Route,
        plugin: &Arc<PluginComponent>,
        work: W,
    ) -> Result<(Result<T, Failure>, u32), HostFailure>
    where
        T: Send + 'static,
        W: FnOnce(&mut Session) -> Result<T, Failure> + Clone + Send + 'static,
    {
        let mut attempt = 1;
        let at = At {
            route: &route.name,
            plugin_version: &plugin.id(),
        };
        loop {
            let result = loop {
                let Ok(permit) = route.admission.acquire().await else {
                    return Err(Unavailable("the route is shutting down").into());
                };
                // A route cooling down after a breach waits without holding a worker permit.
                if let Some(wait) = route.breaker.remaining() {
                    drop(permit);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                // A route that breached lately shares the suspects' permits with the others
                // that did, so together they leave a worker to the well-behaved routes.
                let _suspect = if route.breaker.suspect() {
                    let Ok(permit) = route.suspects.acquire().await else {
                        return Err(Unavailable("the route is shutting down").into());
                    };
                    Some(permit)
                } else {
                    None
                };
                let started = Instant::now();
                let result = self
                    .pool
                    .run(plugin.clone(), route.context.clone(), work.clone())
                    .await?;
                observer.plugin_call(at, started.elapsed(), result.as_ref().err());
                route.breaker.record(matches!(
                    result,
                    Err(Failure::Call(CallError::Deadline(_) | CallError::Memory(_)))
                ));
                break result;
            };
            let retry = match &result {
                Err(failure) => super::mapping::retry_after(&route.retry, attempt, failure)
                    .map(|backoff| (backoff, failure)),
                Ok(_) => None,
            };
            match retry {
                Some((backoff, failure)) => {
                    tracing::info!(
                        route = &*route.name,
                        attempt,
                        "plugin call failed, retrying in {backoff:?}: {failure}"
                    );
                    observer.retry(at);
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                None => return Ok((result, attempt)),
            }
        }
    }

    /// Takes no more plugin calls.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Stops the worker threads once the calls queued are done.
    pub async fn shutdown(&self) {
        let pool = self.pool.clone();
        if tokio::task::spawn_blocking(move || pool.shutdown())
            .await
            .is_err()
        {
            tracing::error!("stopping the worker threads failed");
        }
    }
}
