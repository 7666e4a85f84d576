//! Audit for privacy reviewers: events checked against the consent history,
//! and every kind of tampering with the ledger found, in the database and in
//! an exported JSONL ledger.

mod common;

use candor::consent::ledger;
use candor::consent::{self};
use common::*;
use rusqlite::params;

fn audit(t: &TestStore, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    let out = t.candor(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    )
}

#[test]
fn a_clean_store_passes_with_a_summary_of_what_was_captured() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,mouse");
    let now = now_ns();
    capture(
        &t,
        vec![
            key_down(now, "a"),
            key_down(now + 1, "b"),
            mouse_move(now + 2, 5, 5),
        ],
    );
    write_synthetic(&t, 300);
    let (ok, out, err) = audit(&t, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("chain intact, anchor verified"), "{out}");
    assert!(out.contains("captured: key.down 2, mouse.move 1"), "{out}");
    assert!(out.contains("303 checked; 300 synthetic"), "{out}");
    assert!(out.contains("verdict    PASS"), "{out}");
    let (ok, json, _) = audit(&t, &["--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["history"][0]["method"], "cli");
    assert_eq!(v["violations"].as_array().unwrap().len(), 0);
}

#[test]
fn events_outside_consent_scope_pause_or_retention_are_found() {
    let t = TestStore::new();
    let now = now_ns();
    // Captured before any consent existed.
    capture(&t, vec![mouse_move(now - 3_600_000_000_000, 1, 1)]);
    grant(&t, "keys.timing,mouse");
    {
        let mut store = t.open();
        consent::record_pause(&mut store, true, "lunch", now_ns()).unwrap();
    }
    let paused_at = now_ns() + 1;
    {
        let mut store = t.open();
        consent::record_pause(&mut store, false, "back", now_ns() + 10).unwrap();
    }
    let after = now_ns() + 1_000;
    capture(
        &t,
        vec![
            mouse_move(paused_at, 2, 2),          // during the pause
            key_down(after, "secret"),            // typed text: keys.text not granted
            file_modify(after + 1, "a.rs", b"x"), // editor.files not granted
            key_down(now - 100 * DAY_NS, "o"),    // past keys' 90-day retention
        ],
    );
    let (ok, out, err) = audit(&t, &[]);
    assert!(!ok, "the audit passed: {out}");
    assert!(err.contains("the audit found problems"), "{err}");
    for (rule, kind) in [
        ("outside-consent", "mouse.move"),
        ("during-pause", "mouse.move"),
        ("scope-not-granted", "key.down"),
        ("scope-not-granted", "file.modify"),
        ("past-retention", "key.down"),
    ] {
        assert!(
            out.contains(&format!("VIOLATION  {rule}: 1 {kind} events")),
            "{rule} {kind} not found:\n{out}"
        );
    }
}

fn tamper(t: &TestStore, sql: &str) {
    let conn = rusqlite::Connection::open(t.db()).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS consent_ledger_no_update; DROP TRIGGER IF EXISTS consent_ledger_no_delete; {sql}"
    ))
    .unwrap();
}

/// A store with four ledger entries: grant, amend, pause, resume.
fn ledger_store() -> TestStore {
    let t = TestStore::new();
    grant(&t, "mouse");
    grant(&t, "mouse,keys.timing");
    let mut store = t.open();
    consent::record_pause(&mut store, true, "meeting", now_ns()).unwrap();
    consent::record_pause(&mut store, false, "back", now_ns()).unwrap();
    t
}

fn assert_broken(t: &TestStore, expect: &str) {
    let (ok, out, _) = audit(t, &[]);
    assert!(!ok, "tampering went unnoticed: {out}");
    assert!(
        out.contains("ledger     BROKEN") && out.contains(expect),
        "expected `{expect}`:\n{out}"
    );
}

