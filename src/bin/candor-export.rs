//! `candor-export`: the data team's command. It reads the store read-only
//! (its one write is the export's entry in the consent ledger), and turns
//! it into redacted, anonymized coding-episode datasets; it also previews
//! an export, verifies a finished one, and redacts text from stdin.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

use candor::app::{parse_time, Context};
use candor::event::wall_now_ns;
use candor::export::anonymize::{Salt, TimingMode};
use candor::export::model::{ActionBody, Episode};
use candor::export::run::{self, ExportRequest, Format, Shape};
use candor::export::{verify, ExportError};
use candor::redact::{jsonl, Identity, Placeholders, Redactor};
use candor::store::query;

/// Exit status when consent or the ledger forbids an export, as for the
/// daemon's gate.
const EXIT_REFUSED: u8 = 3;

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
    /// Writes the consented events as redacted, anonymized coding episodes
    /// (JSONL, Parquet, ProgSnap2) into a new directory, and records the
    /// export in the consent ledger.
    Episodes(EpisodesArgs),
    /// Shows, in the terminal, exactly what an export would contain,
    /// without writing or recording anything.
    Preview(PreviewArgs),
    /// Re-checks an export: checksums, schemas, replay of every episode,
    /// and a fresh redaction scan. Exits non-zero naming any problem.
    Verify {
        /// The export directory.
        dir: PathBuf,
    },
    /// Verifies several exports and combines them into one dataset (hard
    /// links, or copies across filesystems) with a combined card and
    /// manifest; refuses duplicates and one engineer under two salts.
    Combine {
        /// The export directories.
        #[arg(required = true, num_args = 2..)]
        exports: Vec<PathBuf>,
        /// The dataset directory to create (it must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct ShapeArgs {
    /// Only events at or after this time (RFC 3339, a date, or a span ago
    /// such as 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// A pause longer than this ends an episode.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    idle_gap: Duration,
    /// Exported times are rounded to this step.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    timing_quantum: Duration,
    /// Key timing: `anonymized` (intervals under 1 s re-synthesized from a
    /// model of everyone, pauses kept within 10 %) or `raw` (measured, a
    /// biometric: refused unless every exported event's consent granted
    /// keys.rhythm).
    #[arg(long, default_value = "anonymized", value_name = "MODE")]
    timing: String,
    /// No longer used: key timing is re-synthesized, not jittered (see
    /// docs/dataset.md). Refused, so that nobody believes it applies.
    #[arg(long, value_parser = humantime::parse_duration, hide = true)]
    timing_jitter: Option<Duration>,
    /// Export synthetic sessions (demos, benchmarks) instead of captured
    /// ones; the two never mix.
    #[arg(long)]
    synthetic: bool,
}

#[derive(clap::Args)]
struct EpisodesArgs {
    /// The export directory to create (it must not exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Formats to write: any of jsonl, parquet, progsnap2, next-edit.
    #[arg(long, default_value = "jsonl,parquet,progsnap2")]
    format: String,
    /// How ProgSnap2 code states are written: `table` (CodeStates/CodeStates.csv,
    /// what most ProgSnap2 readers load) or `directory` (one directory per state).
    #[arg(long, value_name = "table|directory", default_value = "table")]
    progsnap2_codestates: String,
    /// A file whose contents salt the pseudonyms, to link exports on
    /// purpose. Without it every export gets a fresh random salt.
    #[arg(long, value_name = "FILE")]
    salt_file: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    shape: ShapeArgs,
}

