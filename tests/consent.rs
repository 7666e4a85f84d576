//! Consent from the command line, the gate, and the daemon's reaction to a
//! change of consent: every refusal names its reason, and a revocation stops
//! a running daemon within a second.

mod common;

use std::process::Command;
use std::time::Duration;

use candor::consent::ledger::{self, Action};
use candor::consent::record::{ConsentRecord, Method};
use candor::registry::Scope;
use common::*;
use serde_json::Value;

fn status(t: &TestStore) -> Value {
    serde_json::from_str(&t.candor_ok(&["consent", "status", "--json"])).unwrap()
}

fn log(t: &TestStore) -> Vec<Value> {
    t.candor_ok(&["consent", "log", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn grant_checks_the_notice_hash_and_the_scope_names() {
    let t = TestStore::new();
    let out = t.candor(&[
        "consent",
        "grant",
        "--scopes",
        "keys.timing,mouse",
        "--accept-notice",
        &"0".repeat(64),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is not this build's notice") && err.contains(&notice_sha256()),
        "{err}"
    );

    let out = t.candor(&[
        "consent",
        "grant",
        "--scopes",
        "keys.timing,webcam",
        "--accept-notice",
        &notice_sha256(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`webcam` is not a scope"),
        "{}",
        stderr(&out)
    );

    let out = t.candor(&[
        "consent",
        "grant",
        "--scopes",
        "keys.text",
        "--accept-notice",
        &notice_sha256(),
    ]);
    assert!(
        stderr(&out).contains("keys.text needs keys.timing"),
        "{}",
        stderr(&out)
    );
    assert!(log(&t).is_empty(), "a refused grant left a ledger entry");

    grant(&t, "keys.timing,mouse");
    let s = status(&t);
    assert_eq!(s["state"], "active");
    let r = &s["record"];
    assert_eq!(r["method"], "cli");
    assert_eq!(r["notice_sha256"], notice_sha256());
    assert_eq!(
        r["scopes"],
        serde_json::json!(["capture.meta", "keys.timing", "mouse"])
    );
    assert_eq!(r["retention_days"]["mouse"], 90);
    assert!(r["record_id"].as_str().unwrap().len() == 36);
    let subject = r["subject"].as_str().unwrap();
    assert!(subject.starts_with("subj-"));
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    assert!(
        !subject.contains(&user),
        "the pseudonym contains the user name"
    );
    let expires = r["expires_ns"].as_i64().unwrap() - r["granted_ns"].as_i64().unwrap();
    assert_eq!(expires, 180 * DAY_NS, "default validity is 180 days");

    // A second grant amends the first and keeps the same pseudonym.
    grant(&t, "keys.timing,keys.text");
    let entries = log(&t);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["action"], "amend");
    assert_eq!(entries[1]["data"]["record"]["replaces"], r["record_id"]);
    assert_eq!(entries[1]["data"]["record"]["subject"], subject);
}

#[test]
fn the_gate_refuses_without_consent() {
    let t = TestStore::new();
    let out = t.candor(&["start"]);
    assert_eq!(out.status.code(), Some(3), "a gate refusal exits 3");
    let err = stderr(&out);
    assert!(err.contains("capture refused: no consent"), "{err}");
    assert_eq!(
        err.matches("no consent").count(),
        1,
        "the reason is repeated: {err}"
    );
    let sessions: i64 = t
        .open()
        .conn()
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, 0, "a refused start opened a capture session");
}

#[test]
fn the_gate_refuses_a_revoked_consent() {
    let t = TestStore::new();
    grant(&t, "mouse");
    t.candor_ok(&["consent", "revoke"]);
    let err = stderr(&t.candor(&["start"]));
    assert!(
        err.contains("capture refused: consent was revoked on"),
        "{err}"
    );
    assert_eq!(status(&t)["state"], "revoked");
    let out = t.candor(&["consent", "revoke"]);
    assert!(
        stderr(&out).contains("no active consent to revoke"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn consent_expires_and_the_expiry_is_recorded() {
    let t = TestStore::new();
    for short in ["0s", "59s"] {
        let out = grant_for(&t, "mouse", short);
        assert!(!out.status.success(), "--expires-in {short} was accepted");
        assert!(
            stderr(&out).contains("at least one minute"),
            "{}",
            stderr(&out)
        );
    }
    assert!(log(&t).is_empty(), "a refused grant left a ledger entry");
    assert!(grant_for(&TestStore::new(), "mouse", "1m").status.success());
    grant_expiring(&t, "mouse", 1);
    assert_eq!(status(&t)["state"], "active");
    std::thread::sleep(Duration::from_millis(1_100));
    let err = stderr(&t.candor(&["start"]));
    assert!(err.contains("capture refused: consent expired on"), "{err}");
    let entries = log(&t);
    assert_eq!(entries.last().unwrap()["action"], "expire");
    // Seen again, the expiry is not recorded twice.
    assert_eq!(status(&t)["state"], "expired");
    assert_eq!(log(&t).len(), entries.len());
    let out = grant_for(&t, "mouse", "181days");
    assert!(
        stderr(&out).contains("at most 180 days"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_changed_notice_halts_capture_until_consent_is_given_again() {
    let t = TestStore::new();
    // What an older binary left: consent to a notice with another hash.
    let old = "1".repeat(64);
    {
        let mut store = t.open();
        let key = store.sealer(true).unwrap().ledger_key();
        let record = ConsentRecord::new(
            "subj-old",
            &old,
            &[Scope::Mouse],
            Method::Screen,
            now_ns(),
            30 * DAY_NS,
            None,
        );
        ledger::append(
            store.conn(),
            &key,
            now_ns(),
            Action::Grant,
            serde_json::json!({ "record": record }),
        )
        .unwrap();
    }
    let err = stderr(&t.candor(&["start"]));
    assert!(
        err.contains("the notice changed since you consented"),
        "{err}"
    );
    assert!(
        err.contains(&old) && err.contains(&notice_sha256()),
        "old and new hashes: {err}"
    );
    let entries = log(&t);
    let last = entries.last().unwrap();
    assert_eq!(last["action"], "notice-changed");
    assert_eq!(last["data"]["old"], old);
    assert_eq!(last["data"]["new"], notice_sha256());
    // Consent to the new notice lets capture start again.
    grant(&t, "mouse");
    assert_eq!(status(&t)["state"], "active");
}

/// Starts `candor start` and waits until it says it is capturing.
fn start_daemon(t: &TestStore) -> std::process::Child {
    let (child, lines) = common::start_daemon(t, None, &[]);
    assert!(
        lines[0].starts_with("candor: capturing under consent"),
        "{lines:?}"
    );
    child
}

#[test]
fn revoking_stops_a_running_daemon_within_a_second() {
    let t = TestStore::new();
    grant(&t, "keys.timing,mouse");
    let mut daemon = start_daemon(&t);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon did not keep running"
    );
    t.candor_ok(&["consent", "revoke"]);
    let took = exit_within(&mut daemon, Duration::from_secs(5));
    let _ = daemon.kill();
    let took = took.expect("the daemon kept running after revocation");
    assert!(
        took < Duration::from_secs(1),
        "the daemon took {took:?} to stop"
    );
    // Its session was closed cleanly.
    let clean = count(
        &t,
        "SELECT clean_exit FROM sessions ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(clean, 1);
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let t = TestStore::new();
    grant(&t, "mouse");
    let mut daemon = start_daemon(&t);
    Command::new("kill")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(exit_within(&mut daemon, Duration::from_secs(5)).is_some());
    assert!(daemon.wait().unwrap().success());
    assert_eq!(
        count(&t, "SELECT count(*) FROM sessions WHERE ended_ns IS NULL"),
        0
    );
}

#[test]
fn revoke_with_purge_erases_what_was_captured() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    write_synthetic(&t, 500);
    let out = t.candor_ok(&["consent", "revoke", "--purge"]);
    assert!(out.contains("erased 500 events"), "{out}");
    let actions: Vec<String> = log(&t)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["grant", "revoke", "purge"]);
    let stats: Value = serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["events"], 0);
}

#[test]
fn a_running_daemon_stops_when_consent_expires_or_moves_to_another_notice() {
    let t = TestStore::new();
    grant_expiring(&t, "mouse", 2);
    let mut daemon = start_daemon(&t);
    let took = exit_within(&mut daemon, Duration::from_secs(6));
    let _ = daemon.kill();
    assert!(took.is_some(), "the daemon outlived its consent");

    // A newer build recorded consent to its own notice: this build stops,
    // and leaves that consent as it is.
    let t = TestStore::new();
    grant(&t, "mouse");
    let mut daemon = start_daemon(&t);
    {
        let mut store = t.open();
        let key = store.sealer(true).unwrap().ledger_key();
        let record = ConsentRecord::new(
            "subj-new",
            &"2".repeat(64),
            &[Scope::Mouse],
            Method::Screen,
            now_ns(),
            30 * DAY_NS,
            None,
        );
        ledger::append(
            store.conn(),
            &key,
            now_ns(),
            Action::Amend,
            serde_json::json!({ "record": record }),
        )
        .unwrap();
    }
    let took = exit_within(&mut daemon, Duration::from_secs(5));
    let _ = daemon.kill();
    assert!(took.expect("the daemon kept capturing under another notice") < Duration::from_secs(1));
    let actions: Vec<String> = log(&t)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        vec!["grant", "amend"],
        "the daemon wrote to the ledger"
    );
}
