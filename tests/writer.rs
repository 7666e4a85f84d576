//! The single writer: events round-trip with sealed fields and blobs,
//! highly sensitive content never reaches the disk in clear, a full channel
//! becomes counted gaps rather than silent loss, crashes and retention are
//! handled, and a wrong or missing key is an error rather than garbage.

mod common;

use candor::config::{KeyStoreChoice, WriterConfig};
use candor::event::{Event, Value};
use candor::registry::Kind;
use candor::store::writer::{self, load_blob, Recorded, SessionInfo};
use candor::store::{query, Store, StoreError};
use common::*;
use rusqlite::Connection;

fn info() -> SessionInfo {
    SessionInfo {
        source: "test".into(),
        synthetic: true,
    }
}

#[test]
fn events_round_trip_with_sealed_fields_and_blobs() {
    let t = TestStore::new();
    let now = now_ns();
    let focus = Event::new(Kind::WindowFocus, at(now + 3))
        .with("app", "code")
        .and_then(|e| e.with("title", "salary-review.xlsx - LibreOffice"))
        .unwrap();
    let commit = Event::new(Kind::GitCommit, at(now + 4))
        .with("workspace", "ws")
        .and_then(|e| e.with("hash", "0123456789abcdef0123456789abcdef01234567"))
        .and_then(|e| e.with("message", "Rotate the prod token zebra-quokka-42"))
        .unwrap();
    let content = b"let password_hint = \"violet-tangerine-99\";\n".repeat(50);
    let sent = vec![
        key_down(now + 1, "q"),
        mouse_move(now + 2, 1919, 1079),
        focus,
        commit,
        file_modify(now + 5, "src/main.rs", &content),
        file_modify(now + 6, "src/copy.rs", &content),
    ];
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    for e in &sent {
        assert_eq!(sink.record(e.clone()).unwrap(), Recorded::Queued);
    }
    let stats = handle.shutdown().unwrap();
    assert_eq!((stats.received, stats.written, stats.dropped), (6, 6, 0));

    let mut store = t.open();
    let back = query::recent(&mut store, 100).unwrap();
    assert_eq!(back.len(), sent.len());
    for (b, s) in back.iter().zip(&sent) {
        assert_eq!(b.event.kind, s.kind);
        assert_eq!(b.event.wall_ns, s.wall_ns);
        for (decl, (got, want)) in s
            .kind
            .fields()
            .iter()
            .zip(b.event.values().iter().zip(s.values()))
        {
            match (got, want) {
                (Some(Value::BlobRef { id, size }), Some(Value::Blob(bytes))) => {
                    assert_eq!(*size as usize, bytes.len());
                    assert_eq!(&load_blob(&mut store, *id).unwrap(), bytes);
                }
                _ => assert_eq!(got, want, "{}.{}", s.kind, decl.name),
            }
        }
    }
    // Equal contents are stored once.
    assert_eq!(count(&t, "SELECT count(*) FROM blobs"), 1);
    // Stats count each scope, including fields a narrower scope covers.
    let stats: serde_json::Value =
        serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    let scope = |name: &str| {
        stats["by_scope"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == name)
            .map(|s| s["events"].as_u64().unwrap())
            .unwrap()
    };
    let by_scope: Vec<u64> = [
        "keys.timing",
        "keys.text",
        "mouse",
        "window.apps",
        "window.titles",
        "editor.files",
        "editor.content",
    ]
    .iter()
    .map(|s| scope(s))
    .collect();
    assert_eq!(by_scope, vec![1, 1, 1, 1, 1, 3, 3]);
    // The owner sees the sealed text through `candor events`.
    let out = t.candor_ok(&["events", "--json"]);
    assert!(
        out.contains("zebra-quokka-42") && out.contains("salary-review"),
        "{out}"
    );
}

