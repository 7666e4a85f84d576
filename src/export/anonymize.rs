//! Anonymization: what replaces who, where and when.
//!
//! - Pseudonyms for subjects, workspaces, files and episodes are
//!   HMAC-SHA256 under the export's salt. The salt is random per export
//!   unless the data team supplies one, and it is never written out, so two
//!   exports are unlinkable by default and a pseudonym cannot be reversed
//!   by hashing guesses.
//! - Paths keep their depth and extensions; names are hashed, except for a
//!   short allowlist of conventional names that identify nobody.
//! - The only absolute time is the ISO week an episode started in.
//! - Key timing is re-synthesized: inter-key intervals identify people
//!   (keystroke dynamics), so every interval under a second is replaced by
//!   a draw from one population model, the same for everybody, and only
//!   pauses of a second or more are kept, on a coarse jittered log scale
//!   (within 10 %). Every exported time goes through the same warp
//!   ([`TimeWarp`]), so no duration or start gives the measured pace back.
//!   Measured timing leaves only with `--timing raw` ([`TimingMode::Raw`]),
//!   which the exporter refuses unless every exported event's consent
//!   granted `keys.rhythm`.

use std::collections::HashMap;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ExportError;

/// Names kept as they are in paths: conventional, shared by countless
/// projects, and useful to a model (a test directory, a manifest).
pub const PATH_ALLOWLIST: &[&str] = &[
    ".cargo",
    ".github",
    ".gitignore",
    ".vscode",
    "__init__.py",
    "app",
    "benches",
    "bin",
    "build.rs",
    "Cargo.lock",
    "Cargo.toml",
    "cmd",
    "CMakeLists.txt",
    "components",
    "conftest.py",
    "docs",
    "Dockerfile",
    "examples",
    "go.mod",
    "go.sum",
    "include",
    "index.js",
    "index.ts",
    "internal",
    "lib",
    "lib.rs",
    "LICENSE",
    "main.go",
    "main.py",
    "main.rs",
    "Makefile",
    "migrations",
    "mod.rs",
    "package-lock.json",
    "package.json",
    "pkg",
    "pyproject.toml",
    "README.md",
    "requirements.txt",
    "scripts",
    "setup.py",
    "src",
    "test",
    "tests",
    "tsconfig.json",
    "workflows",
];

/// File extensions kept in anonymized paths: languages, markup, config and
/// data formats, which tell a model what a file is and nobody who wrote it.
pub const KNOWN_EXTENSIONS: &[&str] = &[
    "c",
    "cc",
    "cfg",
    "cjs",
    "clj",
    "cmake",
    "conf",
    "cpp",
    "cs",
    "css",
    "csv",
    "cxx",
    "dart",
    "diff",
    "dockerfile",
    "el",
    "erl",
    "ex",
    "exs",
    "fs",
    "gitignore",
    "go",
    "gradle",
    "graphql",
    "h",
    "hpp",
    "hs",
    "html",
    "ini",
    "ipynb",
    "java",
    "jl",
    "js",
    "json",
    "jsonl",
    "jsx",
    "kt",
    "kts",
    "less",
    "lock",
    "lua",
    "m",
    "md",
    "mjs",
    "ml",
    "mli",
    "mod",
    "nix",
    "php",
    "pl",
    "pm",
    "proto",
    "ps1",
    "py",
    "pyi",
    "r",
    "rb",
    "rs",
    "rst",
    "sass",
    "scala",
    "scss",
    "sh",
    "sql",
    "sum",
    "svelte",
    "svg",
    "swift",
    "tex",
    "tf",
    "toml",
    "ts",
    "tsx",
    "txt",
    "vim",
    "vue",
    "xml",
    "yaml",
    "yml",
    "zig",
    "zsh",
];

/// The export's secret: the HMAC key behind every pseudonym and the seed of
/// the timing jitter.
pub struct Salt {
    key: Zeroizing<[u8; 32]>,
    supplied: bool,
}

