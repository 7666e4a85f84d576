//! The control socket: status, pause (also timed), resume and stop from the
//! command line, the socket's rights, and a refusal for other users.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `candor start` without X: sources report unavailable, the daemon runs.
fn daemon(t: &TestStore) -> Child {
    start_daemon(t, None, &[]).0
}

fn status(t: &TestStore) -> Value {
    serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap()
}

fn actions(t: &TestStore) -> Vec<(String, String)> {
    t.candor_ok(&["consent", "log", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["data"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn status_without_a_daemon_says_so() {
    let t = TestStore::new();
    let out = t.candor(&["status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("candor is not running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_pause_resume_and_stop() {
    let t = TestStore::new();
    grant(&t, "keys.timing,mouse");
    let mut d = daemon(&t);
    let sock = t.paths.data_dir.join("control.sock");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let s = status(&t);
    assert_eq!(s["paused"], false);
    assert_eq!(s["sources"]["input"]["state"], "unavailable");
    assert!(
        s["sources"]["input"]["why"]
            .as_str()
            .unwrap()
            .contains("X display"),
        "{s}"
    );
    assert_eq!(s["sources"]["editor"]["state"], "off");
    assert!(
        s["sources"]["editor"]["why"]
            .as_str()
            .unwrap()
            .contains("editor.files"),
        "{s}"
    );
    assert_eq!(
        s["consent"]["scopes"],
        serde_json::json!(["capture.meta", "keys.timing", "mouse"])
    );
    let text = t.candor_ok(&["status"]);
    assert!(
        text.contains("capture    recording")
            && text
                .lines()
                .any(|l| l.starts_with("source     input:") && l.contains(" unavailable: ")),
        "{text}"
    );

    t.candor_ok(&["pause", "--reason", "standup"]);
    assert_eq!(status(&t)["paused"], true);
    assert!(t.candor_ok(&["status"]).contains("capture    paused"));
    t.candor_ok(&["resume"]);
    assert_eq!(status(&t)["paused"], false);

    t.candor_ok(&["pause", "--for", "1s"]);
    let s = status(&t);
    assert_eq!(s["paused"], true);
    assert!(s["paused_until"].is_string());
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(status(&t)["paused"], false, "the timed pause did not end");

    let out = t.candor_ok(&["stop"]);
    assert!(out.contains("stopping"), "{out}");
    assert!(exited(&mut d).success());
    assert!(!sock.exists(), "the socket was left behind");

    assert_eq!(
        actions(&t),
        vec![
            ("grant".into(), "".into()),
            ("pause".into(), "standup".into()),
            ("resume".into(), "cli".into()),
            ("pause".into(), "cli".into()),
            ("resume".into(), "pause timer ended".into()),
        ]
    );
    // The paused spans are gaps, and the audit is clean.
    let gaps: Value = serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    let paused = gaps["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["reason"] == "paused")
        .unwrap();
    assert_eq!(paused["spans"], 2);
    assert!(t.candor(&["audit"]).status.success());
}

#[test]
fn other_users_are_refused_even_if_they_reach_the_socket() {
    if !is_root() {
        return skip_or_fail("switching to another user needs root");
    }
    let t = TestStore::new();
    grant(&t, "mouse");
    let mut d = daemon(&t);
    let out = candor_as_nobody(&t, "control.sock", &["stop"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("refused: not the same user"), "{err}");
    assert!(
        d.try_wait().unwrap().is_none(),
        "another user stopped the daemon"
    );
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d).success());
}

#[test]
fn the_daemon_opens_no_network_socket() {
    let t = TestStore::new();
    grant(&t, "keys.timing,mouse");
    let mut d = daemon(&t);
    let unix: String = std::fs::read_to_string("/proc/net/unix").unwrap();
    let mut sockets = 0;
    for fd in std::fs::read_dir(format!("/proc/{}/fd", d.id())).unwrap() {
        let Ok(target) = std::fs::read_link(fd.unwrap().path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            sockets += 1;
            let is_unix = unix
                .lines()
                .any(|l| l.split_whitespace().nth(6) == Some(inode));
            assert!(is_unix, "socket {inode} is not a Unix socket");
        }
    }
    assert!(
        sockets >= 1,
        "the control socket was not found among the fds"
    );
    for table in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"] {
        let text =
            std::fs::read_to_string(format!("/proc/{}/net/{table}", d.id())).unwrap_or_default();
        // The table lists the whole network namespace; none of it may be ours.
        for line in text.lines().skip(1) {
            let inode = line.split_whitespace().nth(9).unwrap_or("");
            let fds = std::fs::read_dir(format!("/proc/{}/fd", d.id())).unwrap();
            for fd in fds {
                let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
                assert_ne!(
                    target.to_string_lossy(),
                    format!("socket:[{inode}]"),
                    "a {table} socket is open"
                );
            }
        }
    }
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d).success());
}
