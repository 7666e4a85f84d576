//! Evaluates the redaction engine on gitleaks' rule samples (see
//! ../shared/eval/README.md): recall on must-redact rows and the
//! false-positive rate on must-keep rows, split by `origin`.
//!
//! The corpus is read at run time and never copied into the project; when it
//! is absent the example says so and exits successfully.
//!
//! ```sh
//! cargo run --release --example redaction_eval -- ../shared/eval/gitleaks-samples.jsonl [--show]
//! ```
//! `--show` prints every missed and every falsely redacted row. It first
//! runs the rule table's own vectors and fails if any does not hold.
//!
//! Then a false-positive check on real text from this machine: files
//! sampled from crate sources (`~/.cargo/registry/src`), Python
//! site-packages and `/usr/share/doc` (`--real-mb N` per source, 20 by
//! default; 0 turns it off), scanned with no identity. It prints findings
//! per rule and per 10 MB; `--show-real` prints every secret finding with
//! its line, to be read and classified. A source that is absent is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candor::redact::{Category, Identity, Redactor};

#[derive(Default)]
struct Tally {
    redact: usize,
    caught: usize,
    keep: usize,
    flagged_secret: usize,
    flagged_any: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show = args.iter().any(|a| a == "--show");
    let show_real = args.iter().any(|a| a == "--show-real");
    let real_mb: usize = args
        .iter()
        .position(|a| a == "--real-mb")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let path = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--real-mb"))
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| "../shared/eval/gitleaks-samples.jsonl".to_owned());
    // No OS identity: the corpus is not this machine's, and the figures must
    // not depend on who runs them.
    let redactor = match Redactor::new(&Identity::none()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redaction_eval: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Our own vectors first: each rule's true positives found by that rule,
    // its false positives not.
    let (mut passed, mut total) = (0, 0);
    for rule in candor::redact::rules::RULES {
        for (text, want) in rule
            .tp
            .iter()
            .map(|t| (t, true))
            .chain(rule.fp.iter().map(|t| (t, false)))
        {
            total += 1;
            let found = redactor.scan(text).iter().any(|f| f.rule == rule.id);
            if found == want {
                passed += 1;
            } else {
                println!(
                    "OWN VECTOR FAILS {}: {text:?} (expected found={want})",
                    rule.id
                );
            }
        }
    }
    println!("own rule vectors: {passed}/{total} pass");
    if passed != total {
        return ExitCode::FAILURE;
    }

    if real_mb > 0 {
        real_text(&redactor, real_mb << 20, show_real);
    }
    let data = match std::fs::read_to_string(&path) {
        Ok(d) => d,
        Err(e) => {
            println!("redaction_eval: gitleaks corpus skipped: cannot read {path} ({e})");
            return ExitCode::SUCCESS;
        }
    };
    let mut by_origin: BTreeMap<String, Tally> = BTreeMap::new();
    for (n, line) in data.lines().enumerate() {
        let row: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("redaction_eval: {path}:{}: {e}", n + 1);
                return ExitCode::FAILURE;
            }
        };
        let text = row["text"].as_str().unwrap_or_default();
        let origin = row["origin"].as_str().unwrap_or("?").to_owned();
        let rule = row["rule"].as_str().unwrap_or("?");
        let must_redact = row["secret"].as_bool().unwrap_or(false)
            || row["py_rules_fired"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        let findings = redactor.scan(text);
        let secret = findings.iter().any(|f| f.category == Category::Secret);
        let t = by_origin.entry(origin.clone()).or_default();
        let short: String = text.chars().take(160).collect();
        if must_redact {
            t.redact += 1;
            if secret {
                t.caught += 1;
            } else if show {
                println!("MISS {origin} {rule}: {short:?}");
            }
        } else {
            t.keep += 1;
            if secret {
                t.flagged_secret += 1;
                if show {
                    let rules: Vec<_> = findings.iter().map(|f| f.rule).collect();
                    println!("FP   {origin} {rule} {rules:?}: {short:?}");
                }
            }
            if !findings.is_empty() {
                t.flagged_any += 1;
            }
        }
    }
    let ratio = |a: usize, b: usize| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    println!(
        "{:<10} {:>8} {:>8} {:>7} {:>6} {:>9} {:>9}",
        "origin", "redact", "caught", "recall", "keep", "fp_secret", "fp_any"
    );
    let mut real = Tally::default();
    for (origin, t) in &by_origin {
        println!(
            "{:<10} {:>8} {:>8} {:>7.4} {:>6} {:>9.4} {:>9.4}",
            origin,
            t.redact,
            t.caught,
            ratio(t.caught, t.redact),
            t.keep,
            ratio(t.flagged_secret, t.keep),
            ratio(t.flagged_any, t.keep)
        );
        if origin != "synthetic" {
            real.redact += t.redact;
            real.caught += t.caught;
            real.keep += t.keep;
            real.flagged_secret += t.flagged_secret;
            real.flagged_any += t.flagged_any;
        }
    }
    let recall = ratio(real.caught, real.redact);
    let fp = ratio(real.flagged_secret, real.keep);
    println!(
        "non-synthetic: recall={recall:.4} ({}/{}) fp_rate={fp:.4} ({}/{}) fp_rate_any_finding={:.4}",
        real.caught,
        real.redact,
        real.flagged_secret,
        real.keep,
        ratio(real.flagged_any, real.keep)
    );
    let ok = recall >= 0.98 && fp <= 0.10;
    println!(
        "targets (recall >= 0.98, fp <= 0.10): {}",
        if ok { "met" } else { "NOT met" }
    );
    // A quality regression fails the test suite, which runs this example.
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Extensions of the text files sampled from the machine.
const TEXT_EXTENSIONS: &[&str] = &[
    "rs", "py", "pyi", "toml", "md", "txt", "json", "yml", "yaml", "cfg", "ini", "sh", "html",
    "rst", "c", "h", "js", "ts", "go", "lock", "conf", "xml", "pem",
];

