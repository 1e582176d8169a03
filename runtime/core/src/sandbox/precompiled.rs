//! Precompiled artifacts: a component's machine code compiled ahead of time for one engine, so
//! a serving host loads it without running Cranelift (whose memory a process keeps once it has
//! compiled: 439 MiB against 173 MiB for ten plugins, see docs/PERFORMANCE.md).
//!
//! An artifact is **sealed**: a header line names the component's sha256, the engine's
//! compatibility hash and the sha256 of the compiled bytes that follow. Before a single byte is
//! handed to wasmtime the seal is checked (the artifact belongs to this component and this
//! engine, and is the one that was written), then wasmtime checks its own header (its version,
//! the engine's settings and the CPU's features). Anything refused is compiled again, never
//! trusted. The artifacts live in a folder of the host's state (`<state_dir>/cache/precompiled`),
//! named by component digest and compatibility hash; an artifact is written by this machine's
//! own `millrace` (in a child process, so the serving process never compiles) or, without one,
//! by the host itself after compiling in process.

use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use super::{LoadError, Sandbox};
use crate::digest::sha256_hex;

/// The first word of a sealed artifact.
const SEAL_MAGIC: &str = "millrace-precompiled/1";

/// The longest header line a sealed artifact may have.
const SEAL_HEADER_MAX: usize = 256;

/// How a component came to be compiled when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compilation {
    /// Compiled in this process (no artifact folder, or no good artifact and no compiler
    /// process).
    InProcess,
    /// Compiled by a child process into an artifact, then loaded from it.
    ChildProcess,
    /// Loaded from an artifact that was already there.
    Precompiled,
}

impl Compilation {
    /// How logs and tests name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compilation::InProcess => "compiled in process",
            Compilation::ChildProcess => "compiled in a child process",
            Compilation::Precompiled => "loaded precompiled",
        }
    }
}

/// Why a precompiled artifact was not used.
#[derive(Debug, thiserror::Error)]
#[error("precompiled artifact refused: {0}")]
pub struct ArtifactRefused(pub String);

/// Bounds on compiling one component in the child process. Cranelift's time grows faster
/// than a function's size (a 1 MB component of one crafted function took 64 s to compile on a
/// 2-core machine, ten times the function 24 times as long), so without them an uploaded
/// component could hold a compile slot and a core for hours on every host that loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// The longest one compile may run.
    pub timeout: Duration,
    /// The most resident memory the compiler process may hold, in MiB.
    pub memory_mib: u64,
}

/// The command that compiles a component in a child process, and its limits.
#[derive(Debug, Clone)]
struct Compiler {
    program: PathBuf,
    args: Vec<OsString>,
    limits: CompileLimits,
}

/// Where a sandbox keeps precompiled artifacts, and the command that compiles one in a child
/// process (given the component on stdin and `--out <file>`), when there is one.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
    compiler: Option<Compiler>,
}

