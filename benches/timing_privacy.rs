//! The keystroke-timing attack at scale: synthetic typists written into a
//! real store as capture does, exported by the real `candor-export` with
//! its defaults (or with the options after `--`), and re-identified by the
//! attacks of tests/timing_harness (1-NN on digraph, key-class, rhythm,
//! pace and envelope features; raw-enrolled, export-vs-export, and pooled
//! over every export).
//!
//! It takes the path without X: typing 60 four-line sessions in real time
//! under Xvfb would take about half an hour, so the typed-for-real version
//! (tests/timing_privacy_x11.rs) runs a small configuration instead.
//!
//! cargo bench --bench timing_privacy [-- --typists 10 --sessions 6 --lines 4 --exports 20 --seed N]
//!
//! The last line is `timing_ident_ratio=R pause_err_p95=E`: R is the worst
//! attack's accuracy over chance, E the 95th percentile of the relative
//! error of pauses of 1 s or more.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/timing_harness/mod.rs"]
mod harness;

use harness::*;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let cfg = Config::new(
        arg("--typists", 10) as usize,
        arg("--sessions", 6) as usize,
        arg("--lines", 4) as usize,
        arg("--seed", 0x7141_b0b5),
    );
    let exports = arg("--exports", 20) as usize;
    assert!(
        cfg.typists >= 2 && cfg.sessions >= 2,
        "need 2 typists and 2 sessions"
    );
    let started = std::time::Instant::now();
    let out = experiment(&cfg, exports, &[]);
    println!(
        "pipeline: synthetic typists written into a store as capture writes them (no X); {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for line in &out.report {
        println!("{line}");
    }
    let max = out.pause_errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    println!(
        "{} typists x {} sessions, {exports} exports; pauses >= 1 s: {} measured, max error {:.3}; bursts preserved: {}",
        cfg.typists,
        cfg.sessions,
        out.pause_errors.len(),
        max,
        out.bursts_kept
    );
    println!(
        "pooled over {exports} exports: worst {:.2}x chance, AUC {:.2}",
        out.pooled_worst, out.pooled_auc
    );
    println!(
        "timing_ident_ratio={:.2} pause_err_p95={:.3}",
        out.worst.max(out.pooled_worst),
        p95(&out.pause_errors)
    );
}
