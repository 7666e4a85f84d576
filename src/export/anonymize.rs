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
//! - Key timing is quantized and jittered: inter-key intervals identify
//!   people (keystroke dynamics), so raw intervals never leave.

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

    /// The jitter generator of one episode, from its raw identity (never
    /// written): the same episode gets the same jitter in every export.
    /// Without a store key (a store that never sealed anything), the salt
    /// seeds it.
    pub fn timing_rng(&self, episode: &str) -> SmallRng {
        let m = match &self.jitter_key {
            Some(k) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(k.as_ref()).expect("HMAC takes any key length");
                mac.update(b"jitter\0");
                mac.update(episode.as_bytes());
                mac.finalize().into_bytes().into()
            }
            None => self.mac("jitter", episode.as_bytes()),
        };
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&m[..8]);
        SmallRng::seed_from_u64(u64::from_le_bytes(seed))
    }

    /// An offset in ms, rounded to the quantum.
    pub fn quantize(&self, ms: i64) -> i64 {
        let q = self.quantum_ms;
        (ms.max(0) + q / 2) / q * q
    }

    /// A key's offset: jittered by up to ±jitter, then rounded to the
    /// quantum, so neither the exact time nor its rounding survives.
    pub fn key_offset(&self, ms: i64, rng: &mut SmallRng) -> i64 {
        let j = if self.jitter_ms > 0 {
            rng.random_range(-self.jitter_ms..=self.jitter_ms)
        } else {
            0
        };
        self.quantize(ms + j)
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
    fn key_offsets_are_on_the_grid_and_within_the_jitter() {
        let a = anon();
        let mut rng = a.timing_rng("ep");
        let mut moved = 0;
        for ms in 0..2000 {
            let o = a.key_offset(ms, &mut rng);
            assert_eq!(o % 10, 0);
            assert!((o - ms).abs() <= 15, "{ms} -> {o}");
            moved += i64::from(o != a.quantize(ms));
        }
        assert!(moved > 100, "jitter must move some keys off plain rounding");
        let mut r1 = a.timing_rng("ep");
        let mut r2 = a.timing_rng("ep");
        assert_eq!(a.key_offset(123, &mut r1), a.key_offset(123, &mut r2));
    }
}
