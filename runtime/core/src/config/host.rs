//! `[host]`: how the host runs; `[up]`: the local all-in-one `millrace up`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `host.workers` | worker threads running plugins | number of CPUs |
//! | `host.partitions` | ordered lanes messages are spread over by subject | 16 |
//! | `host.max_workers_per_route` | plugin calls one route may run at once | workers − 1 with several routes, else workers |
//! | `host.state_dir` | where `up` keeps its NATS data and the compiled-plugin cache | `.millrace` |
//! | `host.drain_timeout` | how long a stopping host finishes messages in flight before leaving them to redelivery | `10s` |
//! | `host.compile_timeout` | longest the child process compiling one plugin may run; a plugin that takes longer is refused | `5m` |
//! | `host.compile_memory_mib` | most memory the child process compiling one plugin may hold; a plugin that needs more is refused | 4096 |
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
    /// The longest the child process compiling one plugin may run: Cranelift's time grows
    /// faster than a function's size, so a crafted component could otherwise hold a compile
    /// slot and a core for hours on every host that loads it.
    pub compile_timeout: HumanDuration,
    /// The most resident memory the child process compiling one plugin may hold.
    pub compile_memory_mib: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            partitions: 16,
            max_workers_per_route: None,
            state_dir: PathBuf::from(".millrace"),
            drain_timeout: HumanDuration::from_secs(10),
            compile_timeout: HumanDuration::from_secs(300),
            compile_memory_mib: 4096,
        }
    }
}

impl HostConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_range("host.workers", self.workers, 1..=256)?;
        check_range("host.partitions", self.partitions, 1..=4096)?;
        if self.compile_timeout < HumanDuration::from_secs(1) {
            return Err(Invalid::new("host.compile_timeout", "must be at least 1s"));
        }
        check_range(
            "host.compile_memory_mib",
            self.compile_memory_mib,
            64..=1_048_576,
        )
    }

    /// The limits of compiling one plugin in the child process.
    pub fn compile_limits(&self) -> crate::sandbox::CompileLimits {
        crate::sandbox::CompileLimits {
            timeout: self.compile_timeout.get(),
            memory_mib: self.compile_memory_mib,
        }
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