#[test]
fn sealed_content_never_reaches_the_disk_in_clear() {
    let t = TestStore::new();
    let now = now_ns();
    let secrets = [
        "tangerine-wombat-7",
        "Quarterly layoffs draft",
        "Remove the hunter2 backdoor",
    ];
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    sink.send(key_down(now, secrets[0])).unwrap();
    sink.send(
        Event::new(Kind::WindowFocus, at(now + 1))
            .with("app", "code")
            .and_then(|e| e.with("title", secrets[1]))
            .unwrap(),
    )
    .unwrap();
    sink.send(
        Event::new(Kind::GitCommit, at(now + 2))
            .with("workspace", "ws")
            .and_then(|e| e.with("hash", "ab"))
            .and_then(|e| e.with("message", secrets[2]))
            .unwrap(),
    )
    .unwrap();
    let file = "fn main() { let marmalade_giraffe = 1; }\n".repeat(3);
    sink.send(file_modify(now + 3, "a.rs", file.as_bytes()))
        .unwrap();
    sink.flush().unwrap();
    // Look at every byte on disk, WAL included, while and after writing.
    let scan = |label: &str| {
        for entry in std::fs::read_dir(&t.paths.data_dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for s in secrets.iter().chain(["marmalade_giraffe"].iter()) {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s:?} found in clear ({label})"
                );
            }
        }
    };
    scan("while writing");
    handle.shutdown().unwrap();
    scan("after shutdown");
    // The public part is still there, readable without the key.
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM events WHERE kind = 1 AND data IS NOT NULL"
        ),
        1
    );
}

