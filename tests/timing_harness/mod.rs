//! The keystroke-timing attack harness, shared by tests/timing_privacy.rs
//! (a small configuration) and benches/timing_privacy.rs (a large one):
//! synthetic typists with their own rhythm, their key events as capture
//! writes them, and the attacks a re-identifier would run on an export.
//!
//! Each typist has an overall pace, a hold time and a flight time per
//! digraph, with 12 % noise on every key. What they type and where they
//! pause is drawn the same way for everyone, so any identification above
//! chance comes from rhythm, which is what the exporter must not leak.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::common::*;

use candor::event::Event;
use candor::export::model::{ActionBody, Episode};
use candor::registry::Kind;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub const MS: i64 = 1_000_000;
/// A gap longer than this between two keys is a thinking pause: kept.
pub const PAUSE_MS: i64 = 1_000;
/// A gap longer than this splits typing bursts in the exporter.
pub const BURST_GAP_MS: i64 = 2_000;

/// Lines of code and prose everybody types from; a session types a few.
const PASSAGES: &[&str] = &[
    "let total = items.iter().map(|x| x.price).sum::<u64>();",
    "for line in reader.lines() { count += 1; }",
    "the cache is rebuilt when the index changes on disk",
    "fn parse_header(input: &str) -> result<header, error> {",
    "assert_eq!(parsed.len(), 3, \"three fields expected\");",
    "we should retry the request once before giving up",
    "if let some(value) = map.get(&key) { return value.clone(); }",
    "import numpy as np; data = np.loadtxt(path, delimiter=',')",
    "the test fails because the fixture is created too late",
    "git commit -m \"fix the off by one in the pager\"",
    "def mean(values): return sum(values) / len(values)",
    "select name, count(*) from orders group by name;",
    "make the buffer smaller so the writer flushes sooner",
    "const limit: usize = 4096; let mut buf = vec![0u8; limit];",
    "while queue.len() > 0 { let job = queue.pop(); run(job); }",
    "the reviewer asked for a comment on the locking order",
];

/// One synthetic typist's rhythm.
pub struct Typist {
    pace: f64,
    hold_ms: f64,
    flights: HashMap<(char, char), f64>,
    rng: SmallRng,
}

impl Typist {
    pub fn new(seed: u64) -> Typist {
        let mut rng = SmallRng::seed_from_u64(seed);
        Typist {
            pace: rng.random_range(0.7..1.5),
            hold_ms: rng.random_range(60.0..130.0),
            flights: HashMap::new(),
            rng,
        }
    }

