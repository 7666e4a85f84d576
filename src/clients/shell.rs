//! The shell hook: `candor shell-hook bash|zsh` prints a snippet to `eval`
//! in the shell's rc file (as atuin and zoxide `init` do), and the relay
//! the snippet starts.
//!
//! The snippet costs the shell almost nothing per prompt: at preexec it
//! writes the command line, the directory and the time to a pipe, and at
//! precmd the exit status and the time; one relay process per shell holds
//! the connection to the daemon, applies the deny list and turns the records
//! into protocol messages. When the daemon is down the relay drops what it
//! is given (retrying the connection at most every two seconds), so the
//! shell never waits and never prints an error.
//!
//! Commands that start with a space are never written to the pipe at all.
//! Commands on the deny list reach the relay but never the daemon.

use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::client::now_ms;

/// Commands longer than this are cut (at a character boundary) so that a
/// message stays well under the protocol's 64 KiB line limit.
pub const MAX_COMMAND: usize = 16 * 1024;
/// How often the relay tries to reach a daemon that is down.
const RETRY: Duration = Duration::from_secs(2);

/// The deny list: plain words name programs, patterns match whole lines.
pub struct CommandFilter {
    programs: Vec<String>,
    lines: GlobSet,
}

impl CommandFilter {
    pub fn new(patterns: &[String]) -> Result<CommandFilter, String> {
        let mut programs = Vec::new();
        let mut lines = GlobSetBuilder::new();
        for p in patterns {
            if p.contains(['*', '?', '[']) {
                let glob = GlobBuilder::new(p)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("shell deny pattern `{p}`: {e}"))?;
                lines.add(glob);
            } else if p.trim().is_empty() || p.contains(char::is_whitespace) {
                return Err(format!(
                    "shell deny entry `{p}` must be a program name or a pattern with `*`"
                ));
            } else {
                programs.push(p.clone());
            }
        }
        Ok(CommandFilter {
            programs,
            lines: lines.build().map_err(|e| e.to_string())?,
        })
    }

    /// Whether `line` may not be sent: it matches a pattern, or runs a
    /// denied program in any command position (after `sudo`, `env X=1`,
    /// in a pipeline, a list or a substitution).
    pub fn denies(&self, line: &str) -> bool {
        if self.lines.is_match(line) {
            return true;
        }
        self.denies_programs(line, 0)
    }

    /// The programs of `line` (found by [`crate::shell`] through wrappers,
    /// substitutions and `sh -c` strings), and, erring on not sending, those
    /// of every quoted argument that reads as a command line of its own.
    fn denies_programs(&self, line: &str, depth: usize) -> bool {
        // `gpg` also names `gpg2`: a version suffix is the same program.
        let denied = |name: &str| {
            self.programs.iter().any(|p| {
                name.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
            })
        };
        crate::shell::invocations(line).iter().any(|inv| {
            inv.calls().any(|c| denied(&c.name))
                || (depth < MAX_QUOTED_DEPTH
                    && inv.calls().flat_map(|c| &c.args).any(|w| {
                        w.quoted
                            && w.text.contains(char::is_whitespace)
                            && self.denies_programs(&w.text, depth + 1)
                    }))
        })
    }
}

