//! The ledger file reader behind `candor audit --ledger`
//! (`audit::audit_ledger_file`): any file gives a verdict or an error, never
//! a panic; a valid chain verifies, with its head; and any change to its
//! content (a byte, a dropped, repeated or reordered entry) is found, a cut
//! tail too when the head is known.

use std::io::Write;

use candor::audit::{audit_ledger_file, AuditError, LedgerFileReport};
use candor::consent::ledger::{canonical, leaf_hash, Entry, GENESIS};
use candor::consent::record::{ConsentRecord, Method};
use candor::registry::Scope;
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use serde_json::Value as Json;

const REGRESSIONS: &str = "proptest-regressions/ledger_file.txt";

fn audit(bytes: &[u8], head: Option<&str>) -> Result<LedgerFileReport, AuditError> {
    let mut f = tempfile::NamedTempFile::new().expect("a temp file");
    f.write_all(bytes).expect("write the ledger file");
    let r = audit_ledger_file(f.path(), head);
    if let Ok(report) = &r {
        // The text report is what a reviewer reads: it must render too.
        let _ = report.to_string();
    }
    r
}

/// Whether the audit found something: an error, or a failing verdict.
fn found(r: &Result<LedgerFileReport, AuditError>) -> bool {
    match r {
        Ok(report) => !report.ok,
        Err(_) => true,
    }
}

/// What an entry records: a real consent record for grants and amends
/// (now and then), any JSON otherwise.
fn entry_body() -> impl Strategy<Value = (String, Json)> {
    let action = prop_oneof![
        8 => select(vec![
            "grant", "amend", "revoke", "expire", "notice-changed", "pause", "resume", "purge",
            "export",
        ])
        .prop_map(String::from),
        1 => "[a-z-]{0,10}",
    ];
    let record = (
        subsequence(Scope::ALL.to_vec(), 0..=Scope::ALL.len()),
        any::<i64>(),
        any::<i64>(),
        prop::bool::ANY,
    )
        .prop_map(|(scopes, now, valid, screen)| {
            let method = if screen { Method::Screen } else { Method::Cli };
            let r = ConsentRecord::new(
                "subject",
                &"ab".repeat(32),
                &scopes,
                method,
                now,
                valid,
                None,
            );
            serde_json::json!({ "record": r })
        });
    let data = prop_oneof![3 => crate::json_value(), 1 => record];
    (action, data)
}

/// A chain of entries hashed as Candor hashes them.
fn chain_of(bodies: Vec<(String, Json)>, ts: Vec<i64>) -> Vec<Entry> {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for (i, ((action, data), ts_ns)) in bodies.into_iter().zip(ts).enumerate() {
        let seq = i as i64 + 1;
        let hash = leaf_hash(&canonical(seq, ts_ns, &action, &data, &prev));
        out.push(Entry {
            seq,
            ts_ns,
            action,
            data,
            prev_hash: prev,
            hash: hash.clone(),
        });
        prev = hash;
    }
    out
}

fn chain() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec((entry_body(), any::<i64>()), 1..8).prop_map(|v| {
        let (bodies, ts) = v.into_iter().unzip();
        chain_of(bodies, ts)
    })
}

/// The file `candor consent log --json` writes: one entry per line.
fn file_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend(serde_json::to_vec(e).expect("an entry serializes"));
        out.push(b'\n');
    }
    out
}

/// The entries a file holds, read line by line; `None` when a line is not
/// an entry. Used only to tell a change of content from a change of
/// spelling (a float written with another last digit, a space for the
/// final newline), which leaves the ledger as it was.
fn content(bytes: &[u8]) -> Option<Vec<Entry>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).ok())
        .collect()
}

proptest! {
    #![proptest_config(crate::config(400, REGRESSIONS))]

    /// Any bytes, and any lines of JSON: no panic.
    #[test]
    fn any_file_gets_a_verdict(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(crate::json_value(), 0..4).prop_map(|v| {
                v.iter().map(|j| j.to_string()).collect::<Vec<_>>().join("\n").into_bytes()
            }),
        ],
        head in prop::option::of("[0-9a-f]{64}"),
    ) {
        let _ = audit(&bytes, head.as_deref());
    }

}

