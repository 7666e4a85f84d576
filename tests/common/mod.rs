//! Helpers shared by the integration tests: private temp stores, running the
//! real binaries against them, and skipping (loudly) what this machine
//! cannot do, except under CI where every test must run.

#![allow(dead_code)]

pub mod chromium;
pub mod tmux;
pub mod x11;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candor::config::{KeyStoreChoice, WriterConfig};
use candor::event::{Event, Stamp};
use candor::paths::Paths;
use candor::registry::Kind;
use candor::store::Store;

/// A data dir and a config dir under one temp dir.
pub struct TestStore {
    pub tmp: tempfile::TempDir,
    pub paths: Paths,
}

impl TestStore {
    pub fn new() -> TestStore {
        let tmp = tempfile::tempdir().expect("temp dir");
        let paths = Paths {
            data_dir: tmp.path().join("data"),
            config_dir: tmp.path().join("config"),
        };
        TestStore { tmp, paths }
    }

    pub fn open(&self) -> Store {
        Store::open(&self.paths, KeyStoreChoice::File).expect("open store")
    }

    pub fn db(&self) -> PathBuf {
        self.paths.db_file()
    }

    /// Runs a binary of this package against this store.
    pub fn run(&self, bin: &str, args: &[&str]) -> Output {
        Command::new(bin_path(bin))
            .arg("--data-dir")
            .arg(&self.paths.data_dir)
            .args(args)
            .env("CANDOR_CONFIG_DIR", &self.paths.config_dir)
            .env("CANDOR_KEY_STORE", "file")
            .env_remove("CANDOR_DATA_DIR")
            .env_remove("CANDOR_CONFIG")
            .output()
            .expect("run binary")
    }

    pub fn candor(&self, args: &[&str]) -> Output {
        self.run("candor", args)
    }

