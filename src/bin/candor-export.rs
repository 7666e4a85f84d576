//! `candor-export`: the data team's command. It opens the store read-only.
//! It can check that a store is readable and redact text from stdin
//! (`redact`, plain or `--jsonl`); episodes and datasets are not built yet,
//! and it says so instead of pretending.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use candor::app::Context;
use candor::redact::{jsonl, Identity, Placeholders, Redactor};
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
    /// Redacts stdin to stdout: secrets, personal data and your identity
    /// (username, full name, hostname, home path) become placeholders.
    Redact(RedactArgs),
}

#[derive(clap::Args)]
struct RedactArgs {
    /// Each input line is a JSON object with a "text" field; each output line
    /// is that object with "text" redacted and "findings" added.
    #[arg(long)]
    jsonl: bool,
    /// Also replace this full name (repeatable).
    #[arg(long = "name", value_name = "FULL NAME")]
    names: Vec<String>,
    /// Also replace this username (repeatable).
    #[arg(long = "user", value_name = "USER")]
    users: Vec<String>,
    /// Also replace this hostname (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Do not take the username, full name, hostname and home from the OS.
    #[arg(long)]
    no_os_identity: bool,
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
    match cli.command {
        // Redaction reads stdin, not the store; the config adds identity.
        Command::Redact(args) => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            redact(args, &ctx.config.redact)
        }
        Command::Check => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            let store = ctx.open_store_read_only()?;
            let stats = query::stats(&store)?;
            println!(
                "store {} is readable: schema v{}, {} events, {} gaps",
                stats.data_dir,
                stats.schema_version,
                stats.events,
                stats.gaps.iter().map(|g| g.spans).sum::<u64>()
            );
            Ok(())
        }
    }
}

/// Reads all of stdin, redacts it in memory, and writes only when every line
/// is good, so a bad line never leaves half an output behind.
fn redact(args: RedactArgs, config: &candor::config::RedactConfig) -> Result<()> {
    let mut identity = if args.no_os_identity {
        Identity::none()
    } else {
        Identity::from_os()
    };
    for n in config.names.iter().chain(&args.names) {
        identity.add_full_name(n);
    }
    for u in config.users.iter().chain(&args.users) {
        identity.add_user(u);
    }
    for h in config.hosts.iter().chain(&args.hosts) {
        identity.add_host(h);
    }
    let redactor = Redactor::new(&identity)?;
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let mut book = Placeholders::new();
    let output = if args.jsonl {
        jsonl::redact_jsonl(&redactor, &input, &mut book)?
    } else {
        redactor.redact_bytes(&input, &mut book)?.text.into_bytes()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&output).context("writing stdout")?;
    out.flush().context("writing stdout")?;
    Ok(())
}
