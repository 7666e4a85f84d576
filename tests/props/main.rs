//! Property tests (proptest) for the inputs Candor reads from outside: the
//! ingest protocol, `candor-export redact --jsonl`, the ledger file behind
//! `candor audit --ledger`, the config loader, and the key replay behind
//! typed-text redaction. One module per target.
//!
//! Each property runs a bounded number of cases so the suite stays at
//! seconds; `PROPTEST_CASES` overrides every count for a long run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --test props
//! ```
//!
//! A failure is shrunk and its seed saved under `proptest-regressions/`
//! (committed), so the next run replays it first.

mod config;
mod key_replay;
mod ledger_file;
mod protocol;
mod redact_jsonl;
mod regressions;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// `cases` unless `PROPTEST_CASES` is set (`ProptestConfig::with_cases`
/// would ignore the variable, so a long run could not raise the counts).
/// Failures are saved to `regressions`, a path from the package root
/// (cargo runs tests there): one file per module, so a module's saved
/// seeds are replayed only by its own properties.
pub fn config(cases: u32, regressions: &'static str) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    // Cases a property sets aside (`prop_assume!`: a mutation that does
    // not apply) are drawn again; allow as many as the cases themselves.
    c.max_global_rejects = c.max_global_rejects.max(c.cases);
    c.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(regressions)));
    c
}

/// The case counts follow `PROPTEST_CASES` when it is set: the long run
/// runs what it says.
#[test]
fn case_counts_follow_proptest_cases() {
    let want = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    assert_eq!(config(7, "unused").cases, want);
}

/// Any JSON value, nested a few levels.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(J::from),
        ".{0,12}".prop_map(J::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

/// A credential in a provider's format with a random body, as its issuer
/// makes it. Bodies too regular to be issued (entropy under the rules'
/// floor of 3 bits per byte) are left out: the rules refuse those on
/// purpose.
pub fn planted_secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "ghp_[A-Za-z0-9]{36}",
        "gho_[A-Za-z0-9]{36}",
        "github_pat_[A-Za-z0-9_]{82}",
        "glpat-[A-Za-z0-9_-]{20,30}",
        "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
        "(sk|rk)_live_[A-Za-z0-9]{24,40}",
        "AKIA[A-Z2-7]{16}",
        "AIza[A-Za-z0-9_-]{35}",
        "npm_[A-Za-z0-9]{36}",
        "hf_[A-Za-z]{34}",
        "SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}",
        "sk-ant-api03-[A-Za-z0-9_-]{93}AA",
    ]
    .prop_filter("as random as an issued token", |s| {
        candor::redact::keep::entropy(s) >= 3.0
    })
}

/// Prose that no rule may touch: lowercase words (some accented or not
/// Latin) separated by single spaces.
pub fn plain_words() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zéøß日本]{1,10}", 1..12).prop_map(|w| w.join(" "))
}