/// Every file under `dir` (symlinks not followed), sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A stable order that spreads a sample over the whole tree (FNV-1a of
/// the path), so the first N MB are not one crate's files.
fn spread(p: &Path) -> u64 {
    p.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The false-positive check on this machine's code and documentation.
fn real_text(redactor: &Redactor, budget: usize, show: bool) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut sources: Vec<(&str, Vec<PathBuf>)> = vec![
        ("crates", vec![home.join(".cargo/registry/src")]),
        ("doc", vec![PathBuf::from("/usr/share/doc")]),
    ];
    // Python's own idea of where its packages are, when there is a Python.
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import site; print('\\n'.join(site.getsitepackages()))",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    sources.insert(1, ("python", py));
    println!(
        "\nreal text from this machine (no identity), up to {} MB a source:",
        budget >> 20
    );
    let mut totals: BTreeMap<&'static str, (usize, bool)> = BTreeMap::new();
    let mut all_bytes = 0usize;
    for (name, roots) in sources {
        let mut files: Vec<PathBuf> = roots
            .iter()
            .filter(|r| r.is_dir())
            .flat_map(|r| files_under(r))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| TEXT_EXTENSIONS.contains(&e))
                    || p.extension().is_none()
            })
            .collect();
        if files.is_empty() {
            println!("  {name:<7} skipped: not on this machine");
            continue;
        }
        files.sort_by_key(|p| spread(p));
        let (mut bytes, mut n_files, mut secrets, mut other) = (0usize, 0usize, 0usize, 0usize);
        for p in files {
            if bytes >= budget {
                break;
            }
            let Ok(data) = std::fs::read(&p) else {
                continue;
            };
            if data.len() > 1 << 20 {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&data) else {
                continue;
            };
            bytes += text.len();
            n_files += 1;
            for f in redactor.scan(text) {
                let secret = f.category == Category::Secret;
                let e = totals.entry(f.rule).or_insert((0, secret));
                e.0 += 1;
                if secret {
                    secrets += 1;
                    if show {
                        let ls = text[..f.start].rfind('\n').map_or(0, |i| i + 1);
                        let le = text[f.end..].find('\n').map_or(text.len(), |i| f.end + i);
                        let line: String = text[ls..le].chars().take(200).collect();
                        println!("  FINDING {} {}: {line:?}", f.rule, p.display());
                    }
                } else {
                    other += 1;
                }
            }
        }
        all_bytes += bytes;
        let per10 = |n: usize| n as f64 * 10.0 * 1048576.0 / bytes.max(1) as f64;
        println!(
            "  {name:<7} {n_files:>6} files {:>6.1} MB: {secrets} secret findings ({:.2} per 10 MB), {other} personal-data/identity ({:.1} per 10 MB)",
            bytes as f64 / 1048576.0,
            per10(secrets),
            per10(other)
        );
    }
    let per10 = |n: usize| n as f64 * 10.0 * 1048576.0 / all_bytes.max(1) as f64;
    for (rule, (n, secret)) in &totals {
        println!(
            "  {:<28} {:>6} {:>8.2} per 10 MB{}",
            rule,
            n,
            per10(*n),
            if *secret { "  (secret)" } else { "" }
        );
    }
}