impl Salt {
    /// A fresh random salt: this export cannot be linked to any other.
    pub fn random() -> Result<Salt, ExportError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut())
            .map_err(|e| ExportError::Option(format!("the OS random generator failed: {e}")))?;
        Ok(Salt {
            key,
            supplied: false,
        })
    }

    /// A salt from a file the data team keeps, to link exports on purpose.
    /// At least 16 bytes, so that a guessable word is not taken for a key.
    pub fn from_file(path: &Path) -> Result<Salt, ExportError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| ExportError::Io {
            path: path.to_path_buf(),
            source: e,
        })?);
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < 16 {
            return Err(ExportError::Option(format!(
                "salt file {} holds {} bytes; it needs at least 16 (for example \
                 `head -c 32 /dev/urandom | base64 > salt`)",
                path.display(),
                trimmed.len()
            )));
        }
        let mut h = Sha256::new();
        h.update(b"candor export salt v1\0");
        h.update(trimmed);
        Ok(Salt {
            key: Zeroizing::new(h.finalize().into()),
            supplied: true,
        })
    }

    pub fn supplied(&self) -> bool {
        self.supplied
    }
}

/// Turns identifying values into pseudonyms, consistently within an export.
pub struct Anonymizer {
    salt: Salt,
    /// Seeds the timing jitter. It comes from the store's key, not from
    /// the salt: the same keys get the same jitter in every export, so
    /// averaging many exports of one episode cannot undo it.
    jitter_key: Option<Zeroizing<[u8; 32]>>,
    names: HashMap<String, String>,
    pub quantum_ms: i64,
    pub jitter_ms: i64,
    pub timing: TimingMode,
}

impl Anonymizer {
    pub fn new(salt: Salt, quantum_ms: i64, jitter_ms: i64) -> Result<Anonymizer, ExportError> {
        if quantum_ms < 1 {
            return Err(ExportError::Option(
                "the timing quantum must be at least 1ms".into(),
            ));
        }
        if jitter_ms < 0 {
            return Err(ExportError::Option(
                "the timing jitter cannot be negative".into(),
            ));
        }
        Ok(Anonymizer {
            salt,
            jitter_key: None,
            names: HashMap::new(),
            quantum_ms,
            jitter_ms,
            timing: TimingMode::Anonymized,
        })
    }

    pub fn salt_supplied(&self) -> bool {
        self.salt.supplied()
    }

    fn mac(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.salt.key.as_ref())
            .expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// A 128-bit pseudonym in hex. `domain` keeps a workspace and a file of
    /// the same name apart.
    pub fn pseudonym(&self, domain: &str, value: &str) -> String {
        hex::encode(&self.mac(domain, value.as_bytes())[..16])
    }

    /// A pseudonym that also names a directory (`subject_id=<it>`): `s`
    /// and 31 hex digits, so that it is never all digits, which readers of
    /// hive partitions (polars) would take for a number, dropping leading
    /// zeros.
    pub fn subject_pseudonym(&self, value: &str) -> String {
        let mut id = self.pseudonym("subject", value);
        id.replace_range(..1, "s");
        id
    }

    /// A relative path with every name hashed but the allowlisted ones;
    /// depth and extensions stay. A leading `/` or `..` never survives.
    pub fn path(&mut self, path: &str) -> String {
        let mut out = Vec::new();
        for part in path.split(['/', '\\']) {
            match part {
                "" | "." => continue,
                ".." => out.push("_up".to_owned()),
                _ => out.push(self.name(part)),
            }
        }
        if out.is_empty() {
            out.push(self.name(path));
        }
        out.join("/")
    }

    fn name(&mut self, name: &str) -> String {
        if PATH_ALLOWLIST.contains(&name) {
            return name.to_owned();
        }
        if let Some(done) = self.names.get(name) {
            return done.clone();
        }
        let hashed = hex::encode(&self.mac("name", name.as_bytes())[..6]);
        let out = match name.rsplit_once('.') {
            // Extensions say which language; an unknown one could say more
            // (`notes.janedoe`), so only known ones are kept.
            Some((stem, ext))
                if !stem.is_empty()
                    && KNOWN_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) =>
            {
                format!("{hashed}.{ext}")
            }
            _ if name.starts_with('.') => format!(".{hashed}"),
            _ => hashed,
        };
        self.names.insert(name.to_owned(), out.clone());
        out
    }

    /// Seeds the jitter from a secret that stays with the store.
    pub fn with_jitter_key(mut self, key: [u8; 32]) -> Anonymizer {
        self.jitter_key = Some(Zeroizing::new(key));
        self
    }

    /// The timing generator of one episode, from the salt and the
    /// episode's raw identity (never written), mixed with the store's key
    /// when there is one. One store and one salt give the same draws;
    /// another salt gives fresh ones, which average to the population
    /// model and never to the engineer's rhythm, since no draw depends on
    /// a measured interval.
    pub fn timing_rng(&self, episode: &str) -> SmallRng {
        let salted = self.mac("timing v2", episode.as_bytes());
        let m: [u8; 32] = match &self.jitter_key {
            Some(k) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(k.as_ref()).expect("HMAC takes any key length");
                mac.update(b"timing v2\0");
                mac.update(&salted);
                mac.finalize().into_bytes().into()
            }
            None => salted,
        };
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&m);
        SmallRng::from_seed(seed)
    }

    /// An offset in ms, rounded to the quantum.
    pub fn quantize(&self, ms: i64) -> i64 {
        let q = self.quantum_ms;
        (ms.max(0) + q / 2) / q * q
    }
}