impl ArtifactStore {
    /// Artifacts in `dir`, compiled in this process when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            compiler: None,
        }
    }

    /// Missing artifacts are compiled by `program args… --out <file>` reading the component on
    /// stdin (`millrace plugin precompile`), within `limits`. Should the compiler fail on its
    /// own (it cannot start, or cannot write), the host compiles in process; should the
    /// component break a limit or kill the compiler, it is refused.
    pub fn compiled_by(
        mut self,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        limits: CompileLimits,
    ) -> Self {
        self.compiler = Some(Compiler {
            program: program.into(),
            args,
            limits,
        });
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Feeds `Hash` into sha256, so the compatibility hash is the same in every process of the
/// same build (`DefaultHasher` promises nothing across processes).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The engine's compatibility hash, hex: equal for engines whose artifacts are interchangeable.
pub(super) fn compatibility_hash(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sandbox {
    /// Keeps precompiled artifacts in `store` and loads plugins from them (see the module docs).
    pub fn with_artifacts(mut self, store: ArtifactStore) -> Self {
        self.artifacts = Some(std::sync::Arc::new(store));
        self
    }

    /// The engine's compatibility hash (hex): artifacts of another hash are not this engine's.
    pub fn compatibility_hash(&self) -> &str {
        &self.compatibility
    }

    /// Compiles a component into a sealed artifact for this engine (through the engine's
    /// compile cache, when it has one: a host whose cache is warm from before artifacts existed
    /// does not compile again).
    pub fn precompile(&self, component: &[u8]) -> anyhow::Result<Vec<u8>> {
        let compiled = Component::new(&self.engine, component)?.serialize()?;
        Ok(self.seal(&sha256_hex(component), &compiled))
    }

    fn seal(&self, component_digest: &str, compiled: &[u8]) -> Vec<u8> {
        let mut sealed = format!(
            "{SEAL_MAGIC} {component_digest} {} {}\n",
            self.compatibility,
            sha256_hex(compiled)
        )
        .into_bytes();
        sealed.extend_from_slice(compiled);
        sealed
    }

    /// Loads the component whose sha256 is `component_digest` from a sealed artifact, after
    /// checking the seal and letting wasmtime check the engine; refused otherwise.
    pub fn open_precompiled(
        &self,
        component_digest: &str,
        sealed: &[u8],
    ) -> Result<Component, ArtifactRefused> {
        let refused = |why: &str| ArtifactRefused(why.to_owned());
        let newline = sealed
            .iter()
            .take(SEAL_HEADER_MAX)
            .position(|b| *b == b'\n')
            .ok_or_else(|| refused("no seal header"))?;
        let header = std::str::from_utf8(&sealed[..newline]).map_err(|_| refused("bad header"))?;
        let compiled = &sealed[newline + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        let [magic, digest, compatibility, compiled_digest] = fields[..] else {
            return Err(refused("the seal header does not have four fields"));
        };
        if magic != SEAL_MAGIC {
            return Err(refused("not a millrace precompiled artifact"));
        }
        if digest != component_digest {
            return Err(refused("it was compiled from another component"));
        }
        if compatibility != &*self.compatibility {
            return Err(refused("it was compiled for another engine"));
        }
        if sha256_hex(compiled) != compiled_digest {
            return Err(refused(
                "its compiled bytes do not match their seal (corrupt)",
            ));
        }
        if Engine::detect_precompiled(compiled) != Some(Precompiled::Component) {
            return Err(refused(
                "wasmtime does not recognise a precompiled component",
            ));
        }
        deserialize(&self.engine, compiled).map_err(|e| ArtifactRefused(format!("{e:#}")))
    }

    /// The compiled component of `bytes`: from a good artifact, else compiled (in a child
    /// process when the store has a compiler, else here) and kept as an artifact.
    pub(super) fn compile(
        &self,
        plugin: &str,
        bytes: &[u8],
    ) -> Result<(Component, Compilation), LoadError> {
        if let Err(reason) = component_header(bytes) {
            return Err(LoadError::Compile {
                plugin: plugin.to_owned(),
                reason,
            });
        }
        let in_process = || {
            Component::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
                plugin: plugin.to_owned(),
                // wasmtime's reason may hold a value's `Debug` rendering over several lines.
                reason: format!("{e:#}")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            })
        };
        let Some(store) = &self.artifacts else {
            return Ok((in_process()?, Compilation::InProcess));
        };
        let digest = sha256_hex(bytes);
        let path = store
            .dir
            .join(format!("{digest}.{}.cwasm", self.compatibility));
        if let Some(component) = self.read_artifact(plugin, &digest, &path) {
            return Ok((component, Compilation::Precompiled));
        }
        if let Some(compiler) = &store.compiler {
            match compiler.compile(bytes, &path) {
                Ok(()) => {
                    if let Some(component) = self.read_artifact(plugin, &digest, &path) {
                        return Ok((component, Compilation::ChildProcess));
                    }
                }
                Err(ChildFailure::Refused(reason)) => {
                    return Err(LoadError::CompileLimit {
                        plugin: plugin.to_owned(),
                        reason,
                    });
                }
                Err(ChildFailure::Failed(e)) => tracing::warn!(
                    plugin,
                    "compiling in a child process failed, compiling in the host: {e:#}"
                ),
            }
        }
        let component = in_process()?;
        match component.serialize() {
            Ok(compiled) => {
                if let Err(e) = write_atomic(&path, &self.seal(&digest, &compiled)) {
                    tracing::warn!(plugin, "cannot keep the precompiled artifact: {e:#}");
                }
            }
            Err(e) => tracing::warn!(plugin, "cannot serialize the compiled component: {e:#}"),
        }
        Ok((component, Compilation::InProcess))
    }

    /// The artifact at `path` when there is one and it passes every check; a refused one is
    /// removed (it will be compiled again).
    fn read_artifact(&self, plugin: &str, digest: &str, path: &Path) -> Option<Component> {
        let sealed = std::fs::read(path).ok()?;
        match self.open_precompiled(digest, &sealed) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(plugin, path = %path.display(), "{e}; compiling it again");
                std::fs::remove_file(path).ok();
                None
            }
        }
    }
}

