//! The command-line interface: one module per command.

/// Writes to standard output like `print!`, returning an error instead of panicking when it
/// cannot: a reader that has gone (`millrace audit | head -1`) ends the command quietly (see
/// `main`), and any other write error is reported like every other error.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        anyhow::Context::context(
            write!(std::io::stdout().lock(), $($arg)*),
            "cannot write to standard output",
        )?;
    }};
}

/// Writes a line to standard output like `println!`; see `out!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        anyhow::Context::context(
            writeln!(std::io::stdout().lock(), $($arg)*),
            "cannot write to standard output",
        )?;
    }};
}

mod audit;
mod change;
mod dlq;
mod plugin;
mod projection;
mod publish;
mod replay;
mod route;
mod schema;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use millrace::config::Config;
use millrace::sandbox::Sandbox;

/// millrace: routes raw manufacturing messages (MES records, EDI, B2MML, SaaS JSON) from NATS
/// through sandboxed WebAssembly mapping plugins into canonical manufacturing events.
#[derive(Debug, Parser)]
#[command(name = "millrace", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the host against a NATS server: consumes every route's raw subjects and publishes
    /// canonical events and dead letters.
    Run {
        /// The host configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// NATS server URL; overrides `nats.url` of the config.
        #[arg(long, env = "MILLRACE_NATS")]
        nats: Option<String>,
    },
    /// The local all-in-one: starts nats-server when no server is configured, runs the host,
    /// publishes the config's sample messages and prints every canonical event and dead letter,
    /// every request sent to a NATS target and every posting acknowledgement.
    Up {
        /// The host configuration (TOML).
        #[arg(long, short, default_value = "examples/millrace.toml")]
        config: PathBuf,
        #[command(flatten)]
        options: serve::UpOptions,
    },
    /// Works with mapping plugins: run one on a file, test its golden fixtures.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Works with dead letters: list them, show one, redrive them through their route.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Manages which plugin version each route serves: set-version, canary, shadow, promote,
    /// rollback, and the shadow diffs.
    #[command(subcommand)]
    Route(route::RouteCommand),
    /// Reprocesses raw history from the RAW stream through a route's plugin: every event gets
    /// a replay id, and events already on CANONICAL from the same version are not published
    /// again.
    Replay(replay::ReplayArgs),
    /// Shows a running host's routes, versions, throughput, dead letters, posting delay and
    /// failures per site and partner, read from its admin API.
    Status(status::StatusArgs),
    /// The visibility projection of the canonical stream: stock with its quality holds, work
    /// orders, supplier commitments and source freshness. Rebuild it from the stream, or show it.
    #[command(subcommand)]
    Projection(projection::ProjectionCommand),
    /// The contracts for consumers: JSON Schemas of the canonical events and the AsyncAPI
    /// document of the subjects, per WIT version, generated from the model.
    Schema(schema::SchemaArgs),
    /// The audit trail: every change to routes, plugins and the projection, with who made it
    /// (an admin token's name, or the OS user of the CLI), when, and the state before and
    /// after.
    Audit(audit::AuditCommand),
    /// Route changes waiting for approval (routes in `approval.routes`): list, show, approve
    /// or reject them.
    #[command(subcommand)]
    Change(change::ChangeCommand),
    /// Publishes raw files to a subject (one message each, with a Nats-Msg-Id), for trying
    /// things out.
    Publish {
        /// The raw subject, e.g. raw.mes.plant1.shift-report.
        subject: String,
        /// The files to publish.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The host configuration, for the NATS connection and to check a route consumes the
        /// subject.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// NATS server URL; overrides `nats.url` of the config.
        #[arg(long, env = "MILLRACE_NATS")]
        nats: Option<String>,
    },
}

impl Cli {
    /// True for the commands that run a host (`run`, `up`).
    pub fn serves(&self) -> bool {
        matches!(self.command, Command::Run { .. } | Command::Up { .. })
    }
}

/// How a command reaches NATS: the host configuration and/or a URL.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The host configuration (TOML): NATS connection, stream names, routes.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// NATS server URL; overrides `nats.url` of the config.
    #[arg(long, env = "MILLRACE_NATS")]
    nats: Option<String>,
}

impl Connection {
    /// Loads the configuration (defaults without one) and connects.
    async fn connect(&self) -> anyhow::Result<(Config, async_nats::Client)> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let client = millrace::transport::connect(&config, self.nats.as_deref()).await?;
        Ok((config, client))
    }
}