/// How key timing leaves an export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimingMode {
    /// Re-synthesized ([`TimeWarp::new`]): the default, safe to share.
    #[default]
    Anonymized,
    /// Measured times, on the quantum grid: a biometric, which leaves only
    /// under `keys.rhythm`.
    Raw,
}

impl TimingMode {
    pub const ALL: [TimingMode; 2] = [TimingMode::Anonymized, TimingMode::Raw];

    /// The name `--timing` takes and the manifest's `timing_mode` holds.
    pub fn name(self) -> &'static str {
        match self {
            TimingMode::Anonymized => "anonymized",
            TimingMode::Raw => "raw",
        }
    }

    pub fn from_name(name: &str) -> Option<TimingMode> {
        TimingMode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// What the manifest's `timing` says about how times were made.
    pub fn description(self) -> &'static str {
        match self {
            TimingMode::Anonymized => TIMING_MODE,
            TimingMode::Raw => RAW_TIMING_MODE,
        }
    }
}

/// The default timing mode, as the manifest describes it.
pub const TIMING_MODE: &str = "synthesized: intervals under 1 s between keys drawn from one \
     population model (log-normal, median 160 ms); pauses of 1 s or more kept on a 12 % \
     log grid after 2.5 % jitter (within 10 %); hold times dropped";

/// `--timing raw`, as the manifest describes it.
pub const RAW_TIMING_MODE: &str = "measured: every time as captured, rounded to the timing \
     quantum; identifies the typist; exported under keys.rhythm; hold times dropped";

/// Intervals of at least this much between two keys are pauses: kept (on
/// the log scale). Shorter ones are typing rhythm: replaced.
pub const PAUSE_MS: f64 = 1_000.0;

/// The log-scale step pauses are rounded to (12 %), and the uniform jitter
/// added before rounding (±2.5 % in log terms): together at most
/// ln(1.12)/2 + 0.025 = 0.082 from the truth, -7.8 % to +8.5 %, which
/// leaves room for rounding both ends to a 10 ms grid and stays within
/// 10 % for every pause of a second or more.
const PAUSE_STEP: f64 = 0.113_328_685_307_003_2; // ln(1.12)
const PAUSE_JITTER: f64 = 0.025;

/// The population model of an interval between two keys of a burst: a
/// log-normal with a median of 160 ms (about 65 words a minute), the same
/// for every engineer, kept under the pause threshold.
const POP_MEDIAN_MS: f64 = 160.0;
const POP_SIGMA: f64 = 0.5;

/// A pause of `ms` (at least [`PAUSE_MS`]), on the jittered log scale.
pub fn pause_ms(ms: f64, rng: &mut SmallRng) -> f64 {
    let j = rng.random_range(-PAUSE_JITTER..=PAUSE_JITTER);
    let q = ((ms.max(1.0).ln() + j) / PAUSE_STEP).round() * PAUSE_STEP;
    q.exp()
}

/// One interval between two keys, from the population model alone.
pub fn typing_interval_ms(rng: &mut SmallRng) -> f64 {
    // Box-Muller: a standard normal from two uniforms.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (POP_MEDIAN_MS * (POP_SIGMA * z).exp()).clamp(20.0, PAUSE_MS - 50.0)
}

/// The exported clock of one episode: a monotone map from raw time (ns) to
/// exported ms since the episode's start. Knots are the episode's start
/// and end and every key press. Between two keys, an interval under a
/// second becomes a population draw and a longer one a log-scale pause;
/// between a key and the start or end, a short stretch is kept as it is
/// (it holds no rhythm) and a long one is a pause. Everything between
/// knots (an editor's edits alongside the keys, a command, a mouse run)
/// is placed proportionally, so its start and duration follow the
/// re-synthesized keys and never the measured ones.
pub struct TimeWarp {
    raw: Vec<i64>,
    out: Vec<f64>,
}