proptest! {
    #![proptest_config(crate::config(200, REGRESSIONS))]

    /// A chain written as Candor writes it verifies, ends at its head, and
    /// its history is read (whatever the entries say).
    #[test]
    fn a_valid_chain_verifies(entries in chain()) {
        let bytes = file_of(&entries);
        let head = entries.last().map(|e| e.hash.clone());
        let report = audit(&bytes, head.as_deref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(report.ok, "{:?}", report.ledger.problem);
        prop_assert_eq!(report.ledger.entries, entries.len() as i64);
        prop_assert_eq!(report.ledger.head, head);
    }

}

proptest! {
    #![proptest_config(crate::config(400, REGRESSIONS))]

    /// Any one byte changed, anywhere: found, unless the file still says
    /// exactly the same thing.
    #[test]
    fn any_changed_byte_is_found(entries in chain(), at in any::<Index>(), to in any::<u8>()) {
        let mut bytes = file_of(&entries);
        let at = at.index(bytes.len());
        prop_assume!(bytes[at] != to);
        bytes[at] = to;
        // The same content spelt another way is not a change.
        prop_assume!(content(&bytes).as_ref() != Some(&entries));
        let r = audit(&bytes, None);
        prop_assert!(found(&r), "byte {} set to {:?}: {:?}", at, to as char, r.map(|r| r.ledger));
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// A dropped entry is found, the last one when the head is known; a
    /// repeated or reordered entry is found.
    #[test]
    fn dropped_repeated_and_reordered_entries_are_found(
        entries in chain(),
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let n = entries.len();
        let head = entries[n - 1].hash.clone();
        let (a, b) = (a.index(n), b.index(n));

        let mut dropped = entries.clone();
        dropped.remove(a);
        if a + 1 < n {
            prop_assert!(found(&audit(&file_of(&dropped), None)), "entry {} dropped", a + 1);
        }
        prop_assert!(found(&audit(&file_of(&dropped), Some(&head))), "entry {} dropped", a + 1);

        let mut repeated = entries.clone();
        repeated.insert(b, entries[a].clone());
        prop_assert!(found(&audit(&file_of(&repeated), None)), "entry {} repeated", a + 1);

        if a != b {
            let mut swapped = entries.clone();
            swapped.swap(a, b);
            prop_assert!(found(&audit(&file_of(&swapped), None)), "entries {} and {} swapped", a + 1, b + 1);
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// An entry edited and the whole chain re-hashed after it is a valid
    /// chain again, but not one that ends at the head a reviewer knows.
    #[test]
    fn a_rehashed_chain_does_not_end_at_the_known_head(
        entries in chain(),
        at in any::<Index>(),
        data in crate::json_value(),
    ) {
        let at = at.index(entries.len());
        prop_assume!(entries[at].data != data);
        let head = entries[entries.len() - 1].hash.clone();
        let mut bodies: Vec<(String, Json)> = entries.iter().map(|e| (e.action.clone(), e.data.clone())).collect();
        bodies[at].1 = data;
        let forged = chain_of(bodies, entries.iter().map(|e| e.ts_ns).collect());
        prop_assert!(found(&audit(&file_of(&forged), Some(&head))));
    }
}

proptest! {
    #![proptest_config(crate::config(64, REGRESSIONS))]

    /// Found by this property: a file with no entry (empty, or blank
    /// lines) passed as an intact ledger. An empty ledger vouches for
    /// nothing: it is a finding.
    #[test]
    fn a_ledger_without_entries_is_a_finding(blank in "[ \t\r\n]{0,8}") {
        let r = audit(blank.as_bytes(), None);
        prop_assert!(found(&r), "{:?} passed as a ledger", blank);
    }
}
