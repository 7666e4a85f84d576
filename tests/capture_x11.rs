//! Capture under a real X server: Xvfb, input from xdotool, focus from a
//! window manager (openbox) and small X clients of our own, and the daemon
//! checked through what it stored. Skips with a reason when Xvfb or xdotool
//! is missing, except under CI.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, PropMode, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// One X test at a time: on two cores, parallel X servers and input
/// tools make timing flaky, and timing is what these tests check.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A private X server, with a window manager when asked.
struct X {
    display: String,
    children: Vec<Child>,
    _serial: Option<std::sync::MutexGuard<'static, ()>>,
}

impl X {
    fn start(wm: bool) -> Option<X> {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        for tool in ["Xvfb", "xdotool"]
            .iter()
            .chain(if wm { &["openbox"][..] } else { &[][..] })
        {
            if !have(tool) {
                skip_or_fail(&format!(
                    "{tool} is not installed (scripts/setup.sh installs it)"
                ));
                return None;
            }
        }
        let base = 200 + (std::process::id() % 300) as usize * 3;
        let n = (base..base + 300)
            .find(|n| {
                !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free display number");
        let display = format!(":{n}");
        let xvfb = Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut x = X {
            display,
            children: vec![xvfb],
            _serial: Some(serial),
        };
        let started = Instant::now();
        while !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "Xvfb did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if wm {
            let openbox = Command::new("openbox")
                .env("DISPLAY", &x.display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start openbox");
            x.children.push(openbox);
            // Wait until the window manager has announced itself.
            let started = Instant::now();
            loop {
                let out = Command::new("xprop")
                    .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                    .env("DISPLAY", &x.display)
                    .output();
                if out
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("window id"))
                    .unwrap_or(false)
                {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "openbox did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(x)
    }

    fn xdotool(&self, args: &[&str]) {
        let ok = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .unwrap()
            .success();
        assert!(ok, "xdotool {args:?} failed");
    }

    /// A mapped top-level window with the given WM_CLASS and title; it
    /// lives as long as the returned connection.
    fn window(&self, class: &str, title: &str) -> x11rb::rust_connection::RustConnection {
        let (conn, screen) = x11rb::connect(Some(&self.display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        let win = conn.generate_id().unwrap();
        conn.create_window(
            0,
            win,
            root,
            50,
            50,
            400,
            300,
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
        conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )
        .unwrap();
        conn.map_window(win).unwrap();
        conn.flush().unwrap();
        // Let the window manager map and focus it, and the daemon see it.
        std::thread::sleep(Duration::from_millis(600));
        conn
    }
}

impl Drop for X {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `candor start` on `x`, returned once its sources report.
fn daemon(t: &TestStore, x: &X) -> (Child, Vec<String>) {
    let mut child = Command::new(bin_path("candor"))
        .arg("--data-dir")
        .arg(&t.paths.data_dir)
        .arg("start")
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .env("DISPLAY", &x.display)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line.starts_with("candor: source input");
        seen.push(line);
        if last {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // The first events can race the listener's start; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    (child, seen)
}

fn stop(mut child: Child) {
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success(), "the daemon failed");
}

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
fn focus_is_recorded_and_excluded_apps_leave_only_a_gap() {
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
    let gaps = of_kind(&ev, "capture.gap");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["fields"]["reason"], "excluded");
    assert!(gaps[0]["fields"]["duration_ns"].as_i64().unwrap() > 0);
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
