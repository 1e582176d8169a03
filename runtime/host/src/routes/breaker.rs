//! A circuit breaker per route for plugins that burn a worker until a limit stops them.

use std::sync::Mutex;
use std::time::Duration;

/// A circuit breaker for plugins that burn a worker until a limit stops them: after a
/// deadline or memory breach the route's next calls wait a cool-down (100 ms, doubling while
/// breaches continue, at most 5 s; a good call resets it), so a looping plugin gets a sliver
/// of the CPU instead of a whole core.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    open_until: Option<std::time::Instant>,
    cooldown: Duration,
}

impl Breaker {
    const FIRST: Duration = Duration::from_millis(100);
    const LONGEST: Duration = Duration::from_secs(5);

    /// How long calls must still wait, if the breaker is open.
    pub fn remaining(&self) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let until = state.open_until?;
        until.checked_duration_since(std::time::Instant::now())
    }

    /// Whether the route's last call breached a limit (its cool-down is set until a call
    /// ends without one): its calls then share the host's permits for suspect routes.
    pub fn suspect(&self) -> bool {
        self.state
            .lock()
            .map_or(true, |state| !state.cooldown.is_zero())
    }

    /// Records how a call ended: a breach opens (or keeps open) the breaker, anything else
    /// closes it.
    pub fn record(&self, breached: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if breached {
            state.cooldown = (state.cooldown * 2).clamp(Self::FIRST, Self::LONGEST);
            state.open_until = Some(std::time::Instant::now() + state.cooldown);
        } else {
            state.cooldown = Duration::ZERO;
            state.open_until = None;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_cools_a_route_down_after_breaches_and_resets_on_success() {
        let breaker = Breaker::default();
        assert_eq!(breaker.remaining(), None);
        breaker.record(true);
        let first = breaker.remaining().unwrap_or_default();
        assert!(
            first > Duration::from_millis(50) && first <= Breaker::FIRST,
            "{first:?}"
        );
        for _ in 0..10 {
            breaker.record(true);
        }
        let longest = breaker.remaining().unwrap_or_default();
        assert!(
            longest > Duration::from_secs(4) && longest <= Breaker::LONGEST,
            "{longest:?}"
        );
        assert!(breaker.suspect(), "suspect while breaches continue");
        breaker.record(false);
        assert_eq!(breaker.remaining(), None);
        assert!(!breaker.suspect(), "a good call clears it");
    }
}