    /// This typist's own flight time for a digraph, fixed once drawn.
    fn flight(&mut self, a: char, b: char) -> f64 {
        let pace = self.pace;
        let rng = &mut self.rng;
        *self
            .flights
            .entry((a, b))
            .or_insert_with(|| pace * rng.random_range(80.0..260.0))
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One typed session: its key presses (char, press time in ms from the
/// session start) and the events capture would have written.
pub struct Session {
    pub typist: usize,
    pub index: usize,
    pub text: String,
    pub presses: Vec<(char, i64)>,
    pub events: Vec<Event>,
}

fn class_of(c: char) -> &'static str {
    if c.is_ascii_alphabetic() {
        "letter"
    } else if c.is_ascii_digit() {
        "digit"
    } else if c == ' ' {
        "space"
    } else if c == '\n' {
        "edit"
    } else {
        "punctuation"
    }
}

fn key_event(kind: Kind, ts: i64, key: &str, class: &str, mods: i64, text: Option<char>) -> Event {
    let mut e = Event::new(
        kind,
        candor::event::Stamp {
            wall_ns: ts,
            mono_ns: 0,
        },
    );
    e.set("class", class).expect("class");
    e.set("mods", mods).expect("mods");
    e.set("key", key).expect("key");
    if let Some(c) = text {
        e.set("text", c.to_string()).expect("text");
    }
    e
}

/// Types `cfg.lines` passages as `typist`, from `t0_ns`. Pauses (where
/// and how long) come from `layout`, which is the same for every typist.
pub fn type_session(
    typist: &mut Typist,
    who: usize,
    index: usize,
    t0_ns: i64,
    cfg: &Config,
    layout: &mut SmallRng,
) -> Session {
    let mut order: Vec<&str> = PASSAGES.to_vec();
    order.shuffle(layout);
    let mut text = String::new();
    for (i, l) in order.iter().take(cfg.lines).enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(l);
    }
    let chars: Vec<char> = text.chars().collect();
    // Hesitations placed for sure (after these spaces), so that even a
    // one-line session has pauses to measure; none unless asked, which
    // keeps the draws of older configurations as they were.
    let mut forced = std::collections::HashSet::new();
    if cfg.pauses > 0 {
        let spaces: Vec<usize> = (1..chars.len()).filter(|&i| chars[i - 1] == ' ').collect();
        for _ in 0..cfg.pauses.min(spaces.len()) {
            forced.insert(spaces[layout.random_range(0..spaces.len())]);
        }
    }
    let mut presses = Vec::with_capacity(chars.len());
    let mut events = Vec::new();
    let mut t = 0.0f64;
    let mut prev: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        if let Some(p) = prev {
            let gap = if p == '\n' {
                // A thinking pause between lines: 1 to 6 s, for everyone.
                layout.random_range(1_000.0..6_000.0)
            } else if p == ' ' && (layout.random_bool(0.04) | forced.contains(&i)) {
                // A short hesitation inside a line, under the burst gap.
                layout.random_range(1_050.0..1_900.0)
            } else {
                let f = typist.flight(p, c) * cfg.speed;
                (f * (1.0 + 0.12 * normal(&mut typist.rng))).max(15.0)
            };
            t += gap;
        }
        prev = Some(c);
        let ms = t.round() as i64;
        presses.push((c, ms));
        let ts = t0_ns + ms * MS;
        let hold =
            (typist.hold_ms * cfg.speed * (1.0 + 0.12 * normal(&mut typist.rng))).max(10.0) as i64;
        let Some((key, shift)) = candor::keymap::us_key_for_char(c) else {
            continue;
        };
        let class = class_of(c);
        let text = (c != '\n').then_some(c);
        if shift {
            events.push(key_event(
                Kind::KeyDown,
                ts - 30 * MS,
                "ShiftLeft",
                "modifier",
                0,
                None,
            ));
        }
        events.push(key_event(
            Kind::KeyDown,
            ts,
            &key,
            class,
            i64::from(shift),
            text,
        ));
        events.push(key_event(
            Kind::KeyUp,
            ts + hold * MS,
            &key,
            class,
            i64::from(shift),
            None,
        ));
        if shift {
            events.push(key_event(
                Kind::KeyUp,
                ts + (hold + 10) * MS,
                "ShiftLeft",
                "modifier",
                1,
                None,
            ));
        }
    }
    Session {
        typist: who,
        index,
        text,
        presses,
        events,
    }
}

/// A configuration of the experiment.
pub struct Config {
    pub typists: usize,
    pub sessions: usize,
    pub lines: usize,
    pub seed: u64,
    /// Scales every typist's flight and hold times (1.0: as drawn; 0.5:
    /// twice as fast, to keep real-time typing under X short).
    pub speed: f64,
    /// Hesitations (1.05 to 1.9 s) placed for sure in every session, on
    /// top of the 4 % chance after each space.
    pub pauses: usize,
}

impl Config {
    /// `typists` x `sessions` of `lines` lines each, at the drawn speed.
    pub fn new(typists: usize, sessions: usize, lines: usize, seed: u64) -> Config {
        Config {
            typists,
            sessions,
            lines,
            seed,
            speed: 1.0,
            pauses: 0,
        }
    }
}