#[derive(clap::Args)]
struct PreviewArgs {
    /// Show this episode in full (numbered from 1, as in the list).
    #[arg(long, value_name = "N")]
    episode: Option<usize>,
    #[command(flatten)]
    shape: ShapeArgs,
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
            if matches!(
                e.downcast_ref::<ExportError>(),
                Some(ExportError::Refused(_))
            ) {
                ExitCode::from(EXIT_REFUSED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn shape(args: &ShapeArgs, now_ns: i64) -> Result<Shape> {
    let ms = |d: Duration| i64::try_from(d.as_millis()).context("duration too long");
    let quantum_ms = ms(args.timing_quantum)?;
    if quantum_ms < 1 {
        bail!("--timing-quantum must be at least 1ms");
    }
    if args.timing_jitter.is_some() {
        bail!(
            "--timing-jitter no longer applies: intervals between keys are re-synthesized \
             from a population model and pauses kept within 10 % (docs/dataset.md, key timing)"
        );
    }
    let timing = TimingMode::from_name(&args.timing).with_context(|| {
        format!(
            "--timing takes `anonymized` (the default) or `raw`, not `{}`",
            args.timing
        )
    })?;
    Ok(Shape {
        since_ns: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now_ns))
            .transpose()?,
        until_ns: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now_ns))
            .transpose()?,
        idle_gap_ns: i64::try_from(args.idle_gap.as_nanos()).context("--idle-gap too long")?,
        quantum_ms,
        jitter_ms: 0,
        timing,
        synthetic: args.synthetic,
    })
}

fn identity(config: &candor::config::Config) -> Identity {
    let mut identity = Identity::from_os();
    add_configured(&mut identity, &config.redact);
    add_workspace_git(&mut identity, config);
    identity
}

/// The name and e-mail each watched workspace's repository commits with.
fn add_workspace_git(identity: &mut Identity, config: &candor::config::Config) {
    for root in &config.editor.roots {
        identity.add_git_repo(root);
    }
}

fn add_configured(identity: &mut Identity, config: &candor::config::RedactConfig) {
    add_terms(identity, &config.names, &config.users, &config.hosts);
}

