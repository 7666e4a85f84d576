//! Reliability of the running daemon: a stop flushes what was just typed,
//! a SIGKILL loses at most the last batch window and leaves a store that
//! passes `PRAGMA integrity_check` and a `crashed` gap, and a full disk
//! (a small tmpfs) stalls the writer without corrupting anything, counts
//! what it drops, and recovers when space comes back.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::x11::{daemon, daemon_with, X};
use common::*;
use serde_json::Value;

fn typed(t: &TestStore) -> String {
    t.candor_ok(&["events", "--json", "--last", "100000"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "key.down")
        .filter_map(|e| e["fields"]["text"].as_str().map(str::to_owned))
        .collect()
}

fn integrity(t: &TestStore) -> String {
    let conn = rusqlite::Connection::open(t.db()).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sigterm_and_stop_flush_what_was_just_typed() {
    let Some(x) = X::start(false) else { return };
    for how in ["SIGTERM", "candor stop"] {
        let t = TestStore::new();
        grant(&t, "keys.timing,keys.text");
        let (mut d, _) = daemon(&t, &x);
        x.xdotool(&["type", "--delay", "20", "lastwords"]);
        // Just long enough for X to hand the keys over; far less than a
        // batch window would need to be safe without a flush.
        std::thread::sleep(Duration::from_millis(60));
        if how == "SIGTERM" {
            Command::new("kill")
                .arg(d.id().to_string())
                .status()
                .unwrap();
        } else {
            t.candor_ok(&["stop"]);
        }
        assert!(exited(&mut d).success(), "{how}: the daemon failed");
        assert_eq!(typed(&t), "lastwords", "{how} lost keys");
    }
}

#[test]
fn sigkill_loses_at_most_the_last_batch_and_is_recorded_as_a_crash() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let (mut d, _) = daemon(&t, &x);
    x.xdotool(&["type", "--delay", "20", "durable"]);
    // Longer than a batch window (100 ms): these keys are committed.
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill")
        .args(["-9", &d.id().to_string()])
        .status()
        .unwrap();
    exited(&mut d);
    assert_eq!(integrity(&t), "ok");
    assert_eq!(typed(&t), "durable");
    // The next start closes the dead session with a gap covering the unknown span.
    let (mut d2, _) = daemon(&t, &x);
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d2).success());
    let stats: Value = serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    let crashed = stats["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["reason"] == "crashed");
    assert!(crashed.is_some_and(|g| g["spans"] == 1), "{stats}");
    assert_eq!(stats["sessions"]["unclean"], 1);
    assert!(t.candor(&["audit"]).status.success());
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            skip_or_fail("mounting a small tmpfs needs root (mount -t tmpfs)");
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn status(t: &TestStore) -> Value {
    serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap()
}

fn free_bytes(dir: &std::path::Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

#[test]
fn a_full_disk_stalls_capture_without_corruption_and_it_recovers() {
    if !is_root() {
        return skip_or_fail("mounting a small tmpfs needs root");
    }
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    let Some(_fs) = Tmpfs::mount(&t.paths.data_dir, "3M") else {
        return;
    };
    grant(&t, "keys.timing,keys.text");
    // A small channel, so that a stall turns into drops quickly.
    let (mut d, _) = daemon_with(&t, &x, &[("CANDOR_WRITER_CHANNEL_CAPACITY", "256")]);
    // Fill the disk but for a little room, as another program might.
    let filler = t.paths.data_dir.join("filler");
    let room = 48 * 1024;
    let size = free_bytes(&t.paths.data_dir).saturating_sub(room);
    std::fs::write(&filler, vec![0u8; size as usize]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut chars = 0;
    let stalled = loop {
        let burst = "abcdefghij".repeat(30);
        x.xdotool(&["type", "--delay", "1", &burst]);
        chars += burst.len() as u64;
        let s = status(&t);
        if let (Some(why), true) = (
            s["writer"]["stalled"].as_str(),
            s["writer"]["dropped"].as_u64().unwrap_or(0) > 0,
        ) {
            break why.to_owned();
        }
        assert!(Instant::now() < deadline, "the disk never filled: {s}");
    };
    assert!(stalled.contains("full"), "{stalled}");
    assert!(t.candor_ok(&["status"]).contains("writer     STALLED"));

    // Space comes back: the writer resumes on its own.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&t)["writer"]["stalled"].is_string() {
        assert!(Instant::now() < deadline, "the writer did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Keys typed before are still arriving from X and queued: let them
    // settle, so that what follows measures the recovered writer, not the
    // backlog racing it.
    let mut last = u64::MAX;
    let mut quiet = 0;
    while quiet < 3 {
        let w = status(&t)["writer"].clone();
        let n = |k: &str| w[k].as_u64().unwrap_or(0);
        let settled = n("received") == n("written") + n("coalesced") + n("dropped");
        quiet = if settled && n("received") == last {
            quiet + 1
        } else {
            0
        };
        last = n("received");
        assert!(Instant::now() < deadline, "the writer never settled: {w}");
        std::thread::sleep(Duration::from_millis(100));
    }
    x.xdotool(&["type", "--delay", "20", "ok"]);
    chars += 2;
    std::thread::sleep(Duration::from_millis(300));
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d).success());

    assert_eq!(integrity(&t), "ok");
    assert!(
        typed(&t).ends_with("ok"),
        "capture did not resume after the disk had room"
    );
    // Every key sent went down and up: each of those 2 × chars events is
    // either in the store or counted as dropped.
    let (written, dropped, coalesced): (i64, i64, i64) = t
        .open()
        .conn()
        .query_row(
            "SELECT events, dropped, coalesced FROM sessions ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let dropped = dropped as u64;
    assert!(dropped > 0);
    assert_eq!(
        written as u64 + dropped + coalesced as u64,
        2 * chars,
        "events vanished"
    );
    let stats: Value = serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    let lost: u64 = stats["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["reason"] == "dropped")
        .map(|g| g["lost_events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        lost, dropped,
        "drops during the full disk are not all recorded as gaps"
    );
    assert!(t.candor(&["audit"]).status.success());
}
