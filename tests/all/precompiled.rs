//! A `millrace run` host compiles each plugin in a child process into a sealed precompiled
//! artifact in its state folder and loads it from there; a restarted host serves from the
//! artifact without compiling, and a corrupt artifact is refused and compiled again.

use std::path::{Path, PathBuf};

use crate::support::*;

const SUBJECT: &str = "raw.mes.plant1.shift-report";
const CONSUMER: &str = "millrace_mes__raw_mes__star__shift-report";

/// A host config of the MES route with a state folder of its own (a cold compile cache).
fn config(nats: &Nats, state: &Path) -> PathBuf {
    let path = nats.dir.path().join("precompiled.toml");
    let route = fixture_route(
        "mes",
        &plugin("plugins/mes-shift-report"),
        "raw.mes.*.shift-report",
        // Each host maps the same report again: without the ledger its events are not a resend.
        "idempotency = false",
    );
    std::fs::write(
        &path,
        format!(
            "[nats]\nurl = \"{}\"\n\n[host]\nworkers = 2\nstate_dir = \"{}\"\n\n{route}",
            nats.url(),
            state.display()
        ),
    )
    .unwrap();
    path
}

/// The artifacts in the state folder.
fn artifacts(state: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(state.join("cache/precompiled")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The first good fixture of the MES plugin that maps to events, and how many (a report of
/// none made waiting for it wait for nothing).
fn shift_report() -> (Vec<u8>, u64) {
    let dir = plugin("plugins/mes-shift-report");
    millrace::registry::fixtures::inputs(&dir)
        .unwrap()
        .into_iter()
        .find_map(|input| {
            let expected: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(millrace::registry::fixtures::expected_path(&input))
                    .unwrap(),
            )
            .unwrap();
            let events = expected.get("events")?.as_array()?.len() as u64;
            (events > 0).then(|| (std::fs::read(input).unwrap(), events))
        })
        .expect("the MES plugin has a good fixture")
}

/// Starts a host, maps one message through it, and returns its log.
async fn serve_one(config: &Path, js: &async_nats::jetstream::Context, n: u64) -> String {
    let mut host = Host::start(config, js, &[CONSUMER]).await;
    let (payload, events) = shift_report();
    publish(js, SUBJECT, &payload, &format!("shift-{n}")).await;
    wait_processed(js, events * n, &host).await;
    assert_eq!(stream_len(js, "DLQ").await, 0, "{}", host.log_text());
    host.stop();
    host.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serves_from_precompiled_artifacts_and_recompiles_a_corrupt_one() {
    let nats = Nats::start();
    let state = tempfile::tempdir().unwrap();
    let config = config(&nats, state.path());
    let js = async_nats::jetstream::new(nats.client().await);

    // Cold: compiled by a child process, which leaves the artifact.
    let log = serve_one(&config, &js, 1).await;
    assert!(log.contains("compiled in a child process"), "{log}");
    let kept = artifacts(state.path());
    assert_eq!(kept.len(), 1, "one artifact for the one plugin: {kept:?}");

    // Restarted: served from the artifact, nothing compiled.
    let log = serve_one(&config, &js, 2).await;
    assert!(log.contains("loaded precompiled"), "{log}");
    assert!(!log.contains("compiled in a child process"), "{log}");
    assert!(!log.contains("compiled in process"), "{log}");

    // Corrupt: one byte of machine code flipped. Refused, compiled again, replaced.
    let mut bytes = std::fs::read(&kept[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&kept[0], &bytes).unwrap();
    let log = serve_one(&config, &js, 3).await;
    assert!(log.contains("precompiled artifact refused"), "{log}");
    assert!(log.contains("corrupt"), "{log}");
    assert!(log.contains("compiled in a child process"), "{log}");
    assert_ne!(
        std::fs::read(&kept[0]).unwrap(),
        bytes,
        "the artifact was replaced"
    );

    // And the replacement serves.
    let log = serve_one(&config, &js, 4).await;
    assert!(log.contains("loaded precompiled"), "{log}");
}

/// A component of one crafted function, 5,000 locals mixed `mixes` times: small, valid, and
/// slow and large to compile (Cranelift's time grows faster than the function: 100,000 mixes,
/// about 1 MB, took a release build a minute and ~180 MiB on a 2-core machine).
fn compile_bomb(mixes: u32) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, Component, ComponentSectionId, Function, FunctionSection, InstanceSection,
        Instruction, Module, ModuleArg, RawSection, TypeSection, ValType,
    };
    const LOCALS: u32 = 5_000;
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut functions = FunctionSection::new();
    functions.function(0);
    let mut body = Function::new([(LOCALS, ValType::I32)]);
    // Every local starts from the parameter, so nothing folds to a constant.
    for local in 1..=LOCALS {
        body.instruction(&Instruction::LocalGet(0));
        body.instruction(&Instruction::I32Const(local as i32));
        body.instruction(&Instruction::I32Add);
        body.instruction(&Instruction::LocalSet(local));
    }
    for i in 0..mixes {
        body.instruction(&Instruction::LocalGet(1 + (i * 7) % LOCALS));
        body.instruction(&Instruction::LocalGet(1 + (i * 13) % LOCALS));
        body.instruction(&Instruction::I32Mul);
        body.instruction(&Instruction::LocalSet(1 + (i * 31) % LOCALS));
    }
    body.instruction(&Instruction::LocalGet(1));
    for local in 2..=LOCALS {
        body.instruction(&Instruction::LocalGet(local));
        body.instruction(&Instruction::I32Xor);
    }
    body.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);
    let mut module = Module::new();
    module.section(&types).section(&functions).section(&code);
    let module = module.finish();
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    let mut component = Component::new();
    component.section(&RawSection {
        id: ComponentSectionId::CoreModule as u8,
        data: &module,
    });
    component.section(&instances);
    component.finish()
}

/// The admin token of the limits test's hosts.
const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef";

/// Deploys `component` as `bomb@1.0.0` through the admin API on `port`; the status, the
/// answer, and how long it took.
async fn deploy(port: u16, component: &[u8]) -> (u16, serde_json::Value, std::time::Duration) {
    use base64::Engine as _;
    let manifest = std::fs::read_to_string(plugin("tests/guests/misbehave").join("plugin.toml"))
        .unwrap()
        .replacen("name = \"misbehave\"", "name = \"bomb\"", 1);
    let body = serde_json::json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(component),
        "fixtures": [],
    });
    let client = reqwest::Client::new();
    let ready = std::time::Instant::now();
    while !client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            ready.elapsed() < PATIENCE,
            "the admin API never became ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/v1/plugins"))
        .bearer_auth(ADMIN_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer = response.json().await.unwrap_or_default();
    (status, answer, started.elapsed())
}

