//! `candor run -- CMD…`: runs a test or build command as if it were run
//! directly, and offers the daemon one `run.test` or `run.build` event with
//! its exit status, duration and, where the runner prints them, pass/fail
//! counts.
//!
//! stdin is inherited. stdout and stderr are copied through as they arrive
//! (chunk by chunk, not line-buffered) and read for the runner's summary;
//! when the terminal would have shown colours, the usual variables ask the
//! runners for them (`CARGO_TERM_COLOR`, `FORCE_COLOR`, `PY_COLORS`), unless
//! already set. Ctrl+C reaches the command, which decides; `candor run` waits
//! and exits with the command's status, or dies of the same terminal signal
//! (so that a shell loop stops), after recording it as 128 + N.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{now_ms, Client, ClientError};
use super::runners::{classify, Counts, RunKind, Runner};
use super::shell::{CommandFilter, MAX_COMMAND};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("nothing to run: give the command after `--`, e.g. `candor run -- cargo test`")]
    NoCommand,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// What happened to the event describing the run.
#[derive(Debug)]
pub enum Recording {
    Recorded,
    /// The command is on the shell deny list.
    Denied,
    /// The daemon did not keep it (not running, consent, pause…).
    NotRecorded(String),
}

#[derive(Debug)]
pub struct RunOutcome {
    /// The status `candor run` should exit with.
    pub exit: i32,
    /// The signal the command died of, if it did.
    pub signal: Option<i32>,
    pub kind: RunKind,
    pub runner: Runner,
    pub counts: Counts,
    pub recording: Recording,
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn pump(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    runner: Runner,
    counts: Arc<Mutex<Counts>>,
    done: crossbeam_channel::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut pending: Vec<u8> = Vec::new();
        let mut scan = |bytes: &[u8], done: bool| {
            pending.extend_from_slice(bytes);
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &pending[start..]) {
                let line = String::from_utf8_lossy(&pending[start..start + i]);
                if let Ok(mut c) = counts.lock() {
                    c.line(runner, &line);
                }
                start += i + 1;
            }
            pending.drain(..start);
            // A line that never ends is not kept without bound.
            if done || pending.len() > 1 << 20 {
                if let Ok(mut c) = counts.lock() {
                    c.line(runner, &String::from_utf8_lossy(&pending));
                }
                pending.clear();
            }
        };
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // The command's output goes on even if ours is closed.
                    let _ = to.write_all(&buf[..n]);
                    let _ = to.flush();
                    scan(&buf[..n], false);
                }
            }
        }
        scan(&[], true);
        let _ = done.send(());
    });
}

/// The signals a terminal sends the whole foreground group: while the
/// command runs, `candor run` leaves them to it.
const TERMINAL_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGQUIT];

fn set_terminal_signals(handler: libc::sighandler_t) {
    for sig in TERMINAL_SIGNALS {
        // SAFETY: SIG_IGN and SIG_DFL are valid dispositions, and no
        // handler of ours is installed for these signals.
        unsafe {
            libc::signal(sig, handler);
        }
    }
}

/// After the command died of a terminal signal, `candor run` dies of it
/// too, so that the shell stops a loop running it, as it would for the
/// command itself.
pub fn die_like(signal: i32) {
    if TERMINAL_SIGNALS.contains(&signal) {
        set_terminal_signals(libc::SIG_DFL);
        // SAFETY: raising a signal with its default disposition.
        unsafe {
            libc::raise(signal);
        }
    }
}

/// Runs `argv` and offers its outcome to the daemon of `data_dir`.
pub fn run(
    data_dir: &Path,
    filter: &CommandFilter,
    argv: &[String],
    kind: Option<RunKind>,
) -> Result<RunOutcome, RunError> {
    let (program, args) = argv.split_first().ok_or(RunError::NoCommand)?;
    let (guessed, runner) = classify(argv);
    let kind = kind.unwrap_or(guessed);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::io::stdout().is_terminal() {
        for (var, value) in [
            ("CARGO_TERM_COLOR", "always"),
            ("FORCE_COLOR", "1"),
            ("PY_COLORS", "1"),
        ] {
            if std::env::var_os(var).is_none() {
                cmd.env(var, value);
            }
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Only after the spawn: an ignored signal would be inherited.
    set_terminal_signals(libc::SIG_IGN);
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let mut pumps = 0;
    if let Some(out) = child.stdout.take() {
        pump(
            out,
            std::io::stdout(),
            runner,
            counts.clone(),
            done_tx.clone(),
        );
        pumps += 1;
    }
    if let Some(err) = child.stderr.take() {
        pump(
            err,
            std::io::stderr(),
            runner,
            counts.clone(),
            done_tx.clone(),
        );
        pumps += 1;
    }
    let status = child.wait();
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    // A background process the command left behind may hold the pipes
    // open; its output is not waited for beyond a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    for _ in 0..pumps {
        if done_rx.recv_deadline(deadline).is_err() {
            break;
        }
    }
    use std::os::unix::process::ExitStatusExt;
    let signal = status.as_ref().ok().and_then(|s| s.signal());
    let exit = match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|n| 128 + n))
            .unwrap_or(1),
        Err(_) => 1,
    };
    let counts = *counts.lock().unwrap_or_else(|p| p.into_inner());
    let line = argv
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    let recording = if filter.denies(&line) {
        Recording::Denied
    } else {
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into());
        let mut msg = serde_json::json!({
            "v": 1,
            "kind": if kind == RunKind::Test { "run.test" } else { "run.build" },
            "ts": now_ms(),
            "command": super::shell::cut(&line, MAX_COMMAND),
            "cwd": cwd,
            "exit": exit,
            "duration_ms": duration_ms,
            "runner": runner.name(),
        });
        for (field, v) in [
            ("passed", counts.passed),
            ("failed", counts.failed),
            ("skipped", counts.skipped),
        ] {
            if let Some(n) = v {
                msg[field] = n.into();
            }
        }
        match Client::connect(data_dir).and_then(|mut c| c.send(&msg)) {
            Ok(r) if r.ok => Recording::Recorded,
            Ok(r) => Recording::NotRecorded(r.error.unwrap_or_else(|| "refused".into())),
            Err(ClientError::NotRunning(_)) => {
                Recording::NotRecorded("candor is not running".into())
            }
            Err(e) => Recording::NotRecorded(e.to_string()),
        }
    };
    Ok(RunOutcome {
        exit,
        signal,
        kind,
        runner,
        counts,
        recording,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("cargo"), "cargo");
        assert_eq!(shell_quote("--features=a,b"), "--features=a,b");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
