//! The Neovim plugin (examples/nvim) against a real daemon: a headless
//! Neovim edits a file in a watched git workspace with real keystrokes
//! (inserts, multi-byte text, pastes, joins, `:s`, undo, appends at the end
//! of the file), and the recorded `editor.edit` events, applied in order to
//! the file as it was, must give the saved file byte for byte. A denied
//! file must leave no trace, and without a daemon Neovim must stay quiet and
//! quit at once.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The file the sessions edit: multi-byte UTF-8, a tab, an emoji.
const INITIAL: &str = "héllo wörld — naïve café\n\
                       second line ✓ with\ta tab\n\
                       third 日本語 line\n\
                       fourth: emoji 🎉 in it\n\
                       fifth and last line\n";
const SECRET: &str = "STRIPE_KEY=sk_live_never_in_candor\n";

/// Drives Neovim like a person would: every step is typed (feedkeys) and
/// Neovim goes back to its main loop between steps, so autocommands such as
/// CursorMoved and CmdlineLeave fire as they do interactively. Writes the
/// plugin's status to $CANDOR_TEST_OUT when Neovim exits.
const TYPED_SESSION: &str = r#"
local secret = os.getenv("CANDOR_TEST_SECRET")
local out = os.getenv("CANDOR_TEST_OUT")
local function keys(k)
  return function()
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(k, true, false, true), "nt", false)
  end
end
local quit_at
local steps = {
  -- Diagnostics are sent once they settle (300 ms): early, so that they
  -- have long settled when the buffer is left.
  function()
    local ns = vim.api.nvim_create_namespace("candor-test")
    vim.diagnostic.set(ns, 0, {
      { lnum = 0, col = 0, message = "an error", severity = vim.diagnostic.severity.ERROR },
      { lnum = 1, col = 0, message = "a warning", severity = vim.diagnostic.severity.WARN },
      { lnum = 1, col = 1, message = "another", severity = vim.diagnostic.severity.WARN },
    })
  end,
  keys("gg0iStart ✓ <Esc>"),
  keys("jjll"),
  keys("A — añadido 日本<Esc>"),
  keys("Goappended at the end 🎉<Esc>"),
  keys("ggJ"),
  keys(":2,3s/i/ï/g<CR>"),
  keys(":1s/ /\\r/g<CR>"),
  keys("u"),
  keys("3Gdd"),
  keys("Gdd"),
  function() vim.fn.setreg("a", { "pasted one", "pasted ½ two" }, "l") end,
  keys('gg"ap'),
  function() vim.fn.setreg("b", "chars\nacross ✓ lines", "c") end,
  keys('gg$"bp'),
  keys("2Gwdw"),
  keys("x"),
  keys("3x"),
  keys("u"),
  keys("u"),
  keys("<C-r>"),
  keys("vjl<Esc>"),
  keys("Vj<Esc>"),
  keys("ggdG"),
  keys("iall new ✓<Esc>"),
  keys("u"),
  keys("u"),
  keys(":w<CR>"),
  keys("GA tail<Esc>"),
  keys("Go<Esc>"),
  keys("kJ"),
  keys(":%s/e$/E/<CR>"),
  keys("gg"),
  keys(":w<CR>"),
  keys(":e " .. secret .. "<CR>"),
  keys("ASECRET_TOKEN=never_in_candor_either<Esc>"),
  keys(":w<CR>"),
  keys(":e #<CR>"),
  keys("Golast line, after coming back<Esc>"),
  keys("ggOfirst line now<Esc>"),
  keys(":w<CR>"),
  function()
    quit_at = (vim.uv or vim.loop).hrtime()
    keys(":q<CR>")()
  end,
}
vim.api.nvim_create_autocmd("VimLeave", {
  callback = function()
    local candor = require("candor")
    local f = assert(io.open(out, "w"))
    f:write(vim.json.encode({
      status = candor.status(),
      leave_ms = quit_at and ((vim.uv or vim.loop).hrtime() - quit_at) / 1e6 or -1,
      status_text = vim.fn.execute("CandorStatus"),
    }))
    f:close()
  end,
})
"#;