/// Checks the first eight bytes say "WebAssembly component", so the common mistakes (an empty
/// or other file, a core module built for the wrong target) are named in words before any
/// compiler runs; what follows the header is wasmtime's to judge.
fn component_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    /// The component model's layer 1, encoding version 0x0d.
    const COMPONENT: &[u8] = &[0x0d, 0x00, 0x01, 0x00];
    /// A core module, version 1.
    const MODULE: &[u8] = &[0x01, 0x00, 0x00, 0x00];
    match (bytes.get(..4), bytes.get(4..8)) {
        _ if bytes.is_empty() => Err("the file is empty".into()),
        (Some(MAGIC), Some(COMPONENT)) => Ok(()),
        (Some(MAGIC), Some(MODULE)) => Err("it is a core WebAssembly module, not a component: \
             build the plugin for the wasm32-wasip2 target (`cargo build --release --target \
             wasm32-wasip2`), or wrap a module with `wasm-tools component new`"
            .into()),
        (Some(MAGIC), None) => Err("the file ends inside its WebAssembly header".into()),
        (Some(MAGIC), Some(version)) => Err(format!(
            "its WebAssembly header names version {version:02x?}, not a component's \
             {COMPONENT:02x?}"
        )),
        _ => Err(format!(
            "it is not a WebAssembly file: it starts with {:02x?} where a WebAssembly file \
             starts with \\0asm ({MAGIC:02x?})",
            &bytes[..bytes.len().min(4)]
        )),
    }
}

/// Why the compiler process left no artifact.
enum ChildFailure {
    /// It could not run, or failed on its own (it could not write, or the component is
    /// invalid): the host compiles in process, which names the fault if it is the component's.
    Failed(anyhow::Error),
    /// The component made it break a limit, or killed it: refused, never compiled in process.
    Refused(String),
}

/// How often a running compile's time and memory are looked at.
const COMPILE_POLL: Duration = Duration::from_millis(10);

impl Compiler {
    /// Runs the compiler process, the component on its stdin and the sealed artifact written
    /// to `out`, killing it when it runs past a limit.
    fn compile(&self, bytes: &[u8], out: &Path) -> Result<(), ChildFailure> {
        let failed = |e: std::io::Error| ChildFailure::Failed(e.into());
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg("--out")
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        // Read apart, so a compiler that writes much to stderr never blocks on a full pipe.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).ok();
                text
            })
        });
        let fed = child
            .stdin
            .take()
            .map_or(Ok(()), |mut stdin| stdin.write_all(bytes));
        let status = match fed {
            Ok(()) => self.watch(&mut child, out),
            Err(e) => {
                stop(&mut child, out);
                Err(failed(e))
            }
        };
        let stderr = stderr
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        let stderr = stderr.trim();
        let status = status?;
        if status.success() {
            return Ok(());
        }
        #[cfg(unix)]
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Err(ChildFailure::Refused(format!(
                "the compiler process died of signal {signal} while compiling it (the kernel \
                 kills a process that runs the machine out of memory){}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            )));
        }
        Err(ChildFailure::Failed(anyhow::anyhow!(
            "{} exited with {status}: {stderr}",
            self.program.display()
        )))
    }

    /// Waits for the compiler to exit, killing it when it runs longer or holds more memory
    /// than the limits allow.
    fn watch(&self, child: &mut Child, out: &Path) -> Result<ExitStatus, ChildFailure> {
        let started = Instant::now();
        let CompileLimits {
            timeout,
            memory_mib,
        } = self.limits;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| ChildFailure::Failed(e.into()))?
            {
                return Ok(status);
            }
            let resident = resident_mib(child.id());
            let broken = if started.elapsed() > timeout {
                Some(format!(
                    "compiling it ran longer than {timeout:?} (host.compile_timeout); stopped"
                ))
            } else if resident.is_some_and(|mib| mib > memory_mib) {
                Some(format!(
                    "compiling it took more than {memory_mib} MiB of memory \
                     (host.compile_memory_mib); stopped after {:.1} s",
                    started.elapsed().as_secs_f64()
                ))
            } else {
                None
            };
            if let Some(reason) = broken {
                stop(child, out);
                return Err(ChildFailure::Refused(reason));
            }
            std::thread::sleep(COMPILE_POLL);
        }
    }
}

