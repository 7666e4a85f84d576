//! A private tmux server running one command in a pane of a given size:
//! keys sent with `send-keys`, the screen read with `capture-pane`. The
//! consent screen and shell-hook tests drive real terminals through it.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Pane {
    socket: String,
}

impl Pane {
    /// Starts `cmd` (a shell command line) in a `width`×`height` pane, or
    /// skips (failing under CI) when tmux is missing.
    pub fn start(name: &str, cmd: &str, width: u16, height: u16) -> Option<Pane> {
        if Command::new("tmux").arg("-V").output().is_err() {
            super::skip_or_fail("tmux is not installed (apt-get install tmux)");
            return None;
        }
        let socket = format!("candor-test-{name}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(cmd)
            .env_remove("TMUX")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux failed to start");
        Some(Pane { socket })
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        std::thread::sleep(Duration::from_millis(100));
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Waits (up to 15 s) until the screen shows `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "waited for {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}