impl TimeWarp {
    /// `keys` are the key presses' raw times, in order; `t0` and `t_end`
    /// bound the episode.
    pub fn new(t0: i64, t_end: i64, keys: &[i64], rng: &mut SmallRng) -> TimeWarp {
        let mut knots: Vec<(i64, bool)> = Vec::with_capacity(keys.len() + 2);
        knots.push((t0, false));
        knots.extend(keys.iter().map(|&k| (k.clamp(t0, t_end.max(t0)), true)));
        knots.push((t_end.max(t0), false));
        let mut raw = Vec::with_capacity(knots.len());
        let mut out = Vec::with_capacity(knots.len());
        raw.push(t0);
        out.push(0.0);
        for w in knots.windows(2) {
            let ((a, a_key), (b, b_key)) = (w[0], w[1]);
            let gap = (b - a) as f64 / 1e6;
            let step = if gap >= PAUSE_MS {
                pause_ms(gap, rng)
            } else if a_key && b_key {
                typing_interval_ms(rng)
            } else {
                gap
            };
            let last = *out.last().expect("one knot at least");
            if b == *raw.last().expect("one knot at least") && !(a_key && b_key) {
                continue;
            }
            raw.push(b);
            out.push(last + step);
        }
        TimeWarp { raw, out }
    }

    /// The identity clock of `--timing raw`: exported ms are measured ms
    /// since `t0`.
    pub fn measured(t0: i64, t_end: i64) -> TimeWarp {
        let t_end = t_end.max(t0);
        TimeWarp {
            raw: vec![t0, t_end],
            out: vec![0.0, (t_end - t0) as f64 / 1e6],
        }
    }

    /// Exported ms since the episode's start for a raw time.
    pub fn at(&self, ts: i64) -> f64 {
        let i = self.raw.partition_point(|&r| r <= ts);
        if i == 0 {
            return 0.0;
        }
        if i >= self.raw.len() {
            return *self.out.last().expect("one knot at least");
        }
        // raw[i-1] <= ts < raw[i]; equal raw times (two keys pressed in
        // the same instant) take the later knot's value.
        let (ra, rb) = (self.raw[i - 1], self.raw[i]);
        let (oa, ob) = (self.out[i - 1], self.out[i]);
        if rb == ra {
            return oa;
        }
        oa + (ob - oa) * (ts - ra) as f64 / (rb - ra) as f64
    }

    /// The warped length of a span that starts at `ts` and lasts `ms`.
    pub fn span_ms(&self, ts: i64, ms: i64) -> f64 {
        self.at(ts.saturating_add(ms.max(0).saturating_mul(1_000_000))) - self.at(ts)
    }
}

