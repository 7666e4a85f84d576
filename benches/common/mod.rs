//! What the end-to-end benchmarks share: arguments, running a step that must
//! succeed, finding the synthetic-session example, medians.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds (if needed) and finds the synthetic_session example, in the same
/// profile as this bench.
pub fn example() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args([
        "build",
        "--quiet",
        "--locked",
        "--profile",
        "bench",
        "--example",
        "synthetic_session",
    ]));
    let exe = std::env::current_exe().expect("bench path");
    // target/<profile>/deps/<bench>-<hash> -> target/<profile>/examples/
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples")
        .join("synthetic_session");
    assert!(dir.exists(), "{} was not built", dir.display());
    dir
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
