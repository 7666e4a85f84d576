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

/// Whether `needle` is anywhere in the bytes of any file under `dir`.
fn found_under(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for p in candor::export::verify::list_files(dir).unwrap() {
        let bytes = std::fs::read(dir.join(&p)).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(p);
        }
    }
    hits
}

#[test]
fn links_out_of_the_workspace_are_never_read_or_exported() {
    use std::os::unix::fs::symlink;
    let t = TestStore::new();
    // Secrets in a home directory beside the workspace, each marked with a
    // word that must never reach the store or an export.
    let home = t.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::create_dir_all(home.join("private")).unwrap();
    std::fs::write(
        home.join(".pgpass"),
        "db.internal:5432:*:app:wombat_pgpass_4471\n",
    )
    .unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[default]\naws_secret_access_key = wombat_aws_8812\n",
    )
    .unwrap();
    std::fs::write(home.join("private/plan.txt"), "wombat_dir_2290\n").unwrap();
    std::fs::write(home.join("later.txt"), "wombat_retarget_5531\n").unwrap();
    std::fs::write(home.join("hard.txt"), "wombat_hard_7310\n").unwrap();

    let ws = t.tmp.path().join("shop");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("inner.txt"), "inner_marker_ok\n").unwrap();
    // A linked directory there before the watcher starts.
    std::fs::create_dir_all(home.join("projects")).unwrap();
    symlink(home.join("projects"), ws.join("projects")).unwrap();
    grant(&t, "editor.files,editor.content");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let d = daemon(&t);

    // A link to a file outside (absolute), another (relative), a linked
    // directory outside, a chain ending outside, a link inside the root.
    symlink(home.join(".pgpass"), ws.join("notes.md")).unwrap();
    symlink("../../home/.aws/credentials", ws.join("src/settings.txt")).unwrap();
    symlink(home.join("private"), ws.join("linked")).unwrap();
    symlink(home.join(".pgpass"), ws.join("chain2")).unwrap();
    symlink("chain2", ws.join("chain1.txt")).unwrap();
    symlink("inner.txt", ws.join("alias.txt")).unwrap();
    // A second name, inside the workspace, of a file outside it.
    std::fs::hard_link(home.join("hard.txt"), ws.join("hard.md")).unwrap();
    // A link inside the root, snapshotted once, then retargeted outside.
    symlink("inner.txt", ws.join("current.txt")).unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    pause();
    symlink(home.join("later.txt"), ws.join("current.tmp")).unwrap();
    std::fs::rename(ws.join("current.tmp"), ws.join("current.txt")).unwrap();
    // Changes seen through the links: the outside files change, a file is
    // added in the linked directory.
    std::fs::write(home.join("private/more.txt"), "wombat_dir_more\n").unwrap();
    std::fs::write(home.join("projects/todo.txt"), "wombat_projects\n").unwrap();
    std::fs::write(home.join(".pgpass"), "db:5432:*:app:wombat_pgpass_again\n").unwrap();
    std::fs::write(ws.join("hard.md"), "wombat_hard_again\n").unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() { run(); }\n").unwrap();
    pause();
    stop(&t, d);

    let out = t.candor_ok(&["events", "--json", "--content", "--last", "1000"]);
    assert!(
        !out.contains("wombat"),
        "a link's target was recorded: {out}"
    );
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<String> = events
        .iter()
        .filter_map(|e| e["fields"]["path"].as_str().map(str::to_owned))
        .collect();
    // The links themselves are recorded by their own names, never with
    // content; nothing is recorded from inside the linked directory.
    for link in ["notes.md", "src/settings.txt", "chain1.txt", "hard.md"] {
        assert!(
            paths.iter().any(|p| p == link),
            "no event for {link}: {out}"
        );
    }
    for never in ["plan.txt", "more.txt", "todo.txt"] {
        assert!(!out.contains(never), "{never} was recorded: {out}");
    }
    // A link names its target only when that is inside and recordable.
    let links: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| {
            let f = &e["fields"];
            Some((
                f["path"].as_str()?.to_owned(),
                f["link"].as_str()?.to_owned(),
            ))
        })
        .collect();
    for (path, link) in [
        ("notes.md", "hidden"),
        ("src/settings.txt", "hidden"),
        ("chain1.txt", "hidden"),
        ("alias.txt", "inner.txt"),
        ("current.txt", "inner.txt"),
        ("current.txt", "hidden"),
    ] {
        assert!(
            links.iter().any(|(p, l)| p == path && l == link),
            "no {path} -> {link} in {links:?}"
        );
    }
    assert!(
        !links
            .iter()
            .any(|(p, _)| p == "hard.md" || p == "src/main.rs"),
        "{links:?}"
    );
    for e in &events {
        let p = e["fields"]["path"].as_str().unwrap_or("");
        if [
            "notes.md",
            "src/settings.txt",
            "chain1.txt",
            "chain2",
            "hard.md",
            "alias.txt",
            "current.txt",
        ]
        .contains(&p)
        {
            assert!(e["content_text"].is_null(), "{p} has content: {e}");
        }
    }
    assert!(
        out.contains("fn main() { run(); }"),
        "ordinary files are still snapshotted: {out}"
    );
    // Each withheld snapshot is an `excluded` gap, not a silence.
    let withheld = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'excluded' AND lost_kind LIKE 'file.%.content'",
    );
    assert!(
        withheld >= 5,
        "{withheld} withheld snapshots recorded as gaps"
    );

    // And the export, in every format, carries none of it, and verifies.
    let dir = t.tmp.path().join("export");
    let o = t.run(
        "candor-export",
        &["episodes", "--quiet", "--out", dir.to_str().unwrap()],
    );
    assert!(o.status.success(), "export: {}", stderr(&o));
    let v = t.run("candor-export", &["verify", dir.to_str().unwrap()]);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    let hits = found_under(&dir, "wombat");
    assert!(hits.is_empty(), "a link's target was exported in {hits:?}");
    // The export does carry snapshots, so the search above could fail.
    assert!(
        !found_under(&dir, "run();").is_empty(),
        "no snapshot was exported"
    );
}

