//! `candor`: the engineer's command. A thin front-end: it parses arguments,
//! calls the library, and prints.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};

use candor::app::{self, Context};
use candor::clients::{runners, shell, testrun};
use candor::consent::record::{ConsentRecord, Method};
use candor::consent::{self, ledger};
use candor::daemon::control;
use candor::event::wall_now_ns;
use candor::store::{purge, query, writer};
use candor::{audit, capture, daemon, report, units};

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
    /// Reads the notice and records your consent; with a subcommand, scripted
    /// consent, status, the ledger, or revocation.
    Consent {
        #[command(subcommand)]
        command: Option<ConsentCommand>,
    },
    /// Starts capture in the foreground, under your current consent.
    Start,
    /// Shows the running daemon: uptime, sources, counts, drops and gaps.
    Status(JsonFlag),
    /// Pauses capture (recorded in the consent ledger).
    Pause {
        /// Resume by itself after this long (e.g. 30m).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        for_: Option<std::time::Duration>,
        /// Why, for the ledger.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resumes capture after a pause.
    Resume {
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stops the running daemon; everything captured so far is flushed.
    Stop,
    /// Workspace roots whose files are watched (editor.files).
    Watch {
        #[command(subcommand)]
        command: WatchCommand,
    },
    /// For privacy reviewers: verifies the consent ledger and checks every
    /// stored event against it. Exits non-zero on any finding.
    Audit {
        /// Verify an exported ledger (`candor consent log --json`) instead
        /// of the store.
        #[arg(long, value_name = "FILE.jsonl")]
        ledger: Option<PathBuf>,
        /// With --ledger: the head hash the ledger is known to end at.
        #[arg(long, value_name = "SHA256", requires = "ledger")]
        expect_head: Option<String>,
        /// Also write the reviewer's HTML report, with the verdict and
        /// findings, to this file (0600).
        #[arg(long, value_name = "FILE", conflicts_with = "ledger")]
        html: Option<PathBuf>,
        /// With --html: the folder holding the exports, to show each one's
        /// manifest figures.
        #[arg(long, value_name = "DIR", requires = "html")]
        exports_dir: Option<PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Writes an offline HTML report of what was recorded: a timeline per
    /// source, consent windows, gaps, exports and the ledger (0600; it makes
    /// no network request).
    Report(ReportArgs),
    /// Prints a shell completion script: `candor completions bash >
    /// /etc/bash_completion.d/candor` (or zsh, fish).
    Completions {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Prints the manual page (roff); with --out-dir, writes one page per
    /// command there.
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Prints the shell hook to add to your rc file:
    /// `eval "$(candor shell-hook bash)"` (or zsh). It sends your commands
    /// (shell.commands) except those starting with a space or on the deny list.
    ShellHook {
        #[arg(value_parser = ["bash", "zsh", "relay"])]
        target: String,
        /// The shell a relay serves (used by the hook itself).
        #[arg(long, hide = true, default_value = "bash", value_parser = ["bash", "zsh"])]
        shell: String,
        /// The shell's pid: the relay ends when it does.
        #[arg(long, hide = true)]
        shell_pid: Option<i32>,
    },
    /// Runs a test or build command as usual, and records its exit status,
    /// duration and pass/fail counts (shell.commands):
    /// `candor run -- cargo test`.
    Run {
        /// Record it as a test or a build (guessed from the command if not given).
        #[arg(long, value_parser = ["test", "build"])]
        kind: Option<String>,
        /// Do not say whether it was recorded.
        #[arg(long, short)]
        quiet: bool,
        /// The command and its arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum WatchCommand {
    /// Watches a workspace root (takes effect at the next start).
    Add { path: PathBuf },
    /// Lists the watched roots.
    List,
    /// Stops watching a root (takes effect at the next start).
    Remove { path: PathBuf },
}

#[derive(Subcommand)]
enum ConsentCommand {
    /// Grants consent without the screen (method `cli`), for scripted setups.
    Grant {
        /// Comma-separated scopes, e.g. keys.timing,mouse
        #[arg(long, value_name = "LIST")]
        scopes: String,
        /// The sha256 of the notice you accepted (`sha256sum CONSENT.md`).
        #[arg(long, value_name = "SHA256")]
        accept_notice: String,
        /// How long the consent lasts (at least one minute; at most, and by
        /// default, 180 days).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// Shows the current consent.
    Status(JsonFlag),
    /// Writes the consent ledger (as JSONL with --json) for a reviewer.
    Log(JsonFlag),
    /// Withdraws consent at once; a running daemon stops within a second.
    Revoke {
        /// Also erase everything captured.
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// From this time on: RFC 3339, a date, or a span ago (7d). Default: the
    /// store's first record.
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Up to (not including) this time. Default: the store's last record.
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Also show typed text, window titles, snapshots, commit messages and
    /// whole command lines, unsealed on this machine.
    #[arg(long)]
    content: bool,
    /// The folder holding the exports, to show each one's manifest figures.
    #[arg(long, value_name = "DIR")]
    exports_dir: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
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
            // A refusal by the consent gate has its own status, so that a
            // service manager does not retry what only consent can fix.
            if matches!(
                e.downcast_ref::<daemon::DaemonError>(),
                Some(daemon::DaemonError::Refused(_))
            ) {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
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
    // Completions and manual pages need no store or config.
    match &cli.command {
        Some(Command::Completions { shell }) => return completions(shell),
        Some(Command::Man { out_dir }) => return man(out_dir.as_deref()),
        _ => {}
    }
    // The hook's relay is started with the same store and config flags.
    let mut relay_argv = vec![std::env::current_exe()
        .context("finding this program's path for the shell hook")?
        .to_string_lossy()
        .into_owned()];
    if let Some(d) = &cli.data_dir {
        relay_argv.extend(["--data-dir".to_owned(), d.to_string_lossy().into_owned()]);
    }
    if let Some(c) = &cli.config {
        relay_argv.extend(["--config".to_owned(), c.to_string_lossy().into_owned()]);
    }
    let ctx = Context::load(cli.data_dir, cli.config)?;
    let Some(command) = cli.command else {
        return consent_then_start(&ctx);
    };
    match command {
        Command::Consent { command } => consent_command(&ctx, command)?,
        Command::Start => start(&ctx)?,
        Command::Status(JsonFlag { json }) => {
            let reply = control::send(&ctx.paths.data_dir, &control::Request::Status)?;
            let status = reply.status.unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status_text(&status));
            }
        }
        Command::Pause { for_, reason } => {
            let for_ns = for_.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            control::send(
                &ctx.paths.data_dir,
                &control::Request::Pause { for_ns, reason },
            )?;
            match for_ {
                Some(d) => println!("capture paused for {}", humantime::format_duration(d)),
                None => println!("capture paused until `candor resume`"),
            }
        }
        Command::Resume { reason } => {
            control::send(&ctx.paths.data_dir, &control::Request::Resume { reason })?;
            println!("capture resumed");
        }
        Command::Watch { command } => watch(&ctx, command)?,
        Command::ShellHook {
            target,
            shell,
            shell_pid,
        } => {
            let filter = shell::CommandFilter::new(&ctx.config.shell.deny)
                .map_err(|e| anyhow::anyhow!("config [shell] deny: {e}"))?;
            if target == "relay" {
                shell::relay(
                    &ctx.paths.data_dir,
                    &filter,
                    &shell,
                    shell_pid,
                    std::io::stdin().lock(),
                );
            } else {
                relay_argv.extend(["shell-hook", "relay", "--shell", &target].map(str::to_owned));
                print!(
                    "{}",
                    shell::snippet(&target, &relay_argv).map_err(anyhow::Error::msg)?
                );
            }
        }
        Command::Run {
            kind,
            quiet,
            command,
        } => {
            let filter = shell::CommandFilter::new(&ctx.config.shell.deny)
                .map_err(|e| anyhow::anyhow!("config [shell] deny: {e}"))?;
            let kind = kind.map(|k| {
                if k == "test" {
                    runners::RunKind::Test
                } else {
                    runners::RunKind::Build
                }
            });
            let outcome = match testrun::run(&ctx.paths.data_dir, &filter, &command, kind) {
                Ok(o) => o,
                Err(e @ testrun::RunError::Spawn { .. }) => {
                    eprintln!("candor: error: {e}");
                    std::process::exit(127);
                }
                Err(e) => return Err(e.into()),
            };
            if !quiet {
                eprintln!("{}", run_note(&outcome));
            }
            let _ = std::io::stdout().flush();
            if let Some(sig) = outcome.signal {
                testrun::die_like(sig);
            }
            std::process::exit(outcome.exit);
        }
        Command::Stop => {
            control::send(&ctx.paths.data_dir, &control::Request::Stop)?;
            println!("candor is stopping; everything captured so far is being written");
        }
        Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
        Command::Report(args) => {
            let now = wall_now_ns();
            let opts = report::Options {
                since_ns: args
                    .since
                    .as_deref()
                    .map(|s| app::parse_time(s, now))
                    .transpose()?,
                until_ns: args
                    .until
                    .as_deref()
                    .map(|s| app::parse_time(s, now))
                    .transpose()?,
                content: args.content,
                now_ns: now,
                exports_dir: args.exports_dir,
            };
            if let (Some(a), Some(b)) = (opts.since_ns, opts.until_ns) {
                if a >= b {
                    bail!("--since must be before --until");
                }
            }
            let mut store = ctx.open_store_read_only()?;
            let model = report::build(&mut store, &opts)?;
            let html = report::html::render(&model, "Candor: what was recorded");
            report::write_file(&args.out, &html)?;
            println!(
                "wrote {} ({}, {} events)",
                args.out.display(),
                units::bytes(html.len() as u64),
                units::count(model.lanes.iter().map(|l| l.total).sum())
            );
        }
        Command::Audit {
            ledger,
            expect_head,
            html,
            exports_dir,
            json,
        } => {
            let ok = match ledger {
                Some(file) => {
                    let report = audit::audit_ledger_file(&file, expect_head.as_deref())?;
                    print_report(&report, json.json)?;
                    report.ok
                }
                None => {
                    let mut store = ctx.open_store()?;
                    let now = wall_now_ns();
                    let verdict = audit::audit_store(&mut store, now)?;
                    print_report(&verdict, json.json)?;
                    let ok = verdict.ok;
                    if let Some(out) = html {
                        let opts = report::Options {
                            now_ns: now,
                            exports_dir,
                            ..report::Options::default()
                        };
                        let mut model = report::build(&mut store, &opts)?;
                        model.audit = Some(verdict);
                        let page = report::html::render(&model, "Candor audit");
                        report::write_file(&out, &page)?;
                        eprintln!("candor: wrote {}", out.display());
                    }
                    ok
                }
            };
            if !ok {
                bail!("the audit found problems (see above)");
            }
        }
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

fn completions(shell: &str) -> Result<()> {
    let shell: clap_complete::Shell = shell
        .parse()
        .map_err(|e| anyhow::anyhow!("unknown shell {shell}: {e}"))?;
    clap_complete::generate(shell, &mut Cli::command(), "candor", &mut std::io::stdout());
    Ok(())
}

fn man(out_dir: Option<&std::path::Path>) -> Result<()> {
    let cmd = Cli::command();
    match out_dir {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            println!("wrote manual pages into {}", dir.display());
        }
    }
    Ok(())
}

fn watch(ctx: &Context, command: WatchCommand) -> Result<()> {
    let file = ctx.config_file.clone();
    let mut roots = ctx.config.editor.roots.clone();
    match command {
        WatchCommand::List => {
            if roots.is_empty() {
                println!("no workspace roots are watched; add one with `candor watch add PATH`");
            }
            for r in &roots {
                let note = if r.is_dir() { "" } else { "  (missing)" };
                println!("{}{note}", r.display());
            }
            return Ok(());
        }
        WatchCommand::Add { path } => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("cannot watch {}", path.display()))?;
            if !path.is_dir() {
                bail!("{} is not a directory", path.display());
            }
            if roots.contains(&path) {
                println!("{} is already watched", path.display());
                return Ok(());
            }
            roots.push(path.clone());
            candor::config::write_roots(&file, &roots)?;
            println!("watching {} (from the next `candor start`)", path.display());
        }
        WatchCommand::Remove { path } => {
            let canon = std::fs::canonicalize(&path).unwrap_or(path.clone());
            let before = roots.len();
            roots.retain(|r| r != &canon && r != &path);
            if roots.len() == before {
                bail!("{} is not watched", path.display());
            }
            candor::config::write_roots(&file, &roots)?;
            println!(
                "no longer watching {} (from the next `candor start`)",
                path.display()
            );
        }
    }
    Ok(())
}

fn run_note(o: &testrun::RunOutcome) -> String {
    let kind = match o.kind {
        runners::RunKind::Test => "run.test",
        runners::RunKind::Build => "run.build",
    };
    let counts = [
        ("passed", o.counts.passed),
        ("failed", o.counts.failed),
        ("skipped", o.counts.skipped),
    ]
    .iter()
    .filter_map(|(w, n)| n.map(|n| format!("{n} {w}")))
    .collect::<Vec<_>>();
    let counts = if counts.is_empty() {
        String::new()
    } else {
        format!(", {}", counts.join(", "))
    };
    match &o.recording {
        testrun::Recording::Recorded => {
            format!("candor: recorded {kind} (exit {}{counts})", o.exit)
        }
        testrun::Recording::Denied => {
            "candor: not recorded: the command is on the shell deny list".to_owned()
        }
        testrun::Recording::NotRecorded(why) => {
            let why = why.strip_prefix("not recorded: ").unwrap_or(why);
            format!("candor: not recorded: {why}")
        }
    }
}

/// `rows` as `label  name  value` lines: the label once, names padded to
/// one width and values right-aligned to another, so columns line up.
fn aligned(label: &str, rows: &[(String, String)]) -> String {
    let name_w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let value_w = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (i, (name, value)) in rows.iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        let line = format!("{head:<10} {name:<name_w$}  {value:>value_w$}");
        out += line.trim_end();
        out.push('\n');
    }
    out
}

fn count_of(v: &serde_json::Value) -> String {
    v.as_u64()
        .map(units::count)
        .unwrap_or_else(|| v.to_string())
}

fn status_text(s: &serde_json::Value) -> String {
    let mut out = format!(
        "running    for {}\nconsent    {} ({})\n",
        units::duration_ns(
            s["uptime_s"]
                .as_i64()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
        ),
        s["consent"]["record_id"].as_str().unwrap_or("?"),
        s["consent"]["scopes"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    let paused = match (s["paused"].as_bool(), s["paused_until"].as_str()) {
        (Some(true), Some(until)) => format!("paused until {until}"),
        (Some(true), None) => "paused".to_owned(),
        _ if s["excluded_app_focused"].as_bool() == Some(true) => format!(
            "recording no input: {}",
            s["excluded_for"]
                .as_str()
                .unwrap_or("an excluded application has focus")
        ),
        _ => "recording".to_owned(),
    };
    out += &format!("capture    {paused}\n");
    if let Some(sources) = s["sources"].as_object() {
        let w = sources.keys().map(|k| k.len() + 1).max().unwrap_or(0);
        for (name, st) in sources {
            let state = st["state"].as_str().unwrap_or("?");
            let name = format!("{name}:");
            match st["why"].as_str() {
                Some(why) => out += &format!("source     {name:<w$} {state}: {why}\n"),
                None => out += &format!("source     {name:<w$} {state}\n"),
            }
        }
    }
    let w = &s["writer"];
    let mut rows: Vec<(String, String)> = [
        ("received", "received"),
        ("written", "written"),
        ("mouse moves coalesced", "coalesced"),
        ("dropped", "dropped"),
        ("gaps", "gaps"),
    ]
    .iter()
    .map(|(name, key)| ((*name).to_owned(), count_of(&w[*key])))
    .collect();
    if w["cut"].as_u64().unwrap_or(0) + w["narrowed"].as_u64().unwrap_or(0) > 0 {
        rows.push((
            "not written: outside the consent in force at their time".to_owned(),
            count_of(&w["cut"]),
        ));
        rows.push((
            "narrowed: fields outside the consent stripped".to_owned(),
            count_of(&w["narrowed"]),
        ));
    }
    out += &aligned("events", &rows);
    if let Some(why) = w["stalled"].as_str() {
        out += &format!("writer     STALLED: {why}\n");
    }
    let i = &s["ingest"];
    if i.is_object() {
        let rows: Vec<(String, String)> = [
            "connected",
            "recorded",
            "not_recorded",
            "invalid",
            "rate_limited",
        ]
        .iter()
        .map(|k| (k.replace('_', " "), count_of(&i[*k])))
        .collect();
        out += &aligned("clients", &rows);
    }
    out
}

fn print_report<R: serde::Serialize + std::fmt::Display>(report: &R, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// Tells a running daemon that the ledger changed, so that it acts now
/// rather than at its next poll. Returns what it said (whether it still
/// captures), or `None` when no daemon runs. A daemon that cannot be told
/// still finds the change at its poll, and its writer never stores an
/// event stamped after the change, so failing here is only reported.
fn tell_daemon(ctx: &Context) -> Option<serde_json::Value> {
    match control::send(&ctx.paths.data_dir, &control::Request::ConsentChanged) {
        Ok(reply) => Some(reply.status.unwrap_or_default()),
        Err(control::ControlError::NotRunning(_)) => None,
        Err(e) => {
            eprintln!(
                "candor: could not tell the running daemon ({e}); it will see the change within a second"
            );
            None
        }
    }
}

fn consent_command(ctx: &Context, command: Option<ConsentCommand>) -> Result<()> {
    let now = wall_now_ns();
    let mut store = ctx.open_store()?;
    match command {
        None => {
            let outcome = candor::consent::screen::run(&mut store, now)?;
            println!("{outcome}");
            tell_daemon(ctx);
        }
        Some(ConsentCommand::Grant {
            scopes,
            accept_notice,
            expires_in,
        }) => {
            let scopes = consent::parse_scopes(&scopes)?;
            let record = consent::grant(
                &mut store,
                &scopes,
                &accept_notice,
                Method::Cli,
                expires_in.unwrap_or(consent::DEFAULT_VALIDITY),
                now,
            )?;
            println!(
                "consent {} recorded for {} until {}",
                record.record_id,
                record.scopes.join(", "),
                record.expires_at
            );
            if tell_daemon(ctx).is_some() {
                println!("the running daemon now records under this consent");
            }
        }
        Some(ConsentCommand::Status(JsonFlag { json })) => {
            let status = consent::refresh(&mut store, now)?;
            let report = consent::status_report(&status, &consent::notice::notice_hash());
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", consent::status_text(&report));
            }
        }
        Some(ConsentCommand::Log(JsonFlag { json })) => {
            consent::history(&mut store)?;
            for e in ledger::entries(store.conn())? {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    let detail =
                        match serde_json::from_value::<ConsentRecord>(e.data["record"].clone()) {
                            Ok(r) => format!(
                                "record {} by {}: {} until {}",
                                r.record_id,
                                r.method_name(),
                                r.scopes.join(", "),
                                r.expires_at
                            ),
                            Err(_) => e.data.to_string(),
                        };
                    println!(
                        "{:>4}  {}  {:<14} {detail}",
                        e.seq,
                        query::format_ns(e.ts_ns),
                        e.action
                    );
                }
            }
        }
        Some(ConsentCommand::Revoke { purge: erase }) => {
            let running = control::send(&ctx.paths.data_dir, &control::Request::Status).is_ok();
            let mut erased = consent::revoke(&mut store, erase, now)?;
            match tell_daemon(ctx) {
                Some(s) if s["capturing"] == false => {
                    println!("consent revoked; the running daemon has stopped recording")
                }
                Some(_) => bail!("consent revoked, but the running daemon says it is still capturing; stop it with `candor stop`"),
                None => println!(
                    "consent revoked; nothing stamped after this moment is stored, and a running daemon stops within a second"
                ),
            }
            if erase && running {
                // What the daemon recorded before it saw the revocation (its
                // last batch, its closing gaps) is erased once it has stopped.
                // Stopped means its writer has drained and let go of the
                // store's writer lock: the control socket goes away before
                // the last batch is committed, so waiting on it alone let a
                // queued event land after the purge.
                let started = std::time::Instant::now();
                let _lock = loop {
                    match store.lock_writer() {
                        Ok(lock) => break lock,
                        Err(candor::store::StoreError::Locked { .. })
                            if started.elapsed() < std::time::Duration::from_secs(10) =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(50))
                        }
                        Err(candor::store::StoreError::Locked { holder }) => bail!(
                            "the daemon ({holder}) did not stop after the revocation; run `candor purge --all` once it has"
                        ),
                        Err(e) => return Err(e.into()),
                    }
                };
                let late = purge::purge(&mut store, purge::Range::ALL, wall_now_ns())?;
                if let Some(r) = erased.as_mut() {
                    r.events += late.events;
                    r.gaps += late.gaps;
                    r.blobs += late.blobs;
                }
            }
            if let Some(r) = erased {
                println!(
                    "erased {} events, {} gaps and {} blobs",
                    r.events, r.gaps, r.blobs
                );
            }
        }
    }
    Ok(())
}

/// `candor` alone: the consent screen first when there is no consent in
/// force, then capture.
fn consent_then_start(ctx: &Context) -> Result<()> {
    {
        let mut store = ctx.open_store()?;
        let status = consent::refresh(&mut store, wall_now_ns())?;
        if !matches!(status, consent::state::Status::Active(_)) {
            let outcome = consent::screen::run(&mut store, wall_now_ns())?;
            println!("{outcome}");
            if !matches!(outcome, consent::screen::Outcome::Granted(_)) {
                return Ok(());
            }
        }
    }
    start(ctx)
}

fn start(ctx: &Context) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let stop = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        daemon::run(ctx, stop, |gate, sources| {
            println!(
                "candor: capturing under consent {} (scopes: {}) until {}",
                gate.record().record_id,
                gate.record().scopes.join(", "),
                gate.record().expires_at
            );
            for (name, state) in sources {
                let state = match state {
                    capture::SourceState::Running => "running".to_owned(),
                    capture::SourceState::Unavailable(why) => format!("unavailable: {why}"),
                    capture::SourceState::Off(why) => format!("off: {why}"),
                };
                println!("candor: source {name}: {state}");
            }
        })
        .await
        .map_err(anyhow::Error::from)
    })?;
    match report.ended {
        daemon::Ended::Stopped => {
            println!("candor: stopped; {} events written", report.stats.written)
        }
        daemon::Ended::ConsentEnded(why) => println!(
            "candor: capture stopped: {why}; {} events written, {} not written (outside the consent in force at their time)",
            report.stats.written, report.stats.cut
        ),
    }
    Ok(())
}
