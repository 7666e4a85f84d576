//! The VS Code extension in examples/vscode: it must build with `tsc` with
//! zero errors, and its node tests must pass against a REAL daemon: the
//! protocol client sends focus, edits (converted from UTF-16 changes by the
//! extension's own code), cursor, selection, diagnostics and a save, every
//! one recorded; then the store must hold them with the workspace-relative
//! path, and the recorded edits, applied in order to the file's first bytes,
//! must give its last bytes.
//!
//! VS Code itself cannot run here, so `extension.ts` is only compiled.
//! Needs node (>= 18) and npm; skipped without them, failed under CI.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const EXT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/vscode");

/// The major version `<tool> --version` reports, if the tool runs.
fn major_version(tool: &str) -> Option<u32> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Runs `cmd` to completion with its output in files (no pipe to fill),
/// killing it after `limit`.
fn run_for(mut cmd: Command, limit: Duration, scratch: &Path, name: &str) -> Output {
    let out_path = scratch.join(format!("{name}.out"));
    let err_path = scratch.join(format!("{name}.err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} did not finish within {limit:?}:\n{}\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An exclusive lock on a file in the extension's folder, held while it
/// is built and its tests run: `npm ci` and `tsc` write into the source
/// tree, which concurrent test runs share.
struct BuildLock {
    _file: File,
}

impl BuildLock {
    fn take() -> BuildLock {
        let f = File::create(Path::new(EXT).join(".candor-build.lock")).expect("lock file");
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        BuildLock { _file: f }
    }
}

/// `npm ci` when node_modules is missing or was installed from another
/// package-lock.json; then `npx tsc -p .`, which must report no error.
fn build(scratch: &Path) {
    use sha2::{Digest, Sha256};
    let dir = Path::new(EXT);
    let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    let want = hex::encode(Sha256::digest(&lock));
    let stamp = dir.join("node_modules/.candor-package-lock.sha256");
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want)
        && dir.join("node_modules/typescript/bin/tsc").is_file();
    if !fresh {
        let mut npm = Command::new("npm");
        npm.current_dir(dir).args(["ci", "--no-audit", "--no-fund"]);
        let out = run_for(npm, Duration::from_secs(600), scratch, "npm-ci");
        assert!(out.status.success(), "npm ci failed:\n{}", text(&out));
        std::fs::write(&stamp, &want).unwrap();
    }
    let mut tsc = Command::new("npx");
    tsc.current_dir(dir).args(["tsc", "-p", "."]);
    let out = run_for(tsc, Duration::from_secs(300), scratch, "tsc");
    let said = text(&out);
    assert!(
        out.status.success() && !said.contains("error"),
        "tsc reported errors:\n{said}"
    );
    for f in [
        "extension.js",
        "client.js",
        "edits.js",
        "test/edits.test.js",
        "test/client.test.js",
    ] {
        assert!(dir.join("out").join(f).is_file(), "tsc did not write {f}");
    }
}

/// Applies `editor.edit` events in order, as a reader of the store would.
fn replay(initial: &[u8], edits: &[&Value]) -> Vec<u8> {
    let mut cur = initial.to_vec();
    for e in edits {
        let f = &e["fields"];
        let offset = f["offset"].as_u64().unwrap() as usize;
        let deleted = f["deleted"].as_u64().unwrap() as usize;
        let text = f["text"].as_str().unwrap();
        assert!(
            offset + deleted <= cur.len(),
            "edit {e} is past the end ({} bytes)",
            cur.len()
        );
        cur.splice(offset..offset + deleted, text.bytes());
    }
    cur
}

const INITIAL: &str = "# Notes — café\nline two 中文\n😀 three\n";

#[test]
fn the_vscode_extension_builds_and_its_client_records_through_a_real_daemon() {
    match (major_version("node"), major_version("npm")) {
        (Some(n), Some(_)) if n >= 18 => {}
        (Some(n), Some(_)) => {
            return skip_or_fail(&format!(
                "node {n} is too old for the extension's tests (node --test needs 18+)"
            ))
        }
        _ => {
            return skip_or_fail(
                "node and npm are needed to build and test examples/vscode (apt-get install nodejs npm)",
            )
        }
    }
    let t = TestStore::new();
    let scratch = t.tmp.path().join("logs");
    std::fs::create_dir_all(&scratch).unwrap();
    let _lock = BuildLock::take();
    build(&scratch);

    let root: PathBuf = t.tmp.path().canonicalize().unwrap();
    let ws = root.join("shop");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join(".gitignore"), "*.log\n").unwrap();
    let file = ws.join("src/notes.md");
    std::fs::write(&file, INITIAL).unwrap();
    grant(&t, "editor.files,editor.content,editor.actions");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (mut daemon, lines) = start_daemon(&t, None, &[]);
    assert!(
        lines.iter().any(|l| l == "candor: source ingest: running"),
        "{lines:?}"
    );
    let socket = t.paths.data_dir.join("ingest.sock");
    assert!(socket.exists(), "no ingest socket at {}", socket.display());

    let report = scratch.join("report.json");
    let mut node = Command::new("node");
    node.current_dir(EXT)
        .args([
            "--test",
            "--test-reporter=tap",
            "out/test/edits.test.js",
            "out/test/client.test.js",
        ])
        .env("CANDOR_INGEST_SOCKET", &socket)
        .env("CANDOR_TEST_FILE", &file)
        .env("CANDOR_TEST_IGNORED", ws.join("debug.log"))
        .env("CANDOR_TEST_REPORT", &report)
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("NODE_OPTIONS");
    let out = run_for(node, Duration::from_secs(300), &scratch, "node-test");
    let said = text(&out);
    let status: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
    t.candor_ok(&["stop"]);
    exited(&mut daemon);
    assert!(out.status.success(), "the node tests failed:\n{said}");
    for line in ["# fail 0", "# skipped 0", "# cancelled 0", "# todo 0"] {
        assert!(
            said.lines().any(|l| l.trim() == line),
            "no `{line}`: every node test must run here:\n{said}"
        );
    }

    // What the client saw recorded, by kind.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let recorded = report["recorded"].as_object().unwrap();
    let sent_ok: u64 = recorded.values().map(|v| v.as_u64().unwrap()).sum();
    let ingest = &status["ingest"];
    assert_eq!(ingest["recorded"].as_u64(), Some(sent_ok), "{status}");
    assert_eq!(ingest["invalid"], 3, "{status}");
    assert_eq!(ingest["not_recorded"], 2, "{status}");
    assert_eq!(ingest["rate_limited"], 0, "{status}");

    let events: Vec<Value> = t
        .candor_ok(&["events", "--json", "--last", "100000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let all = serde_json::to_string(&events).unwrap();
    for never in ["never_recorded", "debug.log", "candor-vscode-test-outside"] {
        assert!(!all.contains(never), "{never} was recorded: {all}");
    }
    let mut editor: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("editor."))
        .collect();
    editor.sort_by_key(|e| e["id"].as_i64().unwrap());
    for kind in [
        "editor.focus",
        "editor.edit",
        "editor.cursor",
        "editor.selection",
        "editor.diagnostics",
        "editor.command",
    ] {
        let stored = editor.iter().filter(|e| e["kind"] == kind).count() as u64;
        assert_eq!(
            Some(stored),
            recorded.get(kind).and_then(Value::as_u64),
            "{kind}: the store and the replies disagree"
        );
    }
    for e in &editor {
        let f = &e["fields"];
        assert_eq!(f["workspace"], "shop", "{e}");
        assert_eq!(f["path"], "src/notes.md", "{e}");
        assert_eq!(f["editor"], "vscode", "{e}");
    }
    let focus = editor.iter().find(|e| e["kind"] == "editor.focus").unwrap();
    assert_eq!(focus["fields"]["language"], "markdown");
    let diag = editor
        .iter()
        .find(|e| e["kind"] == "editor.diagnostics")
        .unwrap();
    assert_eq!(
        [
            &diag["fields"]["errors"],
            &diag["fields"]["warnings"],
            &diag["fields"]["info"],
            &diag["fields"]["hints"]
        ],
        [2, 1, 0, 3]
    );
    let save = editor
        .iter()
        .find(|e| e["kind"] == "editor.command")
        .unwrap();
    assert_eq!(save["fields"]["command"], "workbench.action.files.save");
    let selection = editor
        .iter()
        .find(|e| e["kind"] == "editor.selection")
        .unwrap();
    assert!(selection["fields"]["end_line"].as_i64().unwrap() > 0);

    // The edits replay the document: initial bytes in, saved bytes out.
    let edits: Vec<&Value> = editor
        .iter()
        .copied()
        .filter(|e| e["kind"] == "editor.edit")
        .collect();
    assert!(edits.len() > 60, "{} edits", edits.len());
    let last = std::fs::read(&file).unwrap();
    assert_ne!(last, INITIAL.as_bytes());
    assert!(String::from_utf8(last.clone())
        .unwrap()
        .ends_with("\nfin ✓\n"));
    let replayed = replay(INITIAL.as_bytes(), &edits);
    assert!(
        replayed == last,
        "the recorded edits do not replay to the saved file:\n{:?}\n{:?}",
        String::from_utf8_lossy(&replayed),
        String::from_utf8_lossy(&last)
    );
    // Multi-byte text went through intact, in one of the edits.
    for s in ["é", "中文", "😀", "👍🏽"] {
        assert!(
            edits
                .iter()
                .any(|e| e["fields"]["text"].as_str().unwrap().contains(s)),
            "no edit inserted {s}"
        );
    }
}