/// Runs a session's `steps` one after another, 40 ms apart; appended to
/// each session script.
const STEP_RUNNER: &str = r#"
local i = 0
local function step()
  i = i + 1
  if steps[i] then
    steps[i]()
    vim.defer_fn(step, 40)
  end
end
vim.defer_fn(step, 40)
"#;

/// Edits without the command line (whose echo would show on stderr), so
/// that a silent plugin means an empty stderr.
const QUIET_SESSION: &str = r#"
local out = os.getenv("CANDOR_TEST_OUT")
local quit_at
local steps = {
  function() vim.cmd("normal! ggiquiet ✓ ") end,
  function() vim.cmd("normal! Goat the end") end,
  function() vim.cmd("normal! ggJ") end,
  function() vim.cmd("silent! %s/line/LINE/g") end,
  function() vim.cmd("silent normal! u") end,
  function() vim.cmd("normal! jj") end,
  function() vim.cmd("silent write") end,
  function()
    quit_at = (vim.uv or vim.loop).hrtime()
    vim.cmd("qall")
  end,
}
vim.api.nvim_create_autocmd("VimLeave", {
  callback = function()
    local f = assert(io.open(out, "w"))
    f:write(vim.json.encode({
      status = require("candor").status(),
      leave_ms = quit_at and ((vim.uv or vim.loop).hrtime() - quit_at) / 1e6 or -1,
    }))
    f:close()
  end,
})
"#;

/// What the quiet session makes of INITIAL.
fn quiet_result() -> String {
    let mut lines: Vec<String> = INITIAL.lines().map(str::to_owned).collect();
    lines[0] = format!("quiet ✓ {} {}", lines[0], lines[1]);
    lines.remove(1);
    lines.push("at the end".into());
    lines.join("\n") + "\n"
}

fn nvim_available() -> bool {
    Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nvim")
}

struct Session {
    status: ExitStatus,
    stderr: String,
    /// What the session wrote when Neovim exited: the plugin's status,
    /// how long quitting took, and `:CandorStatus`'s text.
    out: Value,
}

/// Runs a headless Neovim with the plugin on `file`, driven by `script`,
/// sending to `socket`. Fails the test if Neovim runs for over 60 s.
fn run_nvim(tmp: &Path, socket: &Path, file: &Path, secret: &Path, script: &str) -> Session {
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let driver = tmp.join("driver.lua");
    std::fs::write(&driver, format!("{script}{STEP_RUNNER}")).unwrap();
    let out = tmp.join("session.json");
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new("nvim");
    cmd.args(["--headless", "-u", "NONE", "-i", "NONE", "-n", "--noplugin"])
        .args([
            "--cmd",
            "lua vim.opt.rtp:prepend(os.getenv('CANDOR_TEST_RTP'))",
            "--cmd",
            "lua require('candor').setup({ leave_timeout_ms = 10000 })",
            "-c",
            "lua dofile(os.getenv('CANDOR_TEST_DRIVER'))",
        ])
        .arg(file)
        .current_dir(file.parent().unwrap())
        .env("CANDOR_TEST_RTP", plugin_dir())
        .env("CANDOR_TEST_DRIVER", &driver)
        .env("CANDOR_TEST_SECRET", secret)
        .env("CANDOR_TEST_OUT", &out)
        .env("CANDOR_INGEST_SOCKET", socket)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("NVIM")
        .env_remove("NVIM_LISTEN_ADDRESS")
        .env_remove("VIMINIT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start nvim");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let status = match exit_within(&mut child, Duration::from_secs(60)) {
        Some(_) => child.wait().unwrap(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nvim did not exit within 60 s: {}",
                err_reader.join().unwrap()
            );
        }
    };
    out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let out = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("the session wrote no status ({e}); stderr: {stderr}"));
    Session {
        status,
        stderr,
        out: serde_json::from_str(&out).unwrap(),
    }
}