    /// Runs `candor` and insists it succeeds; returns stdout.
    pub fn candor_ok(&self, args: &[&str]) -> String {
        let out = self.candor(args);
        assert!(
            out.status.success(),
            "candor {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }
}

pub fn bin_path(name: &str) -> PathBuf {
    match name {
        "candor" => PathBuf::from(env!("CARGO_BIN_EXE_candor")),
        "candor-export" => PathBuf::from(env!("CARGO_BIN_EXE_candor-export")),
        other => panic!("no binary {other}"),
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn small_writer() -> WriterConfig {
    WriterConfig {
        channel_capacity: 64,
        batch_max: 16,
        batch_interval: std::time::Duration::from_millis(20),
        ..WriterConfig::default()
    }
}

pub fn at(wall_ns: i64) -> Stamp {
    Stamp {
        wall_ns,
        mono_ns: 0,
    }
}

pub fn key_down(wall_ns: i64, text: &str) -> Event {
    Event::new(Kind::KeyDown, at(wall_ns))
        .with("class", "letter")
        .and_then(|e| e.with("mods", 0))
        .and_then(|e| e.with("key", "KeyH"))
        .and_then(|e| e.with("text", text))
        .expect("key event")
}

pub fn mouse_move(wall_ns: i64, x: i64, y: i64) -> Event {
    Event::new(Kind::MouseMove, at(wall_ns))
        .with("x", x)
        .and_then(|e| e.with("y", y))
        .expect("mouse move")
}

pub fn file_modify(wall_ns: i64, path: &str, content: &[u8]) -> Event {
    Event::new(Kind::FileModify, at(wall_ns))
        .with("workspace", "ws")
        .and_then(|e| e.with("path", path))
        .and_then(|e| e.with("content", content.to_vec()))
        .expect("file event")
}

/// True under CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Skips a test with a printed reason, or fails it under CI.
pub fn skip_or_fail(reason: &str) {
    if in_ci() {
        panic!("cannot run under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

pub fn now_ns() -> i64 {
    candor::event::wall_now_ns()
}

pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Writes `n` synthetic events (with text) through the real writer.
pub fn write_synthetic(t: &TestStore, n: usize) {
    use candor::store::writer::{self, SessionInfo};
    use candor::synthetic::{Generator, Options};
    let (sink, handle) = writer::start(
        t.open(),
        &WriterConfig::default(),
        SessionInfo {
            source: "synthetic".into(),
            synthetic: true,
        },
    )
    .expect("start writer");
    let opts = Options {
        start_wall_ns: now_ns() - 3_600 * 1_000_000_000,
        ..Options::default()
    };
    for e in Generator::new(opts).take(n) {
        sink.send(e).expect("send");
    }
    let stats = handle.shutdown().expect("shutdown");
    assert_eq!(stats.written, n as u64);
}

/// This build's notice hash, as `sha256sum CONSENT.md` gives it.
pub fn notice_sha256() -> String {
    use sha2::{Digest, Sha256};
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/CONSENT.md")).expect("CONSENT.md");
    hex::encode(Sha256::digest(bytes))
}

/// Runs `candor consent grant` for `scopes`, lasting `expires_in`.
pub fn grant_for(t: &TestStore, scopes: &str, expires_in: &str) -> Output {
    t.candor(&[
        "consent",
        "grant",
        "--scopes",
        scopes,
        "--accept-notice",
        &notice_sha256(),
        "--expires-in",
        expires_in,
    ])
}

/// Grants consent for `scopes` that ends `secs` seconds from now, through
/// the library: a consent lasts at least a minute, so it is granted that
/// long, as if given a minute minus `secs` ago.
pub fn grant_expiring(t: &TestStore, scopes: &str, secs: u64) {
    use candor::consent::{self, record::Method, MIN_VALIDITY};
    let ago = MIN_VALIDITY.saturating_sub(std::time::Duration::from_secs(secs));
    let scopes = consent::parse_scopes(scopes).expect("scopes");
    consent::grant(
        &mut t.open(),
        &scopes,
        &notice_sha256(),
        Method::Cli,
        MIN_VALIDITY,
        now_ns() - ago.as_nanos() as i64,
    )
    .expect("grant");
}

/// Grants consent for `scopes` through the CLI.
pub fn grant(t: &TestStore, scopes: &str) -> String {
    t.candor_ok(&[
        "consent",
        "grant",
        "--scopes",
        scopes,
        "--accept-notice",
        &notice_sha256(),
    ])
}

/// `candor start` on this store, on X display `display` (or with no X at
/// all), returned once it has reported its sources; with the lines it
/// printed until then.
pub fn start_daemon(
    t: &TestStore,
    display: Option<&str>,
    env: &[(&str, &str)],
) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(bin_path("candor"));
    cmd.arg("--data-dir")
        .arg(&t.paths.data_dir)
        .arg("start")
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match display {
        Some(d) => cmd.env("DISPLAY", d),
        None => cmd.env_remove("DISPLAY"),
    };
    let mut child = cmd.spawn().expect("start candor");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("daemon output");
        let last = line.starts_with("candor: source input");
        seen.push(line);
        if last {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, seen)
}

/// How long `child` took to exit, if it did within `limit`.
pub fn exit_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().expect("wait").is_some() {
            return Some(started.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// Waits for `child` to exit, failing the test after 15 s.
pub fn exited(child: &mut std::process::Child) -> std::process::ExitStatus {
    exit_within(child, std::time::Duration::from_secs(15)).expect("the daemon did not stop");
    child.wait().expect("wait")
}

/// One integer from the store, by SQL.
pub fn count(t: &TestStore, sql: &str) -> i64 {
    t.open()
        .conn()
        .query_row(sql, [], |r| r.get(0))
        .expect("query")
}

/// Runs git in `dir` with a fixed author, and insists it succeeds.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Example")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Example")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes events as a capture session would (not synthetic), through the
/// real writer.
pub fn capture(t: &TestStore, events: Vec<Event>) {
    use candor::store::writer::{self, SessionInfo};
    let (sink, handle) = writer::start(
        t.open(),
        &small_writer(),
        SessionInfo {
            source: "daemon".into(),
            synthetic: false,
        },
    )
    .expect("start writer");
    for e in events {
        sink.send(e).expect("send");
    }
    handle.shutdown().expect("shutdown");
}

/// Opens the way to `t`'s data dir and `socket` for other users (as a
/// misconfiguration might), then runs a copy of `candor` with `args` as
/// the user nobody. Needs root.
pub fn candor_as_nobody(t: &TestStore, socket: &str, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    for (p, m) in [
        (t.tmp.path().to_path_buf(), 0o711),
        (t.paths.data_dir.clone(), 0o711),
        (t.paths.data_dir.join(socket), 0o666),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    // A copy of the binary the other user can run, wherever the build lives.
    let bin_dir = tempfile::Builder::new()
        .prefix("candor-bin")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("candor");
    std::fs::copy(bin_path("candor"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("--data-dir")
        .arg(&t.paths.data_dir)
        .args(args)
        .env("CANDOR_CONFIG_DIR", "/nonexistent-candor-config")
        .current_dir("/")
        .output()
        .unwrap()
}
