//! Capture under a real X server: Xvfb, input from xdotool, focus from a
//! window manager (openbox) and small X clients of our own, and the daemon
//! checked through what it stored. Skips with a reason when Xvfb or xdotool
//! is missing, except under CI.

mod common;

use std::time::Duration;

use common::x11::{daemon, stop, X};
use common::*;
use serde_json::Value;

fn events(t: &TestStore) -> Vec<Value> {
    t.candor_ok(&["events", "--json", "--last", "100000"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

fn typed(events: &[Value]) -> Vec<String> {
    of_kind(events, "key.down")
        .iter()
        .map(|e| {
            e["fields"]["text"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("<{}>", e["fields"]["key"].as_str().unwrap_or("?")))
        })
        .collect()
}

#[test]
fn keys_chords_and_mouse_are_recorded_exactly() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,mouse");
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines.iter().any(|l| l == "candor: source input: running"),
        "{lines:?}"
    );
    x.xdotool(&["type", "--delay", "40", "helo"]);
    x.xdotool(&["key", "BackSpace"]);
    x.xdotool(&["type", "--delay", "40", "lo"]);
    x.xdotool(&["key", "ctrl+c"]);
    x.xdotool(&["mousemove", "100", "120"]);
    x.xdotool(&["click", "1"]);
    x.xdotool(&["click", "4"]);
    stop(d);
    let ev = events(&t);
    assert_eq!(
        typed(&ev),
        vec![
            "h",
            "e",
            "l",
            "o",
            "\u{8}",
            "l",
            "o",
            "<ControlLeft>",
            "ctrl+c"
        ],
        "{ev:#?}"
    );
    assert_eq!(of_kind(&ev, "key.up").len(), 9, "every key went up");
    // Buttons 4 and 5 are the wheel, not presses.
    let down = of_kind(&ev, "mouse.down");
    assert_eq!(down.len(), 1);
    assert_eq!(
        down[0]["fields"],
        serde_json::json!({"button": "left", "x": 100, "y": 120})
    );
    let wheel = of_kind(&ev, "mouse.wheel");
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel[0]["fields"]["dy"], 1);
    let moves = of_kind(&ev, "mouse.move");
    assert_eq!(
        moves.last().unwrap()["fields"],
        serde_json::json!({"x": 100, "y": 120})
    );
    // Monotonic offsets never go back.
    let monos: Vec<i64> = ev
        .iter()
        .filter(|e| e["kind"] != "capture.gap")
        .map(|e| e["mono_ns"].as_i64().unwrap())
        .collect();
    assert!(monos.windows(2).all(|w| w[0] <= w[1]), "{monos:?}");
}

#[test]
fn with_timing_only_no_key_identity_or_character_is_stored() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing");
    let (d, _) = daemon(&t, &x);
    x.xdotool(&["type", "--delay", "40", "pass1"]);
    x.xdotool(&["mousemove", "10", "10", "click", "1"]);
    stop(d);
    let ev = events(&t);
    let downs = of_kind(&ev, "key.down");
    assert_eq!(downs.len(), 5, "{ev:#?}");
    for e in &ev {
        if e["kind"] == "key.down" || e["kind"] == "key.up" {
            let fields: Vec<&String> = e["fields"].as_object().unwrap().keys().collect();
            assert_eq!(fields, vec!["class", "mods"], "{e}");
        }
        assert!(
            !e["kind"].as_str().unwrap().starts_with("mouse"),
            "mouse recorded without consent: {e}"
        );
    }
    let classes: Vec<&str> = downs
        .iter()
        .map(|e| e["fields"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        vec!["letter", "letter", "letter", "letter", "digit"]
    );
    // Nothing identifying is anywhere in the store's files either.
    t.open().checkpoint().unwrap();
    let db = std::fs::read(t.db()).unwrap();
    assert!(
        !db.windows(4).any(|w| w == b"KeyP"),
        "a key name reached the disk"
    );
}