/// The ISO 8601 week (`2026-W48`) of a wall-clock time in ns.
pub fn iso_week(wall_ns: i64) -> String {
    let days = wall_ns.div_euclid(86_400_000_000_000);
    // 1970-01-01 was a Thursday; ISO weeks start on Monday (1).
    let weekday = (days + 3).rem_euclid(7) + 1;
    let thursday = days - weekday + 4;
    let (year, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(year, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000_000;

    fn anon() -> Anonymizer {
        Anonymizer::new(Salt::random().unwrap(), 10, 10).unwrap()
    }

    #[test]
    fn iso_weeks_match_the_calendar() {
        // (date as days since epoch via days_from_civil, expected week)
        let cases = [
            ((2026, 11, 28), "2026-W48"),
            ((2021, 1, 3), "2020-W53"),
            ((2021, 1, 4), "2021-W01"),
            ((2024, 12, 30), "2025-W01"),
            ((2020, 12, 31), "2020-W53"),
            ((1970, 1, 1), "1970-W01"),
            ((2026, 1, 1), "2026-W01"),
        ];
        for ((y, m, d), want) in cases {
            let ns = days_from_civil(y, m, d) * DAY + 13 * 3_600_000_000_000;
            assert_eq!(iso_week(ns), want, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
    }

    #[test]
    fn paths_keep_shape_but_not_names() {
        let mut a = anon();
        let p = a.path("src/billing/acme_invoices.rs");
        let parts: Vec<&str> = p.split('/').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "src");
        assert!(parts[2].ends_with(".rs") && !p.contains("acme") && !p.contains("billing"));
        assert_eq!(a.path("src/billing/acme_invoices.rs"), p, "consistent");
        assert_eq!(a.path("Cargo.toml"), "Cargo.toml");
        assert!(!a.path("/home/jane/secret.txt").starts_with('/'));
        assert!(!a.path("../../etc/passwd").contains(".."));
        let env = a.path(".env");
        assert!(env.starts_with('.') && env != ".env");
        let odd = a.path("notes.jane-doe-private");
        assert!(!odd.contains("jane"));
        let named = a.path("report.janedoe");
        assert!(
            !named.contains("janedoe") && !named.contains('.'),
            "{named}"
        );
        assert!(a.path("x.PY").ends_with(".PY"));
    }

    #[test]
    fn pseudonyms_depend_on_the_salt_and_domain() {
        let (a, b) = (anon(), anon());
        assert_eq!(a.pseudonym("subject", "x"), a.pseudonym("subject", "x"));
        assert_ne!(a.pseudonym("subject", "x"), b.pseudonym("subject", "x"));
        assert_ne!(a.pseudonym("subject", "x"), a.pseudonym("workspace", "x"));
        assert_eq!(a.pseudonym("subject", "x").len(), 32);
        // Partition directory names start with a letter, whatever the hash.
        for v in 0..2_000 {
            let id = a.subject_pseudonym(&v.to_string());
            assert!(id.starts_with('s') && id.len() == 32, "{id}");
            assert!(id[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn supplied_salts_link_exports_and_short_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("salt");
        std::fs::write(&f, "0123456789abcdef0123456789abcdef\n").unwrap();
        let a = Anonymizer::new(Salt::from_file(&f).unwrap(), 10, 0).unwrap();
        let b = Anonymizer::new(Salt::from_file(&f).unwrap(), 10, 0).unwrap();
        assert_eq!(a.pseudonym("file", "p"), b.pseudonym("file", "p"));
        std::fs::write(&f, "short").unwrap();
        assert!(Salt::from_file(&f).is_err());
    }

    #[test]
    fn pauses_stay_within_ten_percent_and_typing_is_drawn_not_measured() {
        let a = anon();
        let mut rng = a.timing_rng("ep");
        for g in (1_000..60_000).step_by(7) {
            let p = pause_ms(f64::from(g), &mut rng);
            let err = (p - f64::from(g)) / f64::from(g);
            assert!(err.abs() <= 0.10, "{g} -> {p}");
        }
        // Two typists, one fast and one slow: the warp gives the same
        // clock for both, since no interval under a second is measured.
        let fast: Vec<i64> = (0..50).map(|i| i * 90_000_000).collect();
        let slow: Vec<i64> = (0..50).map(|i| i * 310_000_000).collect();
        let w1 = TimeWarp::new(0, fast[49], &fast, &mut a.timing_rng("ep"));
        let w2 = TimeWarp::new(0, slow[49], &slow, &mut a.timing_rng("ep"));
        for (f, s) in fast.iter().zip(&slow) {
            assert!((w1.at(*f) - w2.at(*s)).abs() < 1e-6);
        }
        // Same salt and episode, same draws; another episode, others.
        let mut r1 = a.timing_rng("ep");
        let mut r2 = a.timing_rng("ep");
        let mut r3 = a.timing_rng("other");
        let (x, y, z) = (
            typing_interval_ms(&mut r1),
            typing_interval_ms(&mut r2),
            typing_interval_ms(&mut r3),
        );
        assert_eq!(x.to_bits(), y.to_bits());
        assert_ne!(x.to_bits(), z.to_bits());
        // Another salt, other draws.
        let b = anon();
        assert_ne!(
            typing_interval_ms(&mut b.timing_rng("ep")).to_bits(),
            typing_interval_ms(&mut a.timing_rng("ep")).to_bits()
        );
    }

    #[test]
    fn a_warp_is_monotone_and_places_what_lies_between_keys() {
        let a = anon();
        let keys = [1_000_000_000, 1_100_000_000, 4_100_000_000, 4_150_000_000];
        let w = TimeWarp::new(0, 5_000_000_000, &keys, &mut a.timing_rng("e"));
        let mut prev = -1.0;
        for ts in (0..5_200_000_000i64).step_by(10_000_000) {
            let v = w.at(ts);
            assert!(v >= prev, "{ts}: {v} < {prev}");
            prev = v;
        }
        // The 3 s pause between the second and third key survives.
        let pause = w.at(keys[2]) - w.at(keys[1]);
        assert!((pause - 3_000.0).abs() <= 300.0, "{pause}");
        // The 1 s lead-in is a pause too; a short tail is kept as it is.
        assert!((w.at(keys[0]) - 1_000.0).abs() <= 100.0);
        assert!((w.at(5_000_000_000) - w.at(keys[3]) - 850.0).abs() < 1e-6);
    }
}
