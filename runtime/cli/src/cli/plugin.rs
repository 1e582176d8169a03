//! `millrace plugin run|test`: trying a mapping on a file, and its golden fixtures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use millrace::canonical::MappedEvent;
use millrace::config::{Config, Limits};
use millrace::posting::CanonicalEvent;
use millrace::registry::store::{Registry, VersionRecord};
use millrace::registry::{FixtureSettings, LocalPlugin, fixtures};
use millrace::rules::ownership::OwnershipPolicy;
use millrace::sandbox::{
    AckControl, InboundOutcome, RawMessage, RouteContext, Sandbox, Session, World,
};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Maps one input file and prints the canonical events as JSON lines, or the map error
    /// (exit status 1), through the pipeline's mapping stage: the retries and rules (output
    /// size, validity, and with --config the host's ownership rules) live traffic meets. The
    /// plugin folder is built first when needed. An outbound plugin renders a canonical event
    /// (its CloudEvent JSON, or an outbound fixture) and prints the requests as JSON lines; an
    /// acknowledger prints the acknowledgement of a raw interchange (see --inbound).
    Run {
        /// A plugin folder (with plugin.toml) or a .wasm component.
        plugin: PathBuf,
        /// The raw message payload (for an outbound plugin, the event).
        input: PathBuf,
        /// For an acknowledger: what became of the interchange inbound, `mapped:N` (mapped into
        /// N events) or `failed:REASON` (dead-lettered, e.g. `failed:malformed-input: SE01
        /// counts 30 segments, the set has 31`).
        #[arg(long, value_name = "OUTCOME", default_value = "mapped:1", value_parser = parse_inbound)]
        inbound: InboundOutcome,
        /// For an acknowledger: the control number it is given.
        #[arg(long, value_name = "N", default_value_t = 1)]
        control_number: u64,
        /// For an acknowledger: the time it is given, RFC 3339 in UTC (default: now), e.g. to
        /// write a fixture's expected acknowledgement.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        /// A route configuration value the plugin can read, e.g. --set site=PLANT1; repeatable.
        /// Starts from the manifest's [fixtures.config].
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// The subject the message is given with (default: the manifest's fixtures subject).
        #[arg(long)]
        subject: Option<String>,
        /// A host configuration whose rules judge the events as that host would: its
        /// [[governance.ownership]] (the source system is the route's `system` setting, else
        /// the subject's second token).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Runs the plugin's golden fixtures (fixtures/<name>.* beside <name>.expected.json; for an
    /// acknowledger <case>.edi with <case>.control.json and the expected <case>.ack) and
    /// prints a pass/fail line for each, with a diff when one fails. Each fixture runs
    /// through the pipeline's mapping stage, as admission runs it.
    Test {
        /// A plugin folder (with plugin.toml and fixtures/).
        plugin: PathBuf,
        /// A host configuration whose rules judge the fixtures as that host's admission and
        /// live traffic would: its [[governance.ownership]].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Stores a plugin version (component, manifest, fixtures) in the registry as
    /// name@version with its sha256. Versions are immutable: the same version with other
    /// bytes is refused, also when deployed at the same moment elsewhere. A component whose
    /// WIT version (its imports) is not the manifest's `wit` is refused.
    Deploy {
        /// A plugin folder (with plugin.toml and fixtures/); built first when needed.
        plugin: PathBuf,
        /// Sign the version with this secret key file (see `plugin keygen`).
        #[arg(long)]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Creates an ed25519 signing key: writes the secret to a file (keep it private) and
    /// prints the public key to list in `registry.trusted_keys`.
    Keygen {
        /// Where to write the secret key; refused if the file exists.
        secret_file: PathBuf,
    },
    /// Compiles a component (read on stdin) ahead of time for this build's engine and writes
    /// the sealed precompiled artifact to --out. A serving host runs this in a child process
    /// when a plugin has no artifact yet, so the compiler's memory is not kept by the host.
    Precompile {
        /// Where to write the artifact (written through a temporary file and a rename).
        #[arg(long)]
        out: PathBuf,
        /// A compile cache folder to take the compiled code from (and fill), e.g. the host's
        /// `<state_dir>/cache`.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Lists deployed versions: digest, WIT version, and which routes serve each.
    List {
        #[command(flatten)]
        connection: super::Connection,
    },
    /// Shows every deployed version of one plugin.
    Show {
        /// The plugin name.
        name: String,
        #[command(flatten)]
        connection: super::Connection,
    },
}

fn parse_inbound(text: &str) -> Result<InboundOutcome, String> {
    match text.split_once(':') {
        Some(("mapped", events)) => events
            .trim()
            .parse()
            .map(InboundOutcome::Mapped)
            .map_err(|_| format!("`{events}` is not a number of events")),
        Some(("failed", reason)) if !reason.trim().is_empty() => {
            Ok(InboundOutcome::Failed(reason.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is neither mapped:N nor failed:REASON")),
    }
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

/// Runs a plugin command.
pub async fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Run {
            plugin,
            input,
            inbound,
            control_number,
            now,
            set,
            subject,
            config,
        } => {
            let ownership = host_rules(config.as_deref())?;
            let run = RunOne {
                set,
                subject,
                inbound,
                control: AckControl {
                    number: control_number,
                    now: now.unwrap_or_else(millrace::acknowledgements::now),
                },
            };
            blocking(move || run_one(&plugin, &input, run, &ownership)).await
        }
        PluginCommand::Test { plugin, config } => {
            let ownership = host_rules(config.as_deref())?;
            blocking(move || test(&plugin, &ownership)).await
        }
        PluginCommand::Deploy {
            plugin,
            sign_key,
            connection,
        } => deploy(&plugin, sign_key.as_deref(), &connection).await,
        PluginCommand::Keygen { secret_file } => keygen(&secret_file),
        PluginCommand::Precompile { out, cache } => {
            blocking(move || precompile(&out, cache.as_deref())).await
        }
        PluginCommand::List { connection } => list(&connection, None).await,
        PluginCommand::Show { name, connection } => list(&connection, Some(&name)).await,
    }
}

/// Builds and compiles off the async reactor.
async fn blocking<F>(work: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce() -> anyhow::Result<ExitCode> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

fn sandbox() -> anyhow::Result<Sandbox> {
    Sandbox::new(super::user_cache_dir().as_deref()).context("cannot start the sandbox")
}

/// `plugin precompile`: the component from stdin, the sealed artifact to `out`.
fn precompile(out: &Path, cache: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut component = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut component)
        .context("cannot read the component from stdin")?;
    let sealed = Sandbox::new(cache)
        .context("cannot start the sandbox")?
        .precompile(&component)
        .context("cannot compile the component")?;
    millrace::sandbox::write_atomic(out, &sealed)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The ownership rules of the host configuration `config`; none without one.
fn host_rules(config: Option<&Path>) -> anyhow::Result<OwnershipPolicy> {
    Ok(match config {
        Some(path) => OwnershipPolicy::new(Config::load(path)?.governance.ownership),
        None => OwnershipPolicy::default(),
    })
}

/// What `plugin run` gives the plugin besides its input.
struct RunOne {
    set: Vec<(String, String)>,
    subject: Option<String>,
    inbound: InboundOutcome,
    control: AckControl,
}

fn run_one(
    plugin_path: &Path,
    input: &Path,
    run: RunOne,
    ownership: &OwnershipPolicy,
) -> anyhow::Result<ExitCode> {
    let payload =
        std::fs::read(input).with_context(|| format!("cannot read input {}", input.display()))?;
    let plugin = LocalPlugin::locate(plugin_path)?;
    let settings = plugin
        .manifest
        .as_ref()
        .map(|m| m.fixtures.clone())
        .unwrap_or_default();
    let mut config = settings.config;
    config.extend(run.set);
    let route = RouteContext {
        route: "cli".into(),
        config: Arc::new(config),
        limits: Limits::default(),
    };
    let subject = run.subject.unwrap_or(settings.subject);
    if plugin
        .manifest
        .as_ref()
        .is_some_and(|m| m.is_acknowledger())
    {
        let raw = RawMessage {
            subject,
            headers: Vec::new(),
            payload,
        };
        return acknowledge_one(&plugin, &route, &raw, &run.inbound, &run.control);
    }
    let component = plugin.load(&sandbox()?)?;
    if component.world == World::Poster {
        return render_one(&component, &route, &payload, input);
    }
    let input = fixtures::fixture_input(&subject, payload);
    match fixtures::rehearsal(&component, &route, ownership)
        .map(&input)
        .0
    {
        Ok(events) => {
            print_events(&events)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            eprintln!("map error ({}): {}", failure.kind(), failure.message());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `plugin run` for an acknowledger: the acknowledgement's bytes on stdout, its partner on
/// stderr; none, or the plugin's refusal (exit status 1), said on stderr.
fn acknowledge_one(
    plugin: &LocalPlugin,
    route: &RouteContext,
    raw: &RawMessage,
    inbound: &InboundOutcome,
    control: &AckControl,
) -> anyhow::Result<ExitCode> {
    let component = millrace::acknowledgements::load_located(&sandbox()?, plugin)?;
    match component.acknowledge(route, raw, inbound, control) {
        Ok(Some(ack)) => {
            eprintln!("acknowledgement for partner {}:", ack.partner);
            // Byte for byte, as the partner would receive it (and a fixture's `.ack` holds it).
            std::io::stdout().lock().write_all(&ack.document)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            eprintln!("no acknowledgement: the plugin answers none for this document");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("acknowledge error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `plugin run` for an outbound plugin: the requests it renders for the event in `payload` (a
/// CloudEvent, or an outbound fixture whose `event` it takes) as JSON lines, or the render
/// error (exit status 1).
fn render_one(
    component: &millrace::sandbox::PluginComponent,
    route: &RouteContext,
    payload: &[u8],
    input: &Path,
) -> anyhow::Result<ExitCode> {
    let mut json: serde_json::Value = serde_json::from_slice(payload).with_context(|| {
        format!(
            "{} is not JSON: an outbound plugin renders a canonical event (its CloudEvent)",
            input.display()
        )
    })?;
    if json.get("specversion").is_none()
        && let Some(event) = json.get_mut("event")
    {
        json = event.take();
    }
    let event = CanonicalEvent::from_cloudevent(&json)
        .with_context(|| format!("{} is not a canonical event", input.display()))?;
    match Session::new(component, route)?.render(&event) {
        Ok(requests) => {
            let mut out = std::io::stdout().lock();
            for request in &requests {
                serde_json::to_writer(&mut out, request)?;
                writeln!(out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("render error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_events(events: &[MappedEvent]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        writeln!(out)?;
    }
    Ok(())
}

fn test(dir: &Path, ownership: &OwnershipPolicy) -> anyhow::Result<ExitCode> {
    let plugin = LocalPlugin::locate(dir)?;
    let manifest = plugin.manifest.as_ref().with_context(|| {
        format!(
            "{} is a component, not a plugin folder: fixtures live in a folder with plugin.toml",
            dir.display()
        )
    })?;
    if manifest.is_acknowledger() {
        return test_acknowledger(&plugin, dir, &manifest.fixtures);
    }
    let component = plugin.load(&sandbox()?)?;
    let results = fixtures::run_all(&component, dir, &manifest.fixtures, ownership)?;
    if results.is_empty() {
        anyhow::bail!(
            "{} has no fixtures: add fixtures/<name>.<ext> with fixtures/<name>.expected.json",
            dir.display()
        );
    }
    let outcomes = results.iter().map(|result| {
        let name = result.input.strip_prefix(dir).unwrap_or(&result.input);
        (
            name.display().to_string(),
            result.diff.as_deref().map(indent),
        )
    });
    tally(component.id(), outcomes)
}

/// `plugin test` for an acknowledger: each case's acknowledgement, byte for byte.
fn test_acknowledger(
    plugin: &LocalPlugin,
    dir: &Path,
    settings: &FixtureSettings,
) -> anyhow::Result<ExitCode> {
    let component = millrace::acknowledgements::load_located(&sandbox()?, plugin)?;
    let route = fixtures::fixture_route(settings);
    let cases = millrace::acknowledgements::fixtures::stored(dir)?;
    if cases.is_empty() {
        anyhow::bail!(
            "{} has no fixtures: add fixtures/<case>.edi with <case>.control.json and <case>.ack",
            dir.display()
        );
    }
    let outcomes = cases.iter().map(|case| {
        let failure =
            match millrace::acknowledgements::fixtures::check(&component, &route, settings, case) {
                Ok(diff) => diff.as_deref().map(indent),
                Err(e) => Some(format!("    {e}")),
            };
        (format!("fixtures/{}", case.name), failure)
    });
    tally(component.id(), outcomes)
}

/// Prints `PASS` or `FAIL` and the failure (indented) per fixture, then the tally of
/// `plugin`'s fixtures; a failure exit when any failed.
fn tally(
    plugin: impl std::fmt::Display,
    outcomes: impl Iterator<Item = (String, Option<String>)>,
) -> anyhow::Result<ExitCode> {
    let (mut passed, mut failed) = (0, 0);
    for (name, failure) in outcomes {
        match failure {
            None => {
                passed += 1;
                outln!("PASS {name}");
            }
            Some(failure) => {
                failed += 1;
                outln!("FAIL {name}\n{failure}");
            }
        }
    }
    outln!("{plugin}: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn keygen(secret_file: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let (secret, public) = millrace::registry::signing::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(secret_file).with_context(|| {
        format!(
            "cannot create {} (it must not exist yet)",
            secret_file.display()
        )
    })?;
    writeln!(file, "{secret}")?;
    outln!(
        "secret key written to {} (keep it private)",
        secret_file.display()
    );
    outln!("public key, for registry.trusted_keys: {public}");
    Ok(ExitCode::SUCCESS)
}

async fn deploy(
    path: &Path,
    sign_key: Option<&Path>,
    connection: &super::Connection,
) -> anyhow::Result<ExitCode> {
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client.clone());
    let registry = Registry::open(&config, Some(&js)).await?;
    let owned = path.to_owned();
    let (plugin, bytes, wit) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let plugin = LocalPlugin::locate(&owned)?;
        let bytes = std::fs::read(&plugin.component)
            .with_context(|| format!("cannot read {}", plugin.component.display()))?;
        let wit = plugin
            .manifest
            .as_ref()
            .map(|m| m.wit.clone())
            .unwrap_or_default();
        Ok((plugin, bytes, wit))
    })
    .await??;
    let record = VersionRecord::of(&plugin, &bytes, &wit)?;
    // What the manifest says must be what the component is (its WIT version, its world):
    // checked before the version, immutable once stored, is claimed.
    let sandbox = super::sandbox(&config)?;
    let (checked, record) = tokio::task::spawn_blocking(move || {
        let checked =
            millrace::registry::check_deployable(&sandbox, &record, &bytes).map(|()| bytes);
        (checked, record)
    })
    .await?;
    let (bytes, mut record) = (checked?, record);
    if let Some(key_file) = sign_key {
        let secret = std::fs::read_to_string(key_file)
            .with_context(|| format!("cannot read signing key {}", key_file.display()))?;
        millrace::registry::signing::sign(&mut record, &secret)?;
    }
    let stored = registry.deploy(&record, &bytes).await?;
    if stored {
        let change = millrace::audit::Change::deploy(&record);
        millrace::audit::AuditTrail::new(js.clone(), &config)
            .record(&millrace::audit::Actor::os_user(), change)
            .await?;
    }
    client.flush().await.ok();
    outln!(
        "{} {} (sha256 {}, {}, {} fixtures, {} bytes{})",
        if stored {
            "deployed"
        } else {
            "already deployed, same bytes:"
        },
        record.id(),
        record.digest,
        record.wit,
        record.fixtures.len(),
        record.size,
        record
            .signature
            .as_ref()
            .map_or_else(String::new, |s| format!(", signed by {}", s.key))
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(connection: &super::Connection, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let (config, client) = connection.connect().await?;
    let js = async_nats::jetstream::new(client);
    let registry = Registry::open(&config, Some(&js)).await?;
    let bindings = registry.bindings().await?;
    let records: Vec<_> = registry
        .list()
        .await?
        .into_iter()
        .filter(|r| name.is_none_or(|n| r.name == n))
        .collect();
    if records.is_empty() {
        match name {
            Some(name) => anyhow::bail!("no version of {name} is deployed"),
            None => outln!("no plugin versions deployed"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    outln!("VERSION\tWIT\tSHA256\tDEPLOYED\tFIXTURES\tROUTES");
    for record in records {
        let id = record.id();
        let routes = millrace::registry::rollout::routes_using(&bindings, &id);
        outln!(
            "{id}\t{}\t{}\t{}\t{}\t{}",
            record.wit,
            &record.digest[..16],
            record.deployed_at,
            record.fixtures.len(),
            if routes.is_empty() {
                "-".into()
            } else {
                routes.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