/// Every typist's sessions, one minute apart (the export is cut with a
/// shorter idle gap, so each session is one episode).
pub fn sessions(cfg: &Config, t0_ns: i64) -> Vec<Session> {
    let mut layout = SmallRng::seed_from_u64(cfg.seed ^ 0x5eed_1a40);
    let mut typists: Vec<Typist> = (0..cfg.typists)
        .map(|i| Typist::new(cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64)))
        .collect();
    let mut out: Vec<Session> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut start = t0_ns;
    // Interleaved, so a session's place in the store says nothing.
    for s in 0..cfg.sessions {
        for (who, typist) in typists.iter_mut().enumerate() {
            // Every session types a different text, so the harness can
            // tell which episode is which; the draw ignores the typist.
            let sess = loop {
                let sess = type_session(typist, who, s, start, cfg, &mut layout);
                if seen.insert(sess.text.clone()) {
                    break sess;
                }
            };
            let last = sess.presses.last().map_or(0, |p| p.1);
            start += (last + 60_000) * MS;
            out.push(sess);
        }
    }
    out
}

/// The keys of one session as an attacker sees them: each key's label
/// (its character when the text lines up with the keys, else its class),
/// its absolute time in ms, and whether it starts a burst.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub keys: Vec<(String, i64, bool)>,
    pub duration_ms: i64,
}

/// The label of a modifier press: kept for pauses (a pause before a
/// capital ends at the Shift), left out of the rhythm features.
pub const MODIFIER: &str = "<mod>";

/// The raw keys of a session, from the events capture wrote.
pub fn raw_keys(s: &Session) -> Keys {
    let mut downs: Vec<(i64, String)> = s
        .events
        .iter()
        .filter(|e| e.kind == Kind::KeyDown)
        .map(|e| (e.wall_ns, label(e)))
        .collect();
    downs.sort_by_key(|d| d.0);
    let t0 = downs.first().map_or(0, |d| d.0);
    let mut keys = Vec::new();
    let mut prev: Option<i64> = None;
    for (ns, label) in downs {
        let t = (ns - t0) / MS;
        let starts = prev.is_none_or(|p| t - p > BURST_GAP_MS);
        keys.push((label, t, starts));
        prev = Some(t);
    }
    Keys {
        duration_ms: keys.last().map_or(0, |k| k.1),
        keys,
    }
}

/// The label of a captured key press, as [`raw_keys`] gives it.
fn label(e: &Event) -> String {
    match (e.get("class"), e.get("text")) {
        (Some(candor::event::Value::Str(c)), _) if c == "modifier" => MODIFIER.to_owned(),
        (_, Some(candor::event::Value::Str(t))) => t.to_string(),
        _ => "\n".to_owned(),
    }
}

/// Every key press of `events` in time order, as (label, time in ns, starts
/// a burst): what capture recorded, for a store typed into for real.
pub fn captured_keys(events: &[Event]) -> Vec<(String, i64, bool)> {
    let mut downs: Vec<(i64, String)> = events
        .iter()
        .filter(|e| e.kind == Kind::KeyDown)
        .map(|e| (e.wall_ns, label(e)))
        .collect();
    downs.sort_by_key(|d| d.0);
    let mut out = Vec::with_capacity(downs.len());
    let mut prev: Option<i64> = None;
    for (ns, l) in downs {
        // The exporter's own rule, in ns: a gap of more than 2 s.
        let starts = prev.is_none_or(|p| ns - p > BURST_GAP_MS * MS);
        out.push((l, ns, starts));
        prev = Some(ns);
    }
    out
}

/// Every exported key of `eps`, in file order, as (label, time in ms,
/// starts a burst); times run on across episodes, which the harness only
/// compares within one.
pub fn exported_keys(eps: &[Episode]) -> Vec<(String, i64, bool)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for ep in eps {
        let k = export_keys(ep);
        out.extend(k.keys.into_iter().map(|(l, t, s)| (l, offset + t, s)));
        offset += ep.duration_ms + BURST_GAP_MS * 10;
    }
    out
}

