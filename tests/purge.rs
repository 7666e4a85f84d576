//! Erasure the engineer asks for: `candor purge` deletes exactly the range
//! asked for, leaves no residue in the file, and is recorded in the consent
//! ledger by range and counts, never content.

mod common;

use candor::consent::ledger;
use candor::store::query::format_ns;
use candor::store::writer::{self, SessionInfo};
use common::*;

fn fill(t: &TestStore, base: i64) {
    let (sink, handle) = writer::start(
        t.open(),
        &small_writer(),
        SessionInfo {
            source: "test".into(),
            synthetic: true,
        },
    )
    .unwrap();
    for i in 0..10 {
        let at = base + i * 3_600 * 1_000_000_000; // hourly, 10 hours
        sink.send(key_down(at, "k")).unwrap();
        sink.send(file_modify(
            at + 1,
            &format!("hour-{i}-plans-for-pelican.rs"),
            format!("v{i}").as_bytes(),
        ))
        .unwrap();
    }
    handle.shutdown().unwrap();
}

fn on_disk(t: &TestStore, needle: &str) -> bool {
    std::fs::read_dir(&t.paths.data_dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn purge_a_range_deletes_exactly_it_and_records_it_without_content() {
    let t = TestStore::new();
    // Whole microseconds, the precision `format_ns` prints.
    let base = (now_ns() - 12 * 3_600 * 1_000_000_000) / 1_000 * 1_000;
    fill(&t, base);
    assert!(on_disk(&t, "hour-3-plans-for-pelican"));
    let hour = 3_600 * 1_000_000_000;
    let since = format_ns(base + 2 * hour);
    let until = format_ns(base + 5 * hour);
    let out = t.candor_ok(&["purge", "--since", &since, "--until", &until]);
    assert!(out.contains("purged 6 events, 0 gaps and 3 blobs"), "{out}");

    let mut store = t.open();
    let left: Vec<i64> = candor::store::query::recent(&mut store, 100)
        .unwrap()
        .iter()
        .map(|e| (e.event.wall_ns - base) / hour)
        .collect();
    assert_eq!(left.len(), 14);
    assert!(left.iter().all(|h| !(2..5).contains(h)), "{left:?}");
    let blobs: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 7);

    // No residue of the purged rows in the database file or the WAL.
    for h in 2..5 {
        assert!(
            !on_disk(&t, &format!("hour-{h}-plans-for-pelican")),
            "hour {h} left residue"
        );
    }
    assert!(on_disk(&t, "hour-7-plans-for-pelican"));

    let entries = ledger::entries(store.conn()).unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.action, "purge");
    assert_eq!(e.data["range"]["since_ns"], base + 2 * hour);
    assert_eq!(e.data["range"]["until_ns"], base + 5 * hour);
    assert_eq!(e.data["events"], 6);
    let body = serde_json::to_string(e).unwrap();
    assert!(
        !body.contains("pelican"),
        "the ledger holds content: {body}"
    );
    let key = store.sealer(false).unwrap().ledger_key();
    let v = ledger::verify(store.conn(), Some(&key)).unwrap();
    assert!(v.anchor_checked);
}

#[test]
fn purge_all_empties_the_store_and_chains_in_the_ledger() {
    let t = TestStore::new();
    fill(&t, now_ns() - 12 * 3_600 * 1_000_000_000);
    write_synthetic(&t, 20_000);
    t.candor_ok(&["purge", "--since", "13h", "--until", "11h"]);
    let before = std::fs::metadata(t.db()).unwrap().len();
    let out = t.candor_ok(&["purge", "--all"]);
    assert!(out.contains("purged"), "{out}");
    let stats: serde_json::Value =
        serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    assert_eq!(stats["events"], 0);
    assert_eq!(stats["blobs"], 0);
    assert_eq!(stats["ledger_entries"], 2);
    assert!(
        std::fs::metadata(t.db()).unwrap().len() < before,
        "VACUUM did not shrink the file"
    );
    assert!(!on_disk(&t, "plans-for-pelican"));
    let mut store = t.open();
    let entries = ledger::entries(store.conn()).unwrap();
    assert_eq!(entries[1].data["range"], "all");
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    let key = store.sealer(false).unwrap().ledger_key();
    let v = ledger::verify(store.conn(), Some(&key)).unwrap();
    assert_eq!((v.entries, v.head.as_str()), (2, entries[1].hash.as_str()));
}

#[test]
fn the_ledger_refuses_updates_and_deletes() {
    let t = TestStore::new();
    t.candor_ok(&["purge", "--all"]);
    let store = t.open();
    for sql in [
        "UPDATE consent_ledger SET action = 'grant'",
        "DELETE FROM consent_ledger",
    ] {
        let err = store.conn().execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    // Bypassing the triggers is caught by the chain.
    store
        .conn()
        .execute_batch(
            "DROP TRIGGER consent_ledger_no_update;
             UPDATE consent_ledger SET body = replace(body, '\"all\"', '\"none\"');",
        )
        .unwrap();
    let err = ledger::verify(store.conn(), None).unwrap_err().to_string();
    assert!(err.contains("ledger entry 1 is broken"), "{err}");
}
