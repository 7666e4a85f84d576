//! `candor`: the engineer's command. A thin front-end: it parses arguments,
//! calls the library, and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};

use candor::app::{self, Context};
use candor::event::wall_now_ns;
use candor::store::{purge, query, writer};

#[derive(Parser)]
#[command(
    name = "candor",
    version,
    about = "Consent-first workflow-trace recorder"
)]
struct Cli {
    /// The data directory (default: the XDG data directory).
    #[arg(long, global = true, env = "CANDOR_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The config file (default: config.toml in the XDG config directory).
    #[arg(long, global = true, env = "CANDOR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Counts per kind and scope, time range, sizes and gaps.
    Stats(JsonFlag),
    /// Shows exactly what is stored about you, sealed fields opened.
    Events {
        /// How many of the most recent events and gaps to show.
        #[arg(long, default_value_t = 50)]
        last: usize,
        /// Also show the file snapshots events refer to.
        #[arg(long)]
        content: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Erases captured data (recorded in the consent ledger by range only).
    Purge(PurgeArgs),
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[group(required = true, multiple = true)]
struct PurgeArgs {
    /// Erase everything captured.
    #[arg(long, conflicts_with_all = ["since", "until"])]
    all: bool,
    /// Erase from this time on: RFC 3339, a date, or a span ago (2h, 7d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Erase up to (not including) this time.
    #[arg(long, value_name = "T", requires = "since")]
    until: Option<String>,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CANDOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Context::load(cli.data_dir, cli.config)?;
    let Some(command) = cli.command else {
        bail!(
            "this build of Candor cannot record yet: the consent screen and the capture daemon are not \
             part of it. It can show and erase a store: `candor stats`, `candor events`, `candor purge` \
             (see `candor --help`)"
        );
    };
    match command {
        Command::Stats(JsonFlag { json }) => {
            let store = ctx.open_store()?;
            let stats = query::stats(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{stats}");
            }
        }
        Command::Events {
            last,
            content,
            json,
        } => {
            let mut store = ctx.open_store()?;
            let events = query::recent(&mut store, last).context("reading events")?;
            for e in &events {
                let snapshot = match e.blob_id() {
                    Some(id) if content => Some(
                        writer::load_blob(&mut store, id)
                            .with_context(|| format!("reading snapshot {id}"))?,
                    ),
                    _ => None,
                };
                let snapshot = snapshot.as_deref().map(String::from_utf8_lossy);
                if json.json {
                    let mut j = e.to_json();
                    if let Some(text) = snapshot {
                        j["content_text"] = text.into();
                    }
                    println!("{j}");
                } else {
                    println!("{e}");
                    for line in snapshot.iter().flat_map(|t| t.lines()) {
                        println!("    | {line}");
                    }
                }
            }
        }
        Command::Purge(args) => {
            let now = wall_now_ns();
            let range = if args.all {
                purge::Range::ALL
            } else {
                let since = args
                    .since
                    .as_deref()
                    .map(|s| app::parse_time(s, now))
                    .transpose()?;
                let until = args
                    .until
                    .as_deref()
                    .map(|s| app::parse_time(s, now))
                    .transpose()?;
                if let (Some(a), Some(b)) = (since, until) {
                    if a >= b {
                        bail!("--since must be before --until");
                    }
                }
                purge::Range { since, until }
            };
            let mut store = ctx.open_store()?;
            let r = purge::purge(&mut store, range, now)?;
            println!(
                "purged {} events, {} gaps and {} blobs; the store went from {} to {} bytes (ledger entry {})",
                r.events, r.gaps, r.blobs, r.bytes_before, r.bytes_after, r.ledger_seq
            );
        }
    }
    Ok(())
}
