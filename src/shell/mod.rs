//! The one reader of shell command lines: lexing with byte offsets
//! ([`lexer`]), and finding the program each simple command runs through
//! the wrappers in front of it (`sudo -u x`, `env A=1`, `timeout 5`,
//! `chronic`, `bash -c '…'`, `eval`…).
//!
//! Privacy decisions read command lines in several places (the shell
//! hook's deny list, the typed-password dialogues, the exporter's command
//! anonymizer). When each keeps its own list of wrappers they disagree, and
//! a secret tool hidden behind a wrapper only one of them knows slips
//! through; so the wrappers are one data table here. This module imports
//! nothing from capture, export, store or clients.

pub mod lexer;

pub use lexer::{is_assignment, lex, relex, Op, Redirect, SimpleCommand, Word};

/// A program that runs another command given on its own command line.
#[derive(Debug)]
pub struct Wrapper {
    pub name: &'static str,
    /// Options that take the next word as their value (`sudo -u bob`).
    pub value_opts: &'static [&'static str],
    /// Words that follow the options before the command (`timeout 5`,
    /// `ssh host`, `chroot /dir`).
    pub operands: usize,
    /// `NAME=value` words may come between options and the command (`env`).
    pub assignments: bool,
    /// A `-c STRING` option (or `-lc`) holds a command line (`bash -c`).
    pub shell_c: bool,
    /// The words after options and operands are a command to run. A
    /// shell without `-c`, or `su` without it, runs no command given here.
    pub runs_argv: bool,
}

