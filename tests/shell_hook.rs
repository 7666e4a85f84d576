//! The shell hook in real interactive shells: bash and zsh in tmux panes,
//! with `eval "$(candor shell-hook …)"`, running commands against a real
//! daemon. The store must hold the commands with their exit status,
//! directory and duration, and nothing of the commands that start with a
//! space or match the deny list. A daemon that stops, or a relay that dies,
//! must leave the shell working and quiet.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::tmux::Pane;
use common::*;
use serde_json::Value;

fn shell_commands(t: &TestStore) -> Vec<Value> {
    let out = t.candor_ok(&["events", "--json", "--last", "200"]);
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "shell.command")
        .collect();
    v
}

/// Waits until a recorded command matches `pred` (its outcome included).
fn wait_for_command(t: &TestStore, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let cmds = shell_commands(t);
        if cmds.iter().any(&pred) {
            return cmds;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the command never arrived: {cmds:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fields(e: &Value) -> &Value {
    &e["fields"]
}

fn setup(t: &TestStore) -> (std::path::PathBuf, Child) {
    let ws = t.tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    grant(t, "shell.commands,editor.files");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (d, lines) = start_daemon(t, None, &[]);
    assert!(
        lines.iter().any(|l| l.ends_with("ingest: running")),
        "{lines:?}"
    );
    (ws.canonicalize().unwrap(), d)
}

fn shell_pane(t: &TestStore, name: &str, shell: &str) -> Option<Pane> {
    let cmd = format!(
        "env -i HOME='{home}' PATH='{path}' TERM=xterm-256color CANDOR_CONFIG_DIR='{cfg}' \
         CANDOR_KEY_STORE=file HISTCONTROL=ignoredups PS1='ready$ ' PROMPT='ready$ ' {shell}",
        home = t.tmp.path().display(),
        path = std::env::var("PATH").unwrap_or_default(),
        cfg = t.paths.config_dir.display(),
    );
    Pane::start(name, &cmd, 160, 40)
}

fn hook(p: &Pane, t: &TestStore, shell: &str) {
    p.type_text(&format!(
        "eval \"$('{}' --data-dir '{}' shell-hook {shell})\"",
        bin_path("candor").display(),
        t.paths.data_dir.display()
    ));
    p.keys(&["Enter"]);
}

/// Runs a command and waits for its marker output.
fn run(p: &Pane, line: &str, marker: &str) {
    p.type_text(line);
    p.keys(&["Enter"]);
    p.wait_for(marker);
}

fn stop(t: &TestStore, mut d: Child) {
    t.candor_ok(&["stop"]);
    exited(&mut d);
}

fn has_shell(shell: &str) -> bool {
    let found = std::process::Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip_or_fail(&format!(
            "{shell} is not installed (apt-get install {shell})"
        ));
    }
    found
}

fn relay_pids(data_dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("{}.*shell-hook relay", data_dir.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_commands_are_recorded_with_exit_codes_and_ignored_ones_are_not() {
    if !has_shell("bash") {
        return;
    }
    let t = TestStore::new();
    let (ws, d) = setup(&t);
    let Some(p) = shell_pane(&t, "bash", "bash --norc --noprofile -i") else {
        return;
    };
    p.wait_for("ready$");
    hook(&p, &t, "bash");
    // Something added to PROMPT_COMMAND after the hook must not shift
    // commands or their exit status.
    run(
        &p,
        "PROMPT_COMMAND=\"$PROMPT_COMMAND; : added-later\"; echo pc-$((3+3))",
        "pc-6",
    );
    run(
        &p,
        &format!("cd '{}/src'; echo at-$((40+2))", ws.display()),
        "at-42",
    );
    run(&p, "echo marker-$((1+1))", "marker-2");
    run(&p, "false; echo false-ran", "false-ran");
    run(&p, "(exit 7); echo seven-$((3+4))", "seven-7");
    run(&p, "(exit 5)", "ready$");
    // A subshell line, and `wait`, which must not wait for the relay.
    run(&p, "(cd /tmp && echo in-sub-$((2+2)))", "in-sub-4");
    run(&p, "wait; echo waited-$((1+1))", "waited-2");
    // Ignored: a leading space, a denied program, a denied pattern.
    run(&p, " echo spaced-$((7*6))-secret", "spaced-42-secret");
    run(
        &p,
        "pass show bank 2>/dev/null; echo pass-$((2*2))",
        "pass-4",
    );
    run(
        &p,
        "echo my-password-is-hunter$((1+1))",
        "my-password-is-hunter2",
    );
    run(
        &p,
        "ls /nonexistent-dir 2>/dev/null; echo ls-$((3*3))",
        "ls-9",
    );
    run(&p, "ls /nonexistent-dir", "No such file");
    run(&p, "sleep 0.3; echo slept-$((5*5))", "slept-25");
    // Ctrl+C at the prompt: the relay is out of the terminal's reach, and
    // the shell keeps its prompt and its error messages.
    p.type_text("echo never-run");
    p.keys(&["C-c"]);
    run(&p, "no-such-command-xyz", "command not found");
    run(&p, "echo done-$((9*9))", "done-81");

    let cmds = wait_for_command(&t, |e| {
        fields(e)["command"] == "echo done-$((9*9))" && fields(e)["exit"] == 0
    });
    let by_text = |text: &str| -> &Value {
        cmds.iter()
            .find(|e| fields(e)["command"] == text)
            .unwrap_or_else(|| panic!("`{text}` was not recorded: {cmds:#?}"))
    };
    let cd = by_text(&format!("cd '{}/src'; echo at-$((40+2))", ws.display()));
    assert_eq!(fields(cd)["cwd"], "outside", "{cd}");
    let m = fields(by_text("echo marker-$((1+1))"));
    assert_eq!(
        (&m["exit"], &m["cwd"], &m["workspace"]),
        (&0.into(), &"src".into(), &"ws".into())
    );
    assert_eq!(m["shell"], "bash");
    assert_eq!(fields(by_text("(exit 7); echo seven-$((3+4))"))["exit"], 0);
    assert_eq!(fields(by_text("(exit 5)"))["exit"], 5);
    assert_eq!(
        fields(by_text("(cd /tmp && echo in-sub-$((2+2)))"))["exit"],
        0
    );
    assert_eq!(fields(by_text("ls /nonexistent-dir"))["exit"], 2);
    assert_eq!(fields(by_text("no-such-command-xyz"))["exit"], 127);
    let slept = fields(by_text("sleep 0.3; echo slept-$((5*5))"));
    assert!(slept["duration_ms"].as_i64().unwrap() >= 250, "{slept}");
    for e in &cmds {
        let c = fields(e)["command"].as_str().unwrap();
        for never in ["spaced-", "pass show", "password", "hunter", "never-run"] {
            assert!(!c.contains(never), "an ignored command was recorded: {c}");
        }
        assert!(fields(e)["exit"].is_i64(), "no exit status: {e}");
    }
    assert_eq!(cmds.len(), 13, "{cmds:#?}");

    // A relay that dies takes nothing with it: the shell goes on, with its
    // prompt and its error messages.
    for pid in relay_pids(&t.paths.data_dir) {
        let _ = std::process::Command::new("kill").arg(&pid).status();
    }
    std::thread::sleep(Duration::from_millis(200));
    run(&p, "echo alive-$((6*7))", "alive-42");
    run(
        &p,
        "no-such-command-after",
        "no-such-command-after: command not found",
    );
    run(&p, "echo still-$((6*6))", "still-36");
    let screen = p.screen();
    assert!(!screen.contains("Broken pipe"), "{screen}");
    assert!(screen.trim_end().ends_with("ready$"), "{screen}");
    stop(&t, d);
}

#[test]
fn with_the_daemon_down_the_bash_hook_is_silent_and_the_shell_works() {
    if !has_shell("bash") {
        return;
    }
    let t = TestStore::new();
    let (_ws, d) = setup(&t);
    stop(&t, d);
    let Some(p) = shell_pane(&t, "bash-down", "bash --norc --noprofile -i") else {
        return;
    };
    p.wait_for("ready$");
    hook(&p, &t, "bash");
    for i in 0..5 {
        run(
            &p,
            &format!("echo down-$(({i}+100))"),
            &format!("down-{}", i + 100),
        );
    }
    run(
        &p,
        "no-such-command-down",
        "no-such-command-down: command not found",
    );
    let screen = p.screen();
    let noise: Vec<&str> = screen
        .lines()
        .filter(|l| !l.contains("shell-hook") && (l.contains("candor") || l.contains("rror")))
        .collect();
    assert!(noise.is_empty(), "{screen}");
}

#[test]
fn zsh_commands_are_recorded_and_ignored_ones_are_not() {
    if !has_shell("zsh") {
        return;
    }
    let t = TestStore::new();
    let (ws, d) = setup(&t);
    let Some(p) = shell_pane(&t, "zsh", "zsh -f -i") else {
        return;
    };
    p.wait_for("ready$");
    hook(&p, &t, "zsh");
    run(
        &p,
        &format!("cd '{}'; echo in-$((20+1))", ws.display()),
        "in-21",
    );
    run(&p, "echo zmark-$((2+3))", "zmark-5");
    run(&p, "false; echo zf-$((1+6))", "zf-7");
    run(&p, " echo zspace-$((8+8))", "zspace-16");
    run(
        &p,
        "gpg --version >/dev/null 2>&1; echo zgpg-$((4+4))",
        "zgpg-8",
    );
    run(&p, "(exit 3)", "ready$");
    run(&p, "echo zdone-$((9+9))", "zdone-18");
    let cmds = wait_for_command(&t, |e| {
        fields(e)["command"] == "echo zdone-$((9+9))" && fields(e)["exit"] == 0
    });
    let texts: Vec<&str> = cmds
        .iter()
        .map(|e| fields(e)["command"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"echo zmark-$((2+3))"), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|c| c.contains("zspace") || c.contains("gpg")),
        "{texts:?}"
    );
    let exit3 = cmds
        .iter()
        .find(|e| fields(e)["command"] == "(exit 3)")
        .expect("(exit 3) recorded");
    assert_eq!(fields(exit3)["exit"], 3);
    assert_eq!(fields(exit3)["cwd"], ".");
    assert_eq!(fields(exit3)["shell"], "zsh");
    stop(&t, d);
}