/// Sends one JSON line to the daemon's ingest socket; returns the reply.
fn ingest(t: &TestStore, msg: &Value) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(t.paths.data_dir.join("ingest.sock"))
        .expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{msg}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn plugins_are_held_to_the_same_links_and_ignore_rules() {
    use std::os::unix::fs::symlink;
    let t = TestStore::new();
    // The watched root is a directory of a repository whose rules, above
    // the root, ignore `*.local.yml`.
    let repo = t.tmp.path().join("mono");
    let ws = repo.join("svc");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".gitignore"), "*.local.yml\n").unwrap();
    let home = t.tmp.path().join("home");
    std::fs::create_dir_all(home.join("private")).unwrap();
    std::fs::write(home.join(".pgpass"), "wombat\n").unwrap();
    std::fs::hard_link(home.join(".pgpass"), ws.join("notes.md")).unwrap();
    symlink(home.join(".pgpass"), ws.join("src/settings.txt")).unwrap();
    symlink(home.join("private"), ws.join("linked")).unwrap();
    grant(&t, "editor.files,editor.content");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let d = daemon(&t);
    let ws = ws.canonicalize().unwrap();
    let edit = |rel: &str, text: &str| {
        serde_json::json!({"v":1,"kind":"editor.edit","ts":now_ns() / 1_000_000,
            "file":ws.join(rel),"offset":0,"deleted":0,"text":text})
    };
    for (rel, reason) in [
        ("conf/db.local.yml", "ignored"),
        ("notes.md", "hard-link"),
        ("src/settings.txt", "outside"),
        ("linked/plan.txt", "outside"),
    ] {
        let r = ingest(&t, &edit(rel, "wombat_typed"));
        assert_eq!(r["not_recorded"], reason, "{rel}: {r}");
    }
    assert_eq!(ingest(&t, &edit("src/main.rs", "fn main"))["ok"], true);
    stop(&t, d);
    let out = t.candor_ok(&["events", "--json", "--content"]);
    assert!(!out.contains("wombat"), "{out}");
    assert!(out.contains("fn main"), "{out}");
}
