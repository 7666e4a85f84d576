//! Export throughput, end to end: a synthetic store of at least 5 million
//! events is built with `examples/synthetic_session.rs` (the real writer,
//! with text, snapshots and commits), then `candor-export episodes` turns
//! it into all three formats, several times; the median run is reported.
//!
//! cargo bench --bench export [-- --events 5000000 --rounds 3 --formats jsonl,parquet,progsnap2]
//!
//! The last line is `export_events_per_s=N export_mb_per_s=M`: events read
//! from the store and admitted per second of wall time, and megabytes of
//! dataset written per second. The JSONL-only export of the same store is
//! measured in the same run, to show what the Parquet and ProgSnap2
//! writers cost on top.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
use common::{arg, example, median, run};

fn export(tmp: &Path, env: &[(&str, &Path)], formats: &str, round: usize) -> (f64, u64, u64) {
    let out = tmp.join(format!("out-{formats}-{round}"));
    let exe = env!("CARGO_BIN_EXE_candor-export");
    let started = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.args([
        "episodes",
        "--synthetic",
        "--quiet",
        "--format",
        formats,
        "--out",
    ])
    .arg(&out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd);
    let secs = started.elapsed().as_secs_f64();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("manifest json");
    let events = manifest["counts"]["events_exported"]
        .as_u64()
        .expect("events");
    let bytes: u64 = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["bytes"].as_u64().unwrap_or(0))
        .sum();
    // Outputs stay until the end: deleting thousands of files makes the
    // file system busy (discards, journal) right when the next round runs.
    (secs, events, bytes)
}

fn main() {
    let events: u64 = arg("--events", "5000000").parse().expect("--events N");
    let rounds: usize = arg("--rounds", "3").parse().expect("--rounds N");
    let formats = arg("--formats", "jsonl,parquet,progsnap2");
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let env: [(&str, &Path); 2] = [("CANDOR_DATA_DIR", &data), ("CANDOR_CONFIG_DIR", &config)];

    // Twenty days end now: up to ~16M events fit, all within every
    // kind's retention (30 days at the shortest).
    let gen = example();
    let started = Instant::now();
    let mut cmd = Command::new(gen);
    cmd.args(["--events", &events.to_string(), "--duration", "480h"])
        .arg("--data-dir")
        .arg(&data)
        .env("CANDOR_CONFIG_DIR", &config)
        .env("CANDOR_KEY_STORE", "file");
    let said = run(&mut cmd);
    let db_bytes = std::fs::metadata(data.join("candor.db")).map_or(0, |m| m.len());
    println!(
        "store: {} ({:.1} s, {:.1} MB)",
        said.trim(),
        started.elapsed().as_secs_f64(),
        db_bytes as f64 / 1e6
    );

    let mut env_all = env.to_vec();
    env_all.push(("CANDOR_KEY_STORE", Path::new("file")));
    let (mut secs, mut jsonl_secs) = (Vec::new(), Vec::new());
    let (mut exported, mut written) = (0, 0);
    for round in 0..rounds {
        // Alternate, so that drift on a noisy machine hits both alike.
        let (s, e, b) = export(tmp.path(), &env_all, &formats, round);
        let (j, _, jb) = export(tmp.path(), &env_all, "jsonl", round);
        println!(
            "round {round}: {formats} {s:.2} s ({e} events, {:.1} MB); jsonl alone {j:.2} s ({:.1} MB)",
            b as f64 / 1e6,
            jb as f64 / 1e6
        );
        secs.push(s);
        jsonl_secs.push(j);
        exported = e;
        written = b;
    }
    let (s, j) = (median(secs), median(jsonl_secs));
    println!(
        "median: {formats} {s:.2} s, jsonl alone {j:.2} s (all formats cost {:.2}x the JSONL alone)",
        s / j
    );
    assert!(
        exported >= events,
        "only {exported} events were exported of {events}"
    );
    println!(
        "export_events_per_s={:.0} export_mb_per_s={:.1}",
        exported as f64 / s,
        written as f64 / 1e6 / s
    );
}
