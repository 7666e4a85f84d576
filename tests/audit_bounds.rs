//! `candor audit --ledger` on input that is not a ledger: an empty file is
//! a finding, not a pass, and an endless or huge input fails at once with
//! the limit it hit, instead of being read without bound.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn audit_ledger(t: &TestStore, file: &str) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = t.candor(&["audit", "--ledger", file]);
    let took = started.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    (out.status.success(), text, took)
}

#[test]
fn an_empty_ledger_file_is_a_finding() {
    let t = TestStore::new();
    for (name, content) in [("empty.jsonl", ""), ("blank.jsonl", "\n\n  \n")] {
        let file = t.tmp.path().join(name);
        std::fs::write(&file, content).unwrap();
        let (ok, out, _) = audit_ledger(&t, file.to_str().unwrap());
        assert!(!ok, "an empty ledger passed: {out}");
        assert!(out.contains("holds no ledger entries"), "{out}");
        assert!(out.contains("verdict    FAIL"), "{out}");
        assert!(!out.contains("PASS"), "{out}");
    }
}

#[test]
fn dev_zero_fails_fast_naming_the_line_limit() {
    let t = TestStore::new();
    let (ok, out, took) = audit_ledger(&t, "/dev/zero");
    assert!(!ok, "{out}");
    assert!(
        out.contains("line 1 is longer than 1024 KiB (MAX_LEDGER_LINE)"),
        "{out}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_huge_sparse_file_fails_fast_naming_the_size_limit() {
    let t = TestStore::new();
    let file = t.tmp.path().join("huge.jsonl");
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let (ok, out, took) = audit_ledger(&t, file.to_str().unwrap());
    assert!(!ok, "{out}");
    assert!(
        out.contains("larger than 256 MiB (MAX_LEDGER_FILE)"),
        "{out}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
