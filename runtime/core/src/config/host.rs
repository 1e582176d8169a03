//! `[host]`: how the host runs; `[up]`: the local all-in-one `millrace up`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `host.workers` | worker threads running plugins | number of CPUs |
//! | `host.partitions` | ordered lanes messages are spread over by subject | 16 |
//! | `host.max_workers_per_route` | plugin calls one route may run at once | workers − 1 with several routes, else workers |
//! | `host.state_dir` | where `up` keeps its NATS data and the compiled-plugin cache | `.millrace` |
//! | `host.drain_timeout` | how long a stopping host finishes messages in flight before leaving them to redelivery | `10s` |
//! | `up.port` | port of the nats-server that `up` starts | 4222 |
//! | `up.seed` | raw sample files `up` publishes once the host runs: `subject` and `files` | none |

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{HumanDuration, Invalid, check_range, check_subject};

/// Host-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Worker threads that run plugin calls.
    pub workers: usize,
    /// Ordered lanes: messages of one raw subject always take the same lane.
    pub partitions: usize,
    /// Plugin calls one route may run at once; default: all workers but one when the host has
    /// several routes (so a slow or hostile route cannot starve the others), else all.
    pub max_workers_per_route: Option<usize>,
    /// Local state: `up`'s NATS data and the compiled-plugin cache.
    pub state_dir: PathBuf,
    /// How long a stopping host waits for the messages in flight before it leaves them to
    /// redelivery (a stop must not hang while NATS is unreachable).
    pub drain_timeout: HumanDuration,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            partitions: 16,
            max_workers_per_route: None,
            state_dir: PathBuf::from(".millrace"),
            drain_timeout: HumanDuration::from_secs(10),
        }
    }
}

impl HostConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_range("host.workers", self.workers, 1..=256)?;
        check_range("host.partitions", self.partitions, 1..=4096)
    }
}

/// Settings of the local all-in-one `millrace up`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpConfig {
    /// Port of the local nats-server.
    pub port: u16,
    /// Sample messages published once the host is running.
    pub seed: Vec<SeedMessages>,
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            port: 4222,
            seed: Vec::new(),
        }
    }
}

impl UpConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        for (i, seed) in self.seed.iter().enumerate() {
            check_subject(&seed.subject, false)
                .map_err(|m| Invalid::new(format!("up.seed[{i}].subject"), m))?;
        }
        Ok(())
    }
}

/// Raw files to publish to one subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMessages {
    /// The raw subject.
    pub subject: String,
    /// The files, one message each.
    pub files: Vec<PathBuf>,
}