/// How deep quoted arguments are read again as command lines.
const MAX_QUOTED_DEPTH: usize = 4;

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The snippet for `shell`, running the relay as `relay_argv` (the path
/// of this `candor` and any `--data-dir`/`--config` flags, then
/// `shell-hook relay --shell <shell>`).
pub fn snippet(shell: &str, relay_argv: &[String]) -> Result<String, String> {
    let relay = relay_argv
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    match shell {
        "bash" => Ok(BASH.replace("@RELAY@", &relay)),
        "zsh" => Ok(ZSH.replace("@RELAY@", &relay)),
        other => Err(format!("no hook for `{other}`: use bash or zsh")),
    }
}

const BASH: &str = r#"# Candor's shell hook for bash. Add to ~/.bashrc:  eval "$(candor shell-hook bash)"
# Sends each command line as it starts and its exit status when the prompt
# returns to Candor (only under a consent that grants shell.commands).
# Commands that start with a space, lines bash keeps out of its history, and
# commands on the deny list ([shell] deny) are never sent.
if [[ $- == *i* && -z ${__candor_fd-} ]] && (( BASH_VERSINFO[0] >= 5 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4) )); then
  # The relay is started in the background of the process substitution,
  # so that it is not this shell's child (`wait` must not wait for it).
  exec {__candor_fd}> >(@RELAY@ --shell-pid $$ <&0 >/dev/null 2>&1 &)
  __candor_off=
  __candor_bang='\!'
  __candor_last=${__candor_bang@P}
  __candor_pipe_trap=$(trap -p PIPE)
  # A relay that died must not take the shell with it: SIGPIPE is ignored
  # for the write alone, and a failed write turns the hook off.
  __candor_send() {
    [[ -z $__candor_off ]] || return 0
    trap '' PIPE
    if ! printf "$@" >&"$__candor_fd" 2>/dev/null; then
      __candor_off=1
      { exec {__candor_fd}>&-; } 2>/dev/null
    fi
    if [[ -n $__candor_pipe_trap ]]; then eval "$__candor_pipe_trap"; else trap - PIPE; fi
    return 0
  }
  # Runs in PS0's command substitution, a subshell, once per command line
  # just before it runs: it hands the relay the line as history kept it,
  # with the number history had before, so that a line history did not keep
  # (a leading space, HISTIGNORE, a repeat under ignoredups) is dropped.
  __candor_ps0() {
    [[ -z $__candor_off ]] || return 0
    { printf 'H\t%s\t%s\t%s\t' "${EPOCHREALTIME-}" "$PWD" "$__candor_last"
      HISTTIMEFORMAT= builtin history 1
      printf '\0'; } >&"$__candor_fd" 2>/dev/null
  }
  __candor_precmd() {
    local s=$?
    __candor_send 'E\t%s\t%s\0' "${EPOCHREALTIME-}" "$s"
    __candor_last=${__candor_bang@P}
    return $s
  }
  PS0='$(__candor_ps0)'"${PS0-}"
  PROMPT_COMMAND="__candor_precmd${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
"#;

const ZSH: &str = r#"# Candor's shell hook for zsh. Add to ~/.zshrc:  eval "$(candor shell-hook zsh)"
# Sends each command line as it starts and its exit status when the prompt
# returns to Candor (only under a consent that grants shell.commands).
# Commands that start with a space, commands matching HISTORY_IGNORE, and
# commands on the deny list ([shell] deny) are never sent.
if [[ -o interactive && -z ${__candor_fd-} ]]; then
  zmodload zsh/datetime 2>/dev/null
  exec {__candor_fd}> >(@RELAY@ --shell-pid $$ <&0 >/dev/null 2>&1 &)
  __candor_ran=
  __candor_off=
  # A relay that died must not take the shell with it: SIGPIPE is ignored
  # for the write alone, and a failed write turns the hook off.
  __candor_send() {
    setopt localoptions localtraps
    [[ -z $__candor_off ]] || return 0
    trap '' PIPE
    if ! printf "$@" >&$__candor_fd 2>/dev/null; then
      __candor_off=1
      { exec {__candor_fd}>&-; } 2>/dev/null
    fi
    return 0
  }
  __candor_preexec() {
    [[ $1 == [[:space:]]* || -z $1 ]] && return 0
    [[ -n ${HISTORY_IGNORE-} && $1 == ${~HISTORY_IGNORE} ]] && return 0
    __candor_ran=1
    __candor_send 'B\t%s\t%s\t%s\0' "${EPOCHREALTIME-}" "$PWD" "$1"
  }
  __candor_precmd() {
    local s=$?
    if [[ -n $__candor_ran ]]; then
      __candor_ran=
      __candor_send 'E\t%s\t%s\0' "${EPOCHREALTIME-}" "$s"
    fi
    return 0
  }
  preexec_functions=(__candor_preexec $preexec_functions)
  precmd_functions=(__candor_precmd $precmd_functions)
fi
"#;

/// One record from the snippet.
#[derive(Debug, PartialEq)]
enum Record {
    Begin {
        at_ms: Option<f64>,
        cwd: String,
        command: String,
    },
    /// bash: the line as `history 1` prints it, and the number of the last
    /// line history kept before it.
    History {
        at_ms: Option<f64>,
        cwd: String,
        last: Option<u64>,
        entry: String,
    },
    End {
        at_ms: Option<f64>,
        status: i64,
    },
}

fn epoch_ms(s: &str) -> Option<f64> {
    let secs: f64 = s.trim().replace(',', ".").parse().ok()?;
    (secs > 0.0).then_some(secs * 1000.0)
}

/// A `history 1` line, "  503* cmd": its number and the command, or
/// `None` when history did not keep the line (its number is not past
/// `last`) or the line starts with a space.
fn history_command(entry: &str, last: Option<u64>) -> Option<String> {
    let entry = entry.strip_suffix('\n').unwrap_or(entry);
    let rest = entry.trim_start_matches(' ');
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let number: u64 = rest[..digits].parse().ok()?;
    // "%5d" then '*' for a modified entry or a space, then a space.
    let rest = &rest[digits..];
    let command = rest
        .strip_prefix("* ")
        .or_else(|| rest.strip_prefix("  "))?;
    if last.is_some_and(|l| number <= l) || command.starts_with(char::is_whitespace) {
        return None;
    }
    Some(command.to_owned())
}

