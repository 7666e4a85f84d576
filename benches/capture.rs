//! Capture benchmark: the real daemon under Xvfb with sustained xdotool
//! input (1,000 mouse moves/s plus 20 keys/s), against a bare rdev listener
//! that only counts events, driven by the same load in the same run.
//!
//! cargo bench --bench capture [-- --seconds 30]
//!
//! It reports each process's CPU as a percentage of one core (from
//! /proc/<pid>/stat over the load window), its peak RSS (VmHWM), and the key
//! events stored against those sent. Last line:
//! `capture_cpu_pct=C bare_cpu_pct=B peak_rss_mb=R keys_sent=S keys_stored=K moves_sent=M moves_stored=N`

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    let hz = rustix::param::clock_ticks_per_second() as f64;
    ticks / hz
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Killer(Vec<Child>);
impl Drop for Killer {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Drives the load for `secs`: one xdotool process per second of mouse
/// moves (in groups with short sleeps) and one typing at ~20 keys/s.
/// Returns (moves sent, keys sent).
fn drive(display: &str, secs: u64) -> (u64, u64) {
    let keys = (secs * 20) as usize;
    let text: String = "the quick brown fox jumps over the lazy dog "
        .chars()
        .cycle()
        .take(keys)
        .collect();
    let typist = Command::new("xdotool")
        .args(["type", "--delay", "100", &text])
        .env("DISPLAY", display)
        .spawn()
        .expect("xdotool type");
    let started = Instant::now();
    let mut moves = 0u64;
    for s in 0..secs {
        let mut args: Vec<String> = Vec::new();
        for g in 0..20 {
            for i in 0..50 {
                let step = (s * 1000 + g * 50 + i) as f64;
                let x = 640.0 + 400.0 * (step / 300.0).sin();
                let y = 400.0 + 300.0 * (step / 170.0).cos();
                args.extend([
                    "mousemove".into(),
                    format!("{}", x as i64),
                    format!("{}", y as i64),
                ]);
            }
            args.extend(["sleep".into(), "0.04".into()]);
            moves += 50;
        }
        let ok = Command::new("xdotool")
            .args(&args)
            .env("DISPLAY", display)
            .status()
            .expect("xdotool");
        assert!(ok.success());
        // Keep to one second per batch of 1,000 moves.
        let target = Duration::from_secs(s + 1);
        if let Some(wait) = target.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let mut typist = typist;
    let _ = typist.wait();
    (moves, text.chars().count() as u64)
}

/// Measures a process's CPU and peak RSS while the load runs.
fn measure(pid: u32, display: &str, secs: u64) -> (f64, f64, u64, u64) {
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let (moves, keys) = drive(display, secs);
    let cpu = cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    (100.0 * cpu / wall, peak_rss_mb(pid), moves, keys)
}

fn bare_listener() {
    // What the daemon is measured against: rdev delivering events to a
    // callback that only counts them.
    let mut n = 0u64;
    let _ = rdev::listen(move |_e| {
        n = std::hint::black_box(n + 1);
    });
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--bare-listener") {
        return bare_listener();
    }
    let secs = arg("--seconds", 30);
    for tool in ["Xvfb", "xdotool"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            eprintln!("SKIPPED: {tool} is not installed (scripts/setup.sh installs it)");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                std::process::exit(1);
            }
            return;
        }
    }
    let n = 700 + std::process::id() % 200;
    let display = format!(":{n}");
    let mut procs = Killer(vec![Command::new("Xvfb")
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
        .expect("Xvfb")]);
    let t0 = Instant::now();
    // The socket appears before the server takes clients: wait until a
    // client can connect.
    while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        || x11rb::connect(Some(&display)).is_err()
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Baseline: a bare rdev listener under the same load.
    let tmp = tempfile::tempdir().unwrap();
    let bare = Command::new(std::env::current_exe().unwrap())
        .arg("--bare-listener")
        .env("DISPLAY", &display)
        .spawn()
        .expect("bare listener");
    let bare_pid = bare.id();
    procs.0.push(bare);
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = procs.0.last_mut().and_then(|b| b.try_wait().ok().flatten()) {
        panic!("the bare rdev listener exited at once ({status}): no baseline to compare with");
    }
    let (bare_cpu, bare_rss, _, _) = measure(bare_pid, &display, secs);
    println!("bare rdev listener: {bare_cpu:.2}% of one core, peak RSS {bare_rss:.1} MB");
    if let Some(mut b) = procs.0.pop() {
        let _ = b.kill();
        let _ = b.wait();
    }

    // The daemon, under consent for keys and mouse.
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let candor = env!("CARGO_BIN_EXE_candor");
    let notice = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            candor::consent::notice::NOTICE.as_bytes(),
        ))
    };
    let run = |args: &[&str]| {
        let out = Command::new(candor)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("CANDOR_CONFIG_DIR", &config)
            .env("CANDOR_KEY_STORE", "file")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "candor {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "consent",
        "grant",
        "--scopes",
        "keys.timing,keys.text,mouse",
        "--accept-notice",
        &notice,
    ]);
    let mut daemon = Command::new(candor)
        .arg("--data-dir")
        .arg(&data)
        .arg("start")
        .env("CANDOR_CONFIG_DIR", &config)
        .env("CANDOR_KEY_STORE", "file")
        .env("DISPLAY", &display)
        .stdout(Stdio::piped())
        .spawn()
        .expect("candor start");
    let pid = daemon.id();
    let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("candor: source input") {
            assert!(line.ends_with("running"), "{line}");
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(500));
    let (cpu, _, moves_sent, keys_sent) = measure(pid, &display, secs);
    std::thread::sleep(Duration::from_millis(500));
    let rss = peak_rss_mb(pid);
    run(&["stop"]);
    let _ = daemon.wait();

    let events = run(&["events", "--json", "--last", "100000000"]);
    let (mut keys_stored, mut moves_stored) = (0u64, 0u64);
    for line in events.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["kind"].as_str() {
            Some("key.down") => keys_stored += 1,
            Some("mouse.move") => moves_stored += 1,
            _ => {}
        }
    }
    println!(
        "daemon: {cpu:.2}% of one core ({:.2}x the bare listener), peak RSS {rss:.1} MB",
        cpu / bare_cpu.max(0.01)
    );
    println!("keys: {keys_sent} sent, {keys_stored} stored; mouse moves: {moves_sent} sent, {moves_stored} stored (thinned to 30 Hz)");
    println!(
        "capture_cpu_pct={cpu:.2} bare_cpu_pct={bare_cpu:.2} peak_rss_mb={rss:.1} keys_sent={keys_sent} keys_stored={keys_stored} moves_sent={moves_sent} moves_stored={moves_stored}"
    );
}
