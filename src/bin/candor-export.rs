//! `candor-export`: the data team's command. It opens the store read-only.
//! For now it can only check that a store is readable; redaction, episodes
//! and datasets are not built yet, and it says so instead of pretending.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use candor::app::Context;
use candor::store::query;

#[derive(Parser)]
#[command(
    name = "candor-export",
    version,
    about = "Redacted, anonymized datasets from a Candor store (read-only)"
)]
struct Cli {
    /// The data directory (default: the XDG data directory).
    #[arg(long, global = true, env = "CANDOR_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The config file (default: config.toml in the XDG config directory).
    #[arg(long, global = true, env = "CANDOR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Opens the store read-only and reports its schema and event count.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor-export: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Context::load(cli.data_dir, cli.config)?;
    match cli.command {
        Command::Check => {
            let store = ctx.open_store_read_only()?;
            let stats = query::stats(&store)?;
            println!(
                "store {} is readable: schema v{}, {} events, {} gaps",
                stats.data_dir,
                stats.schema_version,
                stats.events,
                stats.gaps.iter().map(|g| g.spans).sum::<u64>()
            );
        }
    }
    Ok(())
}