fn add_terms(identity: &mut Identity, names: &[String], users: &[String], hosts: &[String]) {
    for n in names {
        identity.add_full_name(n);
    }
    for u in users {
        identity.add_user(u);
    }
    for h in hosts {
        identity.add_host(h);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        // Redaction reads stdin, not the store; the config adds identity.
        Command::Redact(args) => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            redact(args, &ctx.config)
        }
        Command::Episodes(args) => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            let now = wall_now_ns();
            let shape = shape(&args.shape, now)?;
            let formats = Format::parse_list(&args.format)?;
            let progsnap2_codestates =
                candor::export::progsnap2::CodeStates::parse(&args.progsnap2_codestates)?;
            let salt = match &args.salt_file {
                Some(f) => Salt::from_file(f)?,
                None => Salt::random()?,
            };
            let redactor = Redactor::new(&identity(&ctx.config))?;
            let mut store = ctx.open_store_read_only()?;
            let done = run::export(
                &mut store,
                || {
                    ctx.open_store().map_err(|e| ExportError::Invalid {
                        file: "store".into(),
                        problem: format!("cannot open the store to record the export: {e}"),
                    })
                },
                ExportRequest {
                    out: &args.out,
                    formats,
                    progsnap2_codestates,
                    shape,
                    salt,
                    redactor: &redactor,
                    progress: !args.quiet && std::io::stderr().is_terminal(),
                },
                now,
            )?;
            for r in &done.removed_partials {
                println!(
                    "removed {}: a partial export left by candor-export (pid {}), which is no longer running",
                    r.path.display(),
                    r.pid
                );
            }
            let c = &done.manifest.counts;
            println!(
                "exported {} episodes ({} actions, {} keys) from {} events to {} [{}]",
                c.episodes,
                c.actions,
                c.keys,
                c.events_exported,
                done.out.display(),
                done.manifest.formats.join(", ")
            );
            if !c.events_excluded.is_empty() {
                println!(
                    "left out: {}",
                    c.events_excluded
                        .iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            println!(
                "manifest sha256 {} recorded in the consent ledger (entry {})",
                done.manifest_sha256, done.ledger_seq
            );
            Ok(())
        }
        Command::Preview(args) => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            let now = wall_now_ns();
            let shape = shape(&args.shape, now)?;
            let redactor = Redactor::new(&identity(&ctx.config))?;
            let mut store = ctx.open_store_read_only()?;
            preview(&mut store, &shape, &redactor, now, args.episode)
        }
        Command::Verify { dir } => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            let redactor = Redactor::new(&identity(&ctx.config))?;
            let r = verify::verify(&dir, &redactor)
                .with_context(|| format!("{} does not verify", dir.display()))?;
            println!(
                "{} verifies: {} files match the manifest; {} episodes, {} actions; {} edits replayed byte for byte; no redaction finding; formats {}",
                dir.display(),
                r.files_checked,
                r.episodes,
                r.actions,
                r.replayed_states,
                r.formats.join(", ")
            );
            Ok(())
        }
        Command::Combine { exports, out } => {
            let ctx = Context::load(cli.data_dir, cli.config)?;
            let redactor = Redactor::new(&identity(&ctx.config))?;
            let done = candor::export::combine::combine(&exports, &out, &redactor)?;
            let m = &done.manifest;
            println!(
                "combined {} exports ({} engineers, {} episodes, {} actions) into {}: {} files linked, {} copied",
                m.exports.len(),
                m.subject_ids.len(),
                m.counts.episodes,
                m.counts.actions,
                done.out.display(),
                done.linked,
                done.copied
            );
            Ok(())
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
fn redact(args: RedactArgs, config: &candor::config::Config) -> Result<()> {
    let mut identity = if args.no_os_identity {
        Identity::none()
    } else {
        let mut id = Identity::from_os();
        add_workspace_git(&mut id, config);
        id
    };
    add_configured(&mut identity, &config.redact);
    add_terms(&mut identity, &args.names, &args.users, &args.hosts);
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

/// Prints what would leave: a list of episodes, or one in full.
fn preview(
    store: &mut candor::store::Store,
    shape: &Shape,
    redactor: &Redactor,
    now: i64,
    show: Option<usize>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut n = 0usize;
    let mut shown = false;
    let tally = run::preview(store, shape, redactor, now, |ep| {
        n += 1;
        let io = |e: std::io::Error| ExportError::Io {
            path: "stdout".into(),
            source: e,
        };
        match show {
            None => writeln!(
                out,
                "{n:>4}  {}  {:>8}  {:>5} actions  {:>2} files  ends: {}",
                ep.week,
                humantime::format_duration(Duration::from_secs((ep.duration_ms / 1000) as u64))
                    .to_string(),
                ep.actions.len(),
                ep.files.len(),
                ep.end_reason.as_str()
            )
            .map_err(io),
            Some(k) if k == n => {
                shown = true;
                print_episode(&mut out, n, &ep).map_err(io)
            }
            Some(_) => Ok(()),
        }
    })?;
    if let Some(k) = show {
        if !shown {
            bail!("there is no episode {k}: the export would hold {n}");
        }
    } else {
        writeln!(
            out,
            "\n{n} episodes from {} events; pseudonyms above are examples (each export draws a new salt).\nShow one in full with --episode N. Nothing was written or recorded.",
            tally.admitted
        )?;
    }
    Ok(())
}

fn print_episode(out: &mut impl Write, n: usize, ep: &Episode) -> std::io::Result<()> {
    writeln!(
        out,
        "episode {n} ({}), week {}, {} ms, ended by {}",
        ep.episode_id,
        ep.week,
        ep.duration_ms,
        ep.end_reason.as_str()
    )?;
    writeln!(
        out,
        "subject {}  workspace {}",
        ep.subject_id,
        ep.workspace_id.as_deref().unwrap_or("-")
    )?;
    for f in &ep.files {
        writeln!(
            out,
            "file {} {} -> {} ({} -> {} bytes)",
            f.file_id,
            f.initial.path,
            f.final_.path,
            f.initial.content.as_ref().map_or(0, String::len),
            f.final_.content.as_ref().map_or(0, String::len)
        )?;
    }
    for a in &ep.actions {
        write!(out, "{:>8} ms  {:<11} ", a.t_ms, a.body.type_name())?;
        match &a.body {
            ActionBody::Typing { app, text, duration_ms, keys } => writeln!(
                out,
                "{} keys over {duration_ms} ms in {}: {}",
                keys.len(),
                app.as_deref().unwrap_or("?"),
                text.as_deref().map_or("(text not consented)".to_owned(), |t| format!("{t:?}"))
            )?,
            ActionBody::Edit { path, diff, .. } | ActionBody::FileCreate { path, diff, .. } => {
                writeln!(out, "{path}")?;
                if let Some(d) = diff {
                    for line in d.lines() {
                        writeln!(out, "              | {line}")?;
                    }
                }
            }
            ActionBody::FileSwitch { path, .. } | ActionBody::FileDelete { path, .. } => writeln!(out, "{path}")?,
            ActionBody::FileRename { from, to, .. } => writeln!(out, "{from} -> {to}")?,
            ActionBody::Focus { app, title } => writeln!(
                out,
                "{}{}",
                app.as_deref().unwrap_or("(unknown app)"),
                title.as_deref().map_or(String::new(), |t| format!(" {t:?}"))
            )?,
            ActionBody::Mouse { duration_ms, moves, distance_px, clicks, scroll } => writeln!(
                out,
                "{moves} moves, {distance_px} px, {clicks} clicks, scroll {scroll}, over {duration_ms} ms"
            )?,
            ActionBody::Commit { message } => writeln!(out, "{}", message.as_deref().map_or("(message not consented)".to_owned(), |m| format!("{m:?}")))?,
            ActionBody::Gap { reason, duration_ms, lost } => writeln!(out, "{reason}: {duration_ms} ms, {lost} events lost")?,
            ActionBody::ShellCommand { command, cwd, exit, duration_ms } => writeln!(
                out,
                "{command:?} in {cwd}: exit {}, {} ms",
                exit.map_or("?".to_owned(), |e| e.to_string()),
                duration_ms.map_or("?".to_owned(), |d| d.to_string())
            )?,
            ActionBody::TestRun(r) | ActionBody::BuildRun(r) => {
                let n = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
                writeln!(
                    out,
                    "{:?} in {} ({}): exit {}, {} ms, {} passed, {} failed, {} skipped",
                    r.command,
                    r.cwd,
                    r.runner,
                    r.exit,
                    r.duration_ms,
                    n(r.passed),
                    n(r.failed),
                    n(r.skipped)
                )?
            }
            ActionBody::FileFocus { path, language, .. } => writeln!(
                out,
                "{path}{}",
                language.as_deref().map_or(String::new(), |l| format!(" ({l})"))
            )?,
            ActionBody::EditorEdits { path, duration_ms, edits, inserted_bytes, deleted_bytes, .. } => writeln!(
                out,
                "{path}: {edits} edits, +{inserted_bytes}/-{deleted_bytes} bytes over {duration_ms} ms"
            )?,
            ActionBody::Navigation { path, duration_ms, moves, selections, min_line, max_line, .. } => writeln!(
                out,
                "{path}: {moves} moves, {selections} selections, lines {min_line}-{max_line}, over {duration_ms} ms"
            )?,
            ActionBody::EditorCommand { command, path, .. } => writeln!(
                out,
                "{command}{}",
                path.as_deref().map_or(String::new(), |p| format!(" in {p}"))
            )?,
            ActionBody::Diagnostics { path, errors, warnings, info, hints, .. } => writeln!(
                out,
                "{path}: {errors} errors, {warnings} warnings, {info} info, {hints} hints"
            )?,
        }
    }
    Ok(())
}
