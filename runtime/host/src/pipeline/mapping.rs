//! The mapping stage: the part of the pipeline that needs no broker. A raw input becomes the
//! plugin's `RawMessage` by the one header policy ([`RawInput::message`]); the plugin is called
//! under the route's limits and retried as the route's [`RetryPolicy`] says
//! ([`retry_after`]); the events pass the rules that need only them ([`workers::map`]: output
//! size, event count, validity) and system-of-record ownership ([`owned`]).
//!
//! [`Pipeline::process`](super::Pipeline::process) runs it on the worker pool, through the
//! route's admission and breaker, and delivers what it decides. [`Rehearsal`] runs it in the
//! calling thread for `millrace plugin run`, `plugin test` and admission's golden fixtures, so a
//! fixture is judged exactly as live traffic would be.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use millrace_core::canonical::MappedEvent;
use millrace_core::config::RetryPolicy;
use millrace_core::rules::Failure;
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::{PluginComponent, RouteContext, Session};
use millrace_core::workers;

use super::input::RawInput;

/// What a fixture expects, and what a plugin produced: the same JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The events, in order.
    Events(Vec<MappedEvent>),
    /// The error.
    Error(ErrorOutcome),
}

/// An expected or actual error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorOutcome {
    /// The failure kind, e.g. `malformed-input`.
    pub kind: String,
    /// The reason.
    pub message: String,
}

impl From<Result<Vec<MappedEvent>, Failure>> for Outcome {
    fn from(result: Result<Vec<MappedEvent>, Failure>) -> Self {
        match result {
            Ok(events) => Outcome::Events(events),
            Err(f) => Outcome::Error(ErrorOutcome {
                kind: f.kind().into(),
                message: f.message(),
            }),
        }
    }
}

/// How long to wait before trying a call again after `failure` ended try `attempt` (the first
/// is 1), or `None` when the outcome is final: only traps and breached limits are retried, up
/// to the policy's attempts, the backoff doubling each time.
pub fn retry_after(policy: &RetryPolicy, attempt: u32, failure: &Failure) -> Option<Duration> {
    (failure.is_retryable() && attempt < policy.attempts).then(|| {
        policy
            .backoff
            .get()
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
    })
}

/// The source system of a raw subject on a route: the route's `system` setting, else the
/// second token of `raw.<system>.<site>.<format>`, else the route name.
pub fn source_system<'a>(route: &'a RouteContext, subject: &'a str) -> &'a str {
    if let Some(system) = route.config.get("system") {
        return system;
    }
    millrace_core::subjects::raw_system(subject).unwrap_or(&route.route)
}

/// The outcome after system-of-record ownership: a message with an event its source
/// `system` does not own fails whole (`not-owner`).
pub fn owned(
    ownership: &OwnershipPolicy,
    system: &str,
    outcome: Result<Vec<MappedEvent>, Failure>,
) -> Result<Vec<MappedEvent>, Failure> {
    outcome.and_then(|events| ownership.check(system, &events).map(|()| events))
}

/// The mapping stage run in the calling thread, without a broker or a worker pool: what `plugin
/// run`, `plugin test` and admission's golden fixtures give a plugin and how they judge it.
#[derive(Debug, Clone, Copy)]
pub struct Rehearsal<'a> {
    /// The version called.
    pub plugin: &'a PluginComponent,
    /// The route it is called for: its configuration and limits (tightened by the plugin's).
    pub route: &'a RouteContext,
    /// The route's retries of traps and breached limits.
    pub retry: RetryPolicy,
    /// The host's ownership rules (`[governance]`); none without a host configuration.
    pub ownership: &'a OwnershipPolicy,
}

impl Rehearsal<'_> {
    /// Takes `input` through the stage: the outcome as live delivery would judge it, and the
    /// number of calls made.
    pub fn map(&self, input: &RawInput) -> (Result<Vec<MappedEvent>, Failure>, u32) {
        let raw = input.message();
        let limits = self.plugin.limits_on(&self.route.limits);
        let mut attempt = 1;
        loop {
            // A fresh session per try, as a worker makes after a trap spends its session.
            let outcome = Session::new(self.plugin, self.route)
                .map_err(Failure::from)
                .and_then(|mut session| workers::map(&mut session, &raw, &limits));
            match outcome {
                Err(failure) => match retry_after(&self.retry, attempt, &failure) {
                    Some(backoff) => {
                        std::thread::sleep(backoff);
                        attempt += 1;
                    }
                    None => return (Err(failure), attempt),
                },
                Ok(events) => {
                    let system = source_system(self.route, &input.subject);
                    return (owned(self.ownership, system, Ok(events)), attempt);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_core::config::HumanDuration;
    use millrace_core::sandbox::CallError;

    #[test]
    fn only_traps_and_breaches_are_retried_with_a_doubling_backoff() {
        let policy = RetryPolicy {
            attempts: 3,
            backoff: HumanDuration::from_millis(100),
        };
        let trap = Failure::Call(CallError::Trap("unreachable".into()));
        assert_eq!(
            retry_after(&policy, 1, &trap),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            retry_after(&policy, 2, &trap),
            Some(Duration::from_millis(200))
        );
        assert_eq!(retry_after(&policy, 3, &trap), None, "three tries in all");
        let invalid = Failure::NotOwner("not mine".into());
        assert_eq!(retry_after(&policy, 1, &invalid), None);
    }
}
