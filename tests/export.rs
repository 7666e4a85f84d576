//! The exporter against real stores: consented events become verified,
//! replayable, redacted episodes; revoked, purged, paused and unconsented
//! data never leaves; exports are atomic, deterministic under a salt,
//! unlinkable without one, and recorded in the consent ledger.

mod common;

use std::path::{Path, PathBuf};

use candor::event::Event;
use candor::export::model::{ActionBody, Episode, RunResult};
use candor::registry::Kind;
use common::*;

const MS: i64 = 1_000_000;
const PAT: &str = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
const AWS: &str = "AKIAQYLPMN5HFIQR7ABC";
const EMAIL: &str = "jane.doe@acme-corp.com";
const ALL_SCOPES: &str =
    "keys.timing,keys.text,mouse,window.apps,window.titles,editor.files,editor.content";

fn ev(kind: Kind, ts: i64, fields: &[(&str, candor::event::Value)]) -> Event {
    let mut e = Event::new(kind, at(ts));
    for (k, v) in fields {
        e.set(k, v.clone()).unwrap();
    }
    e
}

fn s(v: &str) -> candor::event::Value {
    v.into()
}

/// Key events that type `text`, 80 ms apart, from `ts`; returns the time
/// after the last key.
fn type_text(out: &mut Vec<Event>, mut ts: i64, text: &str) -> i64 {
    for c in text.chars() {
        let (key, shift) = candor::keymap::us_key_for_char(c).unwrap_or(("Unknown".into(), false));
        let class = if c.is_alphabetic() {
            "letter"
        } else if c.is_ascii_digit() {
            "digit"
        } else if c == ' ' {
            "space"
        } else {
            "punctuation"
        };
        let mods = i64::from(shift);
        let (key, class) = if c == '\n' {
            ("Return".to_owned(), "edit")
        } else {
            (key, class)
        };
        let mut down = ev(
            Kind::KeyDown,
            ts,
            &[("class", s(class)), ("mods", mods.into()), ("key", s(&key))],
        );
        if c != '\n' {
            down.set("text", c.to_string()).unwrap();
        }
        out.push(down);
        out.push(ev(
            Kind::KeyUp,
            ts + 40 * MS,
            &[("class", s(class)), ("mods", mods.into()), ("key", s(&key))],
        ));
        ts += 80 * MS;
    }
    ts
}

fn file(kind: Kind, ts: i64, path: &str, content: Option<&str>) -> Event {
    let mut e = ev(
        kind,
        ts,
        &[("workspace", s("acme-payroll")), ("path", s(path))],
    );
    if let Some(c) = content {
        e.set("content", c.as_bytes().to_vec()).unwrap();
    }
    e
}

/// A short, realistic stretch of work with secrets and personal data in
/// every text a dataset could carry, starting at `t0`; ends with a commit.
fn work(t0: i64) -> Vec<Event> {
    let mut out = Vec::new();
    out.push(ev(
        Kind::WindowFocus,
        t0,
        &[
            ("app", s("code")),
            (
                "title",
                s(&format!("billing_export.rs - acme-payroll - {EMAIL}")),
            ),
        ],
    ));
    let v1 = "fn main() {\n    println!(\"hi\");\n}\n".to_owned();
    out.push(file(
        Kind::FileCreate,
        t0 + 100 * MS,
        "src/billing_export.rs",
        Some(&v1),
    ));
    let typed = format!("let token = \"{PAT}\";\n");
    let t = type_text(&mut out, t0 + 500 * MS, &typed);
    let v2 = format!("fn main() {{\n    {typed}    println!(\"hi\");\n}}\n");
    out.push(file(
        Kind::FileModify,
        t + 200 * MS,
        "src/billing_export.rs",
        Some(&v2),
    ));
    out.push(ev(
        Kind::MouseMove,
        t + 300 * MS,
        &[("x", 10.into()), ("y", 10.into())],
    ));
    out.push(ev(
        Kind::MouseMove,
        t + 330 * MS,
        &[("x", 40.into()), ("y", 50.into())],
    ));
    let v3 = format!("{v2}// contact {EMAIL}\nconst AWS: &str = \"{AWS}\";\n");
    out.push(file(
        Kind::FileModify,
        t + 2_000 * MS,
        "src/billing_export.rs",
        Some(&v3),
    ));
    out.push(file(
        Kind::FileCreate,
        t + 2_500 * MS,
        "notes/acme_salaries.txt",
        Some("draft\n"),
    ));
    out.push(ev(
        Kind::FileRename,
        t + 2_600 * MS,
        &[
            ("workspace", s("acme-payroll")),
            ("from", s("notes/acme_salaries.txt")),
            ("to", s("notes/acme_salaries_old.txt")),
        ],
    ));
    out.push(ev(
        Kind::FileDelete,
        t + 2_700 * MS,
        &[
            ("workspace", s("acme-payroll")),
            ("path", s("notes/acme_salaries_old.txt")),
        ],
    ));
    out.push(ev(
        Kind::WindowFocus,
        t + 3_000 * MS,
        &[("app", s("Alacritty")), ("title", s("~/src/acme-payroll"))],
    ));
    out.push(ev(
        Kind::GitCommit,
        t + 4_000 * MS,
        &[
            ("workspace", s("acme-payroll")),
            ("hash", s("0123456789abcdef0123456789abcdef01234567")),
            ("message", s(&format!("Add export; ask {EMAIL}"))),
        ],
    ));
    out
}

fn export(t: &TestStore, out: &Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().unwrap().to_owned();
    let mut args = vec!["episodes", "--out", out.as_str(), "--quiet"];
    args.extend_from_slice(extra);
    t.run("candor-export", &args)
}

fn export_ok(t: &TestStore, out: &Path, extra: &[&str]) -> String {
    let o = export(t, out, extra);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn verify(t: &TestStore, dir: &Path) -> std::process::Output {
    t.run("candor-export", &["verify", dir.to_str().unwrap()])
}

fn episodes(dir: &Path) -> Vec<Episode> {
    candor::export::jsonl::read(dir).unwrap()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every file of an export, as bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    candor::export::verify::list_files(dir)
        .unwrap()
        .into_iter()
        .map(|p| (PathBuf::from(&p), std::fs::read(dir.join(&p)).unwrap()))
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn salt_file(t: &TestStore) -> PathBuf {
    let p = t.tmp.path().join("salt");
    std::fs::write(&p, "a salt the data team keeps, 32+ bytes long").unwrap();
    p
}

#[test]
fn consented_work_exports_redacted_anonymized_and_replayable() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    let out = t.tmp.path().join("export");
    let printed = export_ok(&t, &out, &[]);
    assert!(printed.contains("exported 1 episodes"), "{printed}");
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));

    for (path, bytes) in all_bytes(&out) {
        for needle in [
            PAT,
            AWS,
            EMAIL,
            "acme",
            "billing",
            "salaries",
            "0123456789abcdef",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{needle} found in {}",
                path.display()
            );
        }
    }
    let eps = episodes(&out);
    assert_eq!(eps.len(), 1);
    let ep = &eps[0];
    assert_eq!(ep.end_reason.as_str(), "commit");
    assert!(ep.week.contains("-W"));
    let types: Vec<&str> = ep.actions.iter().map(|a| a.body.type_name()).collect();
    for want in [
        "focus",
        "file_switch",
        "file_create",
        "typing",
        "edit",
        "mouse",
        "file_rename",
        "file_delete",
        "commit",
    ] {
        assert!(types.contains(&want), "no {want} in {types:?}");
    }
    // Typed text keeps its shape with the secret replaced; the key of the
    // secret's characters shows as one redacted key.
    let typing = ep
        .actions
        .iter()
        .find_map(|a| match &a.body {
            ActionBody::Typing { text, keys, .. } => Some((text.clone().unwrap(), keys.clone())),
            _ => None,
        })
        .unwrap();
    assert!(
        typing.0.starts_with("let token = \"<SECRET:"),
        "{}",
        typing.0
    );
    assert!(typing.1.iter().any(|k| k.class == "redacted"));
    assert!(typing.1.iter().all(|k| k.t % 10 == 0), "quantized to 10 ms");
    assert!(typing.1.len() < 30, "the token's keys collapse into one");
    // Paths keep depth and extension; names are hashed.
    let src = &ep
        .files
        .iter()
        .find(|f| f.final_.path.ends_with(".rs"))
        .unwrap()
        .final_;
    assert!(src.path.starts_with("src/") && src.path.split('/').count() == 2);
    assert!(src.content.as_ref().unwrap().contains("<EMAIL#1>"));
    // The same value reads the same everywhere.
    let commit = ep
        .actions
        .iter()
        .find_map(|a| match &a.body {
            ActionBody::Commit { message } => message.clone(),
            _ => None,
        })
        .unwrap();
    assert!(commit.contains("<EMAIL#1>"), "{commit}");
    let m = manifest(&out);
    assert_eq!(m["counts"]["episodes"], 1);
    assert!(
        m["redaction"]["findings_by_rule"]["email"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(m["consent"]["record_ids"].as_array().unwrap().len(), 1);
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        !text.contains(&format!("{}", now_ns() / 1_000_000_000_000)),
        "no absolute time"
    );
}

