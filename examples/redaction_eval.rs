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

use std::collections::BTreeMap;
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
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
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