/// Keys `range` of a key sequence as a session of their own; `ns` says
/// the times are in ns (captured) rather than ms (exported).
pub fn slice(all: &[(String, i64, bool)], range: std::ops::Range<usize>, ns: bool) -> Keys {
    let part = &all[range];
    let unit = if ns { MS } else { 1 };
    let t0 = part.first().map_or(0, |k| k.1);
    let keys: Vec<(String, i64, bool)> = part
        .iter()
        .map(|(l, t, s)| (l.clone(), (t - t0 + unit / 2) / unit, *s))
        .collect();
    Keys {
        duration_ms: keys.last().map_or(0, |k| k.1),
        keys,
    }
}

/// The keys of an exported episode, as the attacker reads them.
pub fn export_keys(ep: &Episode) -> Keys {
    let mut keys = Vec::new();
    for a in &ep.actions {
        if let ActionBody::Typing { text, keys: ks, .. } = &a.body {
            let visible = ks.iter().filter(|k| k.class != "modifier").count();
            let chars: Option<Vec<char>> = text.as_ref().map(|t| t.chars().collect());
            let aligned = chars.as_ref().filter(|c| c.len() == visible);
            let mut n = 0;
            for (i, k) in ks.iter().enumerate() {
                let label = if k.class == "modifier" {
                    MODIFIER.to_owned()
                } else {
                    n += 1;
                    match aligned {
                        Some(c) => c[n - 1].to_string(),
                        None => k.class.clone(),
                    }
                };
                keys.push((label, a.t_ms + k.t, i == 0));
            }
        }
    }
    Keys {
        keys,
        duration_ms: ep.duration_ms,
    }
}

/// The text an exported episode typed, to tell which session it is (the
/// harness's knowledge, not the attacker's).
pub fn episode_text(ep: &Episode) -> String {
    let mut out = String::new();
    for a in &ep.actions {
        if let ActionBody::Typing { text: Some(t), .. } = &a.body {
            out.push_str(t);
        }
    }
    out.replace('\n', "")
}

/// Features an attacker computes from a session's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// Mean flight per digraph.
    Digraph,
    /// Mean flight per (class, class) pair: what `keys.timing` alone gives.
    KeyClass,
    /// Digraph means divided by the session's median flight.
    Rhythm,
    /// The session's mean inter-key interval within bursts.
    Pace,
    /// The episode's duration per key: pace from the envelope.
    Envelope,
}

pub const ATTACKS: [Attack; 5] = [
    Attack::Digraph,
    Attack::KeyClass,
    Attack::Rhythm,
    Attack::Pace,
    Attack::Envelope,
];

fn label_class(l: &str) -> &'static str {
    match l.chars().next() {
        Some(c) if l.chars().count() == 1 => class_of(c),
        _ => "other",
    }
}

/// Flights inside bursts (under the pause threshold), by digraph.
fn flights(k: &Keys) -> Vec<(String, String, f64)> {
    let keys: Vec<&(String, i64, bool)> = k.keys.iter().filter(|k| k.0 != MODIFIER).collect();
    keys.windows(2)
        .filter(|w| !w[1].2 && w[1].1 - w[0].1 < PAUSE_MS)
        .map(|w| (w[0].0.clone(), w[1].0.clone(), (w[1].1 - w[0].1) as f64))
        .collect()
}

pub fn features(k: &Keys, attack: Attack) -> BTreeMap<String, f64> {
    let fl = flights(k);
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut add = |key: String, v: f64| {
        let e = sums.entry(key).or_insert((0.0, 0.0));
        e.0 += v;
        e.1 += 1.0;
    };
    let median = {
        let mut v: Vec<f64> = fl.iter().map(|f| f.2).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(1.0).max(1.0)
    };
    match attack {
        Attack::Digraph | Attack::Rhythm => {
            let scale = if attack == Attack::Rhythm {
                median
            } else {
                1.0
            };
            for (a, b, v) in &fl {
                add(format!("{a}{b}"), v / scale);
            }
        }
        Attack::KeyClass => {
            for (a, b, v) in &fl {
                add(format!("{}>{}", label_class(a), label_class(b)), *v);
            }
        }
        Attack::Pace => {
            for (_, _, v) in &fl {
                add("pace".into(), *v);
            }
        }
        Attack::Envelope => {
            add(
                "per_key".into(),
                k.duration_ms as f64 / k.keys.len().max(1) as f64,
            );
        }
    }
    sums.into_iter()
        // A digraph seen once is mostly noise; two makes a mean.
        .filter(|(_, (_, n))| attack != Attack::Digraph && attack != Attack::Rhythm || *n >= 2.0)
        .map(|(k, (s, n))| (k, s / n))
        .collect()
}

