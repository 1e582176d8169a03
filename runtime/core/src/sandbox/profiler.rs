//! Telling a profiler the names of the plugins' compiled functions, so that `perf` shows a
//! plugin's own code (`x12_856::map`, `millrace_sdk::x12::read`, `dlmalloc`) where it would
//! otherwise show anonymous addresses. For profiling a plugin; serving needs none of it.
//!
//! Chosen with the environment variable [`PROFILER_ENV`] when a host, the CLI or the bench
//! starts its sandbox: `perfmap` (wasmtime writes `/tmp/perf-<pid>.map`, which `perf report`
//! reads) or `jitdump` (a `jit-<pid>.dump` for `perf inject --jit`, with the instructions).

use std::str::FromStr;

/// The environment variable that chooses the [`Profiler`].
pub const PROFILER_ENV: &str = "MILLRACE_PROFILE_PLUGINS";

/// What the engine tells a profiler about compiled plugin code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profiler {
    /// Nothing (the default).
    #[default]
    None,
    /// A perf map, `/tmp/perf-<pid>.map`: function names and addresses.
    PerfMap,
    /// A jitdump file: names, addresses and the code, for `perf inject --jit`.
    JitDump,
}

impl Profiler {
    /// The profiler [`PROFILER_ENV`] names; none when it is unset or empty.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(PROFILER_ENV) {
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Self::None),
            Err(std::env::VarError::NotUnicode(value)) => {
                anyhow::bail!("{PROFILER_ENV}={value:?}: expected perfmap or jitdump")
            }
        }
    }

    pub(super) fn strategy(self) -> wasmtime::ProfilingStrategy {
        match self {
            Self::None => wasmtime::ProfilingStrategy::None,
            Self::PerfMap => wasmtime::ProfilingStrategy::PerfMap,
            Self::JitDump => wasmtime::ProfilingStrategy::JitDump,
        }
    }
}

impl FromStr for Profiler {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> anyhow::Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => Ok(Self::None),
            "perfmap" => Ok(Self::PerfMap),
            "jitdump" => Ok(Self::JitDump),
            _ => anyhow::bail!(
                "{PROFILER_ENV}={value:?} is not a profiler this host knows: expected perfmap \
                 (perf reads /tmp/perf-<pid>.map) or jitdump (for perf inject --jit), or unset"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profilers_are_named_case_blind_and_an_unknown_one_is_refused_by_name() -> anyhow::Result<()>
    {
        assert_eq!("perfmap".parse::<Profiler>()?, Profiler::PerfMap);
        assert_eq!(" JitDump ".parse::<Profiler>()?, Profiler::JitDump);
        assert_eq!("".parse::<Profiler>()?, Profiler::None);
        let Err(refused) = "vtune".parse::<Profiler>() else {
            anyhow::bail!("an unknown profiler was taken");
        };
        let refused = refused.to_string();
        assert!(
            refused.contains(r#"MILLRACE_PROFILE_PLUGINS="vtune""#),
            "{refused}"
        );
        assert!(refused.contains("perfmap"), "{refused}");
        Ok(())
    }
}