#[test]
fn a_full_channel_becomes_counted_gaps_and_nothing_vanishes() {
    let t = TestStore::new();
    let config = WriterConfig {
        channel_capacity: 8,
        batch_max: 4,
        batch_interval: std::time::Duration::from_millis(5),
        ..WriterConfig::default()
    };
    let (sink, handle) = writer::start(t.open(), &config, info()).unwrap();
    // Another connection holds the write lock, as a long purge would: the
    // writer's commits wait, its channel fills, and sources must not block.
    let blocker = Connection::open(t.db()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let now = now_ns();
    let mut outcomes = std::collections::HashMap::new();
    let started = std::time::Instant::now();
    for i in 0..300 {
        let e = if i % 3 == 0 {
            mouse_move(now + i, i, i)
        } else {
            key_down(now + i, "x")
        };
        *outcomes.entry(sink.record(e).unwrap()).or_insert(0u64) += 1;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "recording blocked behind the stalled writer"
    );
    let dropped = outcomes.get(&Recorded::Dropped).copied().unwrap_or(0);
    assert!(dropped > 0, "nothing was dropped: {outcomes:?}");
    assert!(
        outcomes.get(&Recorded::Coalesced).copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    let stats = handle.shutdown().unwrap();

    assert_eq!(stats.received, 300);
    assert_eq!(stats.dropped, dropped);
    assert_eq!(
        stats.written + stats.coalesced + stats.dropped,
        stats.received,
        "an event vanished: {stats:?}"
    );
    let stored = count(&t, "SELECT count(*) FROM events");
    assert_eq!(stored as u64, stats.written);
    let gap_count = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'dropped'",
    );
    assert_eq!(gap_count as u64, dropped, "drops not all recorded as gaps");
    let lost_kind: String = t
        .open()
        .conn()
        .query_row(
            "SELECT lost_kind FROM gaps WHERE reason = 'dropped' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lost_kind, "key.down");
    let session_dropped = count(&t, "SELECT dropped FROM sessions");
    assert_eq!(session_dropped as u64, dropped);
    // And the engineer sees it.
    let out = t.candor_ok(&["stats"]);
    assert!(
        out.lines().any(|l| l.starts_with("  dropped")
            && l.split_whitespace().nth(2) == Some(candor::units::count(dropped).as_str())),
        "{out}"
    );
}

#[test]
fn gap_events_go_to_the_gaps_table() {
    let t = TestStore::new();
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    let gap = Event::new(Kind::CaptureGap, at(1_000))
        .with("reason", "paused")
        .and_then(|e| e.with("duration_ns", 5_000))
        .and_then(|e| e.with("count", 0))
        .unwrap();
    sink.record(gap).unwrap();
    handle.shutdown().unwrap();
    let (start, end, reason): (i64, i64, String) = t
        .open()
        .conn()
        .query_row("SELECT start_ns, end_ns, reason FROM gaps", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((start, end, reason.as_str()), (1_000, 6_000, "paused"));
    assert_eq!(count(&t, "SELECT count(*) FROM events"), 0);
}

#[test]
fn one_writer_per_store() {
    let t = TestStore::new();
    let (_sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    match writer::start(t.open(), &small_writer(), info()) {
        Err(StoreError::Locked { holder }) => {
            assert!(holder.contains(&std::process::id().to_string()))
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second writer started"),
    }
    handle.shutdown().unwrap();
    let (_s, h) =
        writer::start(t.open(), &small_writer(), info()).expect("lock released on shutdown");
    h.shutdown().unwrap();
}

#[test]
fn a_crashed_session_is_closed_with_a_gap() {
    let t = TestStore::new();
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    sink.send(mouse_move(now_ns(), 1, 1)).unwrap();
    handle.shutdown().unwrap();
    // What a killed daemon leaves behind: a session never closed.
    t.open()
        .conn()
        .execute(
            "INSERT INTO sessions(started_ns, last_ns, source, tool_version) VALUES (?1, ?2, 'daemon', 'x')",
            [now_ns() - 60_000_000_000, now_ns() - 30_000_000_000],
        )
        .unwrap();
    let (_s, h) = writer::start(t.open(), &small_writer(), info()).unwrap();
    h.shutdown().unwrap();
    assert_eq!(
        count(&t, "SELECT count(*) FROM gaps WHERE reason = 'crashed'"),
        1
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM sessions WHERE ended_ns IS NULL"),
        0
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM sessions WHERE clean_exit = 0"),
        1
    );
    let out = t.candor_ok(&["stats"]);
    assert!(out.contains("1 ended without a clean shutdown"), "{out}");
}

#[test]
fn retention_deletes_each_kind_after_its_own_time() {
    let t = TestStore::new();
    let now = now_ns();
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    sink.send(key_down(now - 100 * DAY_NS, "old")).unwrap(); // keys: 90 days
    sink.send(key_down(now - 10 * DAY_NS, "new")).unwrap();
    sink.send(mouse_move(now - 40 * DAY_NS, 1, 1)).unwrap(); // moves: 30 days
    sink.send(file_modify(now - 100 * DAY_NS, "kept.rs", b"kept"))
        .unwrap(); // files: 180 days
    sink.send(file_modify(now - 200 * DAY_NS, "gone.rs", b"gone"))
        .unwrap();
    handle.shutdown().unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM events"), 5);
    assert_eq!(count(&t, "SELECT count(*) FROM blobs"), 2);
    // Retention runs when a writer starts.
    let (_s, h) = writer::start(t.open(), &small_writer(), info()).unwrap();
    h.shutdown().unwrap();
    let mut store = t.open();
    let left: Vec<String> = query::recent(&mut store, 10)
        .unwrap()
        .iter()
        .map(|e| e.event.to_string_fields())
        .collect();
    assert_eq!(left, vec!["file.modify path=kept.rs", "key.down text=new"]);
    assert_eq!(
        count(&t, "SELECT count(*) FROM blobs"),
        1,
        "the expired file's blob is gone"
    );
}

trait Brief {
    fn to_string_fields(&self) -> String;
}

impl Brief for Event {
    fn to_string_fields(&self) -> String {
        let detail = match (self.get("path"), self.get("text")) {
            (Some(Value::Str(p)), _) => format!("path={p}"),
            (_, Some(Value::Str(t))) => format!("text={t}"),
            _ => String::new(),
        };
        format!("{} {detail}", self.kind)
    }
}

#[test]
fn a_wrong_or_missing_key_is_an_error_not_garbage() {
    let t = TestStore::new();
    let (sink, handle) = writer::start(t.open(), &small_writer(), info()).unwrap();
    sink.send(key_down(now_ns(), "s")).unwrap();
    handle.shutdown().unwrap();
    let key = std::fs::read(t.paths.key_file()).unwrap();

    std::fs::remove_file(t.paths.key_file()).unwrap();
    let err = stderr(&t.candor(&["events"]));
    assert!(err.contains("the store key is missing"), "{err}");
    // A new writer must not mint a fresh key for a store that has one.
    match writer::start(t.open(), &small_writer(), info()) {
        Err(e) => assert!(e.to_string().contains("key is missing"), "{e}"),
        Ok(_) => panic!("the writer minted a new key for a store that had one"),
    }
    assert!(!t.paths.key_file().exists());

    let other = TestStore::new();
    let (_s, h) = writer::start(other.open(), &small_writer(), info()).unwrap();
    h.shutdown().unwrap();
    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::copy(other.paths.key_file(), t.paths.key_file()).unwrap();
    let err = stderr(&t.candor(&["events"]));
    assert!(err.contains("does not belong to this store"), "{err}");

    std::fs::write(t.paths.key_file(), key).unwrap();
    let out = t.candor_ok(&["events", "--json"]);
    assert!(out.contains("\"text\":\"s\""), "{out}");
    let _ = Store::open(&t.paths, KeyStoreChoice::File).unwrap();
}

/// A writer on a store capped at 256 KiB, typed into (paced so the writer
/// keeps up) until the store is full and drops have begun. Returns the sink,
/// the handle, the stall reason and the next timestamp offset.
fn full_store(t: &TestStore) -> (writer::EventSink, writer::WriterHandle, String, i64) {
    t.candor_ok(&["stats"]);
    let config = WriterConfig {
        channel_capacity: 256,
        batch_max: 64,
        batch_interval: std::time::Duration::from_millis(5),
        max_store_size: Some(256 * 1024),
    };
    let (sink, handle) = writer::start(t.open(), &config, info()).unwrap();
    let now = now_ns();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut i = 0;
    loop {
        sink.record(key_down(now + i, "z")).unwrap();
        i += 1;
        let s = sink.stats();
        if let (true, Some(why)) = (s.dropped > 0, &s.stalled) {
            return (sink, handle, why.clone(), now + i);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never filled: {s:?}"
        );
        if i % 32 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

#[test]
fn a_full_store_stalls_counts_what_it_drops_and_recovers_after_a_purge() {
    let t = TestStore::new();
    let (sink, handle, stalled, next) = full_store(&t);
    assert!(stalled.contains("full"), "{stalled}");
    let dropped_during_stall = sink.stats().dropped;
    // Drop gaps already committed (from bursts before the stall, if the
    // machine was slow) are erased by the purge below; count them first.
    // While stalled nothing commits, so this number holds still.
    let gaps_before_purge = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'dropped'",
    );

    // The engineer frees space; the writer resumes on its own.
    let mut store = t.open();
    candor::store::purge::purge(&mut store, candor::store::purge::Range::ALL, now_ns()).unwrap();
    drop(store);
    sink.flush().unwrap();
    assert_eq!(sink.stats().stalled, None, "still stalled after the purge");
    sink.record(key_down(next, "after")).unwrap();
    let stats = handle.shutdown().unwrap();
    assert!(stats.dropped >= dropped_during_stall);
    assert_eq!(
        stats.written + stats.coalesced + stats.dropped,
        stats.received,
        "{stats:?}"
    );
    let gap_count = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'dropped'",
    );
    assert_eq!(
        (gaps_before_purge + gap_count) as u64,
        stats.dropped,
        "drops during the stall are not all in gaps"
    );
    let mut store = t.open();
    let last = query::recent(&mut store, 1).unwrap();
    assert_eq!(last[0].event.get("text"), Some(&Value::from("after")));
}

#[test]
fn shutdown_with_a_full_store_reports_what_it_could_not_write_instead_of_hanging() {
    let t = TestStore::new();
    let (_sink, handle, _, _) = full_store(&t);
    let started = std::time::Instant::now();
    let err = handle.shutdown().expect_err("a full store cannot flush");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "shutdown took {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("events could not be written before shutdown") && msg.contains("full"),
        "{msg}"
    );
    // The unfinished session is visible as such at the next start.
    assert_eq!(
        count(&t, "SELECT count(*) FROM sessions WHERE ended_ns IS NULL"),
        1
    );
}
