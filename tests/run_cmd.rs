//! `candor run` with real test runners: a small cargo crate with passing,
//! failing and ignored tests, pytest, and `npm test` running node's test
//! runner. The command's output passes through, its exit status becomes
//! ours, and the store gets a `run.test` or `run.build` with the counts the
//! runner printed. Without a daemon, or on the deny list, the command
//! still runs and the reason it was not recorded is said.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::*;
use serde_json::Value;

fn setup(t: &TestStore, config: &str) -> (std::path::PathBuf, Child) {
    let ws = t.tmp.path().join("proj");
    std::fs::create_dir_all(&ws).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::write(t.paths.config_dir.join("config.toml"), config).unwrap();
    grant(t, "shell.commands,editor.files");
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (d, _) = start_daemon(t, None, &[]);
    (ws.canonicalize().unwrap(), d)
}

/// `candor run ARGS` in `dir`.
fn candor_run(t: &TestStore, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin_path("candor"))
        .arg("--data-dir")
        .arg(&t.paths.data_dir)
        .arg("run")
        .args(args)
        .current_dir(dir)
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn runs(t: &TestStore) -> Vec<Value> {
    t.candor_ok(&["events", "--json", "--last", "100"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "run.test" || e["kind"] == "run.build")
        .collect()
}

fn stop(t: &TestStore, mut d: Child) {
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d).success());
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn cargo_test_is_recorded_with_its_counts_and_exit_status() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "");
    let krate = ws.join("calc");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\
         #[cfg(test)]\nmod tests {\n    use super::*;\n\
         #[test] fn adds() { assert_eq!(add(2, 2), 4); }\n\
         #[test] fn adds_negatives() { assert_eq!(add(-2, -2), -4); }\n\
         #[test] fn wrong() { assert_eq!(add(2, 2), 5); }\n\
         #[test] #[ignore] fn slow() {}\n}\n",
    )
    .unwrap();
    let out = candor_run(&t, &krate, &["--", "cargo", "test", "--offline", "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(101), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test result: FAILED"),
        "the output did not pass through: {stdout}"
    );
    assert!(
        err.contains("candor: recorded run.test (exit 101, 2 passed, 1 failed, 1 skipped)"),
        "{err}"
    );
    // A build, classified as such, from a subdirectory.
    let out = candor_run(
        &t,
        &krate,
        &["--", "cargo", "build", "--offline", "--quiet"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stop(&t, d);
    let r = runs(&t);
    assert_eq!(r.len(), 2, "{r:#?}");
    let f = &r[0]["fields"];
    assert_eq!(r[0]["kind"], "run.test");
    assert_eq!(f["command"], "cargo test --offline --quiet");
    assert_eq!(
        (&f["cwd"], &f["workspace"]),
        (&"calc".into(), &"proj".into())
    );
    assert_eq!((&f["exit"], &f["runner"]), (&101.into(), &"cargo".into()));
    assert_eq!(
        (&f["passed"], &f["failed"], &f["skipped"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert!(f["duration_ms"].as_i64().unwrap() > 0);
    assert_eq!(r[1]["kind"], "run.build");
    assert_eq!(r[1]["fields"]["exit"], 0);
    assert!(r[1]["fields"].get("passed").is_none());
}

#[test]
fn pytest_and_npm_test_counts_come_from_their_summaries() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "");
    let py = have("pytest", "--version");
    let node = have("node", "--version") && have("npm", "--version");
    if !py {
        skip_or_fail("pytest is not installed (apt-get install python3-pytest)");
    }
    if !node {
        skip_or_fail("node and npm are not installed (apt-get install nodejs npm)");
    }
    let mut expected = Vec::new();
    if py {
        let dir = ws.join("py");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("test_calc.py"),
            "import pytest\n\ndef test_a():\n    assert 1 + 1 == 2\n\ndef test_b():\n    assert 2 * 2 == 4\n\n\
             def test_c():\n    assert 1 == 2\n\n@pytest.mark.skip(reason='later')\ndef test_d():\n    pass\n",
        )
        .unwrap();
        let out = candor_run(&t, &dir, &["--", "pytest", "-q", "-p", "no:cacheprovider"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("2 passed, 1 failed, 1 skipped"),
            "{}",
            stderr(&out)
        );
        expected.push(("pytest", 1, 2, 1, 1));
    }
    if node {
        let dir = ws.join("js");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"calc","version":"1.0.0","private":true,"scripts":{"test":"node --test"}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("calc.test.js"),
            "const test = require('node:test');\nconst assert = require('node:assert');\n\
             test('adds', () => assert.strictEqual(1 + 1, 2));\n\
             test('fails', () => assert.strictEqual(1 + 1, 3));\n\
             test('later', { skip: true }, () => {});\n",
        )
        .unwrap();
        let out = candor_run(&t, &dir, &["--", "npm", "test", "--silent"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        expected.push(("npm", 1, 1, 1, 1));
    }
    stop(&t, d);
    let r = runs(&t);
    assert_eq!(r.len(), expected.len(), "{r:#?}");
    for (e, (runner, exit, passed, failed, skipped)) in r.iter().zip(expected) {
        let f = &e["fields"];
        assert_eq!(e["kind"], "run.test", "{e}");
        assert_eq!(f["runner"], runner, "{e}");
        assert_eq!(
            (&f["exit"], &f["passed"], &f["failed"], &f["skipped"]),
            (
                &exit.into(),
                &passed.into(),
                &failed.into(),
                &skipped.into()
            ),
            "{e}"
        );
    }
}

#[test]
fn exit_statuses_signals_stdin_and_refusals() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "[shell]\ndeny = [\"*password*\", \"secret-tool\"]\n");
    // The exit status and stdout pass through; stdin is the caller's.
    let out = Command::new(bin_path("candor"))
        .args([
            "--data-dir",
            t.paths.data_dir.to_str().unwrap(),
            "run",
            "--kind",
            "build",
            "--",
            "sh",
            "-c",
            "read x; echo got-$x; exit 7",
        ])
        .current_dir(&ws)
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"hello\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\n");
    // Killed by a signal: 128 + N, as a shell reports it.
    let out = candor_run(&t, &ws, &["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    // Ctrl+C's signal: recorded as 130, and `candor run` dies of it too, so
    // that a shell loop around it stops.
    let out = candor_run(&t, &ws, &["--", "sh", "-c", "kill -INT $$"]);
    assert_eq!(out.status.signal(), Some(2), "{:?}", out.status);
    assert!(
        stderr(&out).contains("recorded run.build (exit 130"),
        "{}",
        stderr(&out)
    );
    // A background process left holding the output is not waited for.
    let started = std::time::Instant::now();
    let out = candor_run(&t, &ws, &["--", "sh", "-c", "sleep 20 & echo started"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("started"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "candor run waited for the background process"
    );
    // On the deny list: run, but not recorded.
    let out = candor_run(&t, &ws, &["--", "sh", "-c", "echo my password; exit 0"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("not recorded: the command is on the shell deny list"));
    // A command that cannot start.
    let out = candor_run(&t, &ws, &["--", "no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("cannot run `no-such-program-xyz`"),
        "{}",
        stderr(&out)
    );
    // Nothing to run.
    assert!(!candor_run(&t, &ws, &[]).status.success());
    stop(&t, d);
    // With the daemon down the command runs and says it was not recorded.
    let out = candor_run(&t, &ws, &["--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("not recorded: candor is not running"),
        "{}",
        stderr(&out)
    );
    let r = runs(&t);
    let got: Vec<(String, i64)> = r
        .iter()
        .map(|e| {
            (
                e["fields"]["command"].as_str().unwrap().to_owned(),
                e["fields"]["exit"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("sh -c 'read x; echo got-$x; exit 7'".to_owned(), 7),
            ("sh -c 'kill -TERM $$'".to_owned(), 143),
            ("sh -c 'kill -INT $$'".to_owned(), 130),
            ("sh -c 'sleep 20 & echo started'".to_owned(), 0),
        ]
    );
    assert!(r.iter().all(|e| e["kind"] == "run.build"));
}