fn parse_record(bytes: &[u8]) -> Option<Record> {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.splitn(4, '\t');
    match parts.next()? {
        "B" => {
            let at_ms = epoch_ms(parts.next()?);
            let cwd = parts.next()?.to_owned();
            let command = parts.next()?.to_owned();
            Some(Record::Begin {
                at_ms,
                cwd,
                command,
            })
        }
        "H" => {
            let mut parts = text.splitn(5, '\t').skip(1);
            let at_ms = epoch_ms(parts.next()?);
            let cwd = parts.next()?.to_owned();
            let last = parts.next()?.trim().parse().ok();
            let entry = parts.next()?.to_owned();
            Some(Record::History {
                at_ms,
                cwd,
                last,
                entry,
            })
        }
        "E" => {
            let at_ms = epoch_ms(parts.next()?);
            let status = parts.next()?.trim().parse().ok()?;
            Some(Record::End { at_ms, status })
        }
        _ => None,
    }
}

pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The relay's connection: written by the relay, replies drained by a
/// thread (so the daemon never blocks on them).
struct Link {
    stream: UnixStream,
    alive: Arc<AtomicBool>,
}

impl Link {
    fn open(data_dir: &Path) -> Option<Link> {
        let path = crate::capture::ingest::socket_path(data_dir);
        let stream = UnixStream::connect(path).ok()?;
        stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .ok()?;
        let alive = Arc::new(AtomicBool::new(true));
        let reader = stream.try_clone().ok()?;
        let flag = alive.clone();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(reader);
            let mut line = String::new();
            while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                line.clear();
            }
            flag.store(false, Ordering::SeqCst);
        });
        Some(Link { stream, alive })
    }

    fn send(&mut self, msg: &serde_json::Value) -> bool {
        let mut line = msg.to_string();
        line.push('\n');
        self.alive.load(Ordering::SeqCst) && self.stream.write_all(line.as_bytes()).is_ok()
    }
}

