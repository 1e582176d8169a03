//! Building a plugin folder into a component, so users never need to know the target path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::Manifest;

/// The Rust target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds the plugin in `dir` (a no-op when it is up to date) and returns its component.
pub fn build(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    if let Some(settings) = &manifest.build {
        let (program, args) = settings
            .command
            .split_first()
            .context("`build.command` is empty")?;
        let component = dir.join(&settings.component);
        // Two builds of one plugin at once (two hosts, a host and `plugin test`) would share
        // its staging files: take a lock beside the component, held until the build is done.
        let lock_dir = component.parent().unwrap_or(dir);
        std::fs::create_dir_all(lock_dir)
            .with_context(|| format!("cannot create {}", lock_dir.display()))?;
        let lock_path = lock_dir.join(".millrace-build.lock");
        let lock = std::fs::File::create(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        run(Command::new(program).args(args).current_dir(dir), dir)?;
        drop(lock);
        if !component.is_file() {
            bail!(
                "building {} did not write {} (the manifest's `build.component`)",
                dir.display(),
                component.display()
            );
        }
        return Ok(component);
    }
    if dir.join("Cargo.toml").is_file() {
        return build_rust(dir);
    }
    bail!(
        "do not know how to build {}: it has no Cargo.toml and its manifest has no [build] section",
        dir.display()
    )
}

fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--target", WASM_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| {
            format!(
                "cannot run `{cargo}` to build plugin {}: is Rust installed?",
                dir.display()
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\nhint: run `rustup target add {WASM_TARGET}`")
        } else {
            String::new()
        };
        bail!(
            "building plugin {} failed:\n{}{hint}",
            dir.display(),
            stderr.trim_end()
        );
    }
    // The last cdylib artifact cargo reports is the plugin's component.
    let mut component = None;
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["crate_types"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        if let Some(files) = message["filenames"].as_array() {
            for file in files.iter().filter_map(|f| f.as_str()) {
                if file.ends_with(".wasm") {
                    component = Some(PathBuf::from(file));
                }
            }
        }
    }
    component.with_context(|| {
        format!(
            "building {} produced no .wasm component: the crate needs `crate-type = [\"cdylib\"]`",
            dir.display()
        )
    })
}

fn run(command: &mut Command, dir: &Path) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run the build command of plugin {}", dir.display()))?;
    if !output.status.success() {
        bail!(
            "the build command of plugin {} failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout).trim_end(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}
