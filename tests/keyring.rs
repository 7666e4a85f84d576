//! The store key in a real OS keyring: a private D-Bus session bus with
//! gnome-keyring's Secret Service, as a desktop session has. Without a
//! keyring, `auto` falls back to the key file and `keyring` is an error.
//!
//! One test in its own binary: it sets DBUS_SESSION_BUS_ADDRESS for the
//! process, which must not race with other tests.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use candor::config::KeyStoreChoice;
use candor::store::keys::{self, KeyError, KeyLocation};
use candor::store::writer::{self, SessionInfo};
use candor::store::Store;
use common::x11::have;
use common::*;

struct Bus {
    pid: u32,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        // gnome-keyring-daemon exits when its bus goes away.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

fn start_keyring(home: &std::path::Path) -> Bus {
    let out = Command::new("dbus-daemon")
        .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
        .output()
        .expect("start dbus-daemon");
    assert!(
        out.status.success(),
        "dbus-daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let address = lines.next().expect("bus address").to_owned();
    let pid = lines.next().expect("bus pid").trim().parse().expect("pid");
    let bus = Bus { pid, address };
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gnome-keyring-daemon");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"candor-test-password")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gnome-keyring-daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bus
}

#[test]
fn the_key_lives_in_the_os_keyring_when_there_is_one() {
    let t = TestStore::new();

    // No session bus: `auto` falls back to the file, `keyring` refuses.
    std::env::remove_var("DBUS_SESSION_BUS_ADDRESS");
    let probe = t.tmp.path().join("probe.key");
    match keys::load(KeyStoreChoice::Keyring, &probe, true) {
        Err(KeyError::KeyringUnavailable(_)) => {}
        other => panic!(
            "expected the keyring to be unavailable, got {:?}",
            other.map(|(_, l)| l)
        ),
    }
    let (_, loc) = keys::load(KeyStoreChoice::Auto, &probe, true).unwrap();
    assert_eq!(loc, KeyLocation::File(probe.clone()));

    if !have("dbus-daemon") || !have("gnome-keyring-daemon") {
        return skip_or_fail(
            "dbus-daemon and gnome-keyring-daemon are needed (apt-get install dbus gnome-keyring)",
        );
    }
    let bus = start_keyring(&t.tmp.path().join("home"));
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus.address);

    let store = Store::open(&t.paths, KeyStoreChoice::Auto).unwrap();
    let (sink, handle) = writer::start(
        store,
        &small_writer(),
        SessionInfo {
            source: "test".into(),
            synthetic: true,
        },
    )
    .unwrap();
    sink.send(key_down(now_ns(), "kept-in-the-keyring"))
        .unwrap();
    handle.shutdown().unwrap();
    assert!(
        !t.paths.key_file().exists(),
        "a key file was written although the keyring answered"
    );

    // Another process finds the key in the keyring and opens the sealed field.
    let run = |args: &[&str]| {
        Command::new(bin_path("candor"))
            .arg("--data-dir")
            .arg(&t.paths.data_dir)
            .args(args)
            .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
            .env("CANDOR_KEY_STORE", "auto")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .output()
            .unwrap()
    };
    let out = run(&["stats"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OS keyring"),
        "{}",
        stderr(&out)
    );
    let out = run(&["events", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept-in-the-keyring"));

    // Without the keyring the sealed data stays closed, with a clear error.
    let out = Command::new(bin_path("candor"))
        .arg("--data-dir")
        .arg(&t.paths.data_dir)
        .args(["events"])
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("the store key is missing"),
        "{}",
        stderr(&out)
    );
    drop(bus);
}