/// Lua errors, or anything the plugin would have said.
fn assert_no_errors(s: &Session) {
    for bad in ["rror", "E5108", "E5113", "traceback", "andor", "plugin"] {
        assert!(
            !s.stderr.contains(bad),
            "nvim's stderr has `{bad}`:\n{}",
            s.stderr
        );
    }
    assert!(
        s.status.success(),
        "nvim exited with {}: {}",
        s.status,
        s.stderr
    );
}

fn events(t: &TestStore) -> Vec<Value> {
    let mut v: Vec<Value> = t
        .candor_ok(&["events", "--json", "--content", "--last", "100000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The store's ids are the order the daemon recorded them in.
    v.sort_by_key(|e| e["id"].as_i64().unwrap_or(i64::MAX));
    v
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// Applies `editor.edit` events in order to `base`.
fn apply(base: &[u8], edits: &[&Value]) -> Vec<u8> {
    let mut text = base.to_vec();
    for (i, e) in edits.iter().enumerate() {
        let f = &e["fields"];
        let off = f["offset"].as_u64().expect("offset") as usize;
        let del = f["deleted"].as_u64().expect("deleted") as usize;
        let ins = f["text"].as_str().expect("text");
        assert!(
            off + del <= text.len(),
            "edit {i} ({f}) reaches past the end ({} bytes): {:?}",
            text.len(),
            String::from_utf8_lossy(&text)
        );
        text.splice(off..off + del, ins.bytes());
    }
    text
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(t: &TestStore, mut d: std::process::Child) {
    t.candor_ok(&["stop"]);
    exited(&mut d);
}

#[test]
fn typed_edits_rebuild_the_saved_file_and_a_denied_file_leaves_no_trace() {
    if !nvim_available() {
        skip_or_fail("nvim is not installed");
        return;
    }
    let t = TestStore::new();
    let ws = t.tmp.path().join("shop");
    std::fs::create_dir_all(&ws).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    let notes = ws.join("notes.txt");
    let secret = ws.join(".env");
    std::fs::write(&notes, INITIAL).unwrap();
    std::fs::write(&secret, SECRET).unwrap();
    grant(&t, "editor.files,editor.content,editor.actions");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (daemon, _) = start_daemon(&t, None, &[]);
    let socket = t.paths.data_dir.join("ingest.sock");
    wait_for(&socket);

    let s = run_nvim(t.tmp.path(), &socket, &notes, &secret, TYPED_SESSION);
    assert_no_errors(&s);
    let status = &s.out["status"];
    assert_eq!(status["errors"], 0, "{status}");
    assert_eq!(status["desyncs"], 0, "{status}");
    assert_eq!(status["dropped"], 0, "{status}");
    assert!(status["ok"].as_u64().unwrap() > 20, "{status}");
    assert!(
        status["reasons"]["denied"].as_u64().unwrap_or(0) >= 1,
        "the .env file was not refused: {status}"
    );
    let text = s.out["status_text"].as_str().unwrap();
    assert!(text.contains("recorded"), "{text}");
    let saved = std::fs::read(&notes).unwrap();
    assert_ne!(saved, INITIAL.as_bytes());
    stop(&t, daemon);

    let all = events(&t);
    let notes_events: Vec<&Value> = all
        .iter()
        .filter(|e| e["fields"]["path"] == "notes.txt")
        .collect();
    let edits: Vec<&Value> = notes_events
        .iter()
        .copied()
        .filter(|e| e["kind"] == "editor.edit")
        .collect();
    assert!(edits.len() >= 20, "only {} edits", edits.len());
    let rebuilt = apply(INITIAL.as_bytes(), &edits);
    assert_eq!(
        String::from_utf8_lossy(&rebuilt),
        String::from_utf8_lossy(&saved),
        "the edits do not rebuild the saved file"
    );
    assert_eq!(rebuilt, saved);
    for e in &edits {
        assert_eq!(e["fields"]["workspace"], "shop", "{e}");
        assert_eq!(e["fields"]["editor"], "nvim", "{e}");
    }

    let focus = of_kind(&all, "editor.focus");
    assert!(
        focus
            .iter()
            .any(|e| e["fields"]["path"] == "notes.txt" && e["fields"]["workspace"] == "shop"),
        "no focus on notes.txt: {focus:?}"
    );
    let cursor = of_kind(&all, "editor.cursor");
    assert!(
        cursor.iter().any(|e| e["fields"]["path"] == "notes.txt"),
        "no cursor event: {cursor:?}"
    );
    let selection = of_kind(&all, "editor.selection");
    assert!(
        selection.iter().any(|e| e["fields"]["path"] == "notes.txt"
            && e["fields"]["end_line"].as_i64() > e["fields"]["line"].as_i64()),
        "no selection over lines: {selection:?}"
    );
    let diagnostics = of_kind(&all, "editor.diagnostics");
    assert!(
        diagnostics.iter().any(|e| e["fields"]["errors"] == 1
            && e["fields"]["warnings"] == 2
            && e["fields"]["info"] == 0
            && e["fields"]["hints"] == 0),
        "no diagnostics counts: {diagnostics:?}"
    );
    let commands: Vec<&str> = of_kind(&all, "editor.command")
        .iter()
        .map(|e| e["fields"]["command"].as_str().unwrap())
        .collect();
    for want in ["s", "w", "e", "q"] {
        assert!(commands.contains(&want), "no `{want}` in {commands:?}");
    }
    for c in &commands {
        assert!(
            c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "!&~<>=@*#".contains(ch)),
            "a command with more than its name: {c:?}"
        );
    }

    // The denied file: not an event, not a path, not a byte of it.
    let everything = serde_json::to_string(&all).unwrap();
    assert!(!everything.contains("never_in_candor"), "{everything}");
    assert!(!everything.contains(".env"), "{everything}");

    // Again with the daemon stopped: the same session edits the same way,
    // says nothing and quits at once.
    std::fs::write(&notes, INITIAL).unwrap();
    std::fs::write(&secret, SECRET).unwrap();
    assert!(!socket.exists(), "the daemon left its socket behind");
    let before = count(&t, "SELECT count(*) FROM events");
    let s = run_nvim(t.tmp.path(), &socket, &notes, &secret, TYPED_SESSION);
    assert_no_errors(&s);
    assert_eq!(std::fs::read(&notes).unwrap(), saved);
    let status = &s.out["status"];
    assert_eq!(status["ok"], 0, "{status}");
    assert_eq!(status["errors"], 0, "{status}");
    let leave_ms = s.out["leave_ms"].as_f64().unwrap();
    // The sessions allow 10 s for sending when quitting: a plugin that
    // waited without a daemon would show.
    assert!(
        (0.0..2000.0).contains(&leave_ms),
        "quitting took {leave_ms} ms"
    );
    assert_eq!(count(&t, "SELECT count(*) FROM events"), before);
}

#[test]
fn without_a_daemon_the_plugin_is_silent_and_quick() {
    if !nvim_available() {
        skip_or_fail("nvim is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let file = ws.join("notes.txt");
    let secret = ws.join(".env");
    // No socket at all, then a socket nobody listens on.
    let missing = tmp.path().join("nowhere/ingest.sock");
    let stale = tmp.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    for socket in [&missing, &stale] {
        std::fs::write(&file, INITIAL).unwrap();
        let started = Instant::now();
        let s = run_nvim(tmp.path(), socket, &file, &secret, QUIET_SESSION);
        let took = started.elapsed();
        assert!(s.status.success(), "{}: {}", s.status, s.stderr);
        assert_eq!(s.stderr, "", "nvim said something");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), quiet_result());
        let status = &s.out["status"];
        assert_eq!(status["ok"], 0, "{status}");
        assert_eq!(status["errors"], 0, "{status}");
        assert!(status["dropped"].as_u64().unwrap() > 0, "{status}");
        let leave_ms = s.out["leave_ms"].as_f64().unwrap();
        assert!(
            (0.0..2000.0).contains(&leave_ms),
            "quitting took {leave_ms} ms (the session allows 10 s)"
        );
        assert!(took < Duration::from_secs(30), "the session took {took:?}");
    }
}
