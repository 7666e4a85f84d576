//! Keystroke timing in exports, measured by attacking it: synthetic typists
//! with their own rhythm are written into a real store as capture writes
//! them, exported by the real exporter with the default options, and
//! re-identified with 1-nearest-neighbour attacks. The default export must
//! identify nobody better than 1.5 times chance, keep every pause of a
//! second or more within 10 %, and keep the bursts.

mod common;
#[path = "timing_harness/mod.rs"]
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candor::export::model::Episode;
use common::*;
use harness::*;

/// Exports with `salt` (its bytes), JSONL only, each session one episode.
fn export(t: &TestStore, name: &str, salt: &str, extra: &[&str]) -> Vec<Episode> {
    let salt_path = t.tmp.path().join(format!("{name}.salt"));
    std::fs::write(&salt_path, salt).unwrap();
    let out = t.tmp.path().join(name);
    let mut args = vec![
        "episodes",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--format",
        "jsonl",
        "--idle-gap",
        "30s",
        "--salt-file",
        salt_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = t.run("candor-export", &args);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    candor::export::jsonl::read(&out).unwrap()
}

fn bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("episodes.jsonl")).unwrap()
}

/// Which session each exported episode is, by the text it typed.
fn by_session(eps: &[Episode], sessions: &[Session]) -> Vec<Keys> {
    let index: HashMap<String, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| (s.text.replace('\n', ""), i))
        .collect();
    assert_eq!(index.len(), sessions.len(), "session texts must differ");
    let mut out = vec![None; sessions.len()];
    for ep in eps {
        let text = episode_text(ep);
        let i = *index
            .get(&text)
            .unwrap_or_else(|| panic!("an exported episode matches no session: {text:?}"));
        out[i] = Some(export_keys(ep));
    }
    out.into_iter()
        .enumerate()
        .map(|(i, k)| k.unwrap_or_else(|| panic!("session {i} was not exported")))
        .collect()
}

type Table = Vec<(usize, usize, BTreeMap<String, f64>)>;

fn table(sessions: &[Session], keys: &[Keys], attack: Attack) -> Table {
    sessions
        .iter()
        .zip(keys)
        .map(|(s, k)| (s.typist, s.index, features(k, attack)))
        .collect()
}

struct Score {
    correct: usize,
    probes: usize,
    chance: f64,
}

impl Score {
    fn add(&mut self, (c, p, ch): (usize, usize, f64)) {
        self.chance = (self.chance * self.probes as f64 + ch * p as f64) / (self.probes + p) as f64;
        self.correct += c;
        self.probes += p;
    }
    fn ratio(&self) -> f64 {
        self.correct as f64 / self.probes as f64 / self.chance
    }
}

#[test]
fn default_exports_do_not_identify_typists_and_keep_pauses() {
    let cfg = Config {
        // Enough sessions that the attack pooling all exports of each one
        // (one probe per session) measures something: 48 probes.
        typists: 8,
        sessions: 6,
        lines: 4,
        seed: 0x7141_2026_1203,
    };
    let exports = 20;
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let sessions = sessions(&cfg, now_ns() + 1_000 * MS);
    capture(
        &t,
        sessions.iter().flat_map(|s| s.events.iter().cloned()).collect(),
    );
    let raw: Vec<Keys> = sessions.iter().map(raw_keys).collect();

    let mut runs: Vec<Vec<Keys>> = Vec::new();
    for k in 0..exports {
        let eps = export(&t, &format!("x{k}"), &format!("salt number {k:02} of the harness"), &[]);
        assert_eq!(eps.len(), sessions.len(), "one episode per session");
        runs.push(by_session(&eps, &sessions));
    }
    // One store and one salt: the same bytes.
    export(&t, "again", "salt number 00 of the harness", &[]);
    assert_eq!(
        bytes(&t.tmp.path().join("x0")),
        bytes(&t.tmp.path().join("again")),
        "one store and one salt must give byte-identical exports"
    );

    let mut worst = 0.0f64;
    let mut report = Vec::new();
    for attack in ATTACKS {
        let raw_table = table(&sessions, &raw, attack);
        // The attack has power: raw against raw identifies typists.
        let base = identify(&raw_table, &raw_table);
        let mut enrolled = Score { correct: 0, probes: 0, chance: 0.0 };
        let mut versus = Score { correct: 0, probes: 0, chance: 0.0 };
        let mut per_export: Vec<Table> = Vec::new();
        for run in &runs {
            let exp = table(&sessions, run, attack);
            enrolled.add(identify(&exp, &raw_table));
            versus.add(identify(&exp, &exp));
            per_export.push(exp);
        }
        // An attacker pooling all the exports of each session.
        let pooled: Table = (0..sessions.len())
            .map(|i| {
                let maps: Vec<_> = per_export.iter().map(|e| e[i].2.clone()).collect();
                (sessions[i].typist, sessions[i].index, average(&maps))
            })
            .collect();
        let mut pooled_score = Score { correct: 0, probes: 0, chance: 0.0 };
        pooled_score.add(identify(&pooled, &raw_table));
        let base_ratio = base.0 as f64 / base.1 as f64 / base.2;
        report.push(format!(
            "{attack:?}: raw-vs-raw {}/{} ({base_ratio:.2}x chance {:.3}); \
             raw-enrolled {}/{} ({:.2}x); export-vs-export {}/{} ({:.2}x); \
             pooled over {exports} exports {}/{} ({:.2}x)",
            base.0,
            base.1,
            base.2,
            enrolled.correct,
            enrolled.probes,
            enrolled.ratio(),
            versus.correct,
            versus.probes,
            versus.ratio(),
            pooled_score.correct,
            pooled_score.probes,
            pooled_score.ratio(),
        ));
        if matches!(attack, Attack::Digraph | Attack::Pace | Attack::Rhythm) {
            assert!(
                base_ratio >= 2.5,
                "the {attack:?} attack has no power on raw timing ({base_ratio:.2}x chance): \
                 the harness proves nothing"
            );
        }
        worst = worst
            .max(enrolled.ratio())
            .max(versus.ratio())
            .max(pooled_score.ratio());
    }

    let mut errs = Vec::new();
    let mut bursts_kept = true;
    for run in &runs {
        for (r, e) in raw.iter().zip(run) {
            let (err, same) = fidelity(r, e).expect("every key exported");
            errs.extend(err);
            bursts_kept &= same;
        }
    }
    let max = errs.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    for line in &report {
        println!("{line}");
    }
    println!(
        "pauses >= 1 s: {} measured, error p95 {:.3}, max {:.3}; bursts preserved: {bursts_kept}",
        errs.len(),
        p95(&errs),
        max
    );
    println!("timing_ident_ratio={worst:.2} pause_err_p95={:.3}", p95(&errs));
    assert!(errs.len() >= 50, "too few pauses to measure: {}", errs.len());
    assert!(max <= 0.10, "a pause of 1 s or more moved by {:.1} %", max * 100.0);
    assert!(bursts_kept, "burst boundaries moved");
    assert!(
        worst <= 1.5,
        "the default export identifies typists at {worst:.2}x chance:\n{}",
        report.join("\n")
    );
}