#[test]
fn pause_by_hotkey_and_by_the_cli_and_the_hotkey_is_never_stored() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let (d, _) = daemon(&t, &x);
    x.xdotool(&["type", "--delay", "40", "a"]);
    x.xdotool(&["key", "ctrl+alt+shift+p"]);
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["type", "--delay", "40", "secret"]);
    x.xdotool(&["key", "ctrl+alt+shift+p"]);
    x.xdotool(&["type", "--delay", "40", "b"]);
    // And by the command line.
    t.candor_ok(&["pause", "--reason", "private chat"]);
    x.xdotool(&["type", "--delay", "40", "hidden"]);
    t.candor_ok(&["resume"]);
    x.xdotool(&["type", "--delay", "40", "c"]);
    stop(d);
    let ev = events(&t);
    assert_eq!(typed(&ev), vec!["a", "b", "c"], "{ev:#?}");
    assert!(
        ev.iter().all(|e| e["fields"]["key"] != "KeyP"),
        "the hotkey was stored"
    );
    let gaps = of_kind(&ev, "capture.gap");
    assert_eq!(gaps.len(), 2);
    assert!(gaps.iter().all(|g| g["fields"]["reason"] == "paused"));
    assert!(gaps[0]["fields"]["duration_ns"].as_i64().unwrap() >= 200_000_000);
    let actions: Vec<String> = t
        .candor_ok(&["consent", "log", "--json"])
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, vec!["grant", "pause", "resume", "pause", "resume"]);
    let out = t.candor(&["audit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn focus_is_recorded_and_excluded_apps_leave_only_gaps() {
    let Some(x) = X::start(true) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps");
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines.iter().any(|l| l == "candor: source focus: running"),
        "{lines:?}"
    );
    let editor = x.window("Code", "main.rs - project");
    x.xdotool(&["type", "--delay", "40", "ok"]);
    {
        let _vault = x.window("KeePassXC", "Passwords.kdbx");
        x.xdotool(&["type", "--delay", "40", "hunter2"]);
    }
    std::thread::sleep(Duration::from_millis(600));
    x.xdotool(&["type", "--delay", "40", "z"]);
    drop(editor);
    stop(d);
    let ev = events(&t);
    assert_eq!(typed(&ev), vec!["o", "k", "z"], "{ev:#?}");
    let focus = of_kind(&ev, "window.focus");
    let apps: Vec<&str> = focus
        .iter()
        .filter_map(|e| e["fields"]["app"].as_str())
        .collect();
    assert!(apps.contains(&"Code"), "{focus:?}");
    assert!(
        !apps.iter().any(|a| a.contains("KeePass")),
        "the excluded app was recorded: {apps:?}"
    );
    assert!(
        focus.iter().all(|e| e["fields"].get("title").is_none()),
        "a title without window.titles"
    );
    // The exclusion leaves its span (count 0) and the password's keys,
    // each withheld on its own and counted: 7 down and 7 up. The window
    // manager may also disagree with the input focus for a moment after
    // the vault closes, which is one more span: nothing else is a gap.
    let gaps = of_kind(&ev, "capture.gap");
    assert!(
        gaps.iter().all(|g| g["fields"]["reason"] == "excluded"),
        "{gaps:?}"
    );
    assert!(
        gaps.iter()
            .any(|g| g["fields"]["count"] == 0 && g["fields"]["duration_ns"].as_i64().unwrap() > 0),
        "{gaps:?}"
    );
    let withheld: i64 = gaps
        .iter()
        .map(|g| g["fields"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(withheld, 14, "{gaps:?}");
}

#[test]
fn titles_are_recorded_only_with_window_titles() {
    let Some(x) = X::start(true) else { return };
    let t = TestStore::new();
    grant(&t, "window.apps,window.titles");
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("candor: source input: off")),
        "{lines:?}"
    );
    let _w = x.window("Firefox", "Quarterly plan - Mozilla Firefox");
    stop(d);
    let ev = events(&t);
    let focus = of_kind(&ev, "window.focus");
    assert!(
        focus.iter().any(
            |e| e["fields"]["title"] == "Quarterly plan - Mozilla Firefox"
                && e["fields"]["app"] == "Firefox"
        ),
        "{focus:?}"
    );
    // The title is sealed on disk.
    t.open().checkpoint().unwrap();
    let db = std::fs::read(t.db()).unwrap();
    assert!(!db.windows(9).any(|w| w == b"Quarterly"));
}

#[test]
fn without_an_x_server_sources_say_why_and_the_daemon_still_stops_cleanly() {
    let t = TestStore::new();
    grant(&t, "keys.timing,mouse");
    let x = X {
        display: ":4999".into(),
        children: Vec::new(),
        _serial: None,
    };
    let (d, lines) = daemon(&t, &x);
    let input = lines
        .iter()
        .find(|l| l.starts_with("candor: source input"))
        .unwrap();
    assert!(
        input.contains("unavailable: cannot open the X display"),
        "{input}"
    );
    stop(d);
}
