//! Exclusions hold when focus moves faster than a poll, when there is no
//! window manager at all, and after the window manager dies: a password
//! typed into an excluded window leaves no character in the store, under a
//! real X server (Xvfb), with focus moved and keys typed by xdotool.
//!
//! Each test also types into an ordinary window and insists that typing IS
//! stored, so a daemon that recorded nothing would fail it.

mod common;

use std::time::Duration;

use common::x11::{daemon, stop, X};
use common::*;
use serde_json::Value;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, PropMode, WindowClass};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Typed into the excluded window; shares no character with the control
/// text, so any stored character of it is a leak.
const PASSWORD: &str = "hunter2";
const ROUNDS: usize = 10;

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

/// No stored key, down or up, may be one of the password's keys, and no
/// stored text may hold one of its characters.
fn assert_no_password(ev: &[Value]) {
    let leaks: Vec<&Value> = ev
        .iter()
        .filter(|e| {
            let text = e["fields"]["text"]
                .as_str()
                .is_some_and(|t| t.chars().any(|c| PASSWORD.contains(c)));
            let key = e["fields"]["key"].as_str().is_some_and(|k| {
                PASSWORD.chars().any(|c| {
                    let name = if c.is_ascii_digit() {
                        format!("Num{c}")
                    } else {
                        format!("Key{}", c.to_ascii_uppercase())
                    };
                    k == name
                })
            });
            text || key
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} key events of the password were stored, typed: {:?}",
        leaks.len(),
        typed(ev)
    );
}

/// Keys withheld, as the gaps count them.
fn withheld(ev: &[Value]) -> i64 {
    of_kind(ev, "capture.gap")
        .iter()
        .filter(|g| g["fields"]["reason"] == "excluded")
        .map(|g| g["fields"]["count"].as_i64().unwrap_or(0))
        .sum()
}

/// A mapped top-level window of our own with `class` as its WM_CLASS, at
/// `(x, y)`; it lives as long as the returned connection.
fn window(x: &X, class: &str, at: (i16, i16)) -> (RustConnection, u32) {
    let (conn, screen) = x11rb::connect(Some(&x.display)).expect("connect to Xvfb");
    let root = conn.setup().roots[screen].root;
    let win = conn.generate_id().unwrap();
    conn.create_window(
        0,
        win,
        root,
        at.0,
        at.1,
        300,
        200,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    let wm_class = format!("{}\0{class}\0", class.to_lowercase());
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        wm_class.as_bytes(),
    )
    .unwrap();
    conn.map_window(win).unwrap();
    conn.flush().unwrap();
    (conn, win)
}

/// Focuses `win` and, in the same xdotool run (no process start-up in
/// between), types `text` at once.
fn focus_and_type(x: &X, win: u32, text: &str) {
    x.xdotool(&[
        "windowfocus",
        "--sync",
        &win.to_string(),
        "type",
        "--delay",
        "30",
        text,
    ]);
}

/// Focuses `win`, lets the focus settle, then types `text`.
fn focus_settle_type(x: &X, win: u32, text: &str) {
    x.xdotool(&["windowfocus", "--sync", &win.to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["type", "--delay", "30", text]);
}

#[test]
fn without_a_window_manager_a_focused_password_manager_gets_no_key_stored() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps");
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines.iter().any(|l| l == "candor: source focus: running"),
        "{lines:?}"
    );
    // Side by side, away from the pointer (Xvfb starts it at the centre).
    let (_c1, code) = window(&x, "Code", (0, 0));
    let (_c2, vault) = window(&x, "KeePassXC", (320, 0));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..ROUNDS {
        // The control: an ordinary window's typing is stored.
        focus_settle_type(&x, code, "ok");
        // The race the review won: focus, then type at once.
        focus_and_type(&x, vault, PASSWORD);
    }
    stop(d);
    let ev = events(&t);
    assert_no_password(&ev);
    let control: Vec<String> = (0..ROUNDS)
        .flat_map(|_| ["o".to_owned(), "k".to_owned()])
        .collect();
    assert_eq!(typed(&ev), control, "{ev:#?}");
    assert_eq!(of_kind(&ev, "key.up").len(), 2 * ROUNDS, "{ev:#?}");
    // Nothing was dropped silently: every withheld key is counted.
    assert_eq!(
        withheld(&ev),
        (2 * PASSWORD.len() * ROUNDS) as i64,
        "{:#?}",
        of_kind(&ev, "capture.gap")
    );
    let apps: Vec<&str> = of_kind(&ev, "window.focus")
        .iter()
        .filter_map(|e| e["fields"]["app"].as_str())
        .collect();
    assert!(apps.contains(&"Code"), "{apps:?}");
    assert!(!apps.contains(&"KeePassXC"), "{apps:?}");
}

