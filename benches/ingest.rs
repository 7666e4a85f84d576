//! Ingest benchmark: at least 2 million realistic events (a mix with no
//! text: key timing, mouse, focus, file events) through the real writer path
//! (sink → bounded channel → batches → SQLite), against the same rows
//! pushed by a bare prepared-statement insert in one transaction on the same
//! schema, in the same run.
//!
//! cargo bench --bench ingest [-- --events N --rounds R --batch-max B]
//!
//! Last line: `ingest_ratio=R events_per_s=N raw_per_s=M bytes_per_event=B`
//! (medians over the rounds; bytes per event on disk after the writer run).

use std::time::Instant;

use candor::config::{KeyStoreChoice, WriterConfig};
use candor::event::Event;
use candor::paths::Paths;
use candor::store::codec::{self, Group};
use candor::store::writer::{self, SessionInfo};
use candor::store::Store;
use candor::synthetic::{Generator, Options};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Dirs {
    _tmp: tempfile::TempDir,
    paths: Paths,
}

fn fresh() -> Dirs {
    let tmp = tempfile::tempdir().expect("temp dir");
    let paths = Paths {
        data_dir: tmp.path().join("data"),
        config_dir: tmp.path().join("config"),
    };
    Dirs { _tmp: tmp, paths }
}

fn open(d: &Dirs) -> Store {
    Store::open(&d.paths, KeyStoreChoice::File).expect("open store")
}

fn used_bytes(store: &Store) -> u64 {
    let q = |p: &str| -> i64 { store.conn().query_row(p, [], |r| r.get(0)).expect("pragma") };
    ((q("PRAGMA page_count") - q("PRAGMA freelist_count")) * q("PRAGMA page_size")) as u64
}

/// Returns (events per second, bytes per event on disk).
fn writer_run(events: &[Event], config: &WriterConfig) -> (f64, f64) {
    let d = fresh();
    let store = open(&d);
    let batch = events.to_vec();
    let t0 = Instant::now();
    let (sink, handle) = writer::start(
        store,
        config,
        SessionInfo {
            source: "bench".into(),
            synthetic: true,
        },
    )
    .expect("start writer");
    let producer = std::thread::spawn(move || {
        for e in batch {
            sink.send(e).expect("send");
        }
    });
    producer.join().expect("producer");
    let stats = handle.shutdown().expect("writer shutdown");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(stats.written, events.len() as u64, "the writer lost events");
    assert_eq!(stats.dropped + stats.coalesced, 0);
    let store = open(&d);
    let n: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n as usize, events.len());
    (
        events.len() as f64 / secs,
        used_bytes(&store) as f64 / events.len() as f64,
    )
}

type Row = (u16, i64, i64, Option<Vec<u8>>);

fn raw_run(rows: &[Row]) -> f64 {
    let d = fresh();
    let mut store = open(&d);
    store
        .conn()
        .execute(
            "INSERT INTO sessions(started_ns, source, synthetic, tool_version) VALUES (0, 'bench-raw', 1, 'x')",
            [],
        )
        .expect("session");
    let session = store.conn().last_insert_rowid();
    let t0 = Instant::now();
    let tx = store.conn_mut().transaction().expect("tx");
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO events(session_id, kind, ts_ns, mono_ns, data, sealed, blob_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL)",
            )
            .expect("prepare");
        for (kind, ts, mono, data) in rows {
            stmt.execute(rusqlite::params![session, kind, ts, mono, data])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    store.checkpoint().expect("checkpoint");
    rows.len() as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let n = arg("--events", 2_000_000);
    let rounds = arg("--rounds", 5);
    let config = WriterConfig {
        batch_max: arg("--batch-max", WriterConfig::default().batch_max),
        ..WriterConfig::default()
    };
    let t0 = Instant::now();
    let events: Vec<Event> = Generator::new(Options {
        seed: 7,
        with_text: false,
        ..Options::default()
    })
    .take(n)
    .collect();
    let mut buf = Vec::new();
    let rows: Vec<Row> = events
        .iter()
        .map(|e| {
            let has =
                codec::encode_group(e.kind, e.values(), Group::Public, &mut buf).expect("encode");
            (
                e.kind.code(),
                e.wall_ns,
                e.mono_ns,
                has.then(|| buf.clone()),
            )
        })
        .collect();
    let mut mix = std::collections::BTreeMap::<&str, usize>::new();
    for e in &events {
        *mix.entry(e.kind.name()).or_default() += 1;
    }
    println!(
        "generated {n} events in {:.1}s; mix: {mix:?}",
        t0.elapsed().as_secs_f64()
    );

    let (mut writer_rates, mut raw_rates, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate the order so that neither path always runs on a warmer
        // (or more tired) machine.
        let ((w, b), r) = if round % 2 == 1 {
            let w = writer_run(&events, &config);
            (w, raw_run(&rows))
        } else {
            let r = raw_run(&rows);
            (writer_run(&events, &config), r)
        };
        println!(
            "round {round}: writer {w:.0} events/s, raw {r:.0} rows/s, ratio {:.3}, {b:.1} bytes/event",
            w / r
        );
        writer_rates.push(w);
        raw_rates.push(r);
        bytes.push(b);
    }
    let ratios: Vec<f64> = writer_rates
        .iter()
        .zip(&raw_rates)
        .map(|(w, r)| w / r)
        .collect();
    println!(
        "ingest_ratio={:.3} events_per_s={:.0} raw_per_s={:.0} bytes_per_event={:.1}",
        median(ratios),
        median(writer_rates),
        median(raw_rates),
        median(bytes)
    );
}
