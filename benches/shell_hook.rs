//! Shell-hook benchmark: what the hook costs an interactive shell per
//! prompt, against the same shell without the hook, in the same run.
//!
//! cargo bench --bench shell_hook [-- --commands 1000 --rounds 5]
//!
//! Each round runs three interactive sessions of each shell (bash, and zsh
//! when installed), fed the same N trivial commands (`:`) on stdin:
//! without the hook, with the hook and the daemon up, and with the hook and
//! no daemon. The overhead per prompt is (hooked − bare) / N, from the
//! median session times; the daemon-up rounds must also have recorded every
//! command. Last line:
//! `hook_ms_per_prompt_bash=U hook_ms_per_prompt_bash_down=D [hook_ms_per_prompt_zsh=…]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CANDOR: &str = env!("CARGO_BIN_EXE_candor");

fn candor(data: &Path, config: &Path) -> Command {
    let mut c = Command::new(CANDOR);
    c.arg("--data-dir")
        .arg(data)
        .env("CANDOR_CONFIG_DIR", config)
        .env("CANDOR_KEY_STORE", "file");
    c
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One interactive session: optionally the hook, then `n` commands.
/// Returns the wall time of the whole session.
fn session(shell: &str, hook: Option<&Path>, config: &Path, n: u64) -> Duration {
    let mut script = String::new();
    if let Some(data) = hook {
        script += &format!(
            "eval \"$('{CANDOR}' --data-dir '{}' shell-hook {shell})\"\n",
            data.display()
        );
    }
    for _ in 0..n {
        script += ":\n";
    }
    script += "exit\n";
    let args: &[&str] = match shell {
        "bash" => &["--norc", "--noprofile", "-i"],
        _ => &["-f", "-i"],
    };
    let started = Instant::now();
    let mut child = Command::new(shell)
        .args(args)
        .env("CANDOR_CONFIG_DIR", config)
        .env("CANDOR_KEY_STORE", "file")
        .env("HISTCONTROL", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the shell");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{shell} failed: {status}");
    started.elapsed()
}

fn recorded(data: &Path, config: &Path) -> usize {
    let out = candor(data, config)
        .args(["events", "--json", "--last", "1000000"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"shell.command\""))
        .count()
}

fn main() {
    let n = arg("--commands", 1000);
    let rounds = arg("--rounds", 5).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let data = tmp.path().join("data");
    let down: PathBuf = tmp.path().join("no-daemon");
    let notice = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(candor::consent::notice::NOTICE.as_bytes()))
    };
    let ok = candor(&data, &config)
        .args([
            "consent",
            "grant",
            "--scopes",
            "shell.commands",
            "--accept-notice",
            &notice,
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut daemon = candor(&data, &config)
        .arg("start")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = data.join("ingest.sock");
    let started = Instant::now();
    while !sock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let shells: Vec<&str> = ["bash", "zsh"]
        .into_iter()
        .filter(|s| {
            Command::new(s)
                .arg("-c")
                .arg(":")
                .status()
                .is_ok_and(|st| st.success())
        })
        .collect();
    println!("shell hook: {n} commands per session, {rounds} rounds, shells {shells:?}");
    let mut last = Vec::new();
    for shell in &shells {
        let (mut bare, mut up, mut off) = (Vec::new(), Vec::new(), Vec::new());
        let before = recorded(&data, &config);
        for r in 0..rounds {
            let b = session(shell, None, &config, n).as_secs_f64();
            let u = session(shell, Some(&data), &config, n).as_secs_f64();
            let d = session(shell, Some(&down), &config, n).as_secs_f64();
            println!(
                "  {shell} round {r}: bare {b:.3} s, hook {u:.3} s, hook with daemon down {d:.3} s"
            );
            bare.push(b);
            up.push(u);
            off.push(d);
        }
        // The relay may still be sending the last commands.
        std::thread::sleep(Duration::from_millis(500));
        let got = recorded(&data, &config) - before;
        let want = (n * rounds) as usize;
        let (b, u, d) = (median(&mut bare), median(&mut up), median(&mut off));
        let per = |t: f64| (t - b) / n as f64 * 1000.0;
        println!(
            "{shell}: median bare {b:.3} s, hook {u:.3} s (ratio {:.2}), daemon down {d:.3} s (ratio {:.2})",
            u / b,
            d / b
        );
        println!(
            "{shell}: per prompt {:.3} ms bare, +{:.3} ms with the hook, +{:.3} ms with the daemon down; recorded {got} of {want}",
            b / n as f64 * 1000.0,
            per(u),
            per(d)
        );
        assert!(
            got >= want,
            "the hook lost commands: {got} of {want} recorded"
        );
        last.push(format!("hook_ms_per_prompt_{shell}={:.3}", per(u)));
        last.push(format!("hook_ms_per_prompt_{shell}_down={:.3}", per(d)));
    }
    let _ = candor(&data, &config).arg("stop").output();
    let _ = daemon.wait();
    println!("{}", last.join(" "));
}