#[test]
fn an_edited_entry_is_found_with_the_triggers_dropped() {
    let t = ledger_store();
    tamper(
        &t,
        "UPDATE consent_ledger SET body = replace(body, 'meeting', 'walk') WHERE seq = 3;",
    );
    assert_broken(&t, "ledger entry 3 is broken");
    let t = ledger_store();
    tamper(
        &t,
        "UPDATE consent_ledger SET ts_ns = ts_ns + 1 WHERE seq = 2;",
    );
    assert_broken(&t, "ledger entry 2 is broken");
}

#[test]
fn a_deleted_or_reordered_entry_is_found() {
    let t = ledger_store();
    tamper(&t, "DELETE FROM consent_ledger WHERE seq = 2;");
    assert_broken(&t, "ledger entry 3 is broken: expected entry 2 here");
    let t = ledger_store();
    tamper(
        &t,
        "UPDATE consent_ledger SET seq = 100 WHERE seq = 2; UPDATE consent_ledger SET seq = 2 WHERE seq = 3; \
         UPDATE consent_ledger SET seq = 3 WHERE seq = 100;",
    );
    assert_broken(&t, "ledger entry 2 is broken");
}

#[test]
fn a_truncated_ledger_is_found() {
    let t = ledger_store();
    tamper(&t, "DELETE FROM consent_ledger WHERE seq = 4;");
    assert_broken(&t, "entries were removed from the end");
}

#[test]
fn a_rehashed_ledger_is_found() {
    let t = ledger_store();
    // Edit entry 2 and recompute every hash after it, as a careful forger would.
    let conn = rusqlite::Connection::open(t.db()).unwrap();
    conn.execute_batch("DROP TRIGGER consent_ledger_no_update;")
        .unwrap();
    let entries = ledger::entries(&conn).unwrap();
    let mut prev = entries[0].hash.clone();
    for e in &entries[1..] {
        let mut data = e.data.clone();
        if e.seq == 2 {
            data["record"]["scopes"] = serde_json::json!(["capture.meta", "mouse"]);
        }
        let body = ledger::canonical(e.seq, e.ts_ns, &e.action, &data, &prev);
        let hash = ledger::leaf_hash(&body);
        conn.execute(
            "UPDATE consent_ledger SET body = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            params![body, prev, hash, e.seq],
        )
        .unwrap();
        prev = hash;
    }
    drop(conn);
    // The chain alone is consistent again; the anchor is not.
    assert!(ledger::verify(t.open().conn(), None).is_ok());
    assert_broken(&t, "re-hashed");
}

#[test]
fn an_exported_ledger_is_verified_without_the_store() {
    let t = ledger_store();
    let file = t.tmp.path().join("ledger.jsonl");
    std::fs::write(&file, t.candor_ok(&["consent", "log", "--json"])).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out, err) = audit(&t, &["--ledger", path]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("4 entries, chain intact") && out.contains("verdict    PASS"),
        "{out}"
    );
    let head = {
        let mut store = t.open();
        let key = store.sealer(false).unwrap().ledger_key();
        ledger::verify(store.conn(), Some(&key)).unwrap().head
    };
    let (ok, _, _) = audit(&t, &["--ledger", path, "--expect-head", &head]);
    assert!(ok);

    // One field changed in one line.
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen("\"meeting\"", "\"gym\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    let (ok, out, _) = audit(&t, &["--ledger", path]);
    assert!(!ok);
    assert!(out.contains("ledger entry 3 is broken"), "{out}");

    // The last line dropped: only a known head shows it.
    let truncated: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(&file, truncated.join("\n")).unwrap();
    let (ok, _, _) = audit(&t, &["--ledger", path]);
    assert!(ok, "a shorter chain is still a valid chain");
    let (ok, out, _) = audit(&t, &["--ledger", path, "--expect-head", &head]);
    assert!(!ok);
    assert!(out.contains("entries are missing from the end"), "{out}");

    // Not JSON at all.
    std::fs::write(&file, "{\"seq\": 1}\nnot json\n").unwrap();
    let (ok, _, err) = audit(&t, &["--ledger", path]);
    assert!(!ok);
    assert!(err.contains("line 1: not a ledger entry"), "{err}");
}