#[test]
fn the_export_is_recorded_in_the_ledger_with_its_manifest_hash() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    let out = t.tmp.path().join("export");
    export_ok(&t, &out, &["--format", "jsonl"]);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(out.join("manifest.json")).unwrap(),
        ))
    };
    let log = t.candor_ok(&["consent", "log", "--json"]);
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let e = entries
        .iter()
        .find(|e| e["action"] == "export")
        .expect("an export entry");
    assert_eq!(e["data"]["manifest_sha256"], sha.as_str());
    let m = manifest(&out);
    assert_eq!(e["data"]["records"], m["consent"]["record_ids"]);
    assert_eq!(
        e["data"]["ledger_head"]["hash"],
        m["consent"]["ledger_head"]
    );
    assert_eq!(count(&t, "SELECT count(*) FROM exports"), 1);
    // The audit still passes with the export in the ledger.
    assert!(t.candor(&["audit"]).status.success());
}

#[test]
fn same_salt_gives_identical_files_and_no_salt_gives_unlinkable_ones() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t0 = now_ns();
    let mut evs = work(t0);
    evs.extend(work(t0 + 10 * 60_000 * MS));
    capture(&t, evs);
    let salt = salt_file(&t);
    let salt = salt.to_str().unwrap();
    let (a, b) = (t.tmp.path().join("a"), t.tmp.path().join("b"));
    export_ok(&t, &a, &["--salt-file", salt]);
    export_ok(&t, &b, &["--salt-file", salt]);
    assert_eq!(all_bytes(&a), all_bytes(&b), "same store, salt and options");

    let (c, d) = (t.tmp.path().join("c"), t.tmp.path().join("d"));
    export_ok(&t, &c, &["--format", "jsonl"]);
    export_ok(&t, &d, &["--format", "jsonl"]);
    let ids = |dir: &Path| {
        let mut ids = std::collections::BTreeSet::new();
        for ep in episodes(dir) {
            ids.insert(ep.episode_id.clone());
            ids.insert(ep.subject_id.clone());
            ids.extend(ep.workspace_id.clone());
            for f in &ep.files {
                ids.insert(f.file_id.clone());
                ids.insert(f.final_.path.clone());
            }
        }
        ids.retain(|i| {
            i.len() >= 12 && !i.starts_with("src/") || i.contains('/') && !i.starts_with("src/")
        });
        ids
    };
    let (ic, id) = (ids(&c), ids(&d));
    assert!(ic.len() >= 5, "{ic:?}");
    assert!(
        ic.is_disjoint(&id),
        "pseudonyms shared between unsalted exports: {:?}",
        ic.intersection(&id).collect::<Vec<_>>()
    );
    assert_ne!(manifest(&c)["export_id"], manifest(&d)["export_id"]);
}