/// Averages feature maps (an attacker pooling many exports of one session).
pub fn average(maps: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            let e = sums.entry(k.clone()).or_insert((0.0, 0.0));
            e.0 += v;
            e.1 += 1.0;
        }
    }
    sums.into_iter().map(|(k, (s, n))| (k, s / n)).collect()
}

/// 1-nearest-neighbour identification. Every probe session is matched
/// against the gallery sessions other than itself (its own raw timing is
/// never enrolled); returns (correct, probes, chance accuracy, AUC): the
/// AUC is the share of (same-typist, other-typist) candidate pairs in
/// which the same typist's session is the closer, 0.5 at chance; it is
/// far less noisy than the hit count when probes are few.
/// Features are standardized over probes and gallery together; distance is
/// the mean squared difference over shared features.
pub fn identify(
    probes: &[(usize, usize, BTreeMap<String, f64>)],
    gallery: &[(usize, usize, BTreeMap<String, f64>)],
) -> (usize, usize, f64, f64) {
    let (mut pairs, mut ordered) = (0.0f64, 0.0f64);
    let mut stats: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for (_, _, m) in probes.iter().chain(gallery) {
        for (k, v) in m {
            let e = stats.entry(k.as_str()).or_insert((0.0, 0.0, 0.0));
            e.0 += v;
            e.1 += v * v;
            e.2 += 1.0;
        }
    }
    let z = |k: &str, v: f64| {
        let (s, ss, n) = stats[k];
        let mean = s / n;
        let sd = (ss / n - mean * mean).max(0.0).sqrt().max(1e-9);
        (v - mean) / sd
    };
    let mut correct = 0;
    let mut chance = 0.0;
    for (who, idx, p) in probes {
        let mut best: Option<(f64, usize)> = None;
        let candidates: Vec<_> = gallery
            .iter()
            .filter(|(w, i, _)| !(w == who && i == idx))
            .collect();
        let same = candidates.iter().filter(|(w, _, _)| w == who).count();
        chance += same as f64 / candidates.len().max(1) as f64;
        let mut dists: Vec<(f64, bool)> = Vec::new();
        for (w, _, g) in candidates {
            let (mut d, mut n) = (0.0, 0.0);
            for (k, v) in p {
                if let Some(u) = g.get(k) {
                    let diff = z(k, *v) - z(k, *u);
                    d += diff * diff;
                    n += 1.0;
                }
            }
            if n == 0.0 {
                continue;
            }
            let d = d / n;
            dists.push((d, w == who));
            if best.is_none_or(|(b, _)| d < b) {
                best = Some((d, *w));
            }
        }
        if best.is_some_and(|(_, w)| w == *who) {
            correct += 1;
        }
        for (ds, _) in dists.iter().filter(|d| d.1) {
            for (d_o, _) in dists.iter().filter(|d| !d.1) {
                pairs += 1.0;
                ordered += if ds < d_o {
                    1.0
                } else if ds == d_o {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (
        correct,
        probes.len(),
        chance / probes.len().max(1) as f64,
        if pairs > 0.0 { ordered / pairs } else { 0.5 },
    )
}

/// Pause fidelity and burst preservation of one exported session against
/// its raw keys: relative errors of every pause of at least 1 s, and
/// whether the burst starts fall on the same keys.
pub fn fidelity(raw: &Keys, exp: &Keys) -> Result<(Vec<f64>, bool), String> {
    if raw.keys.len() != exp.keys.len() {
        return Err(format!(
            "{} raw keys but {} exported",
            raw.keys.len(),
            exp.keys.len()
        ));
    }
    let mut errs = Vec::new();
    for i in 1..raw.keys.len() {
        let r = raw.keys[i].1 - raw.keys[i - 1].1;
        if r >= PAUSE_MS {
            let e = exp.keys[i].1 - exp.keys[i - 1].1;
            errs.push((e - r) as f64 / r as f64);
        }
    }
    let same = raw.keys.iter().zip(&exp.keys).all(|(r, e)| r.2 == e.2);
    Ok((errs, same))
}

pub fn p95(v: &[f64]) -> f64 {
    let mut a: Vec<f64> = v.iter().map(|x| x.abs()).collect();
    a.sort_by(f64::total_cmp);
    let i = ((a.len() as f64) * 0.95).ceil() as usize;
    a.get(i.saturating_sub(1)).copied().unwrap_or(0.0)
}

/// Exports with `salt` (its bytes), JSONL only, each session one episode.
fn export(t: &TestStore, name: &str, salt: &str, extra: &[&str]) -> Vec<Episode> {
    let mut args = vec!["--idle-gap", "30s"];
    args.extend_from_slice(extra);
    export_with(t, name, salt, &args)
}

/// Exports with `salt` (its bytes) to JSONL, with `extra` options and
/// otherwise the defaults.
pub fn export_with(t: &TestStore, name: &str, salt: &str, extra: &[&str]) -> Vec<Episode> {
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

fn table(labels: &[(usize, usize)], keys: &[Keys], attack: Attack) -> Table {
    labels
        .iter()
        .zip(keys)
        .map(|(&(who, idx), k)| (who, idx, features(k, attack)))
        .collect()
}

#[derive(Default)]
struct Score {
    correct: usize,
    probes: usize,
    chance: f64,
    auc: f64,
}

impl Score {
    fn add(&mut self, (c, p, ch, auc): (usize, usize, f64, f64)) {
        let total = (self.probes + p) as f64;
        self.chance = (self.chance * self.probes as f64 + ch * p as f64) / total;
        self.auc = (self.auc * self.probes as f64 + auc * p as f64) / total;
        self.correct += c;
        self.probes += p;
    }
    fn ratio(&self) -> f64 {
        self.correct as f64 / self.probes as f64 / self.chance
    }
}

/// What one run of the experiment measured.
pub struct Outcome {
    /// One line per attack: accuracy against chance in every setting.
    pub report: Vec<String>,
    /// The worst ratio of accuracy to chance over the attacks on single
    /// exports (every export is attacked, so the probes are many).
    pub worst: f64,
    /// The same for the attacker pooling all exports of each session:
    /// one probe per session, so a noisy figure.
    pub pooled_worst: f64,
    /// The worst AUC of the pooled attacks, and of the single-export ones.
    pub pooled_auc: f64,
    pub single_auc: f64,
    /// Raw-against-raw ratios per attack: the attacks' power.
    pub baseline: Vec<(Attack, f64)>,
    /// Relative errors of every pause of 1 s or more, in every export.
    pub pause_errors: Vec<f64>,
    pub bursts_kept: bool,
}

/// Writes `cfg`'s sessions into a fresh store as capture does, grants
/// consent, exports `exports` times with different salts (checking that a
/// repeated salt gives the same bytes) and runs every attack.
pub fn experiment(cfg: &Config, exports: usize, extra: &[&str]) -> Outcome {
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text");
    let sessions = sessions(cfg, now_ns() + 1_000 * MS);
    capture(
        &t,
        sessions
            .iter()
            .flat_map(|s| s.events.iter().cloned())
            .collect(),
    );
    let raw: Vec<Keys> = sessions.iter().map(raw_keys).collect();

    let mut runs: Vec<Vec<Keys>> = Vec::new();
    for k in 0..exports {
        let eps = export(
            &t,
            &format!("x{k}"),
            &format!("salt number {k:02} of the harness"),
            extra,
        );
        assert_eq!(eps.len(), sessions.len(), "one episode per session");
        runs.push(by_session(&eps, &sessions));
    }
    // One store and one salt: the same bytes.
    export(&t, "again", "salt number 00 of the harness", extra);
    assert_eq!(
        bytes(&t.tmp.path().join("x0")),
        bytes(&t.tmp.path().join("again")),
        "one store and one salt must give byte-identical exports"
    );

    let labels: Vec<(usize, usize)> = sessions.iter().map(|s| (s.typist, s.index)).collect();
    evaluate(&labels, &raw, &runs)
}

/// Runs every attack on exported sessions and measures pause and burst
/// fidelity. `labels[i]` is session i's (typist, index), `raw[i]` its keys
/// as captured, and `runs[k][i]` its keys in the k-th export (each made
/// with another salt).
pub fn evaluate(labels: &[(usize, usize)], raw: &[Keys], runs: &[Vec<Keys>]) -> Outcome {
    let exports = runs.len();
    let mut worst = 0.0f64;
    let mut baseline = Vec::new();
    let (mut pooled_worst, mut pooled_auc, mut single_auc) = (0.0f64, 0.0f64, 0.0f64);
    let mut report = Vec::new();
    for attack in ATTACKS {
        let raw_table = table(labels, raw, attack);
        // The attack has power: raw against raw identifies typists.
        let base = identify(&raw_table, &raw_table);
        let mut enrolled = Score::default();
        let mut versus = Score::default();
        let mut per_export: Vec<Table> = Vec::new();
        for run in runs {
            let exp = table(labels, run, attack);
            enrolled.add(identify(&exp, &raw_table));
            versus.add(identify(&exp, &exp));
            per_export.push(exp);
        }
        // An attacker pooling all the exports of each session.
        let pooled: Table = (0..labels.len())
            .map(|i| {
                let maps: Vec<_> = per_export.iter().map(|e| e[i].2.clone()).collect();
                (labels[i].0, labels[i].1, average(&maps))
            })
            .collect();
        let mut pooled_score = Score::default();
        pooled_score.add(identify(&pooled, &raw_table));
        let base_ratio = base.0 as f64 / base.1 as f64 / base.2;
        report.push(format!(
            "{attack:?}: raw-vs-raw {}/{} ({base_ratio:.2}x chance {:.3}, AUC {:.2}); \
             raw-enrolled {}/{} ({:.2}x, AUC {:.2}); export-vs-export {}/{} ({:.2}x, AUC {:.2}); \
             pooled over {exports} exports {}/{} ({:.2}x, AUC {:.2})",
            base.0,
            base.1,
            base.2,
            base.3,
            enrolled.correct,
            enrolled.probes,
            enrolled.ratio(),
            enrolled.auc,
            versus.correct,
            versus.probes,
            versus.ratio(),
            versus.auc,
            pooled_score.correct,
            pooled_score.probes,
            pooled_score.ratio(),
            pooled_score.auc,
        ));
        pooled_auc = pooled_auc.max(pooled_score.auc);
        single_auc = single_auc.max(enrolled.auc).max(versus.auc);
        baseline.push((attack, base_ratio));
        worst = worst.max(enrolled.ratio()).max(versus.ratio());
        pooled_worst = pooled_worst.max(pooled_score.ratio());
    }

    let mut errs = Vec::new();
    let mut bursts_kept = true;
    for run in runs {
        for (r, e) in raw.iter().zip(run) {
            let (err, same) = fidelity(r, e).expect("every key exported");
            errs.extend(err);
            bursts_kept &= same;
        }
    }
    Outcome {
        report,
        worst,
        pooled_worst,
        pooled_auc,
        single_auc,
        baseline,
        pause_errors: errs,
        bursts_kept,
    }
}