/// The sandbox of a host or tool run with `config`: compiled plugins cached in its state folder,
/// and precompiled artifacts beside them, compiled by `millrace plugin precompile` in a child
/// process so that the serving process never holds the compiler's memory.
fn sandbox(config: &Config) -> anyhow::Result<Sandbox> {
    let cache = config.resolve(&config.host.state_dir).join("cache");
    let mut artifacts = millrace::sandbox::ArtifactStore::new(cache.join("precompiled"));
    if let Ok(program) = std::env::current_exe() {
        let args = vec![
            "plugin".into(),
            "precompile".into(),
            "--cache".into(),
            cache.clone().into_os_string(),
        ];
        artifacts = artifacts.compiled_by(program, args, config.host.compile_limits());
    }
    Ok(Sandbox::new(Some(&cache))
        .context("cannot start the sandbox")?
        .with_artifacts(artifacts))
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, nats } => serve::run(&config, nats.as_deref()).await,
        Command::Up { config, options } => serve::up(&config, options).await,
        Command::Plugin(command) => plugin::run(command).await,
        Command::Dlq(command) => dlq::run(command).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Route(command) => route::run(command).await,
        Command::Status(args) => status::run(args).await,
        Command::Projection(command) => projection::run(command).await,
        Command::Schema(args) => schema::run(args),
        Command::Audit(command) => command.run().await,
        Command::Change(command) => command.run().await,
        Command::Publish {
            subject,
            files,
            config,
            nats,
        } => publish::run(&subject, &files, config.as_deref(), nats.as_deref()).await,
    }
}

/// A terminal table: the header and rows, columns padded to their widest cell, two spaces
/// apart. Cells hold text from outside (a plugin's hold reason, a proposal's reason), so each
/// is made safe for a terminal ([`table_cell`]).
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(
        rows.into_iter()
            .map(|row| row.iter().map(|cell| table_cell(cell)).collect()),
    );
    let mut widths = vec![0; header.len()];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The longest cell a table shows, in characters; `--json` gives the whole text.
const CELL_MAX: usize = 200;

/// `text` as one table cell: control characters (a line break, an escape sequence that would
/// clear or recolour the terminal, NUL) written as escapes (`\n`, `\u{1b}`), and clipped to
/// [`CELL_MAX`] characters with `…` (a 70,000-character reason made the padding panic).
fn table_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(CELL_MAX * 4));
    let mut shown = 0;
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if shown + width > CELL_MAX {
            out.push('…');
            return out;
        }
        shown += width;
        out.push_str(&piece);
    }
    out
}

/// Where the CLI caches compiled plugins: `$XDG_CACHE_HOME/millrace` or `~/.cache/millrace`.
fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("millrace"))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::{CELL_MAX, table};

    /// A hold reason from a plugin cleared and recoloured the operator's terminal and forged a
    /// row; a 70,000-character proposal reason made `millrace audit` panic for everyone.
    #[test]
    fn a_table_shows_outside_text_safely() {
        let out = table(
            &["HOLD", "REASON"],
            [
                vec![
                    "H-1".to_owned(),
                    "porosity\u{1b}[2J\u{1b}[31m FORGED\r\nH-OK released\0".to_owned(),
                ],
                vec!["H-2".to_owned(), "x".repeat(70_000)],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "one line a row: {out}");
        assert_eq!(
            lines[1],
            "H-1   porosity\\u{1b}[2J\\u{1b}[31m FORGED\\r\\nH-OK released\\u{0}"
        );
        assert!(!out.contains('\u{1b}') && !out.contains('\0'));
        assert_eq!(lines[2], format!("H-2   {}…", "x".repeat(CELL_MAX)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod argument_tests {
    use clap::Parser as _;

    use super::Cli;

    /// Stream sequences start at 1: a 0 was passed on to JetStream, which answered with a
    /// consumer-configuration error naming no argument.
    #[test]
    fn a_sequence_of_zero_is_refused_by_name() {
        for args in [
            &["millrace", "dlq", "show", "0"][..],
            &["millrace", "dlq", "redrive", "3", "0"],
            &["millrace", "replay", "r", "--from", "0"],
            &["millrace", "replay", "r", "--from", "1", "--to", "0"],
        ] {
            let error = Cli::try_parse_from(args).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("'0'") || e.contains("start at 1")),
                "{args:?}: {error:?}"
            );
        }
        assert!(Cli::try_parse_from(["millrace", "dlq", "show", "1"]).is_ok());
    }

    /// A range that ends before it starts replayed nothing, reported success and was audited.
    #[tokio::test]
    async fn a_replay_that_ends_before_it_starts_is_refused() {
        let cli = Cli::try_parse_from([
            "millrace", "replay", "r", "--from", "10", "--to", "5", "--config", "x.toml",
        ])
        .unwrap();
        let error = super::run(cli).await.err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("--to 5 is before --from 10: nothing would be replayed")
        );
    }
}
