//! The whole way through: an engineer types into a window under a real X
//! server (Xvfb, openbox, xdotool) and edits files in a watched git
//! workspace, with secrets, an e-mail address, their username and their
//! hostname in the typing, the files, the title and the commit message. The
//! daemon records it; `candor-export` writes all three formats; then:
//! `verify` passes, none of those values appears anywhere in the export's
//! bytes, the episodes replay, two exports with one salt are identical, and
//! two without a salt share no pseudonym. Skips with a reason when Xvfb,
//! xdotool or git is missing, except under CI.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use candor::export::model::{ActionBody, Episode};
use common::x11::{daemon, have, stop, X};
use common::*;

const PAT: &str = "ghp_Zq8Lm2Nx4Vb6Rt1Yw3Ue5Io7Pa9Sd0Fg2Hj4";
const AWS: &str = "AKIAZ2LXQ7RDN5HWK3PC";
const EMAIL: &str = "jane.doe@acme-corp.com";
const USER: &str = "jdoe42";
const HOST: &str = "build-host-7";

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn export(t: &TestStore, out: &Path, salt: Option<&Path>) {
    let mut args = vec!["episodes", "--quiet", "--out", out.to_str().unwrap()];
    if let Some(s) = salt {
        args.extend(["--salt-file", s.to_str().unwrap()]);
    }
    let o = t.run("candor-export", &args);
    assert!(o.status.success(), "export: {}", stderr(&o));
    let v = t.run("candor-export", &["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "verify: {}", stderr(&v));
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    candor::export::verify::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(dir.join(&p)).unwrap();
            (p, b)
        })
        .collect()
}

fn pseudonyms(dir: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for ep in candor::export::jsonl::read(dir).unwrap() {
        ids.insert(ep.episode_id.clone());
        ids.insert(ep.subject_id.clone());
        ids.extend(ep.workspace_id.clone());
        for f in &ep.files {
            ids.insert(f.file_id.clone());
        }
    }
    ids
}