#[test]
fn after_the_window_manager_dies_nothing_typed_is_stored() {
    let Some(x) = X::start(true) else { return };
    let mut x = x;
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps");
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines.iter().any(|l| l == "candor: source focus: running"),
        "{lines:?}"
    );
    let (_c1, code) = window(&x, "Code", (0, 0));
    let (_c2, vault) = window(&x, "KeePassXC", (320, 0));
    std::thread::sleep(Duration::from_millis(800));
    // The control, while the window manager runs.
    x.xdotool(&["windowactivate", "--sync", &code.to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["type", "--delay", "30", "ok"]);
    std::thread::sleep(Duration::from_millis(300));
    // openbox is killed mid-session: its _NET_ACTIVE_WINDOW stays behind,
    // naming the editor.
    let mut wm = x.children.pop().expect("openbox");
    wm.kill().unwrap();
    wm.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..ROUNDS {
        focus_and_type(&x, vault, PASSWORD);
        // Back to the editor, as the stale _NET_ACTIVE_WINDOW still says.
        x.xdotool(&["windowfocus", "--sync", &code.to_string()]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let status: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
    stop(d);
    let ev = events(&t);
    assert_no_password(&ev);
    assert_eq!(typed(&ev), vec!["o", "k"], "{ev:#?}");
    assert_eq!(of_kind(&ev, "key.up").len(), 2, "{ev:#?}");
    assert_eq!(
        withheld(&ev),
        (2 * PASSWORD.len() * ROUNDS) as i64,
        "{:#?}",
        of_kind(&ev, "capture.gap")
    );
    // The daemon says that it withholds input, and why.
    assert_eq!(status["excluded_app_focused"], true, "{status:#}");
}

#[test]
fn under_pointer_root_keys_follow_the_pointer_into_an_excluded_window() {
    // A bare Xvfb's focus is PointerRoot: keys go to the window under the
    // pointer, and no focus event says so; only crossings do.
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps");
    let (d, _) = daemon(&t, &x);
    let (_c1, _code) = window(&x, "Code", (0, 0));
    let (_c2, _vault) = window(&x, "KeePassXC", (320, 0));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..ROUNDS {
        x.xdotool(&["mousemove", "150", "100"]);
        std::thread::sleep(Duration::from_millis(300));
        x.xdotool(&["type", "--delay", "30", "ok"]);
        // Into the vault and type at once, in one xdotool run.
        x.xdotool(&["mousemove", "470", "100", "type", "--delay", "30", PASSWORD]);
    }
    stop(d);
    let ev = events(&t);
    assert_no_password(&ev);
    let control: Vec<String> = (0..ROUNDS)
        .flat_map(|_| ["o".to_owned(), "k".to_owned()])
        .collect();
    assert_eq!(typed(&ev), control, "{ev:#?}");
    assert_eq!(
        withheld(&ev),
        (2 * PASSWORD.len() * ROUNDS) as i64,
        "{:#?}",
        of_kind(&ev, "capture.gap")
    );
}

/// A stand-in window manager: it announces itself on the root
/// (`_NET_SUPPORTING_WM_CHECK`, on a window of its own naming itself) and
/// says `active` is the active window, whatever really has focus.
fn claim_active(x: &X, active: u32) -> RustConnection {
    let (conn, screen) = x11rb::connect(Some(&x.display)).expect("connect to Xvfb");
    let root = conn.setup().roots[screen].root;
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (check, net_active) = (
        atom(b"_NET_SUPPORTING_WM_CHECK"),
        atom(b"_NET_ACTIVE_WINDOW"),
    );
    let me = conn.generate_id().unwrap();
    conn.create_window(
        0,
        me,
        root,
        -10,
        -10,
        1,
        1,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    for (win, prop, value) in [
        (me, check, me),
        (root, check, me),
        (root, net_active, active),
    ] {
        conn.change_property32(PropMode::REPLACE, win, prop, AtomEnum::WINDOW, &[value])
            .unwrap();
    }
    conn.flush().unwrap();
    conn
}

#[test]
fn a_window_manager_that_disagrees_with_the_input_focus_is_not_believed() {
    let Some(x) = X::start(false) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps");
    let (d, _) = daemon(&t, &x);
    let (_c1, code) = window(&x, "Code", (0, 0));
    let (_c2, vault) = window(&x, "KeePassXC", (320, 0));
    // It says the editor is active, always.
    let _wm = claim_active(&x, code);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..ROUNDS {
        // The control: focus and the window manager agree.
        focus_settle_type(&x, code, "ok");
        focus_and_type(&x, vault, PASSWORD);
        std::thread::sleep(Duration::from_millis(100));
    }
    let status: Value = serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
    stop(d);
    let ev = events(&t);
    assert_no_password(&ev);
    let control: Vec<String> = (0..ROUNDS)
        .flat_map(|_| ["o".to_owned(), "k".to_owned()])
        .collect();
    assert_eq!(typed(&ev), control, "{ev:#?}");
    assert_eq!(
        withheld(&ev),
        (2 * PASSWORD.len() * ROUNDS) as i64,
        "{:#?}",
        of_kind(&ev, "capture.gap")
    );
    // The vault still has focus, the window manager still disagrees.
    assert_eq!(status["excluded_app_focused"], true, "{status:#}");
}
