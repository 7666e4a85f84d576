//! A `passwd` dialogue typed for real under Xvfb into a window whose class
//! is a terminal (command line, current password, new password, new again,
//! then a sudo with a typo and a retry), recorded by the daemon and exported
//! with the defaults: no planted password appears in any byte of any
//! export file, in any format, while the commands around them do. Skips
//! with a reason when Xvfb, xdotool or openbox is missing, except under CI.

mod common;

use std::time::Duration;

use candor::export::model::{ActionBody, Episode};
use common::x11::{daemon, stop, X};
use common::*;

const CURRENT: &str = "Curr3nt-Kestrel";
const NEW: &str = "N3w-Osprey-71";
const SUDO_TYPO: &str = "Sud0-Heron-wrong";
const SUDO: &str = "Sud0-Heron-88";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_passwd_dialogue_typed_in_a_terminal_leaves_no_password_in_any_export() {
    let Some(x) = X::start(true) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,window.apps,window.titles");
    let (d, _lines) = daemon(&t, &x);
    let term = x.window("XTerm", "bob@devbox: ~");
    let typing = format!(
        "passwd\n{CURRENT}\n{NEW}\n{NEW}\nls -la\nsudo apt update\n{SUDO_TYPO}\n{SUDO}\ncargo build\n"
    );
    x.xdotool(&["type", "--delay", "30", &typing]);
    std::thread::sleep(Duration::from_millis(800));
    drop(term);
    stop(d);

    let out = t.tmp.path().join("export");
    let o = t.run(
        "candor-export",
        &["episodes", "--quiet", "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "export: {}", stderr(&o));
    let v = t.run("candor-export", &["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "verify: {}", stderr(&v));

    let files = candor::export::verify::list_files(&out).unwrap();
    assert!(files.iter().any(|p| p.ends_with(".parquet")), "{files:?}");
    assert!(
        files.iter().any(|p| p.ends_with("MainTable.csv")),
        "{files:?}"
    );
    // Masked / leaked per program, over every file of the export.
    let all: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.clone(), std::fs::read(out.join(p)).unwrap()))
        .collect();
    println!(
        "{:<8} {:>8} {:>7} {:>7}",
        "program", "answers", "masked", "leaked"
    );
    let mut leaks = Vec::new();
    for (program, answers) in [
        ("passwd", &[CURRENT, NEW][..]),
        ("sudo", &[SUDO_TYPO, SUDO]),
    ] {
        let leaked: Vec<&str> = answers
            .iter()
            .copied()
            .filter(|s| all.iter().any(|(_, b)| contains(b, s)))
            .collect();
        println!(
            "{program:<8} {:>8} {:>7} {:>7}",
            answers.len(),
            answers.len() - leaked.len(),
            leaked.len()
        );
        for secret in leaked {
            let files: Vec<&str> = all
                .iter()
                .filter(|(_, b)| contains(b, secret))
                .map(|(p, _)| p.as_str())
                .collect();
            leaks.push(format!("`{secret}` in {files:?}"));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    // The typing is there: the commands around the dialogues were kept,
    // so the passwords are missing because they were masked, not lost.
    let eps: Vec<Episode> = candor::export::jsonl::read(&out).unwrap();
    let typed: String = eps
        .iter()
        .flat_map(|e| e.actions.iter())
        .filter_map(|a| match &a.body {
            ActionBody::Typing { text, .. } => text.clone(),
            _ => None,
        })
        .collect();
    for kept in ["passwd", "ls -la", "sudo apt update", "cargo build"] {
        assert!(typed.contains(kept), "`{kept}` missing from {typed:?}");
    }
    assert!(typed.contains("<SECRET:typed-password"), "{typed:?}");
}
