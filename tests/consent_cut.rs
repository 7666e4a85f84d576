//! Consent as a hard cut: nothing stamped after a revocation, after an
//! expiry, or (for the withdrawn fields) after a narrowing amendment is
//! written, even when it was already queued; and `candor consent` tells a
//! running daemon at once instead of leaving it to the ledger poll. The
//! typing test needs Xvfb and xdotool, and skips (loudly) without them
//! except under CI.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candor::consent::{self, cut::ConsentCut};
use candor::event::Event;
use candor::registry::Kind;
use candor::store::writer::{self, SessionInfo};
use common::x11::{daemon, X};
use common::*;
use serde_json::Value;

fn events(t: &TestStore) -> Vec<Value> {
    t.candor_ok(&["events", "--json", "--last", "100000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The time of the last ledger entry with `action`.
fn ledger_ts(t: &TestStore, action: &str) -> i64 {
    count(
        t,
        &format!("SELECT max(ts_ns) FROM consent_ledger WHERE action = '{action}'"),
    )
}

fn key_events(t: &TestStore, cond: &str) -> i64 {
    count(
        t,
        &format!(
            "SELECT count(*) FROM events WHERE kind IN ({}, {}) AND {cond}",
            Kind::KeyDown.code(),
            Kind::KeyUp.code()
        ),
    )
}

/// One xdotool process typing `text`: about 14 ms a key, at this delay.
fn typist(x: &X, text: &str) -> std::process::Child {
    Command::new("xdotool")
        .args(["type", "--delay", "25", text])
        .env("DISPLAY", &x.display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xdotool")
}

/// How many key.down events were stored before `until`, and at what rate.
fn typing_rate(t: &TestStore, until: i64) -> (i64, f64) {
    let down = Kind::KeyDown.code();
    let one = |agg: &str| {
        count(
            t,
            &format!("SELECT {agg} FROM events WHERE kind = {down} AND ts_ns < {until}"),
        )
    };
    let (n, first, last) = (one("count(*)"), one("min(ts_ns)"), one("max(ts_ns)"));
    (n, (n - 1) as f64 / ((last - first).max(1) as f64 / 1e9))
}

/// The reproduction: typing at well over 30 keys/s while `candor
/// consent revoke` runs left 5–8 key.down and key.up events after the
/// revocation, and `candor audit` failed against our own store.
#[test]
fn typing_through_a_revocation_stores_nothing_after_it() {
    let Some(x) = X::start(false) else { return };
    // Long enough to outlast the revocation; lower case and spaces only,
    // so that xdotool needs no modifiers.
    let text = "the quick brown fox jumps over the lazy dog ".repeat(4);
    let mut failures = Vec::new();
    for round in 0..10 {
        let t = TestStore::new();
        grant(&t, "keys.timing,keys.text");
        let (mut d, lines) = daemon(&t, &x);
        assert!(
            lines.iter().any(|l| l == "candor: source input: running"),
            "{lines:?}"
        );
        let mut typist = typist(&x, &text);
        std::thread::sleep(Duration::from_millis(700));
        let asked = Instant::now();
        let revoked = t.candor_ok(&["consent", "revoke"]);
        let revoke_took = asked.elapsed();
        let still_typing = typist.try_wait().unwrap().is_none();
        let took = exit_within(&mut d, Duration::from_secs(5));
        let _ = d.kill();
        let _ = d.wait();
        let _ = typist.kill();
        let _ = typist.wait();
        assert!(
            still_typing,
            "round {round}: the typing ended before the revocation; nothing was tested"
        );
        let took = took.unwrap_or_else(|| panic!("round {round}: the daemon kept running"));
        let at = ledger_ts(&t, "revoke");
        let before = key_events(&t, &format!("ts_ns < {at}"));
        let after = key_events(&t, &format!("ts_ns >= {at}"));
        // The typing really ran at 30 keys/s or more up to the revocation.
        let (downs, rate) = typing_rate(&t, at);
        assert!(
            downs >= 10 && rate >= 30.0,
            "round {round}: only {downs} keys at {rate:.0} keys/s before the revocation"
        );
        let audit = t.candor(&["audit"]);
        eprintln!(
            "round {round}: {before} key events before the revocation, {after} after; \
             {rate:.0} keys/s; `consent revoke` took {revoke_took:?}, the daemon exited \
             {took:?} after it returned; {}",
            revoked.trim()
        );
        if after != 0 || !audit.status.success() {
            failures.push(format!(
                "round {round}: {after} key events at or after the revocation; audit: {}{}",
                String::from_utf8_lossy(&audit.stdout),
                stderr(&audit)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An amendment that withdraws keys.text, made while typing: no key event
/// stamped at or after it keeps its text (the daemon's own gate learns of
/// the amendment only when told, or at its poll).
#[test]
fn typing_through_a_narrowing_amendment_keeps_no_text_after_it() {
    let Some(x) = X::start(false) else { return };
    let text = "the quick brown fox jumps over the lazy dog ".repeat(4);
    let mut failures = Vec::new();
    for round in 0..3 {
        let t = TestStore::new();
        grant(&t, "keys.timing,keys.text");
        let (d, _) = daemon(&t, &x);
        let mut typist = typist(&x, &text);
        std::thread::sleep(Duration::from_millis(700));
        grant(&t, "keys.timing");
        let still_typing = typist.try_wait().unwrap().is_none();
        std::thread::sleep(Duration::from_millis(500));
        let _ = typist.kill();
        let _ = typist.wait();
        common::x11::stop(d);
        assert!(
            still_typing,
            "round {round}: the typing ended before the amendment"
        );
        let at = ledger_ts(&t, "amend");
        let keys: Vec<(i64, bool)> = events(&t)
            .iter()
            .filter(|e| e["kind"] == "key.down")
            .map(|e| {
                (
                    e["ts_ns"].as_i64().unwrap(),
                    e["fields"]["text"].is_string(),
                )
            })
            .collect();
        let before = keys.iter().filter(|(ts, text)| *ts < at && *text).count();
        let after = keys.iter().filter(|(ts, _)| *ts >= at).count();
        let leaked = keys.iter().filter(|(ts, text)| *ts >= at && *text).count();
        let (downs, rate) = typing_rate(&t, at);
        assert!(
            downs >= 10 && rate >= 30.0 && before >= 10 && after >= 5,
            "round {round}: {downs} keys at {rate:.0}/s, {before} with text before the amendment, {after} after"
        );
        let audit = t.candor(&["audit"]);
        eprintln!("round {round}: {before} keys with text before the amendment; {after} after, {leaked} of them with text");
        if leaked != 0 || !audit.status.success() {
            failures.push(format!(
                "round {round}: {leaked} keys with text after the amendment; audit: {}{}",
                String::from_utf8_lossy(&audit.stdout),
                stderr(&audit)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Typing through the moment a consent expires: nothing stamped at or
/// after the expiry is stored, though the daemon notices it only at its
/// next poll.
#[test]
fn typing_through_an_expiry_stores_nothing_after_it() {
    let Some(x) = X::start(false) else { return };
    let text = "the quick brown fox jumps over the lazy dog ".repeat(7);
    let mut failures = Vec::new();
    for round in 0..3 {
        let t = TestStore::new();
        // A consent lasts at least a minute: this one was given 58 s ago.
        grant_expiring(&t, "keys.timing,keys.text", 2);
        let expires = {
            let mut store = t.open();
            let h = consent::history(&mut store).unwrap();
            h.windows.last().unwrap().record.expires_ns
        };
        let (mut d, _) = daemon(&t, &x);
        let mut typist = typist(&x, &text);
        let took = exit_within(&mut d, Duration::from_secs(5));
        let still_typing = typist.try_wait().unwrap().is_none();
        let _ = d.kill();
        let _ = d.wait();
        let _ = typist.kill();
        let _ = typist.wait();
        assert!(
            took.is_some(),
            "round {round}: the daemon outlived its consent"
        );
        assert!(
            still_typing,
            "round {round}: the typing ended before the expiry"
        );
        let (downs, rate) = typing_rate(&t, expires);
        assert!(
            downs >= 10 && rate >= 30.0,
            "round {round}: only {downs} keys at {rate:.0} keys/s before the expiry"
        );
        let after = key_events(&t, &format!("ts_ns >= {expires}"));
        let audit = t.candor(&["audit"]);
        eprintln!("round {round}: {downs} keys before the expiry, {after} key events after");
        if after != 0 || !audit.status.success() {
            failures.push(format!(
                "round {round}: {after} key events at or after the expiry; audit: {}{}",
                String::from_utf8_lossy(&audit.stdout),
                stderr(&audit)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn daemon_writer(t: &TestStore) -> (writer::EventSink, writer::WriterHandle) {
    writer::start_admitting(
        t.open(),
        &small_writer(),
        SessionInfo {
            source: "daemon".into(),
            synthetic: false,
        },
        Some(Box::new(ConsentCut::new())),
    )
    .expect("start writer")
}

/// The key.down events stored, as (time, text).
fn texts(t: &TestStore) -> Vec<(i64, Option<String>)> {
    events(t)
        .iter()
        .filter(|e| e["kind"] == "key.down")
        .map(|e| {
            (
                e["ts_ns"].as_i64().unwrap(),
                e["fields"]["text"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn key(ts: i64, text: &str) -> Event {
    key_down(ts, text)
}

#[test]
fn the_writer_judges_each_event_by_the_consent_at_its_own_time() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let granted = ledger_ts(&t, "grant");
    let (sink, handle) = daemon_writer(&t);
    sink.send(key(granted - 1, "z")).unwrap();
    sink.send(key(granted, "a")).unwrap();
    // The writer has read the ledger before it changes below.
    sink.flush().unwrap();

    // An amendment withdraws keys.text: later keys lose their text only.
    grant(&t, "keys.timing");
    let amended = ledger_ts(&t, "amend");
    sink.send(key(amended - 1, "b")).unwrap();
    sink.send(key(amended, "c")).unwrap();
    sink.flush().unwrap();

    // Queued after the revocation, stamped on both sides of it.
    t.candor_ok(&["consent", "revoke"]);
    let revoked = ledger_ts(&t, "revoke");
    sink.send(key(revoked - 1, "d")).unwrap();
    sink.send(key(revoked, "e")).unwrap();
    sink.send(key(revoked + 1_000_000, "f")).unwrap();
    let gap = Event::new(Kind::CaptureGap, at(revoked + 2_000_000))
        .with("reason", "paused")
        .and_then(|e| e.with("duration_ns", 5))
        .and_then(|e| e.with("count", 0))
        .unwrap();
    sink.send(gap).unwrap();
    let straddling = Event::new(Kind::CaptureGap, at(revoked - 10))
        .with("reason", "excluded")
        .and_then(|e| e.with("duration_ns", 5_000_000))
        .and_then(|e| e.with("count", 3))
        .unwrap();
    sink.send(straddling).unwrap();
    drop(sink);
    let stats = handle.shutdown().unwrap();

    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        texts(&t),
        vec![
            (granted, some("a")),
            (amended - 1, some("b")),
            (amended, None),
            (revoked - 1, None),
        ]
    );
    assert_eq!((stats.cut, stats.narrowed), (3, 2), "{stats:?}");
    assert_eq!(stats.received, stats.written + stats.cut, "{stats:?}");
    // A gap that starts after the revocation would describe that time: cut.
    // One that started under consent is kept, cut short at the revocation.
    assert_eq!(
        count(&t, "SELECT count(*) FROM gaps WHERE reason = 'paused'"),
        0
    );
    assert_eq!(
        count(
            &t,
            &format!(
                "SELECT count(*) FROM gaps WHERE reason = 'excluded' AND start_ns = {} AND end_ns = {revoked}",
                revoked - 10
            )
        ),
        1
    );
    let audit = t.candor(&["audit"]);
    assert!(audit.status.success(), "{}", stderr(&audit));
}

#[test]
fn an_expiry_is_a_cut_before_anyone_records_it() {
    let t = TestStore::new();
    assert!(grant_for(&t, "keys.timing,keys.text", "1h")
        .status
        .success());
    let expires = {
        let mut store = t.open();
        let h = consent::history(&mut store).unwrap();
        h.windows.last().unwrap().record.expires_ns
    };
    let (sink, handle) = daemon_writer(&t);
    sink.send(key(expires - 1, "a")).unwrap();
    sink.send(key(expires, "b")).unwrap();
    sink.send(key(expires + 1, "c")).unwrap();
    drop(sink);
    let stats = handle.shutdown().unwrap();
    assert_eq!(texts(&t), vec![(expires - 1, Some("a".to_owned()))]);
    assert_eq!(stats.cut, 2, "{stats:?}");
    // Nothing wrote an expiry to the ledger: the cut did not wait for it.
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM consent_ledger WHERE action = 'expire'"
        ),
        0
    );
}

/// With the poll slowed to 30 s, only the control socket can stop the
/// daemon, or move it to an amended consent, in time.
#[test]
fn candor_consent_tells_a_running_daemon_without_waiting_for_the_poll() {
    let t = TestStore::new();
    grant(&t, "mouse");
    let slow = [(candor::daemon::CONSENT_POLL_ENV, "30000")];
    let (mut d, lines) = start_daemon(&t, None, &slow);
    assert!(
        lines[0].starts_with("candor: capturing under consent"),
        "{lines:?}"
    );
    let record_id = |t: &TestStore| {
        let s: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
        s["consent"]["record_id"].as_str().unwrap().to_owned()
    };
    let first = record_id(&t);

    let out = grant(&t, "mouse,window.apps");
    let amended = record_id(&t);
    assert_ne!(
        amended, first,
        "the daemon still runs under the old consent"
    );
    assert!(out.contains(&amended), "{out}");
    assert!(
        out.contains("the running daemon now records under this consent"),
        "{out}"
    );

    let asked = Instant::now();
    let out = t.candor_ok(&["consent", "revoke"]);
    let revoke_took = asked.elapsed();
    let took = exit_within(&mut d, Duration::from_secs(5));
    let _ = d.kill();
    let took = took.expect("the daemon waited for its 30 s poll");
    assert!(
        out.contains("the running daemon has stopped recording"),
        "{out}"
    );
    eprintln!(
        "`consent revoke` took {revoke_took:?}; the daemon exited {took:?} after it returned"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(
        count(
            &t,
            "SELECT clean_exit FROM sessions ORDER BY id DESC LIMIT 1"
        ),
        1
    );
}

/// A pause is judged by each event's own time too: a key typed while
/// paused but handed over after the resume (it waited for its focus
/// verdict) is the pause's, and one typed just before the pause but handed
/// over during it was consented and is kept.
#[test]
fn the_gate_judges_pauses_by_each_events_own_time() {
    use candor::capture::{Control, NotRecorded};
    use candor::consent::gate::Gate;
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let gate = {
        let mut store = t.open();
        Gate::check(&consent::refresh(&mut store, now_ns()).unwrap()).unwrap()
    };
    let (sink, handle) = daemon_writer(&t);
    let (pause_tx, _pause_rx) = crossbeam_channel::unbounded();
    let ctl = Control::new(gate, sink, pause_tx);
    let t0 = now_ns();
    let ms = 1_000_000;
    ctl.set_paused(true, at(t0 + 10 * ms), "test");
    assert_eq!(ctl.offer(key(t0 + 5 * ms, "a")), Ok(()), "before the pause");
    assert_eq!(
        ctl.offer(key(t0 + 15 * ms, "b")),
        Err(NotRecorded::Paused),
        "during the pause"
    );
    ctl.set_paused(false, at(t0 + 20 * ms), "test");
    assert_eq!(
        ctl.offer(key(t0 + 18 * ms, "c")),
        Err(NotRecorded::Paused),
        "inside the pause, handed over after the resume"
    );
    assert_eq!(
        ctl.offer(key(t0 + 25 * ms, "d")),
        Ok(()),
        "after the resume"
    );
    ctl.stop();
    drop(ctl);
    handle.shutdown().unwrap();
    let kept: Vec<_> = texts(&t).into_iter().filter_map(|(_, s)| s).collect();
    assert_eq!(kept, ["a", "d"]);
}