const fn w(name: &'static str, value_opts: &'static [&'static str], operands: usize) -> Wrapper {
    Wrapper {
        name,
        value_opts,
        operands,
        assignments: false,
        shell_c: false,
        runs_argv: true,
    }
}

const fn shell(name: &'static str, value_opts: &'static [&'static str]) -> Wrapper {
    Wrapper {
        name,
        value_opts,
        operands: 0,
        assignments: false,
        shell_c: true,
        runs_argv: false,
    }
}

const SHELL_OPTS: &[&str] = &["-o", "-O", "+o", "+O", "--rcfile", "--init-file"];
/// ssh's options that take a value.
pub const SSH_ARG: &[&str] = &[
    "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-P",
    "-Q", "-R", "-S", "-W", "-w",
];

/// Every wrapper the reader sees through. Shell keywords (`if`, `then`,
/// `do`, `!`, `{`…) are skipped as well, see [`KEYWORDS`].
pub const WRAPPERS: &[Wrapper] = &[
    w(
        "sudo",
        &[
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "-R",
            "--user",
            "--group",
            "--host",
            "--prompt",
            "--role",
            "--type",
            "--other-user",
            "--chdir",
            "--chroot",
            "--close-from",
            "--command-timeout",
        ],
        0,
    ),
    w("doas", &["-u", "-C"], 0),
    w("pkexec", &["--user"], 0),
    Wrapper {
        assignments: true,
        ..w(
            "env",
            &["-u", "-C", "-S", "--unset", "--chdir", "--split-string"],
            0,
        )
    },
    w("command", &[], 0),
    w("builtin", &[], 0),
    w("exec", &["-a"], 0),
    w("time", &["-f", "-o", "--format", "--output"], 0),
    w("nohup", &[], 0),
    w("setsid", &[], 0),
    w("nice", &["-n", "--adjustment"], 0),
    w(
        "ionice",
        &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        0,
    ),
    w("chrt", &[], 1),
    w("taskset", &[], 1),
    w("timeout", &["-s", "-k", "--signal", "--kill-after"], 1),
    w("watch", &["-n", "--interval", "-q", "--equexit"], 0),
    w(
        "stdbuf",
        &["-i", "-o", "-e", "--input", "--output", "--error"],
        0,
    ),
    w("chronic", &[], 0),
    w("unbuffer", &[], 0),
    w("ts", &[], 0),
    w("caffeinate", &["-t", "-w"], 0),
    w(
        "xargs",
        &[
            "-I",
            "-i",
            "-n",
            "-P",
            "-L",
            "-l",
            "-s",
            "-d",
            "-E",
            "-e",
            "-a",
            "--max-args",
            "--max-procs",
            "--max-lines",
            "--delimiter",
            "--arg-file",
            "--replace",
        ],
        0,
    ),
    w(
        "strace",
        &[
            "-e", "-o", "-p", "-s", "-u", "-E", "-P", "-a", "-b", "-I", "-O", "-S", "-X",
        ],
        0,
    ),
    w("ltrace", &["-e", "-o", "-p", "-s", "-u", "-n", "-a"], 0),
    w("valgrind", &[], 0),
    w("eatmydata", &[], 0),
    w("fakeroot", &["-l", "-s", "-i"], 0),
    w("torsocks", &["-u", "-p", "-a", "-P"], 0),
    w("proxychains", &["-f"], 0),
    w("proxychains4", &["-f"], 0),
    w("firejail", &[], 0),
    w("dbus-run-session", &[], 0),
    w("xvfb-run", &["-n", "-s", "-e", "-f", "-p", "-w"], 0),
    w("rlwrap", &["-f", "-H", "-p", "-P", "-S", "-a"], 0),
    w(
        "flock",
        &["-w", "-E", "--timeout", "--conflict-exit-code"],
        1,
    ),
    w("chroot", &["--userspec", "--groups"], 1),
    w("nsenter", &["-t", "--target"], 0),
    w("unshare", &[], 0),
    w(
        "systemd-run",
        &["-p", "--property", "-u", "--unit", "-E", "--setenv", "-M"],
        0,
    ),
    w("sshpass", &["-p", "-f", "-d", "-P"], 0),
    w("ssh", SSH_ARG, 1),
    w("autossh", SSH_ARG, 1),
    w("mosh", &["--ssh", "-p", "--port"], 1),
    w("eval", &[], 0),
    w("noglob", &[], 0),
    w("nocorrect", &[], 0),
    Wrapper {
        shell_c: true,
        ..w(
            "runuser",
            &["-u", "-g", "-G", "-s", "--user", "--group", "--shell"],
            0,
        )
    },
    Wrapper {
        shell_c: true,
        runs_argv: false,
        ..w(
            "su",
            &[
                "-s",
                "-g",
                "-G",
                "-w",
                "--shell",
                "--group",
                "--supp-group",
                "--whitelist-environment",
            ],
            0,
        )
    },
    shell("sh", SHELL_OPTS),
    shell("bash", SHELL_OPTS),
    shell("zsh", SHELL_OPTS),
    shell("dash", SHELL_OPTS),
    shell("ksh", SHELL_OPTS),
    shell("mksh", SHELL_OPTS),
    shell("fish", &["-C", "--init-command"]),
];

/// A program that runs a command elsewhere through a subcommand:
/// `docker exec [-it] CTR CMD…`, `kubectl exec POD [-c C] -- CMD…`. Only
/// the subcommand makes it one (`docker run IMAGE` runs the image's own
/// command, `kubectl get pods` none).
#[derive(Debug)]
pub struct ExecWrapper {
    pub names: &'static [&'static str],
    /// The program's own options before the subcommand that take a value
    /// (`docker -H host exec`, `kubectl -n ns exec`).
    pub global_value_opts: &'static [&'static str],
    pub sub: &'static str,
    /// The subcommand's options that take a value (`-u root`, `-c app`).
    pub value_opts: &'static [&'static str],
}

/// Container and cluster tools whose `exec` runs a command: after its
/// options and one operand (the container or pod), or after `--`.
pub const EXEC_WRAPPERS: &[ExecWrapper] = &[
    ExecWrapper {
        names: &["docker", "podman", "nerdctl"],
        global_value_opts: &[
            "-H",
            "--host",
            "-c",
            "--context",
            "--config",
            "-l",
            "--log-level",
            "--connection",
            "--url",
            "--identity",
            "--namespace",
            "-n",
        ],
        sub: "exec",
        value_opts: &[
            "-e",
            "--env",
            "--env-file",
            "-u",
            "--user",
            "-w",
            "--workdir",
            "--detach-keys",
            "--preserve-fds",
        ],
    },
    ExecWrapper {
        names: &["kubectl", "oc"],
        global_value_opts: &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "--cluster",
            "--user",
            "-s",
            "--server",
            "--token",
            "--as",
        ],
        sub: "exec",
        value_opts: &[
            "-c",
            "--container",
            "-n",
            "--namespace",
            "-f",
            "--filename",
            "--pod-running-timeout",
            "--context",
        ],
    },
];

