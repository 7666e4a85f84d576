//! Measured key timing leaves only by an explicit choice: `--timing raw`
//! is refused unless every exported event was recorded under a consent
//! granting `keys.rhythm` (still in force), and the manifest says which
//! timing mode an export used. The default export is unchanged by it.

mod common;

use std::path::Path;

use candor::export::model::{ActionBody, Episode};
use common::*;

const MS: i64 = 1_000_000;

/// Intervals that are nobody's population draw: a typist's own.
const GAPS_MS: [i64; 9] = [73, 212, 95, 341, 128, 77, 406, 151, 260];

/// Ten keys from `t0`, `GAPS_MS` apart.
fn keys(t0: i64) -> Vec<candor::event::Event> {
    let mut t = t0;
    let mut out = vec![key_down(t, "a")];
    for g in GAPS_MS {
        t += g * MS;
        out.push(key_down(t, "a"));
    }
    out
}

fn export(t: &TestStore, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "episodes",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--format",
        "jsonl",
        "--timing-quantum",
        "1ms",
    ];
    args.extend_from_slice(extra);
    t.run("candor-export", &args)
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The intervals between consecutive exported keys, over all episodes.
fn intervals(dir: &Path) -> Vec<i64> {
    let eps: Vec<Episode> = candor::export::jsonl::read(dir).unwrap();
    let mut out = Vec::new();
    for ep in &eps {
        let times: Vec<i64> = ep
            .actions
            .iter()
            .flat_map(|a| match &a.body {
                ActionBody::Typing { keys, .. } => {
                    keys.iter().map(|k| a.t_ms + k.t).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            })
            .collect();
        out.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    out
}

fn refused_for_rhythm(o: &std::process::Output) -> bool {
    // Exit status 3: refused by consent, as a revoked consent is.
    o.status.code() == Some(3) && stderr(o).contains("keys.rhythm")
}

#[test]
fn raw_timing_is_refused_without_keys_rhythm_and_the_default_is_unchanged() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    capture(&t, keys(now_ns() + 1_000 * MS));

    let raw = t.tmp.path().join("raw");
    let o = export(&t, &raw, &["--timing", "raw"]);
    assert!(
        refused_for_rhythm(&o),
        "--timing raw without keys.rhythm: {:?} {}",
        o.status,
        stderr(&o)
    );
    assert!(!raw.exists(), "a refused export left a directory");

    // The default, spelled out or not: re-synthesized, and it says so.
    for (name, extra) in [
        ("default", &[][..]),
        ("named", &["--timing", "anonymized"][..]),
    ] {
        let out = t.tmp.path().join(name);
        let o = export(&t, &out, extra);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let m = manifest(&out);
        assert_eq!(m["anonymization"]["timing_mode"], "anonymized", "{m}");
        let mode = m["anonymization"]["timing"].as_str().unwrap_or("");
        assert!(mode.starts_with("synthesized"), "{m}");
        let got = intervals(&out);
        assert_eq!(got.len(), GAPS_MS.len());
        assert_ne!(
            got, GAPS_MS,
            "the default export carries measured intervals"
        );
    }

    let o = export(&t, &t.tmp.path().join("bad"), &["--timing", "exact"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--timing takes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn raw_timing_leaves_under_keys_rhythm_and_the_manifest_says_so() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,keys.rhythm");
    capture(&t, keys(now_ns() + 1_000 * MS));

    let raw = t.tmp.path().join("raw");
    let o = export(&t, &raw, &["--timing", "raw"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest(&raw);
    assert_eq!(m["anonymization"]["timing_mode"], "raw", "{m}");
    let mode = m["anonymization"]["timing"].as_str().unwrap_or("");
    assert!(mode.starts_with("measured"), "{m}");
    assert_eq!(
        intervals(&raw),
        GAPS_MS,
        "raw timing is not the measured one"
    );
    let v = t.run("candor-export", &["verify", raw.to_str().unwrap()]);
    assert!(v.status.success(), "verify: {}", stderr(&v));

    // Granting keys.rhythm changes nothing for the default export.
    let def = t.tmp.path().join("default");
    let o = export(&t, &def, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest(&def)["anonymization"]["timing_mode"], "anonymized");
    assert_ne!(intervals(&def), GAPS_MS);
    // And the two modes never share an export id.
    assert_ne!(manifest(&def)["export_id"], manifest(&raw)["export_id"]);
}

#[test]
fn raw_timing_needs_keys_rhythm_at_the_time_of_every_event_and_now() {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    // Typed under a consent without keys.rhythm...
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = now_ns();
    capture(&t, keys(before));
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    // ...then keys.rhythm granted, and more typed under it.
    let amended = now_ns();
    grant(&t, "keys.timing,keys.text,keys.rhythm");
    let after = now_ns() + 2_000 * MS;
    capture(&t, keys(after));

    // The earlier keys were not recorded under keys.rhythm: refused, not
    // quietly thinned to what may leave.
    let o = export(&t, &t.tmp.path().join("all"), &["--timing", "raw"]);
    assert!(refused_for_rhythm(&o), "{:?} {}", o.status, stderr(&o));

    // What was recorded under it may leave.
    let since = humantime::format_rfc3339_nanos(
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos((amended + 500 * MS) as u64),
    )
    .to_string();
    let out = t.tmp.path().join("since");
    let o = export(&t, &out, &["--timing", "raw", "--since", &since]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(intervals(&out), GAPS_MS);

    // Withdrawn since: the consent in force now must grant it too.
    grant(&t, "keys.timing,keys.text");
    let o = export(
        &t,
        &t.tmp.path().join("withdrawn"),
        &["--timing", "raw", "--since", &since],
    );
    assert!(refused_for_rhythm(&o), "{:?} {}", o.status, stderr(&o));
}

#[test]
fn keys_rhythm_needs_keys_timing_and_the_notice_warns_in_plain_words() {
    let t = TestStore::new();
    let o = grant_for(&t, "keys.rhythm,mouse", "1d");
    assert!(
        !o.status.success() && stderr(&o).contains("keys.timing"),
        "{}",
        stderr(&o)
    );
    let notice = candor::consent::notice::scope_sections();
    let (_, body) = notice
        .iter()
        .find(|(h, _)| *h == "keys.rhythm")
        .expect("CONSENT.md describes keys.rhythm");
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Your typing rhythm can identify you"),
        "{flat}"
    );
}