/// Kills the compiler and removes what it may have begun writing.
fn stop(child: &mut Child, out: &Path) {
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_file(temporary_path(out, child.id())).ok();
}

/// A process's resident memory in MiB, from `/proc` (`None` where there is no `/proc`).
fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half
/// an artifact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temporary_path(path, std::process::id());
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Where process `pid`'s [`write_atomic`] of `path` writes before its rename.
fn temporary_path(path: &Path, pid: u32) -> PathBuf {
    path.with_extension(format!("tmp{pid}"))
}

/// Hands checked compiled bytes to wasmtime.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires the bytes to come from its own `serialize` or
    // `precompile_component`, unchanged. They do: the caller checked that the sha256 of the
    // bytes is the one sealed with them when this host's engine (same compatibility hash)
    // wrote them into the host's own state folder, and wasmtime checks its version, the
    // engine's settings and the CPU's features before using them.
    unsafe { Component::deserialize(engine, compiled) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: the component preamble and no sections.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn every_sandbox_of_this_build_has_the_same_compatibility_hash() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = Sandbox::new(None)?;
        let b = Sandbox::new(Some(dir.path()))?;
        assert_eq!(a.compatibility_hash(), b.compatibility_hash());
        assert_eq!(a.compatibility_hash().len(), 32);
        // Profiling a host must not make it refuse the artifacts it serves from.
        let profiled = Sandbox::with_profiler(None, super::super::Profiler::PerfMap)?;
        assert_eq!(a.compatibility_hash(), profiled.compatibility_hash());
        Ok(())
    }

    #[test]
    fn a_sealed_artifact_loads_and_a_corrupt_or_foreign_one_is_refused() -> anyhow::Result<()> {
        let sandbox = Sandbox::new(None)?;
        let wasm = EMPTY_COMPONENT.to_vec();
        let digest = sha256_hex(&wasm);
        let sealed = sandbox.precompile(&wasm)?;
        sandbox.open_precompiled(&digest, &sealed)?;

        // Another component's digest.
        let other = sandbox.open_precompiled(&sha256_hex(b"other"), &sealed);
        assert!(matches!(other, Err(ArtifactRefused(why)) if why.contains("another component")));

        // One flipped byte of machine code.
        let mut corrupt = sealed.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x55;
        let refused = sandbox.open_precompiled(&digest, &corrupt);
        assert!(matches!(refused, Err(ArtifactRefused(why)) if why.contains("corrupt")));

        // Compiled by an engine of other settings, sealed as if it were this engine's: the seal
        // holds, wasmtime's own check refuses it.
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(false);
        let foreign = Engine::new(&config)?.precompile_component(&wasm)?;
        let resealed = sandbox.seal(&digest, &foreign);
        let refused = sandbox.open_precompiled(&digest, &resealed);
        assert!(
            refused.is_err(),
            "an artifact of another engine config loaded"
        );

        // A header naming another engine.
        let text = String::from_utf8_lossy(
            &sealed[..sealed.iter().position(|b| *b == b'\n').unwrap_or(0)],
        )
        .replace(sandbox.compatibility_hash(), &"0".repeat(32));
        let mut renamed = text.into_bytes();
        renamed.extend_from_slice(&sealed[renamed.len()..]);
        let refused = sandbox.open_precompiled(&digest, &renamed);
        assert!(matches!(refused, Err(ArtifactRefused(why)) if why.contains("another engine")));
        Ok(())
    }

    /// wasmtime's compile cache cleans its folder of every file it does not recognise, on the
    /// first cache write and then periodically: the precompiled artifacts beside it must be out
    /// of its reach (it once removed an artifact between the compiler process writing it and
    /// the host reading it, and a compiler's temporary file before its rename).
    #[test]
    fn the_compile_caches_cleanup_leaves_the_artifacts_alone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let artifacts = dir.path().join("precompiled");
        let sandbox =
            Sandbox::new(Some(dir.path()))?.with_artifacts(ArtifactStore::new(&artifacts));
        sandbox.compile("empty@1.0.0", EMPTY_COMPONENT)?;
        let kept: Vec<_> = std::fs::read_dir(&artifacts)?.collect::<Result<_, _>>()?;
        assert_eq!(kept.len(), 1, "{kept:?}");
        // The cache's worker thread takes a `.cleanup` lock file, then cleans up.
        let cleanup_started = || {
            walk(dir.path()).iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".cleanup"))
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cleanup_started() {
            assert!(
                std::time::Instant::now() < deadline,
                "no cleanup: {:?}",
                walk(dir.path())
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(kept[0].path().is_file(), "removed: {:?}", walk(dir.path()));
        Ok(())
    }

    /// Every path below `dir`.
    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                paths.extend(walk(&path));
            }
            paths.push(path);
        }
        paths
    }

    /// The files a plugin author deploys by mistake are named for what they are, before any
    /// compiler (or compiler process) runs, and on one line.
    #[test]
    fn files_that_are_not_components_are_named_for_what_they_are() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let sandbox = Sandbox::new(None)?.with_artifacts(ArtifactStore::new(dir.path()));
        let reason = |bytes: &[u8]| match sandbox.compile("p@1.0.0", bytes) {
            Err(error) => error.to_string(),
            Ok(_) => "compiled".to_owned(),
        };
        assert_eq!(
            reason(b""),
            "plugin p@1.0.0 is not a valid WebAssembly component: the file is empty"
        );
        let json = reason(b"{\"kind\": \"json\"}");
        assert!(
            json.ends_with(
                "it is not a WebAssembly file: it starts with [7b, 22, 6b, 69] where a \
                 WebAssembly file starts with \\0asm ([00, 61, 73, 6d])"
            ),
            "{json}"
        );
        assert!(reason(b"\0asm\x01\0\0\0").contains("a core WebAssembly module, not a component"));
        assert!(reason(b"\0asm\x0c\0\x01\0").contains("names version [0c, 00, 01, 00]"));
        assert!(reason(b"\0as").contains("it starts with [00, 61, 73]"));
        assert!(reason(b"\0asm\x0d").contains("the file ends inside its WebAssembly header"));
        // A component cut short: wasmtime's reason, on one line.
        let mut cut = EMPTY_COMPONENT.to_vec();
        cut.extend_from_slice(&[0x01, 0xff]);
        let truncated = reason(&cut);
        assert!(!truncated.contains('\n'), "{truncated}");
        assert!(
            truncated.starts_with("plugin p@1.0.0 is not a valid"),
            "{truncated}"
        );
        // Nothing was compiled, so nothing was kept.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn a_refused_artifact_is_compiled_again_and_replaced() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let wasm = EMPTY_COMPONENT.to_vec();
        let sandbox = Sandbox::new(None)?.with_artifacts(ArtifactStore::new(dir.path()));
        let (_, first) = sandbox.compile("empty@1.0.0", &wasm)?;
        assert_eq!(first, Compilation::InProcess);
        let path = dir.path().join(format!(
            "{}.{}.cwasm",
            sha256_hex(&wasm),
            sandbox.compatibility_hash()
        ));
        assert!(path.is_file(), "no artifact was kept");
        let (_, second) = sandbox.compile("empty@1.0.0", &wasm)?;
        assert_eq!(second, Compilation::Precompiled);

        // Corrupt it: refused, compiled again, and a good artifact written in its place.
        let mut bytes = std::fs::read(&path)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, &bytes)?;
        let (_, third) = sandbox.compile("empty@1.0.0", &wasm)?;
        assert_eq!(third, Compilation::InProcess);
        let (_, fourth) = sandbox.compile("empty@1.0.0", &wasm)?;
        assert_eq!(fourth, Compilation::Precompiled);
        Ok(())
    }
}
