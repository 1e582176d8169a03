//! `millrace schema`: the published contracts (JSON Schemas of the canonical events, the
//! AsyncAPI document of the subjects), generated from this binary's model.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use millrace::contracts::{self, WitVersion};

/// Prints a JSON Schema of a canonical event kind or the AsyncAPI document, for one WIT
/// version; lists the documents without a name; writes them all with --out.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  millrace schema inventory-movement\n  millrace schema --wit 1.0 asyncapi\n  millrace schema --out schemas\n\nThe same documents are committed under schemas/ and served at /api/v1/schemas/{wit}/{name}; docs/CONTRACTS.md says what compatibility they promise."
)]
pub struct SchemaArgs {
    /// The event kind (e.g. inventory-movement) or `asyncapi`; without it, lists the documents.
    name: Option<String>,
    /// The `millrace:mapping` WIT version: 1.0, 1.1 (default: the newest served).
    #[arg(long)]
    wit: Option<String>,
    /// Write every document of every served version into this folder
    /// (`<folder>/mapping@<version>/<name>.json`) instead of printing one.
    #[arg(long, conflicts_with_all = ["name", "wit"])]
    out: Option<PathBuf>,
}

/// Runs `millrace schema`.
pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    if let Some(folder) = args.out {
        for (path, document) in contracts::all_documents() {
            let file = folder.join(&path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&file, contracts::render(&document))
                .with_context(|| format!("cannot write {}", file.display()))?;
            outln!("{}", file.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let version = match &args.wit {
        Some(text) => WitVersion::find(text)?,
        None => WitVersion::newest(),
    };
    match args.name {
        Some(name) => out!(
            "{}",
            contracts::render(&contracts::document(version, &name)?)
        ),
        None => {
            outln!(
                "documents of {} (millrace schema [--wit <version>] <name>):",
                version.package()
            );
            for name in contracts::document_names() {
                outln!("  {name}");
            }
            let served: Vec<String> = WitVersion::served().iter().map(|v| v.to_string()).collect();
            outln!("WIT versions served: {}", served.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
