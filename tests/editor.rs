//! The editor source, with real edits in a temporary git workspace: file
//! events with relative paths, snapshots, renames, deletes, a commit, and
//! ignored or denied files that must never show up.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn daemon(t: &TestStore) -> Child {
    let (child, lines) = start_daemon(t, None, &[]);
    let editor = lines
        .iter()
        .find(|l| l.starts_with("candor: source editor"));
    assert!(
        editor.is_some_and(|l| l.ends_with("editor: running")),
        "{lines:?}"
    );
    // Let the watcher settle its initial scan.
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn stop(t: &TestStore, mut d: Child) {
    t.candor_ok(&["stop"]);
    let started = Instant::now();
    while d.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pause() {
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn edits_renames_deletes_and_commits_are_recorded_and_secrets_never_are() {
    let t = TestStore::new();
    let ws = t.tmp.path().join("shop");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join(".gitignore"), "target/\n*.log\n").unwrap();
    std::fs::write(ws.join("src/old.rs"), "// old\n").unwrap();
    grant(&t, "editor.files,editor.content");
    let out = t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    assert!(out.contains("watching"), "{out}");
    assert!(t.candor_ok(&["watch", "list"]).contains("shop"));
    let d = daemon(&t);

    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    pause();
    std::fs::write(ws.join("src/main.rs"), "fn main() { println!(\"hi\"); }\n").unwrap();
    pause();
    std::fs::rename(ws.join("src/old.rs"), ws.join("src/legacy.rs")).unwrap();
    pause();
    std::fs::remove_file(ws.join("src/legacy.rs")).unwrap();
    // Never read, never recorded:
    std::fs::write(ws.join(".env"), "STRIPE_KEY=sk_live_never_in_candor\n").unwrap();
    std::fs::create_dir_all(ws.join("target")).unwrap();
    std::fs::write(ws.join("target/build.out"), "artifact never_in_candor\n").unwrap();
    std::fs::write(ws.join("debug.log"), "log never_in_candor\n").unwrap();
    std::fs::write(
        ws.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY----- never_in_candor\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.join(".ssh")).unwrap();
    std::fs::write(ws.join(".ssh/config"), "Host never_in_candor\n").unwrap();
    pause();
    git(&ws, &["add", "src/main.rs", ".gitignore"]);
    git(
        &ws,
        &[
            "commit",
            "-q",
            "-m",
            "Say hi\n\nA longer body explaining why.",
        ],
    );
    let head = git(&ws, &["rev-parse", "HEAD"]);
    pause();
    stop(&t, d);

    let events: Vec<Value> = t
        .candor_ok(&["events", "--json", "--content", "--last", "1000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains("never_in_candor"),
        "a denied or ignored file was recorded: {all}"
    );
    for name in [".env", "build.out", "debug.log", "id_ed25519", ".ssh"] {
        assert!(!all.contains(name), "{name} was recorded: {all}");
    }
    let summary: Vec<String> = events
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("file."))
        .map(|e| {
            let f = &e["fields"];
            match e["kind"].as_str().unwrap() {
                "file.rename" => format!(
                    "rename {} -> {}",
                    f["from"].as_str().unwrap(),
                    f["to"].as_str().unwrap()
                ),
                k => format!("{} {}", &k[5..], f["path"].as_str().unwrap()),
            }
        })
        .collect();
    for want in [
        "create src/main.rs",
        "modify src/main.rs",
        "rename src/old.rs -> src/legacy.rs",
        "delete src/legacy.rs",
    ] {
        assert!(
            summary.iter().any(|s| s == want),
            "missing `{want}` in {summary:?}"
        );
    }
    assert!(events
        .iter()
        .all(|e| e["fields"]["workspace"].is_null() || e["fields"]["workspace"] == "shop"));
    let snaps: Vec<&str> = events
        .iter()
        .filter_map(|e| e["content_text"].as_str())
        .collect();
    assert!(
        snaps.contains(&"fn main() { println!(\"hi\"); }\n"),
        "{snaps:?}"
    );
    let commit = events
        .iter()
        .find(|e| e["kind"] == "git.commit")
        .unwrap_or_else(|| panic!("no git.commit in {summary:?} {all}"));
    assert_eq!(commit["fields"]["hash"], head);
    assert_eq!(
        commit["fields"]["message"],
        "Say hi\n\nA longer body explaining why."
    );
    assert!(
        !all.contains("ada@example.org") && !all.contains("Ada Example"),
        "the author was recorded"
    );
}

#[test]
fn without_editor_content_no_snapshot_or_message_is_kept() {
    let t = TestStore::new();
    let ws = t.tmp.path().join("lib");
    std::fs::create_dir_all(&ws).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    grant(&t, "editor.files");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let d = daemon(&t);
    std::fs::write(ws.join("lib.rs"), "pub fn secret_sauce() {}\n").unwrap();
    pause();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "Private roadmap item"]);
    pause();
    stop(&t, d);
    let out = t.candor_ok(&["events", "--json", "--content"]);
    assert!(out.contains("\"path\":\"lib.rs\""), "{out}");
    assert!(out.contains("git.commit"), "{out}");
    assert!(
        !out.contains("secret_sauce") && !out.contains("Private roadmap"),
        "{out}"
    );
    let blobs: i64 = t
        .open()
        .conn()
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 0);
}

#[test]
fn a_missing_or_vanishing_root_is_reported_not_fatal() {
    let t = TestStore::new();
    let ws = t.tmp.path().join("gone");
    std::fs::create_dir_all(&ws).unwrap();
    grant(&t, "editor.files");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let d = daemon(&t);
    std::fs::remove_dir_all(&ws).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
    let why = status["sources"]["editor"]["why"].as_str().unwrap_or("");
    assert!(why.contains("watched root disappeared"), "{status}");
    stop(&t, d);
    // And a root missing at start is reported at once.
    let (child, lines) = start_daemon(&t, None, &[]);
    let line = lines
        .iter()
        .find(|l| l.starts_with("candor: source editor"))
        .unwrap();
    assert!(line.contains("no watched root exists"), "{line}");
    stop(&t, child);
    let err = stderr(&t.candor(&["watch", "remove", "/nowhere/at/all"]));
    assert!(err.contains("is not watched"), "{err}");
}

#[test]
fn an_amendment_that_grants_editor_files_starts_the_source_at_once() {
    let t = TestStore::new();
    let ws = t.tmp.path().join("later");
    std::fs::create_dir_all(&ws).unwrap();
    grant(&t, "keys.timing");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (d, lines) = start_daemon(&t, None, &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("candor: source editor: off")),
        "{lines:?}"
    );
    std::fs::write(ws.join("before.rs"), "// before consent\n").unwrap();
    pause();
    grant(&t, "keys.timing,editor.files");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
        if s["sources"]["editor"]["state"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the editor source did not start: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(ws.join("after.rs"), "// after consent\n").unwrap();
    pause();
    stop(&t, d);
    let out = t.candor_ok(&["events", "--json"]);
    assert!(out.contains("\"path\":\"after.rs\""), "{out}");
    assert!(
        !out.contains("before.rs"),
        "a file event from before the consent was stored: {out}"
    );
}
