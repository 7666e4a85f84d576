//! A private X server for capture tests (Xvfb, with openbox when focus
//! matters), xdotool input, small X clients of our own (a window, an XTEST
//! typist), and `candor start` running on it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, PropMode, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

use super::{skip_or_fail, TestStore};

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// One X test at a time: on two cores, parallel X servers and input
/// tools make timing flaky, and timing is what these tests check.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A private X server, with a window manager when asked.
pub struct X {
    pub display: String,
    pub children: Vec<Child>,
    pub _serial: Option<std::sync::MutexGuard<'static, ()>>,
}

impl X {
    pub fn start(wm: bool) -> Option<X> {
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
        // The socket appears before the server takes clients; a client
        // started in between (openbox) fails and exits.
        let root_prop = |prop: &str| {
            Command::new("xprop")
                .args(["-root", prop])
                .env("DISPLAY", &x.display)
                .output()
                .ok()
        };
        while !root_prop("_NET_SUPPORTING_WM_CHECK").is_some_and(|o| o.status.success()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "Xvfb did not take clients"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if wm {
            let spawn = |display: &str| {
                Command::new("openbox")
                    .env("DISPLAY", display)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start openbox")
            };
            x.children.push(spawn(&x.display));
            // Wait until the window manager has announced itself; one that
            // exited early (a busy machine) is started again.
            let started = Instant::now();
            loop {
                if root_prop("_NET_SUPPORTING_WM_CHECK")
                    .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("window id"))
                {
                    break;
                }
                let wm_child = x.children.last_mut().expect("openbox");
                if wm_child.try_wait().ok().flatten().is_some() {
                    *wm_child = spawn(&x.display);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "openbox did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(x)
    }

    pub fn xdotool(&self, args: &[&str]) {
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
    pub fn window(&self, class: &str, title: &str) -> x11rb::rust_connection::RustConnection {
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
pub fn daemon(t: &TestStore, x: &X) -> (Child, Vec<String>) {
    daemon_with(t, x, &[])
}

/// `daemon`, with extra environment variables.
pub fn daemon_with(t: &TestStore, x: &X, env: &[(&str, &str)]) -> (Child, Vec<String>) {
    let started = super::start_daemon(t, Some(&x.display), env);
    // The first events can race the listener's start; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    started
}

pub fn stop(mut child: Child) {
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

/// Keys pressed through the XTEST extension over one connection: a test
/// can type at a typist's own pace, key by key, which one xdotool process
/// per key (tens of ms to start) cannot.
pub struct Typer {
    conn: x11rb::rust_connection::RustConnection,
    root: x11rb::protocol::xproto::Window,
    /// The keycode of each keysym, and whether it needs Shift.
    codes: std::collections::HashMap<u32, (u8, bool)>,
    shift: u8,
}

impl Typer {
    pub fn new(x: &X) -> Typer {
        use x11rb::protocol::xtest::ConnectionExt as _;
        let (conn, screen) = x11rb::connect(Some(&x.display)).expect("connect to Xvfb");
        conn.xtest_get_version(2, 2)
            .expect("XTEST request")
            .reply()
            .expect("the X server has no XTEST extension");
        let root = conn.setup().roots[screen].root;
        let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)
            .expect("keyboard mapping")
            .reply()
            .expect("keyboard mapping reply");
        let per = usize::from(map.keysyms_per_keycode);
        let mut codes = std::collections::HashMap::new();
        for (i, syms) in map.keysyms.chunks(per.max(1)).enumerate() {
            let code = min + i as u8;
            for (col, &sym) in syms.iter().take(2).enumerate() {
                if sym != 0 {
                    codes.entry(sym).or_insert((code, col == 1));
                }
            }
        }
        const SHIFT_L: u32 = 0xffe1;
        let shift = codes.get(&SHIFT_L).expect("a Shift_L key").0;
        Typer {
            conn,
            root,
            codes,
            shift,
        }
    }

    /// The keycode that types `c`, and whether Shift must be held.
    pub fn key_for(&self, c: char) -> Option<(u8, bool)> {
        let sym = match c {
            '\n' => 0xff0d, // Return
            ' '..='~' => c as u32,
            _ => return None,
        };
        self.codes.get(&sym).copied()
    }

    pub fn shift(&self) -> u8 {
        self.shift
    }

    /// Presses (`down`) or releases a key now.
    pub fn send(&self, code: u8, down: bool) {
        use x11rb::protocol::xtest::ConnectionExt as _;
        const KEY_PRESS: u8 = 2;
        const KEY_RELEASE: u8 = 3;
        let ty = if down { KEY_PRESS } else { KEY_RELEASE };
        self.conn
            .xtest_fake_input(ty, code, x11rb::CURRENT_TIME, self.root, 0, 0, 0)
            .expect("XTEST fake input");
        self.conn.flush().expect("flush");
    }
}