/// Where the command run by the exec wrapper called `name` (the word at
/// `i`) starts: `Some(words.len())` when it is one but runs no command
/// given here, `None` when the line is no `exec` of such a program.
pub fn exec_next<S: AsRef<str>>(name: &str, words: &[S], i: usize) -> Option<usize> {
    let ex = EXEC_WRAPPERS.iter().find(|e| e.names.contains(&name))?;
    let t = |j: usize| words.get(j).map(AsRef::as_ref);
    let mut j = i + 1;
    while let Some(x) = t(j) {
        if ex.global_value_opts.contains(&x) {
            j += 2;
        } else if x.starts_with('-') && x.len() > 1 {
            j += 1;
        } else {
            break;
        }
    }
    if t(j) != Some(ex.sub) {
        return None;
    }
    j += 1;
    let mut operand = false;
    while let Some(x) = t(j) {
        if x == "--" {
            return Some(j + 1);
        }
        if ex.value_opts.contains(&x) {
            j += 2;
        } else if x.starts_with('-') && x.len() > 1 {
            j += 1;
        } else if !operand {
            // The container or pod.
            operand = true;
            j += 1;
        } else {
            return Some(j);
        }
    }
    Some(words.len())
}

/// Shell reserved words and the like in front of a command: skipped.
pub const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done", "esac",
    "function",
];

/// The wrapper called `name` (a base name: `/usr/bin/sudo` is `sudo`).
pub fn wrapper(name: &str) -> Option<&'static Wrapper> {
    // A hash lookup: the redaction engine asks for every line that may be
    // a command. The first row of a name wins, as a linear search would.
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        let mut m = std::collections::HashMap::new();
        for (i, w) in WRAPPERS.iter().enumerate() {
            m.entry(w.name).or_insert(i);
        }
        m
    });
    by_name.get(name).map(|&i| &WRAPPERS[i])
}

/// The last path component: `/usr/bin/gpg` runs `gpg`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// One program called, with the words that follow it in its step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The program's base name.
    pub name: String,
    pub word: Word,
    /// For a wrapper: its own options and operands. For the program: all
    /// its arguments.
    pub args: Vec<Word>,
}

/// What one simple command runs: the wrappers it passes through, outer
/// first, and the program at the end (`None` when the wrappers run no
/// command given on the line: `sudo -v`, `ssh host`, `su -`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub wrappers: Vec<Call>,
    pub program: Option<Call>,
}

impl Invocation {
    /// The wrappers, then the program.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.wrappers.iter().chain(self.program.iter())
    }
}

/// Commands nest (`sudo bash -c "env A=1 sh -c '…'"`) at most this deep
/// before the reader stops looking inside.
const MAX_NESTING: usize = 6;

/// Every program a command line runs, in substitutions and in the command
/// strings of `sh -c`, `eval`, `watch` and ssh included.
pub fn invocations(line: &str) -> Vec<Invocation> {
    let mut out = Vec::new();
    for c in lex(line) {
        resolve(&c.words, Vec::new(), 0, &mut out);
    }
    out
}

/// Where the command after wrapper `wr` (the word at `i`) starts, or how
/// it is given.
enum Next {
    At(usize),
    CommandString(usize),
    Nothing,
}

fn is_c_option(t: &str) -> bool {
    t == "-c"
        || t == "--command"
        || (t.len() > 1
            && t.starts_with('-')
            && !t.starts_with("--")
            && t[1..].bytes().all(|b| b.is_ascii_alphabetic())
            && t.contains('c'))
}

/// Skips `wr`'s options, assignments and operands after word `i` (the
/// wrapper's name): where the command it runs starts, or where its `-c`
/// string is, or `words.len()` when it runs none given here.
pub fn skip_wrapper<S: AsRef<str>>(wr: &Wrapper, words: &[S], i: usize) -> usize {
    match next_of(wr, words, i) {
        Next::At(j) | Next::CommandString(j) => j,
        Next::Nothing => words.len(),
    }
}

fn next_of<S: AsRef<str>>(wr: &Wrapper, words: &[S], i: usize) -> Next {
    let mut j = i + 1;
    while let Some(x) = words.get(j) {
        let t = x.as_ref();
        if t == "--" {
            j += 1;
            break;
        }
        if wr.shell_c && is_c_option(t) {
            return if j + 1 < words.len() {
                Next::CommandString(j + 1)
            } else {
                Next::Nothing
            };
        }
        if wr.value_opts.contains(&t) {
            j += 2;
        } else if (t.starts_with('-') && t.len() > 1)
            || (t.starts_with('+') && wr.shell_c)
            || (wr.assignments && is_assignment(t))
        {
            j += 1;
        } else {
            break;
        }
    }
    if wr.assignments {
        while words.get(j).is_some_and(|x| is_assignment(x.as_ref())) {
            j += 1;
        }
    }
    j += wr.operands;
    if wr.runs_argv && j < words.len() {
        Next::At(j)
    } else {
        Next::Nothing
    }
}