/// A hostile upload: a component crafted to compile for minutes and hundreds of MiB. The host
/// compiles it in its child process within `host.compile_timeout` and
/// `host.compile_memory_mib`, stops the child at either limit, refuses the version naming the
/// limit (never compiling it in the serving process instead), leaves no artifact, and serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_compiles_past_a_limit_is_refused_and_the_host_serves_on() {
    let nats = Nats::start();
    let state = tempfile::tempdir().unwrap();
    let js = async_nats::jetstream::new(nats.client().await);
    let bomb = compile_bomb(100_000);
    let plain = config(&nats, state.path());
    let plain = std::fs::read_to_string(plain).unwrap();
    for (limits, broken) in [
        ("compile_timeout = \"2s\"\n", "host.compile_timeout"),
        ("compile_memory_mib = 100\n", "host.compile_memory_mib"),
    ] {
        let port = millrace::transport::local_server::free_port().unwrap();
        let path = nats.dir.path().join("limits.toml");
        std::fs::write(nats.dir.path().join("ops.token"), ADMIN_SECRET).unwrap();
        std::fs::write(
            &path,
            format!(
                "{}\n[admin]\nlisten = \"127.0.0.1:{port}\"\n\n[[admin.tokens]]\nname = \"ops\"\n\
                 scope = \"admin\"\nsecret_file = \"ops.token\"\n",
                plain.replacen("[host]\n", &format!("[host]\n{limits}"), 1)
            ),
        )
        .unwrap();
        let mut host = Host::start(&path, &js, &[CONSUMER]).await;
        let (status, answer, took) = deploy(port, &bomb).await;
        assert_eq!(status, 400, "{answer}\n{}", host.log_text());
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("bomb@1.0.0 cannot be compiled within this host's limits")
                && error.contains(broken),
            "{answer}"
        );
        assert!(
            took < std::time::Duration::from_secs(30),
            "the refusal took {took:?}"
        );
        let log = host.log_text();
        assert!(!log.contains("compiling in the host"), "{log}");
        let left: Vec<_> = std::fs::read_dir(state.path().join("cache/precompiled"))
            .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.iter().all(|name| !name
                .to_string_lossy()
                .starts_with(&millrace::digest::sha256_hex(&bomb))),
            "the refused component left files: {left:?}"
        );
        host.stop();
    }
    // The host serves on with the plugin it had.
    let served = serve_one(&config(&nats, state.path()), &js, 1).await;
    assert!(!served.contains("cannot be compiled"), "{served}");
}