#[test]
fn typed_and_edited_work_exports_clean_in_every_format() {
    let Some(x) = X::start(true) else { return };
    if !have("git") {
        skip_or_fail("git is not installed");
        return;
    }
    let t = TestStore::new();
    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::write(
        t.paths.config_dir.join("config.toml"),
        format!("[redact]\nusers = [\"{USER}\"]\nhosts = [\"{HOST}\"]\nnames = [\"Jane Doe\"]\n"),
    )
    .unwrap();
    // The machine's own identity too, when it is specific enough to grep
    // for (generic accounts such as root are never treated as identity).
    let os_user = whoami::username();
    let os_host = whoami::fallible::hostname().unwrap_or_default();
    let os_terms: Vec<String> = [os_user, os_host]
        .into_iter()
        .filter(|s| {
            s.len() >= 4
                && !candor::redact::identity::GENERIC_ACCOUNTS
                    .contains(&s.to_ascii_lowercase().as_str())
        })
        .collect();

    let ws = t.tmp.path().join("acme-payroll");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("src/billing.rs"), "fn total() -> u64 {\n    0\n}\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "start"]);
    grant(
        &t,
        "keys.timing,keys.text,mouse,window.apps,window.titles,editor.files,editor.content",
    );
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (d, lines) = daemon(&t, &x);
    assert!(
        lines.iter().any(|l| l.ends_with("editor: running")),
        "{lines:?}"
    );
    std::thread::sleep(Duration::from_millis(300));

    let extra = os_terms.join(" ");
    let editor = x.window(
        "Code",
        &format!("billing.rs - acme-payroll - {USER}@{HOST}"),
    );
    x.xdotool(&[
        "type",
        "--delay",
        "15",
        &format!("token {PAT} mail {EMAIL} user {USER} host {HOST} {extra}\n"),
    ]);
    x.xdotool(&["mousemove", "200", "200", "click", "1"]);
    let v2 =
        format!("fn total() -> u64 {{\n    // ask {EMAIL} ({USER} on {HOST}) {extra}\n    0\n}}\n");
    std::fs::write(ws.join("src/billing.rs"), &v2).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let v3 = format!("{v2}const KEY: &str = \"{AWS}\";\nconst GH: &str = \"{PAT}\";\n");
    std::fs::write(ws.join("src/billing.rs"), &v3).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(
        ws.join("src/payroll_rules.rs"),
        format!("// owner {EMAIL}\n"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    git(&ws, &["add", "."]);
    git(
        &ws,
        &[
            "commit",
            "-q",
            "-m",
            &format!("Add the key for {USER}; ping {EMAIL}"),
        ],
    );
    std::thread::sleep(Duration::from_millis(1200));
    drop(editor);
    stop(d);

    let salt = t.tmp.path().join("salt");
    std::fs::write(&salt, "the data team's own salt, kept apart").unwrap();
    let (a, b, c, e) = (
        t.tmp.path().join("a"),
        t.tmp.path().join("b"),
        t.tmp.path().join("c"),
        t.tmp.path().join("e"),
    );
    export(&t, &a, Some(&salt));
    export(&t, &b, Some(&salt));
    export(&t, &c, None);
    export(&t, &e, None);

    // What must never leave, in any byte of any file.
    let mut banned = vec![
        PAT, AWS, EMAIL, USER, HOST, "acme", "billing", "payroll", "Jane Doe",
    ];
    banned.extend(os_terms.iter().map(String::as_str));
    let home = std::env::var("HOME").unwrap_or_default();
    let tmp = t.tmp.path().to_string_lossy().into_owned();
    for (path, bytes) in files(&a) {
        for needle in banned.iter().copied().chain([tmp.as_str()]) {
            assert!(
                !contains(&bytes, needle),
                "`{needle}` in {path}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if home.len() > 1 {
            assert!(
                !contains(&bytes, &format!("{home}/")),
                "home path in {path}"
            );
        }
    }
    // The export holds the work: the typing, the edits and the commit.
    let eps: Vec<Episode> = candor::export::jsonl::read(&a).unwrap();
    let actions: Vec<&ActionBody> = eps
        .iter()
        .flat_map(|e| e.actions.iter().map(|a| &a.body))
        .collect();
    let typed: String = actions
        .iter()
        .filter_map(|a| match a {
            ActionBody::Typing { text, .. } => text.clone(),
            _ => None,
        })
        .collect();
    assert!(
        typed.contains("token <SECRET:") && typed.contains("mail <EMAIL#"),
        "{typed}"
    );
    assert!(
        typed.contains("user <USER#") && typed.contains("host <HOST#"),
        "{typed}"
    );
    // Each redacted value shows as one key: not its length, nor (through
    // the Shift presses) where its capitals are.
    let redacted_keys: usize = actions
        .iter()
        .map(|a| match a {
            ActionBody::Typing { keys, .. } => {
                keys.iter().filter(|k| k.class == "redacted").count()
            }
            _ => 0,
        })
        .sum();
    assert!(
        redacted_keys <= 4 + os_terms.len(),
        "{redacted_keys} redacted keys"
    );
    assert!(
        actions
            .iter()
            .filter(|a| matches!(a, ActionBody::Edit { diff: Some(_), .. }))
            .count()
            >= 2
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, ActionBody::Commit { message: Some(m) } if m.contains("<EMAIL#"))));
    assert!(actions
        .iter()
        .any(|a| matches!(a, ActionBody::Focus { title: Some(_), .. })));
    assert!(actions
        .iter()
        .any(|a| matches!(a, ActionBody::Mouse { .. })));
    assert!(eps.iter().any(|e| e.end_reason.as_str() == "commit"));
    // Replay, from the written files.
    for ep in &eps {
        candor::export::replay::replay(ep).unwrap();
    }
    // ProgSnap2 and Parquet are there and hold the same episodes.
    let names: Vec<String> = files(&a).into_iter().map(|(p, _)| p).collect();
    assert!(
        names.iter().any(|p| p.ends_with("MainTable.csv")),
        "{names:?}"
    );
    assert!(names.iter().any(|p| p.ends_with(".parquet")), "{names:?}");

    assert_eq!(files(&a), files(&b), "one salt, one store, one result");
    let (pc, pe) = (pseudonyms(&c), pseudonyms(&e));
    assert!(pc.len() >= 4, "{pc:?}");
    assert!(
        pc.is_disjoint(&pe),
        "shared: {:?}",
        pc.intersection(&pe).collect::<Vec<_>>()
    );
    assert!(pc.is_disjoint(&pseudonyms(&a)));
}