#[test]
fn unconsented_paused_ungranted_purged_and_revoked_data_never_leaves() {
    let t = TestStore::new();
    // Before any consent.
    let early = now_ns();
    capture(
        &t,
        vec![ev(
            Kind::WindowFocus,
            early,
            &[("app", s("before-consent-app"))],
        )],
    );
    // Mouse is not granted.
    grant(
        &t,
        "keys.timing,keys.text,window.apps,editor.files,editor.content",
    );
    let t1 = now_ns();
    capture(
        &t,
        vec![
            ev(
                Kind::WindowFocus,
                t1,
                &[("app", s("Alacritty")), ("title", s("~/src/acme-payroll"))],
            ),
            file(
                Kind::FileModify,
                t1 + MS,
                "src/billing_export.rs",
                Some("old work\n"),
            ),
            ev(
                Kind::MouseMove,
                t1 + 2 * MS,
                &[("x", 10.into()), ("y", 10.into())],
            ),
            ev(
                Kind::MouseMove,
                t1 + 3 * MS,
                &[("x", 40.into()), ("y", 50.into())],
            ),
            ev(
                Kind::MouseDown,
                t1 + 4 * MS,
                &[("button", s("left")), ("x", 1.into()), ("y", 1.into())],
            ),
        ],
    );
    let settle = || std::thread::sleep(std::time::Duration::from_millis(50));
    settle();
    // Paused.
    {
        let mut st = t.open();
        candor::consent::record_pause(&mut st, true, "test", now_ns()).unwrap();
    }
    settle();
    capture(
        &t,
        vec![ev(Kind::WindowFocus, now_ns(), &[("app", s("paused-app"))])],
    );
    settle();
    {
        let mut st = t.open();
        candor::consent::record_pause(&mut st, false, "test", now_ns()).unwrap();
    }
    settle();
    // Purged.
    let tq = now_ns();
    capture(
        &t,
        vec![ev(Kind::WindowFocus, tq + MS, &[("app", s("purged-app"))])],
    );
    let pq = candor::store::query::format_ns(tq);
    let pe = candor::store::query::format_ns(tq + 10 * MS);
    t.candor_ok(&["purge", "--since", &pq, "--until", &pe]);
    settle();

    let out = t.tmp.path().join("e1");
    export_ok(&t, &out, &["--format", "jsonl"]);
    let bytes: Vec<u8> = all_bytes(&out).into_iter().flat_map(|(_, b)| b).collect();
    for needle in [
        "before-consent-app",
        "paused-app",
        "purged-app",
        "\"type\":\"mouse\"",
    ] {
        assert!(!contains(&bytes, needle), "{needle} leaked");
    }
    assert!(!episodes(&out)
        .iter()
        .flat_map(|e| &e.actions)
        .any(|a| matches!(a.body, ActionBody::Mouse { .. })));
    // Window titles were not granted: none in the export.
    assert!(episodes(&out)
        .iter()
        .flat_map(|e| &e.actions)
        .all(|a| !matches!(&a.body, ActionBody::Focus { title: Some(_), .. })));
    let m = manifest(&out);
    let ex = &m["counts"]["events_excluded"];
    assert_eq!(ex["outside-consent"], 1, "{ex}");
    assert_eq!(ex["scope-not-granted"], 3, "2 moves and a click: {ex}");
    assert_eq!(ex["paused"], 1, "{ex}");

    // Revoked: nothing may leave, and the refusal says why (exit 3).
    t.candor_ok(&["consent", "revoke"]);
    let refused = export(&t, &t.tmp.path().join("e2"), &["--format", "jsonl"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("revoked"));
    assert!(!t.tmp.path().join("e2").exists());
    // A new consent covers new work only: what was recorded before the
    // revocation stays out.
    grant(&t, ALL_SCOPES);
    settle();
    let t2 = now_ns();
    capture(
        &t,
        vec![
            ev(Kind::WindowFocus, t2, &[("app", s("after-regrant"))]),
            file(Kind::FileModify, t2 + MS, "src/new.rs", Some("fresh\n")),
        ],
    );
    let out3 = t.tmp.path().join("e3");
    export_ok(&t, &out3, &["--format", "jsonl"]);
    let eps = episodes(&out3);
    assert_eq!(eps.len(), 1, "only the work after the new consent");
    let bytes: Vec<u8> = all_bytes(&out3).into_iter().flat_map(|(_, b)| b).collect();
    assert!(contains(&bytes, "after-regrant"));
    assert!(
        !contains(&bytes, "Alacritty"),
        "work before the revocation left"
    );
    // Focus, save, two moves and a click, and the focus of the paused span.
    assert_eq!(manifest(&out3)["counts"]["events_excluded"]["revoked"], 6);
}

#[test]
fn a_broken_ledger_refuses_the_export() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    {
        let conn = rusqlite::Connection::open(t.db()).unwrap();
        conn.execute_batch(
            "DROP TRIGGER consent_ledger_no_update; UPDATE consent_ledger SET body = replace(body, 'keys.timing', 'keys.timinG') WHERE seq = 1;",
        )
        .unwrap();
    }
    let out = t.tmp.path().join("x");
    let o = export(&t, &out, &["--format", "jsonl"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("ledger"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_failed_export_leaves_nothing_behind_and_never_overwrites() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    // A damaged snapshot: unsealing fails midway through the export.
    {
        let conn = rusqlite::Connection::open(t.db()).unwrap();
        conn.execute_batch(
            "UPDATE blobs SET data = zeroblob(length(data)) WHERE id = (SELECT max(id) FROM blobs)",
        )
        .unwrap();
    }
    let parent = t.tmp.path().join("exports");
    std::fs::create_dir(&parent).unwrap();
    let o = export(&t, &parent.join("x"), &["--format", "jsonl"]);
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read_dir(&parent).unwrap().count(),
        0,
        "no partial export left"
    );
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM consent_ledger WHERE action = 'export'"
        ),
        0
    );

    let exists = t.tmp.path().join("exists");
    std::fs::create_dir(&exists).unwrap();
    let o = export(&t, &exists, &["--format", "jsonl"]);
    assert!(
        !o.status.success() && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
    let o = t.run(
        "candor-export",
        &["episodes", "--out", "/tmp/never", "--format", "csv"],
    );
    assert!(
        stderr(&o).contains("unknown format `csv`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_names_tampering() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    let out = t.tmp.path().join("export");
    export_ok(&t, &out, &["--format", "jsonl"]);
    let path = out.join("episodes.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    let rehash = |dir: &Path| {
        use sha2::Digest;
        let mut m = manifest(dir);
        let bytes = std::fs::read(dir.join("episodes.jsonl")).unwrap();
        for f in m["files"].as_array_mut().unwrap() {
            if f["path"] == "episodes.jsonl" {
                f["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
                f["bytes"] = bytes.len().into();
            }
        }
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
    };

    // A changed byte: the checksum.
    std::fs::write(&path, good.replacen("\"week\"", "\"Week\"", 1)).unwrap();
    let v = verify(&t, &out);
    assert!(
        !v.status.success()
            && stderr(&v).contains("episodes.jsonl")
            && stderr(&v).contains("SHA-256"),
        "{}",
        stderr(&v)
    );

    // A diff that no longer replays, checksum fixed up.
    std::fs::write(&path, good.replacen("+    let token", "+    let tokem", 1)).unwrap();
    rehash(&out);
    let v = verify(&t, &out);
    assert!(
        !v.status.success() && stderr(&v).contains("does not match"),
        "{}",
        stderr(&v)
    );

    // A secret slipped in, checksum fixed up: the fresh scan finds it.
    std::fs::write(
        &path,
        good.replacen(
            "\"type\":\"commit\",\"message\":\"",
            &format!("\"type\":\"commit\",\"message\":\"{AWS} "),
            1,
        ),
    )
    .unwrap();
    rehash(&out);
    let v = verify(&t, &out);
    assert!(
        !v.status.success() && stderr(&v).contains("aws"),
        "{}",
        stderr(&v)
    );

    // An extra file.
    std::fs::write(&path, &good).unwrap();
    rehash(&out);
    assert!(
        verify(&t, &out).status.success(),
        "{}",
        stderr(&verify(&t, &out))
    );
    std::fs::write(out.join("extra.txt"), "x").unwrap();
    let v = verify(&t, &out);
    assert!(
        !v.status.success() && stderr(&v).contains("not listed"),
        "{}",
        stderr(&v)
    );
}

#[test]
fn episodes_split_at_idle_gaps_and_commits() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t0 = now_ns();
    let mut evs = work(t0); // ends with a commit
    let t1 = t0 + 20_000 * MS;
    evs.push(file(
        Kind::FileModify,
        t1,
        "src/billing_export.rs",
        Some("after commit\n"),
    ));
    // Six minutes idle, then more work: a new episode.
    let t2 = t1 + 6 * 60_000 * MS;
    evs.push(file(
        Kind::FileModify,
        t2,
        "src/billing_export.rs",
        Some("after a break\n"),
    ));
    capture(&t, evs);
    let out = t.tmp.path().join("export");
    export_ok(&t, &out, &["--format", "jsonl"]);
    let eps = episodes(&out);
    let ends: Vec<&str> = eps.iter().map(|e| e.end_reason.as_str()).collect();
    assert_eq!(ends, ["commit", "idle", "end"]);
    // The file's state carries across episodes: the third starts where
    // the second ended.
    assert_eq!(
        eps[2].files[0].initial.content.as_deref(),
        Some("after commit\n")
    );
    assert_eq!(eps[1].files[0].file_id, eps[2].files[0].file_id);

    let out2 = t.tmp.path().join("export2");
    export_ok(&t, &out2, &["--format", "jsonl", "--idle-gap", "10m"]);
    assert_eq!(episodes(&out2).len(), 2);
}

#[test]
fn duckdb_reads_a_folder_of_two_engineers_exports_with_the_readme_query() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        skip_or_fail("python3 with duckdb is not installed (scripts/setup.sh installs it)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let exports = root.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let mut want = std::collections::BTreeMap::new();
    for name in ["ada", "grace"] {
        let t = TestStore::new();
        grant(&t, ALL_SCOPES);
        capture(&t, work(now_ns()));
        let out = exports.join(name);
        export_ok(&t, &out, &[]);
        let m = manifest(&out);
        want.insert(
            m["consent"]["subject_ids"][0].as_str().unwrap().to_owned(),
            m["counts"]["actions"].as_u64().unwrap(),
        );
    }
    // The query of the README, verbatim, then a join across the tables.
    let script = r#"
import duckdb, json
con = duckdb.connect()
rows = con.execute("""
SELECT subject_id, count(*) AS actions
FROM read_parquet('exports/*/parquet/actions/**/*.parquet',
                  hive_partitioning = true, hive_types_autocast = false)
GROUP BY ALL ORDER BY ALL;
""").fetchall()
joined = con.execute("""
SELECT count(*), sum(len(a.key_t_ms))
FROM read_parquet('exports/*/parquet/episodes/**/*.parquet', hive_partitioning = true, hive_types_autocast = false) e
JOIN read_parquet('exports/*/parquet/actions/**/*.parquet', hive_partitioning = true, hive_types_autocast = false) a
  USING (episode_id)
WHERE a.type = 'typing'
""").fetchone()
print(json.dumps({"rows": rows, "joined": list(joined)}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: std::collections::BTreeMap<String, u64> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, want, "actions per engineer, as DuckDB sees them");
    assert_eq!(got["joined"][0], 2, "one typing burst per engineer");
    assert!(got["joined"][1].as_u64().unwrap() > 10);
}

#[test]
fn an_expired_consent_must_be_renewed_before_anything_leaves() {
    let t = TestStore::new();
    grant_expiring(&t, ALL_SCOPES, 2);
    capture(
        &t,
        vec![ev(Kind::WindowFocus, now_ns(), &[("app", s("code"))])],
    );
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let out = t.tmp.path().join("x");
    let o = export(&t, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("expired"), "{}", stderr(&o));
    assert!(!out.exists());
    // Renewed, the events captured under the old consent may leave: they
    // were consented when captured, and the engineer agrees again now.
    grant(&t, ALL_SCOPES);
    export_ok(&t, &out, &[]);
    assert_eq!(episodes(&out).len(), 1);
}

#[test]
fn preview_shows_what_would_leave_and_writes_nothing() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    capture(&t, work(now_ns()));
    let before = count(&t, "SELECT count(*) FROM consent_ledger");
    let list = t.run("candor-export", &["preview"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("1 episodes") && list.contains("ends: commit"),
        "{list}"
    );
    let one = t.run("candor-export", &["preview", "--episode", "1"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let one = String::from_utf8(one.stdout).unwrap();
    for want in [
        "typing",
        "let token = \\\"<SECRET:github-pat#",
        "| +// contact <EMAIL#1>",
        "commit",
    ] {
        assert!(one.contains(want), "no {want:?} in\n{one}");
    }
    for never in [PAT, AWS, EMAIL, "acme", "billing"] {
        assert!(
            !one.contains(never) && !list.contains(never),
            "{never} in the preview"
        );
    }
    let missing = t.run("candor-export", &["preview", "--episode", "9"]);
    assert!(!missing.status.success() && stderr(&missing).contains("no episode 9"));
    assert_eq!(
        count(&t, "SELECT count(*) FROM consent_ledger"),
        before,
        "nothing recorded"
    );
    assert_eq!(count(&t, "SELECT count(*) FROM exports"), 0);
}

#[test]
fn a_secret_typed_across_an_episode_cut_or_the_range_edge_is_still_redacted() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t0 = now_ns();
    let mut evs = vec![
        ev(Kind::WindowFocus, t0, &[("app", s("code"))]),
        file(Kind::FileModify, t0 + MS, "src/a.rs", Some("a\n")),
    ];
    let (head, tail) = PAT.split_at(20);
    let t1 = type_text(&mut evs, t0 + 100 * MS, &format!("let t = \"{head}"));
    // A save in another workspace cuts the episode mid-token.
    let mut other = file(Kind::FileModify, t1, "src/b.rs", Some("b\n"));
    other.set("workspace", "other-ws").unwrap();
    evs.push(other);
    type_text(&mut evs, t1 + 50 * MS, &format!("{tail}\";\n"));
    capture(&t, evs);
    let out = t.tmp.path().join("cut");
    export_ok(&t, &out, &[]);
    let eps = episodes(&out);
    assert!(eps.len() >= 2, "the workspace change cuts the episode");
    // Each half is shown as the one secret it is part of.
    let texts: Vec<String> = eps
        .iter()
        .flat_map(|e| &e.actions)
        .filter_map(|a| match &a.body {
            ActionBody::Typing { text, .. } => text.clone(),
            _ => None,
        })
        .collect();
    assert!(
        texts.len() >= 2 && texts.iter().all(|t| t.contains("<SECRET:github-pat#1>")),
        "{texts:?}"
    );
    for (path, bytes) in all_bytes(&out) {
        for half in [head, tail, &PAT[4..16], &PAT[24..]] {
            assert!(!contains(&bytes, half), "`{half}` in {}", path.display());
        }
    }
    // The range starts in the middle of the token.
    let since = candor::store::query::format_ns(t0 + 100 * MS + 13 * 80 * MS);
    let out2 = t.tmp.path().join("since");
    export_ok(&t, &out2, &["--since", &since]);
    let m = manifest(&out2);
    assert!(
        m["counts"]["events_excluded"]["outside-range"]
            .as_u64()
            .unwrap()
            > 0
    );
    for (path, bytes) in all_bytes(&out2) {
        for part in [&PAT[8..], &PAT[8..28]] {
            assert!(!contains(&bytes, part), "`{part}` in {}", path.display());
        }
    }
}

#[test]
fn a_scope_withdrawn_since_takes_its_earlier_data_with_it() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t0 = now_ns();
    let mut evs = vec![ev(
        Kind::WindowFocus,
        t0,
        &[("app", s("code")), ("title", s("notes - code"))],
    )];
    type_text(&mut evs, t0 + MS, "x");
    evs.push(ev(
        Kind::MouseMove,
        t0 + 2 * MS,
        &[("x", 10.into()), ("y", 10.into())],
    ));
    evs.push(ev(
        Kind::MouseMove,
        t0 + 3 * MS,
        &[("x", 40.into()), ("y", 50.into())],
    ));
    capture(&t, evs);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Amended: no more titles, typed text or mouse.
    grant(&t, "keys.timing,window.apps,editor.files,editor.content");
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &[]);
    let eps = episodes(&out);
    let actions: Vec<&ActionBody> = eps
        .iter()
        .flat_map(|e| e.actions.iter().map(|a| &a.body))
        .collect();
    assert!(actions
        .iter()
        .all(|a| !matches!(a, ActionBody::Focus { title: Some(_), .. })));
    assert!(actions
        .iter()
        .all(|a| !matches!(a, ActionBody::Typing { text: Some(_), .. })));
    assert!(actions
        .iter()
        .all(|a| !matches!(a, ActionBody::Mouse { .. })));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, ActionBody::Typing { text: None, .. })),
        "timing stays"
    );
    assert_eq!(
        manifest(&out)["counts"]["events_excluded"]["scope-withdrawn"],
        2,
        "the two moves"
    );
}

