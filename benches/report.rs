//! Report rendering, end to end: a synthetic store of 5 million events is
//! built with `examples/synthetic_session.rs` (the real writer), then
//! `candor report` renders it, several times; the median run is reported.
//! The budget is under 10 s and under 5 MB: the report aggregates while it
//! streams and draws from the aggregates, never one element per event.
//!
//! cargo bench --bench report [-- --events 5000000 --rounds 3]
//!
//! The last line is `report_s=S report_mb=M events=N`.

use std::process::Command;
use std::time::Instant;

mod common;
use common::{arg, example, median, run};

fn main() {
    let events: u64 = arg("--events", "5000000").parse().expect("--events N");
    let rounds: usize = arg("--rounds", "3").parse().expect("--rounds N");
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");

    let started = Instant::now();
    let out = run(Command::new(example())
        .args(["--events", &events.to_string(), "--duration", "480h"])
        .arg("--data-dir")
        .arg(&data)
        .env("CANDOR_CONFIG_DIR", &config)
        .env("CANDOR_KEY_STORE", "file"));
    println!(
        "store: {} ({:.1}s)",
        out.trim(),
        started.elapsed().as_secs_f64()
    );
    let stored: u64 = {
        let conn = rusqlite::Connection::open(data.join("candor.db")).expect("open store");
        conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .expect("count") as u64
    };

    let mut secs = Vec::new();
    let mut sizes = Vec::new();
    for round in 1..=rounds {
        let file = tmp.path().join(format!("report-{round}.html"));
        let started = Instant::now();
        run(Command::new(env!("CARGO_BIN_EXE_candor"))
            .arg("--data-dir")
            .arg(&data)
            .args(["report", "--out"])
            .arg(&file)
            .env("CANDOR_CONFIG_DIR", &config)
            .env("CANDOR_KEY_STORE", "file"));
        let s = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&file).expect("report written").len();
        let html = std::fs::read_to_string(&file).expect("read report");
        // The events drawn are the events stored: nothing was skipped.
        let drawn: u64 = html
            .split(r#"<tr data-lane=""#)
            .skip(1)
            .filter_map(|row| {
                let at = row.find(r#"data-events=""#)? + 13;
                row[at..].split('"').next()?.parse::<u64>().ok()
            })
            .sum();
        assert_eq!(drawn, stored, "the lanes' totals differ from the store");
        println!(
            "round {round}: {s:.2}s, {:.2} MB, {} SVG/HTML elements",
            bytes as f64 / 1e6,
            html.matches('<').count()
        );
        secs.push(s);
        sizes.push(bytes as f64 / 1e6);
    }
    let s = median(secs);
    let mb = median(sizes);
    println!(
        "budget: under 10 s ({}) and under 5 MB ({})",
        if s < 10.0 { "met" } else { "MISSED" },
        if mb < 5.0 { "met" } else { "MISSED" }
    );
    println!("report_s={s:.2} report_mb={mb:.2} events={stored}");
}