/// Runs the relay until `input` ends (the shell exited): reads the
/// snippet's records and sends what the deny list allows.
pub fn relay(
    data_dir: &Path,
    filter: &CommandFilter,
    shell: &str,
    shell_pid: Option<i32>,
    input: impl BufRead,
) {
    // Out of the terminal's session: Ctrl+C or Ctrl+\ at the prompt is for
    // the shell, not for the relay.
    let _ = rustix::process::setsid();
    // A child the shell started may hold the pipe open after the shell is
    // gone; the relay then goes too.
    if let Some(pid) = shell_pid.and_then(rustix::process::Pid::from_raw) {
        std::thread::spawn(move || loop {
            std::thread::sleep(RETRY);
            if rustix::process::test_kill_process(pid).is_err() {
                std::process::exit(0);
            }
        });
    }
    let mut input = input;
    let mut link: Option<Link> = None;
    let mut last_try: Option<Instant> = None;
    let mut seq = 0u64;
    let pid = std::process::id();
    // The command whose outcome is awaited: its id and start, if it was sent.
    let mut open: Option<(String, Option<f64>)> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(0, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() == Some(&0) {
            buf.pop();
        }
        let record = match parse_record(&buf) {
            Some(Record::History {
                at_ms,
                cwd,
                last,
                entry,
            }) => match history_command(&entry, last) {
                Some(command) => Some(Record::Begin {
                    at_ms,
                    cwd,
                    command,
                }),
                None => {
                    open = None;
                    continue;
                }
            },
            other => other,
        };
        let msg = match record {
            Some(Record::Begin {
                at_ms,
                cwd,
                command,
            }) => {
                open = None;
                if command.trim().is_empty() || filter.denies(&command) {
                    continue;
                }
                seq += 1;
                let id = format!("{shell}-{pid}:{seq}");
                open = Some((id.clone(), at_ms));
                serde_json::json!({
                    "v": 1, "kind": "shell.command", "ts": now_ms(), "id": id,
                    "command": cut(&command, MAX_COMMAND), "cwd": cwd, "shell": shell,
                })
            }
            Some(Record::End { at_ms, status }) => {
                let Some((id, began)) = open.take() else {
                    continue;
                };
                let mut m = serde_json::json!({
                    "v": 1, "kind": "shell.command", "ts": now_ms(), "id": id, "exit": status,
                });
                if let (Some(a), Some(b)) = (began, at_ms) {
                    m["duration_ms"] = serde_json::json!(((b - a).max(0.0)).round() as i64);
                }
                m
            }
            Some(Record::History { .. }) | None => continue,
        };
        if link
            .as_ref()
            .is_some_and(|l| !l.alive.load(Ordering::SeqCst))
        {
            link = None;
        }
        if link.is_none() && last_try.is_none_or(|t| t.elapsed() >= RETRY) {
            last_try = Some(Instant::now());
            link = Link::open(data_dir);
        }
        if let Some(l) = link.as_mut() {
            if !l.send(&msg) {
                link = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_filter() -> CommandFilter {
        CommandFilter::new(
            &crate::config::DEFAULT_SHELL_DENY
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn the_default_deny_list_catches_secret_tools_in_any_position() {
        let f = default_filter();
        for line in [
            "pass show email/work",
            "gpg --decrypt notes.gpg",
            "sudo gpg -d x",
            "env GNUPGHOME=/x gpg -k",
            "cat key | gpg --import",
            "ssh-add ~/.ssh/id_ed25519",
            "op item get Login",
            "security find-generic-password -s x",
            "/usr/bin/pass git push",
            "echo $(pass show db)",
            "timeout 5 op signin",
            "sudo -u bob pass show bank",
            "doas -u root gpg -d x.gpg",
            "gpg2 --decrypt notes.gpg",
            "bash -c 'pass show x'",
            "sh -c \"gpg -d x\"",
            "eval pass show x",
            "\\pass show x",
            "xargs -I{} gpg --decrypt {}",
            "mysql -u root --password=hunter2",
            "chronic pass show x",
            "unbuffer gpg -d f",
            "stdbuf -oL op item get Login",
            "sudo -E -H --user=bob pass show x",
            "ssh host 'pass show x'",
            "watch -n 5 \"gpg -k\"",
            "export DB_PASSWORD=x",
            "echo MyPassword",
            "docker exec -it vault-ctr pass show x",
            "podman exec c gpg -d secrets.gpg",
            "kubectl -n ops exec -it toolbox-0 -c sh -- op read op://x/y",
            "ssh bastion gpg -d notes.gpg",
        ] {
            assert!(f.denies(line), "{line} is not denied");
        }
        for line in [
            "cargo test",
            "ls -la",
            "git commit -m 'bypass the cache'",
            "passwd-check --help",
            "grep -r options src/",
            "cd security-notes && ls",
            "make op",
            "ss -tlnp",
            "docker exec -it db psql",
            "kubectl exec web-0 -- ls /srv",
        ] {
            assert!(!f.denies(line), "{line} is denied");
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(CommandFilter::new(&["two words".into()]).is_err());
        assert!(CommandFilter::new(&["[".into()]).is_err());
    }

    #[test]
    fn records_parse_with_tabs_and_newlines_in_commands() {
        assert_eq!(
            parse_record(b"B\t1764340000.123456\t/w\tprintf 'a\tb'\nls"),
            Some(Record::Begin {
                at_ms: Some(1_764_340_000_123.456),
                cwd: "/w".into(),
                command: "printf 'a\tb'\nls".into()
            })
        );
        assert_eq!(
            parse_record(b"E\t\t127"),
            Some(Record::End {
                at_ms: None,
                status: 127
            })
        );
        assert_eq!(parse_record(b"X\tjunk"), None);
    }

    #[test]
    fn history_lines_are_kept_only_when_history_kept_them() {
        assert_eq!(
            history_command("  503  cargo test\n", Some(502)).as_deref(),
            Some("cargo test")
        );
        assert_eq!(
            history_command(" 1204* git commit -m 'a\nb'\n", Some(1203)).as_deref(),
            Some("git commit -m 'a\nb'")
        );
        // Not kept (a leading space under ignorespace, HISTIGNORE, a repeat
        // under ignoredups): history 1 is still the line before.
        assert_eq!(history_command("  502  cargo test\n", Some(502)), None);
        // Kept, but with its leading space (HISTCONTROL without ignorespace).
        assert_eq!(history_command("  504   echo hidden\n", Some(503)), None);
        assert_eq!(history_command("garbage", Some(1)), None);
    }

    #[test]
    fn long_commands_are_cut_at_a_character() {
        let s = "é".repeat(MAX_COMMAND);
        let c = cut(&s, MAX_COMMAND + 1);
        assert!(c.len() <= MAX_COMMAND + 1 && s.starts_with(c));
    }

    #[test]
    fn snippets_quote_the_relay() {
        let s = snippet("bash", &["/opt/it's/candor".into(), "shell-hook".into()]).unwrap();
        assert!(
            s.contains(r"'/opt/it'\''s/candor' 'shell-hook' --shell-pid $$"),
            "{s}"
        );
        assert!(snippet("fish", &[]).is_err());
    }
}