#[test]
fn paths_in_window_titles_keep_their_shape_but_not_their_names() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t0 = now_ns();
    capture(
        &t,
        vec![
            ev(
                Kind::WindowFocus,
                t0,
                &[
                    ("app", s("term")),
                    ("title", s("vim /srv/clients/bigbank/src/payroll.rs")),
                ],
            ),
            ev(
                Kind::WindowFocus,
                t0 + MS,
                &[
                    ("app", s("term")),
                    ("title", s("(~/work/secretproj) - bash")),
                ],
            ),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &[]);
    let titles: Vec<String> = episodes(&out)
        .iter()
        .flat_map(|e| &e.actions)
        .filter_map(|a| match &a.body {
            ActionBody::Focus { title, .. } => title.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(
        titles[0].starts_with("vim …/")
            && titles[0].contains("/src/")
            && titles[0].ends_with(".rs"),
        "{}",
        titles[0]
    );
    assert!(
        titles[1].starts_with("(~/") && titles[1].ends_with(") - bash"),
        "{}",
        titles[1]
    );
    for (path, bytes) in all_bytes(&out) {
        for name in ["/srv", "clients", "bigbank", "payroll", "secretproj"] {
            assert!(!contains(&bytes, name), "`{name}` in {}", path.display());
        }
    }
}

// ---------------------------------------------------------------------------
// Workflow events: shell commands, test and build runs, editor plugins.

const WORKFLOW_SCOPES: &str = "keys.timing,keys.text,mouse,window.apps,window.titles,editor.files,editor.content,editor.actions,shell.commands";
/// Typed in the editor one character per edit, never saved.
const EDIT_SECRET: &str = "Zx9-EditorOnly-Pw7";
const DB_PASSWORD: &str = "Hunter2xyz";
const BEARER: &str = "q8ZbearerOnlyVal3";
const QUERY_TOKEN: &str = "qtok7Zp2Lm";
const WS: &str = "acme-payroll";

fn shell(
    ts: i64,
    command: &str,
    cwd: &str,
    ws: Option<&str>,
    exit: Option<i64>,
    ms: Option<i64>,
) -> Event {
    let mut e = ev(
        Kind::ShellCommand,
        ts,
        &[
            ("command", s(command)),
            ("cwd", s(cwd)),
            ("shell", s("bash")),
        ],
    );
    if let Some(w) = ws {
        e.set("workspace", w).unwrap();
    }
    if let Some(x) = exit {
        e.set("exit", x).unwrap();
    }
    if let Some(d) = ms {
        e.set("duration_ms", d).unwrap();
    }
    e
}

/// A `run.test` or `run.build` in the workspace's root.
fn run(
    kind: Kind,
    ts: i64,
    command: &str,
    exit: i64,
    ms: i64,
    counts: Option<(i64, i64, i64)>,
) -> Event {
    let mut e = ev(
        kind,
        ts,
        &[
            ("command", s(command)),
            ("cwd", s(".")),
            ("workspace", s(WS)),
            ("exit", exit.into()),
            ("duration_ms", ms.into()),
            ("runner", s("cargo")),
        ],
    );
    if let Some((p, f, k)) = counts {
        e.set("passed", p).unwrap();
        e.set("failed", f).unwrap();
        e.set("skipped", k).unwrap();
    }
    e
}

fn editor(kind: Kind, ts: i64, path: &str, fields: &[(&str, candor::event::Value)]) -> Event {
    let mut e = ev(kind, ts, fields);
    if !matches!(kind, Kind::EditorCommand) || !path.is_empty() {
        e.set("workspace", WS).unwrap();
        e.set("path", path).unwrap();
    }
    e
}

/// A stretch of work with an editor plugin and the shell hook: a file
/// created, a password typed in the editor one key per edit and never
/// saved, cursor moves, diagnostics, a save with a token in it, commands
/// with secrets, usernames, hosts and home paths, a failing test run, a
/// build and a commit. Returns the events and the text typed in the editor.
fn workflow(t0: i64) -> (Vec<Event>, String) {
    let path = "src/billing_export.rs";
    let mut out = vec![
        ev(
            Kind::WindowFocus,
            t0,
            &[
                ("app", s("code")),
                ("title", s("billing_export.rs - acme-payroll")),
            ],
        ),
        file(
            Kind::FileCreate,
            t0 + 100 * MS,
            path,
            Some("fn main() {}\n"),
        ),
        editor(
            Kind::EditorFocus,
            t0 + 200 * MS,
            path,
            &[("editor", s("vscode")), ("language", s("rust"))],
        ),
    ];
    let typed = format!("let pw = \"{EDIT_SECRET}\";");
    let mut t = t0 + 300 * MS;
    for (i, c) in typed.chars().enumerate() {
        out.push(editor(
            Kind::EditorEdit,
            t,
            path,
            &[
                ("offset", (13 + i as i64).into()),
                ("deleted", 0.into()),
                ("text", s(&c.to_string())),
                ("line", 1.into()),
                ("col", (i as i64).into()),
                ("editor", s("vscode")),
            ],
        ));
        // The caret follows the text.
        out.push(editor(
            Kind::EditorCursor,
            t + 5 * MS,
            path,
            &[("line", 1.into()), ("col", (i as i64 + 1).into())],
        ));
        t += 60 * MS;
    }
    out.push(editor(
        Kind::EditorEdit,
        t,
        path,
        &[
            ("offset", 40.into()),
            ("deleted", 1.into()),
            ("text", s("")),
            ("line", 1.into()),
            ("editor", s("vscode")),
        ],
    ));
    // A pause, then moving around and selecting.
    t += 3_000 * MS;
    out.push(editor(
        Kind::EditorCursor,
        t,
        path,
        &[("line", 10.into()), ("col", 0.into())],
    ));
    out.push(editor(
        Kind::EditorCursor,
        t + 300 * MS,
        path,
        &[("line", 42.into()), ("col", 4.into())],
    ));
    out.push(editor(
        Kind::EditorSelection,
        t + 600 * MS,
        path,
        &[
            ("line", 42.into()),
            ("col", 0.into()),
            ("end_line", 44.into()),
            ("end_col", 3.into()),
        ],
    ));
    t += 1_000 * MS;
    out.push(editor(
        Kind::EditorCommand,
        t,
        path,
        &[("command", s("editor.action.formatDocument"))],
    ));
    for (i, errors) in [1, 1, 0].into_iter().enumerate() {
        out.push(editor(
            Kind::EditorDiagnostics,
            t + (100 + 100 * i as i64) * MS,
            path,
            &[
                ("errors", errors.into()),
                ("warnings", 2.into()),
                ("info", 0.into()),
                ("hints", 1.into()),
            ],
        ));
    }
    t += 1_000 * MS;
    out.push(file(
        Kind::FileModify,
        t,
        path,
        Some(&format!("fn main() {{\n    let token = \"{PAT}\";\n}}\n")),
    ));
    // The shell: each command is stamped when it ended.
    t += 1_000 * MS;
    out.push(shell(
        t,
        &format!("export GITHUB_TOKEN={PAT}"),
        ".",
        Some(WS),
        Some(0),
        Some(5),
    ));
    out.push(shell(
        t + 2_000 * MS,
        &format!("mysql -u jdoe -p{DB_PASSWORD} -h db.acme.internal payroll < /home/jdoe/dumps/acme_salaries.sql"),
        "scripts/acme_tools",
        Some(WS),
        Some(1),
        Some(1_200),
    ));
    out.push(shell(
        t + 3_000 * MS,
        &format!("curl -H 'Authorization: Bearer {BEARER}' 'https://api.acme-corp.com/v1/payroll?token={QUERY_TOKEN}'"),
        "outside",
        None,
        Some(0),
        Some(300),
    ));
    out.push(shell(
        t + 4_000 * MS,
        "ssh jdoe@build-box-7 'tail /home/jdoe/acme.log'",
        "outside",
        None,
        None,
        None,
    ));
    out.push(run(
        Kind::RunTest,
        t + 15_000 * MS,
        "cargo test -p acme-payroll refunds",
        101,
        9_000,
        Some((41, 1, 2)),
    ));
    out.push(run(
        Kind::RunBuild,
        t + 40_000 * MS,
        "cargo build --release",
        0,
        20_000,
        None,
    ));
    out.push(ev(
        Kind::GitCommit,
        t + 41_000 * MS,
        &[
            ("workspace", s(WS)),
            ("hash", s("0123456789abcdef0123456789abcdef01234567")),
            ("message", s("Refunds")),
        ],
    ));
    (out, typed)
}

/// The engineer's username and a host name, as a data team configures them.
fn configure_identity(t: &TestStore) {
    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::write(
        t.paths.config_dir.join("config.toml"),
        "[redact]\nusers = [\"jdoe\"]\nhosts = [\"build-box-7\"]\n",
    )
    .unwrap();
}

fn main_table(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut rd = csv::Reader::from_path(dir.join("progsnap2/MainTable.csv")).unwrap();
    let header = rd.headers().unwrap().clone();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn workflow_events_become_redacted_actions_in_every_format() {
    let t = TestStore::new();
    configure_identity(&t);
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let (events, typed) = workflow(now_ns());
    capture(&t, events);
    let out = t.tmp.path().join("export");
    export_ok(&t, &out, &[]);
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));

    // Nothing secret or identifying in any byte of any file.
    for (path, bytes) in all_bytes(&out) {
        for needle in [
            PAT,
            DB_PASSWORD,
            BEARER,
            QUERY_TOKEN,
            EDIT_SECRET,
            &EDIT_SECRET[4..14],
            typed.as_str(),
            "jdoe",
            "/home/jdoe",
            "build-box-7",
            "acme",
            "salaries",
            "dumps",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{needle} found in {}",
                path.display()
            );
        }
    }

    let eps = episodes(&out);
    assert_eq!(eps.len(), 1, "one workspace, no idle gap: one episode");
    let ep = &eps[0];
    assert_eq!(ep.end_reason.as_str(), "commit");
    let src = ep
        .files
        .iter()
        .find(|f| f.final_.path.ends_with(".rs"))
        .expect("the file");
    let by_type = |ty: &str| -> Vec<&ActionBody> {
        ep.actions
            .iter()
            .map(|a| &a.body)
            .filter(|b| b.type_name() == ty)
            .collect()
    };

    // The editor: focus, edits summed (never their text), navigation,
    // a command, diagnostics without repeats; all on the file's pseudonym.
    let focus = by_type("file_focus");
    assert_eq!(focus.len(), 1);
    assert!(
        matches!(focus[0], ActionBody::FileFocus { file_id, path, language }
        if *file_id == src.file_id && *path == src.final_.path && language.as_deref() == Some("rust"))
    );
    let edits = by_type("editor_edits");
    assert_eq!(edits.len(), 1, "{edits:?}");
    match edits[0] {
        ActionBody::EditorEdits {
            file_id,
            edits,
            inserted_bytes,
            deleted_bytes,
            min_line,
            max_line,
            duration_ms,
            ..
        } => {
            assert_eq!(*file_id, src.file_id);
            assert_eq!(*edits, typed.len() as i64 + 1);
            assert_eq!(*inserted_bytes, typed.len() as i64);
            assert_eq!(*deleted_bytes, 1);
            assert_eq!((*min_line, *max_line), (Some(1), Some(1)));
            assert!(*duration_ms > 0 && duration_ms % 10 == 0);
        }
        other => panic!("{other:?}"),
    }
    let nav = by_type("navigation");
    assert_eq!(
        nav.len(),
        1,
        "the caret following the typing is no navigation: {nav:?}"
    );
    assert!(
        matches!(
            nav[0],
            ActionBody::Navigation {
                moves: 2,
                selections: 1,
                start_line: 10,
                end_line: 42,
                min_line: 10,
                max_line: 44,
                ..
            }
        ),
        "{nav:?}"
    );
    assert!(
        matches!(by_type("editor_command")[..], [ActionBody::EditorCommand { command, file_id: Some(f), .. }]
        if command == "editor.action.formatDocument" && *f == src.file_id)
    );
    let diags: Vec<i64> = by_type("diagnostics")
        .iter()
        .map(|d| match d {
            ActionBody::Diagnostics {
                errors,
                warnings,
                hints,
                ..
            } => {
                assert_eq!((*warnings, *hints), (2, 1));
                *errors
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(diags, [1, 0], "an unchanged count is not repeated");

    // The shell: commands redacted and anonymized, in order of start.
    let commands: Vec<(String, String, Option<i64>, Option<i64>)> = by_type("shell_command")
        .into_iter()
        .map(|b| match b {
            ActionBody::ShellCommand {
                command,
                cwd,
                exit,
                duration_ms,
            } => (command.clone(), cwd.clone(), *exit, *duration_ms),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(commands.len(), 4, "{commands:?}");
    assert_eq!(
        commands[0].0, "export GITHUB_TOKEN=<SECRET:github-pat#1>",
        "the same placeholder as in the file"
    );
    assert_eq!(
        (commands[0].1.as_str(), commands[0].2, commands[0].3),
        (".", Some(0), Some(10))
    );
    let mysql = &commands[1].0;
    assert!(
        mysql.starts_with("mysql -u <USER#1> -p<SECRET:command-password#1> -h <HOST#")
            && mysql.contains(" payroll < …/home/<USER#1>/")
            && mysql.ends_with(".sql"),
        "{mysql}"
    );
    assert!(
        commands[1].1.starts_with("scripts/") && commands[1].1.len() > 8,
        "cwd hashed: {}",
        commands[1].1
    );
    assert_eq!((commands[1].2, commands[1].3), (Some(1), Some(1_200)));
    let curl = &commands[2].0;
    assert!(
        curl.starts_with("curl -H 'Authorization: Bearer <SECRET:")
            && curl.contains("https://")
            && curl.contains("token=<SECRET:"),
        "{curl}"
    );
    assert_eq!(commands[2].1, "outside");
    assert!(
        commands[3].0.starts_with("ssh <USER#1>@<HOST#"),
        "{}",
        commands[3].0
    );
    assert_eq!((commands[3].2, commands[3].3), (None, None));

    let tests = by_type("test_run");
    assert!(
        matches!(tests[..], [ActionBody::TestRun(RunResult { command, cwd, runner, exit: 101, duration_ms: 9_000, passed: Some(41), failed: Some(1), skipped: Some(2) })]
        if command == "cargo test -p <WORKSPACE> refunds" && cwd == "." && runner == "cargo"),
        "{tests:?}"
    );
    let builds = by_type("build_run");
    assert!(
        matches!(builds[..], [ActionBody::BuildRun(RunResult { command, exit: 0, duration_ms: 20_000, passed: None, .. })]
        if command == "cargo build --release"),
        "{builds:?}"
    );
    // A run is placed where it started: the build ran for 20 s before the
    // commit, 1 s after it ended. That stretch is a pause on the exported
    // clock: kept within 10 %.
    let at = |ty: &str| {
        ep.actions
            .iter()
            .find(|a| a.body.type_name() == ty)
            .unwrap()
            .t_ms
    };
    let gap = at("commit") - at("build_run");
    assert!((gap - 21_000).abs() <= 2_100, "{gap}");

    let m = manifest(&out);
    let findings = &m["redaction"]["findings_by_rule"];
    assert!(
        findings["command-password"].as_u64().unwrap() >= 1,
        "{findings}"
    );
    assert!(findings["username"].as_u64().unwrap() >= 3, "{findings}");
    for ty in [
        "shell_command",
        "test_run",
        "build_run",
        "file_focus",
        "editor_edits",
        "navigation",
        "editor_command",
        "diagnostics",
    ] {
        assert!(
            m["counts"]["actions_by_type"][ty].as_u64().unwrap() >= 1,
            "{ty}"
        );
    }

    // ProgSnap2: Run.Program, Run.Test with its outcome and score, Compile
    // with its result, File.Focus, and X- events for the rest.
    let rows = main_table(&out);
    let of = |ty: &str| {
        rows.iter()
            .filter(|r| r["EventType"] == ty)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("Run.Program").len(), 4);
    let test = &of("Run.Test")[..];
    assert_eq!(test.len(), 1);
    assert_eq!(
        [
            &test[0]["ExecutionResult"],
            &test[0]["Score"],
            &test[0]["X-Passed"],
            &test[0]["X-Failed"],
            &test[0]["X-Runner"]
        ],
        ["TestFailed", "0.9762", "41", "1", "cargo"]
    );
    let compile = &of("Compile")[..];
    assert_eq!(compile.len(), 1);
    assert_eq!(compile[0]["CompileResult"], "Success");
    assert!(of("File.Focus")
        .iter()
        .any(|r| r["X-ActionType"] == "file_focus" && r["CodeStateSection"] == src.final_.path));
    for ty in [
        "X-EditorEdits",
        "X-Navigation",
        "X-EditorCommand",
        "X-Diagnostics",
    ] {
        assert!(!of(ty).is_empty(), "no {ty}");
    }
    assert!(of("Run.Program")
        .iter()
        .any(|r| r["X-Command"].starts_with("mysql -u <USER#1> -p<SECRET:")));
}

#[test]
fn shell_commands_leave_only_when_granted_at_the_time() {
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    let t1 = now_ns();
    capture(
        &t,
        vec![
            ev(Kind::WindowFocus, t1, &[("app", s("Alacritty"))]),
            shell(
                t1 + MS,
                "echo first-ungranted",
                ".",
                Some(WS),
                Some(0),
                Some(1),
            ),
            run(
                Kind::RunTest,
                t1 + 2 * MS,
                "cargo test first-ungranted",
                0,
                1,
                None,
            ),
            editor(
                Kind::EditorDiagnostics,
                t1 + 3 * MS,
                "src/lib.rs",
                &[
                    ("errors", 1.into()),
                    ("warnings", 0.into()),
                    ("info", 0.into()),
                    ("hints", 0.into()),
                ],
            ),
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t2 = now_ns();
    capture(
        &t,
        vec![
            shell(t2, "echo second-granted", ".", Some(WS), Some(0), Some(1)),
            run(
                Kind::RunTest,
                t2 + MS,
                "cargo test second-granted",
                0,
                1,
                Some((1, 0, 0)),
            ),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &[]);
    assert!(verify(&t, &out).status.success());
    let bytes: Vec<u8> = all_bytes(&out).into_iter().flat_map(|(_, b)| b).collect();
    assert!(
        !contains(&bytes, "first-ungranted"),
        "recorded without consent, exported"
    );
    assert!(contains(&bytes, "second-granted"));
    let types: Vec<&'static str> = episodes(&out)
        .iter()
        .flat_map(|e| e.actions.iter().map(|a| a.body.type_name()))
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "shell_command").count(),
        1,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| **t == "test_run").count(), 1);
    assert!(!types.contains(&"diagnostics"));
    assert_eq!(
        manifest(&out)["counts"]["events_excluded"]["scope-not-granted"],
        3,
        "the command, the test run and the diagnostics"
    );
}

#[test]
fn a_command_leaves_only_if_its_whole_run_was_consented_unpaused_and_unpurged() {
    let t = TestStore::new();
    let settle = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let tg = now_ns();
    settle(40);
    {
        let mut st = t.open();
        candor::consent::record_pause(&mut st, true, "test", now_ns()).unwrap();
    }
    settle(40);
    {
        let mut st = t.open();
        candor::consent::record_pause(&mut st, false, "test", now_ns()).unwrap();
    }
    settle(40);
    let tu = now_ns();
    // Ran from before the grant, ended inside it.
    let before = (tu - tg) / MS + 60_000;
    // Ran across the pause, ended after it.
    let across = (tu - tg) / MS - 5;
    capture(
        &t,
        vec![
            shell(
                tu,
                "echo before-consent-span",
                ".",
                Some(WS),
                Some(0),
                Some(before),
            ),
            run(
                Kind::RunTest,
                tu + MS,
                "cargo test paused-span",
                0,
                across,
                None,
            ),
            // Started inside the purged range, ended after it.
            shell(
                tu + 400 * MS,
                "echo purged-span",
                ".",
                Some(WS),
                Some(0),
                Some(300),
            ),
            shell(
                tu + 500 * MS,
                "echo clean-span",
                ".",
                Some(WS),
                Some(0),
                Some(10),
            ),
        ],
    );
    let pq = candor::store::query::format_ns(tu + 50 * MS);
    let pe = candor::store::query::format_ns(tu + 200 * MS);
    t.candor_ok(&["purge", "--since", &pq, "--until", &pe]);
    settle(600);
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &[]);
    assert!(verify(&t, &out).status.success());
    let bytes: Vec<u8> = all_bytes(&out).into_iter().flat_map(|(_, b)| b).collect();
    for needle in ["before-consent-span", "paused-span", "purged-span"] {
        assert!(!contains(&bytes, needle), "{needle} leaked");
    }
    assert!(contains(&bytes, "clean-span"));
    let ex = &manifest(&out)["counts"]["events_excluded"];
    assert_eq!(ex["outside-consent"], 1, "{ex}");
    assert_eq!(ex["paused"], 1, "{ex}");
    assert_eq!(ex["purged"], 1, "{ex}");
}

#[test]
fn a_workspace_named_only_by_shell_events_is_stripped_from_command_lines() {
    let t = TestStore::new();
    grant(&t, "shell.commands");
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t1 = now_ns();
    capture(
        &t,
        vec![
            shell(
                t1,
                "cargo test -p acme-payroll",
                ".",
                Some(WS),
                Some(0),
                Some(1),
            ),
            run(
                Kind::RunBuild,
                t1 + MS,
                "cargo build -p acme-payroll",
                0,
                1,
                None,
            ),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &[]);
    assert!(verify(&t, &out).status.success());
    let bytes: Vec<u8> = all_bytes(&out).into_iter().flat_map(|(_, b)| b).collect();
    assert!(contains(&bytes, "cargo test -p"), "the command left");
    assert!(!contains(&bytes, WS), "the workspace name left verbatim");
}

#[test]
fn huge_client_counts_saturate_instead_of_overflowing() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t1 = now_ns();
    let big = i64::MAX;
    let edit = |ts| {
        editor(
            Kind::EditorEdit,
            ts,
            "src/lib.rs",
            &[
                ("offset", 0.into()),
                ("deleted", big.into()),
                ("text", s("x")),
                ("line", big.into()),
                ("editor", s("vscode")),
            ],
        )
    };
    let mv = |ts, x: i64| ev(Kind::MouseMove, ts, &[("x", x.into()), ("y", x.into())]);
    let wheel = |ts| {
        ev(
            Kind::MouseWheel,
            ts,
            &[("dx", 0.into()), ("dy", big.into())],
        )
    };
    capture(
        &t,
        vec![
            edit(t1),
            edit(t1 + MS),
            mv(t1 + 2 * MS, big),
            mv(t1 + 3 * MS, i64::MIN),
            wheel(t1 + 4 * MS),
            wheel(t1 + 5 * MS),
            run(
                Kind::RunTest,
                t1 + 6 * MS,
                "cargo test",
                0,
                1,
                Some((big, big, big)),
            ),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl,parquet,progsnap2"]);
    assert!(verify(&t, &out).status.success());
    let eps = episodes(&out);
    let bodies: Vec<&ActionBody> = eps
        .iter()
        .flat_map(|e| &e.actions)
        .map(|a| &a.body)
        .collect();
    assert!(
        bodies.iter().any(|b| matches!(
            b,
            ActionBody::EditorEdits { deleted_bytes, max_line: Some(l), .. }
                if *deleted_bytes == i64::MAX && *l == i64::MAX
        )),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| matches!(b, ActionBody::Mouse { scroll, .. } if *scroll == i64::MAX)),
        "{bodies:?}"
    );
}

#[test]
fn verify_scans_every_string_and_refuses_unknown_keys_and_runners() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t0 = now_ns();
    capture(
        &t,
        vec![
            editor(
                Kind::EditorFocus,
                t0,
                "src/lib.rs",
                &[("language", s("rust"))],
            ),
            run(Kind::RunTest, t0 + MS, "cargo test", 0, 1, Some((1, 0, 0))),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl"]);
    assert!(verify(&t, &out).status.success());
    let good = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
    let eps = episodes(&out);
    let focus_path = eps
        .iter()
        .flat_map(|e| &e.actions)
        .find_map(|a| match &a.body {
            ActionBody::FileFocus { path, .. } => Some(path.clone()),
            _ => None,
        })
        .unwrap();
    let focus = format!("\"path\":\"{focus_path}\",\"language\"");
    assert!(good.contains(&focus), "{good}");
    assert!(good.contains("\"runner\":\"cargo\""), "{good}");
    let plants: Vec<(&str, String)> = vec![
        (
            "runner",
            good.replace("\"runner\":\"cargo\"", &format!("\"runner\":\"{PAT}\"")),
        ),
        (
            "unknown runner",
            good.replace("\"runner\":\"cargo\"", "\"runner\":\"make\""),
        ),
        (
            "path",
            good.replacen(
                &focus,
                &format!("\"path\":\"src/{PAT}.rs\",\"language\""),
                1,
            ),
        ),
        (
            "unknown key",
            good.replacen(
                "\"runner\":\"cargo\"",
                &format!("\"runner\":\"cargo\",\"note\":\"{PAT}\""),
                1,
            ),
        ),
        (
            "spacing",
            good.replacen("\"runner\":\"cargo\"", "\"runner\": \"cargo\"", 1),
        ),
    ];
    for (what, text) in plants {
        assert_ne!(text, good, "{what}");
        rewrite(&out, "episodes.jsonl", |_| text);
        let v = verify(&t, &out);
        assert!(!v.status.success(), "{what} passed verify");
        rewrite(&out, "episodes.jsonl", |_| good.clone());
    }
    assert!(verify(&t, &out).status.success());
}

/// Sets `col` of the first MainTable row of `event_type` to `value`.
fn set_cell(csv_text: &str, event_type: &str, col: &str, value: &str) -> String {
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let header = rd.headers().unwrap().clone();
    let (ty, c) = (
        header.iter().position(|h| h == "EventType").unwrap(),
        header.iter().position(|h| h == col).unwrap(),
    );
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    let mut done = false;
    for r in rd.records() {
        let r = r.unwrap();
        let mut cells: Vec<String> = r.iter().map(str::to_owned).collect();
        if !done && cells[ty] == event_type {
            cells[c] = value.to_owned();
            done = true;
        }
        w.write_record(&cells).unwrap();
    }
    assert!(done, "no {event_type} row");
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn verify_scans_every_progsnap2_column_and_wants_integers_where_integers_go() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t0 = now_ns();
    capture(
        &t,
        vec![run(Kind::RunTest, t0, "cargo test", 0, 1, Some((1, 0, 0)))],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl,progsnap2"]);
    assert!(verify(&t, &out).status.success());
    let table = "progsnap2/MainTable.csv";
    let good = std::fs::read_to_string(out.join(table)).unwrap();
    for (col, value) in [
        ("X-Exit", PAT.to_owned()),
        ("X-Passed", "12x".to_owned()),
        ("X-Runner", PAT.to_owned()),
        ("X-Runner", "make".to_owned()),
        ("X-Week", format!("2026-W48 {PAT}")),
        ("X-ActionType", PAT.to_owned()),
    ] {
        let text = set_cell(&good, "Run.Test", col, &value);
        rewrite(&out, table, |_| text);
        let v = verify(&t, &out);
        assert!(
            !v.status.success() && stderr(&v).contains("MainTable.csv"),
            "{col} = {value} passed verify: {}",
            stderr(&v)
        );
        rewrite(&out, table, |_| good.clone());
    }
    assert!(verify(&t, &out).status.success());
}

#[test]
fn command_starts_are_on_the_exported_clock() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t0 = now_ns();
    let mut events = vec![ev(Kind::WindowFocus, t0, &[("app", s("Alacritty"))])];
    for k in 1..=8 {
        events.push(shell(
            t0 + k * 10_000 * MS,
            &format!("echo {k}"),
            ".",
            Some(WS),
            Some(0),
            Some(0),
        ));
    }
    capture(&t, events);
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl", "--timing-quantum", "10ms"]);
    let eps = episodes(&out);
    assert_eq!(eps.len(), 1);
    let starts: Vec<i64> = eps[0]
        .actions
        .iter()
        .filter(|a| a.body.type_name() == "shell_command")
        .map(|a| a.t_ms)
        .collect();
    assert_eq!(starts.len(), 8);
    let exact: Vec<i64> = (1..=8).map(|k| k * 10_000).collect();
    // The stretch between the episode's start and end holds no key: it is
    // one long pause, kept within 10 % and not to the millisecond, and the
    // commands are placed in it where they ran.
    assert_ne!(starts, exact, "command starts are the measured ones");
    for (s, e) in starts.iter().zip(&exact) {
        assert!((s - e).abs() <= e / 10 + 10, "{starts:?}");
    }
    let m = manifest(&out);
    let mode = m["anonymization"]["timing"].as_str().unwrap_or("");
    assert!(mode.starts_with("synthesized"), "{m}");
    // --timing-jitter no longer means anything: refused, not ignored.
    let o = export(&t, &t.tmp.path().join("y"), &["--timing-jitter", "20ms"]);
    assert!(!o.status.success() && stderr(&o).contains("--timing-jitter"));
}

#[test]
fn workflow_events_are_activity_and_belong_to_the_workspace_they_name() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t0 = now_ns();
    let min = 60_000 * MS;
    let mut other = shell(
        t0 + 2 * min,
        "make",
        ".",
        Some("other-ws"),
        Some(0),
        Some(10),
    );
    other.set("cwd", "tools").unwrap();
    capture(
        &t,
        vec![
            file(Kind::FileModify, t0, "src/a.rs", Some("a\n")),
            // A build of 9 minutes ends 9.5 minutes later: the engineer was
            // waiting on it, not idle.
            run(
                Kind::RunBuild,
                t0 + 570 * 1_000 * MS,
                "cargo build",
                0,
                540_000,
                None,
            ),
            // From outside every workspace: the episode under way.
            shell(
                t0 + 571 * 1_000 * MS,
                "htop",
                "outside",
                None,
                Some(0),
                Some(500),
            ),
            // In another workspace: a new episode.
            {
                other.wall_ns = t0 + 572 * 1_000 * MS;
                other
            },
            // Ten minutes of nothing: idle.
            editor(
                Kind::EditorFocus,
                t0 + 582 * 1_000 * MS + 10 * min,
                "src/a.rs",
                &[],
            ),
        ],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl"]);
    let eps = episodes(&out);
    let summary: Vec<(&str, Vec<&str>)> = eps
        .iter()
        .map(|e| {
            (
                e.end_reason.as_str(),
                e.actions.iter().map(|a| a.body.type_name()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "workspace",
                vec!["file_switch", "edit", "build_run", "shell_command"]
            ),
            ("idle", vec!["shell_command"]),
            ("end", vec!["file_focus"]),
        ]
    );
    assert_eq!(eps[0].workspace_id, eps[2].workspace_id);
    assert_ne!(eps[0].workspace_id, eps[1].workspace_id);
    assert!(
        eps[1].workspace_id.is_some(),
        "a command names its workspace"
    );
}

/// Lets the clock move on from a grant, so that a command stamped right
/// after it (and admitted only if it started inside the consent) did.
fn settle_after_grant() {
    std::thread::sleep(std::time::Duration::from_millis(100));
}

/// Rewrites `file` of an export and its manifest entry.
fn rewrite(dir: &Path, file: &str, f: impl FnOnce(String) -> String) {
    use sha2::Digest;
    let path = dir.join(file);
    let text = f(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    let mut m = manifest(dir);
    for e in m["files"].as_array_mut().unwrap() {
        if e["path"] == file {
            e["sha256"] = hex::encode(sha2::Sha256::digest(text.as_bytes())).into();
            e["bytes"] = text.len().into();
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

#[test]
fn verify_finds_a_secret_planted_in_a_command_line() {
    let t = TestStore::new();
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    let t0 = now_ns();
    capture(
        &t,
        vec![shell(
            t0,
            "mysql -u app -pSeCrEt1 db",
            ".",
            Some(WS),
            Some(0),
            Some(20),
        )],
    );
    let out = t.tmp.path().join("x");
    export_ok(&t, &out, &["--format", "jsonl,progsnap2"]);
    assert!(verify(&t, &out).status.success());
    let good_jsonl = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
    assert!(
        good_jsonl.contains("-p<SECRET:command-password#1>"),
        "{good_jsonl}"
    );

    // In the JSONL: a password only the command line's shape gives away.
    rewrite(&out, "episodes.jsonl", |s| {
        s.replace("-p<SECRET:command-password#1>", "-pPlanted99")
    });
    let v = verify(&t, &out);
    assert!(
        !v.status.success() && stderr(&v).contains("command-password"),
        "{}",
        stderr(&v)
    );
    rewrite(&out, "episodes.jsonl", |_| good_jsonl.clone());
    assert!(verify(&t, &out).status.success());

    // In the ProgSnap2 MainTable: a token the engine knows, and the same
    // password.
    let table = "progsnap2/MainTable.csv";
    let good = std::fs::read_to_string(out.join(table)).unwrap();
    for planted in ["-pPlanted99", &format!("-p{PAT}")] {
        rewrite(&out, table, |s| {
            s.replace("-p<SECRET:command-password#1>", planted)
        });
        let v = verify(&t, &out);
        assert!(
            !v.status.success() && stderr(&v).contains("MainTable.csv"),
            "{planted}: {}",
            stderr(&v)
        );
        rewrite(&out, table, |_| good.clone());
    }
    assert!(verify(&t, &out).status.success());

    // An export of another schema is named as such.
    let mut m = manifest(&out);
    m["schema_version"] = 1.into();
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let v = verify(&t, &out);
    assert!(
        !v.status.success() && stderr(&v).contains("the export has schema 1"),
        "{}",
        stderr(&v)
    );
}

#[test]
fn duckdb_reads_the_workflow_columns() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        skip_or_fail("python3 with duckdb is not installed (scripts/setup.sh installs it)");
        return;
    }
    let t = TestStore::new();
    configure_identity(&t);
    grant(&t, WORKFLOW_SCOPES);
    // A command is placed where it started: let it start after the grant.
    settle_after_grant();
    capture(&t, workflow(now_ns()).0);
    let out = t.tmp.path().join("export");
    export_ok(&t, &out, &["--format", "parquet,jsonl"]);
    let script = r#"
import duckdb, json, sys
con = duckdb.connect()
q = lambda sql: con.execute(sql.replace("{T}", "read_parquet('" + sys.argv[1] + "/parquet/actions/**/*.parquet', hive_partitioning = true, hive_types_autocast = false)")).fetchall()
print(json.dumps({
  "tests": q("SELECT runner, exit, passed, failed, skipped, command FROM {T} WHERE type = 'test_run'"),
  "commands": q("SELECT count(*), count(exit), count(duration_ms) FROM {T} WHERE type = 'shell_command'"),
  "edits": q("SELECT edits, inserted_bytes, min_line FROM {T} WHERE type = 'editor_edits'"),
  "diagnostics": q("SELECT sum(errors), sum(warnings) FROM {T} WHERE type = 'diagnostics'"),
}))
"#;
    let res = std::process::Command::new("python3")
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(
        got["tests"],
        serde_json::json!([["cargo", 101, 41, 1, 2, "cargo test -p <WORKSPACE> refunds"]])
    );
    assert_eq!(got["commands"], serde_json::json!([[4, 3, 3]]));
    assert_eq!(got["edits"][0][2], 1);
    assert_eq!(got["diagnostics"], serde_json::json!([[1, 4]]));
}