/// A word that holds a whole command (`eval "pass show x"`).
fn holds_command(w: &Word) -> bool {
    w.text
        .contains(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&'))
}

fn resolve(words: &[Word], mut chain: Vec<Call>, depth: usize, out: &mut Vec<Invocation>) {
    let mut i = 0;
    loop {
        while words.get(i).is_some_and(|w| {
            (!w.quoted && KEYWORDS.contains(&w.text.as_str())) || w.is_assignment()
        }) {
            i += 1;
        }
        let Some(word) = words.get(i) else {
            if !chain.is_empty() {
                out.push(Invocation {
                    wrappers: chain,
                    program: None,
                });
            }
            return;
        };
        if !chain.is_empty() && holds_command(word) {
            // `watch 'gpg -d f'`, `ssh h "sudo x"`, `eval "…"`: the string
            // is read as a command line, and so is every other such word.
            if depth < MAX_NESTING {
                for w in words[i..].iter().filter(|w| holds_command(w)) {
                    for c in relex(w) {
                        resolve(&c.words, chain.clone(), depth + 1, out);
                    }
                }
            }
            return;
        }
        let name = basename(&word.text).to_owned();
        if let Some(j) = exec_next(&name, words, i) {
            chain.push(Call {
                name,
                word: word.clone(),
                args: words[i + 1..j.min(words.len())].to_vec(),
            });
            i = j;
            continue;
        }
        let Some(wr) = wrapper(&name) else {
            out.push(Invocation {
                wrappers: chain,
                program: Some(Call {
                    name,
                    word: word.clone(),
                    args: words[i + 1..].to_vec(),
                }),
            });
            return;
        };
        let next = next_of(wr, words, i);
        let end = match next {
            Next::At(j) => j,
            Next::CommandString(j) => j - 1,
            Next::Nothing => words.len(),
        };
        // A shell given no command string runs a script: it is the program.
        if matches!(next, Next::Nothing) && wr.shell_c && !wr.runs_argv && wr.name != "su" {
            out.push(Invocation {
                wrappers: chain,
                program: Some(Call {
                    name,
                    word: word.clone(),
                    args: words[i + 1..].to_vec(),
                }),
            });
            return;
        }
        chain.push(Call {
            name,
            word: word.clone(),
            args: words[i + 1..end.min(words.len())].to_vec(),
        });
        match next {
            Next::At(j) => i = j,
            Next::CommandString(j) => {
                if depth < MAX_NESTING {
                    for c in relex(&words[j]) {
                        resolve(&c.words, chain.clone(), depth + 1, out);
                    }
                }
                return;
            }
            Next::Nothing => {
                out.push(Invocation {
                    wrappers: chain,
                    program: None,
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The programs a line runs, each with its wrappers: `sudo>pass`.
    fn read(line: &str) -> Vec<String> {
        invocations(line)
            .iter()
            .map(|inv| {
                inv.calls()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(">")
                    + if inv.program.is_none() { ">" } else { "" }
            })
            .collect()
    }

    #[test]
    fn programs_are_found_through_wrappers() {
        for (line, want) in [
            ("pass show x", &["pass"][..]),
            ("sudo -u bob pass show x", &["sudo>pass"]),
            ("sudo -E -H --user=bob gpg -d f", &["sudo>gpg"]),
            ("doas -u root gpg -d x.gpg", &["doas>gpg"]),
            ("env -i A=1 B=2 gpg -k", &["env>gpg"]),
            ("A=1 env -u X B=2 -- op read", &["env>op"]),
            ("time -p make", &["time>make"]),
            ("chronic pass show x", &["chronic>pass"]),
            ("unbuffer gpg -d f", &["unbuffer>gpg"]),
            (
                "nice -n 5 ionice -c 3 stdbuf -oL gpg -d",
                &["nice>ionice>stdbuf>gpg"],
            ),
            ("nice -5 make", &["nice>make"]),
            ("timeout -s KILL 5s op signin", &["timeout>op"]),
            ("nohup /usr/bin/pass git push &", &["nohup>pass"]),
            ("xargs -I{} gpg --decrypt {}", &["xargs>gpg"]),
            ("xargs -n 1 -P 4 pass show", &["xargs>pass"]),
            ("bash -c 'pass show x'", &["bash>pass"]),
            ("sh -lc \"gpg -d x; ls\"", &["sh>gpg", "sh>ls"]),
            ("bash -o pipefail -c 'op read x'", &["bash>op"]),
            ("bash deploy.sh", &["bash"]),
            ("eval pass show x", &["eval>pass"]),
            ("eval \"sudo gpg -d x\"", &["eval>sudo>gpg"]),
            (
                "watch -n 5 'pass show x | head'",
                &["watch>pass", "watch>head"],
            ),
            ("ssh -p 22 host sudo cat /etc/shadow", &["ssh>sudo>cat"]),
            ("ssh host", &["ssh>"]),
            ("sudo -v", &["sudo>"]),
            ("su - bob", &["su>"]),
            ("su -c 'pass show x' bob", &["su>pass"]),
            ("if true; then pass show x; fi", &["true", "pass"]),
            ("! gpg -k", &["gpg"]),
            (
                "echo $(pass show db) | gpg --import",
                &["echo", "pass", "gpg"],
            ),
            ("\\pass show x", &["pass"]),
            ("\"sudo\" 'gpg' -d", &["sudo>gpg"]),
            ("sshpass -p hunter2 ssh host", &["sshpass>ssh>"]),
            ("cargo test", &["cargo"]),
            ("git commit -m 'bypass the cache'", &["git"]),
            ("docker exec -it db mysql -p", &["docker>mysql"]),
            (
                "docker -H tcp://h:2375 exec -u root -e A=1 db psql -W",
                &["docker>psql"],
            ),
            ("podman exec c sudo passwd", &["podman>sudo>passwd"]),
            (
                "kubectl -n prod exec -it web-0 -c app -- vault login",
                &["kubectl>vault"],
            ),
            (
                "kubectl exec web-0 -- sh -c 'pass show x'",
                &["kubectl>sh>pass"],
            ),
            ("oc exec pod mysql -p", &["oc>mysql"]),
            ("docker exec db", &["docker>"]),
            ("docker run -it img mysql -p", &["docker"]),
            ("kubectl get pods", &["kubectl"]),
            ("ssh db-host mysql -p", &["ssh>mysql"]),
        ] {
            assert_eq!(read(line), want, "{line}");
        }
    }

    #[test]
    fn calls_keep_their_words_and_offsets() {
        let line = "sudo -u bob mysql -p prod";
        let inv = &invocations(line)[0];
        let sudo = &inv.wrappers[0];
        assert_eq!(sudo.args.len(), 2);
        let prog = inv.program.as_ref().unwrap();
        assert_eq!(prog.name, "mysql");
        assert_eq!(&line[prog.word.start..prog.word.end], "mysql");
        let args: Vec<_> = prog.args.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(args, ["-p", "prod"]);
    }

    #[test]
    fn deep_nesting_stops_without_failing() {
        // Double quotes nest without growing: `bash -c "bash -c \"…\""`
        // is not needed; a substitution chain is, and it must stay linear.
        let line = "echo $(".repeat(200) + "pass show x" + &")".repeat(200);
        let _ = invocations(&line);
        let mut line = "pass show x".to_owned();
        for _ in 0..7 {
            line = format!("bash -c {}", quote(&line));
        }
        let got = invocations(&line);
        assert!(got
            .iter()
            .all(|i| i.program.is_none() || i.wrappers.len() <= MAX_NESTING + 1));
    }

    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }

    #[test]
    fn random_lines_never_panic_and_offsets_always_point_at_the_text() {
        let alphabet: Vec<char> = "ab -=|&;()<>'\"\\$`#{}!\n\té€2".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        for _ in 0..3000 {
            let len = next() % 40;
            let line: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let check = |w: &Word| {
                for (i, b) in w.text.bytes().enumerate() {
                    assert_eq!(line.as_bytes()[w.at[i]], b, "{line:?} {w:?}");
                }
            };
            for c in lex(&line) {
                c.assignments.iter().chain(&c.words).for_each(check);
                c.redirects
                    .iter()
                    .filter_map(|r| r.target.as_ref())
                    .for_each(check);
            }
            for inv in invocations(&line) {
                for call in inv.calls() {
                    check(&call.word);
                    call.args.iter().for_each(check);
                }
            }
        }
    }

    #[test]
    fn the_wrapper_table_has_no_duplicates_that_shadow() {
        // The first row of a name wins: a second one would be dead data.
        let mut names: Vec<_> = WRAPPERS.iter().map(|w| w.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a wrapper is listed twice");
    }
}
