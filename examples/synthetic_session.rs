//! Writes a realistic synthetic session into a Candor store, through the
//! real writer, marked as synthetic so nobody mistakes it for a person's.
//!
//! cargo run --example synthetic_session -- --data-dir /tmp/candor-demo --duration 30m
//!
//! The session ends "now": its events are stamped over the span before.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;

use candor::app::Context;
use candor::event::wall_now_ns;
use candor::store::writer::{self, SessionInfo};
use candor::synthetic::{Generator, Options};

#[derive(Parser)]
struct Args {
    /// The store to write into (created if missing).
    #[arg(long, env = "CANDOR_DATA_DIR")]
    data_dir: PathBuf,
    /// How much working time to simulate.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many events instead (whichever comes first).
    #[arg(long)]
    events: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave out typed text, titles, file contents and commit messages.
    #[arg(long)]
    no_text: bool,
    /// The workspace name file events carry.
    #[arg(long, default_value = "demo")]
    workspace: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ctx = Context::load(Some(args.data_dir.clone()), None)?;
    let store = ctx.open_store()?;
    let span = i64::try_from(args.duration.as_nanos()).context("duration too long")?;
    let opts = Options {
        seed: args.seed,
        start_wall_ns: wall_now_ns() - span,
        with_text: !args.no_text,
        workspace: args.workspace,
    };
    let (sink, handle) = writer::start(
        store,
        &ctx.config.writer,
        SessionInfo {
            source: "synthetic".into(),
            synthetic: true,
        },
    )?;
    let mut gen = Generator::new(opts);
    let limit = args.events.unwrap_or(u64::MAX);
    let mut n = 0u64;
    while n < limit {
        let Some(ev) = gen.next() else { break };
        if ev.mono_ns > span {
            break;
        }
        sink.send(ev)?;
        n += 1;
    }
    drop(sink);
    let stats = handle.shutdown()?;
    println!(
        "wrote a synthetic session to {}: {} events, {} written, {} dropped, {} simulated",
        args.data_dir.display(),
        n,
        stats.written,
        stats.dropped,
        humantime::format_duration(Duration::from_secs(
            (gen.elapsed_ns().min(span) / 1_000_000_000) as u64
        ))
    );
    Ok(())
}
