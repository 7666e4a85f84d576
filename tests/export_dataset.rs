//! What a data team gets beyond the tables: the dataset card every export
//! carries (checked against the manifest and the files), next-edit training
//! examples (checked by hand on a small episode, against replay on a
//! synthetic session, and for a planted secret), and `combine`, whose
//! output DuckDB and Apache Spark read with the same counts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candor::event::Event;
use candor::export::model::{
    Action, ActionBody, CodeState, EndReason, Episode, FileStates, SCHEMA_VERSION,
};
use candor::export::next_edit::{self, Example, Skipped, CURSOR};
use candor::export::replay::{self, state_id, unified};
use candor::registry::Kind;
use common::*;

const MS: i64 = 1_000_000;
const PAT: &str = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
const ALL_FORMATS: &str = "jsonl,parquet,progsnap2,next-edit";

fn export_synthetic(t: &TestStore, out: &Path, extra: &[&str]) {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "episodes",
        "--synthetic",
        "--quiet",
        "--format",
        ALL_FORMATS,
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let o = t.run("candor-export", &args);
    assert!(o.status.success(), "export: {}", stderr(&o));
}

fn verify(t: &TestStore, dir: &Path) -> std::process::Output {
    t.run("candor-export", &["verify", dir.to_str().unwrap()])
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn examples(dir: &Path) -> Vec<Example> {
    std::fs::read_to_string(dir.join(next_edit::FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rewrites `rel` in an export and puts its new checksum in the manifest,
/// so that only the content checks can catch it.
fn tamper(dir: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let path = dir.join(rel);
    let new = f(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &new).unwrap();
    let mut m = json(&dir.join("manifest.json"));
    for e in m["files"].as_array_mut().unwrap() {
        if e["path"] == rel {
            e["sha256"] =
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(new.as_bytes())).into();
            e["bytes"] = (new.len() as u64).into();
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// The rows `| a | b | … |` of the markdown table under `## heading`.
fn table(card: &str, heading: &str) -> Vec<Vec<String>> {
    let start = card
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    card[start..]
        .lines()
        .skip(2)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

/// Every scalar under `v`, by its dotted path.
fn leaves(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                leaves(&format!("{prefix}.{k}"), x, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Array(_) => {}
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[test]
fn every_export_has_a_card_naming_each_file_and_the_manifests_figures() {
    let t = TestStore::new();
    write_synthetic(&t, 4000);
    let out = t.tmp.path().join("export");
    export_synthetic(&t, &out, &[]);
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    let figures = check_card(&out);
    assert!(figures
        .keys()
        .any(|k| k.starts_with("counts.actions_by_type.")));

    // Recorded work, with a secret redacted: the findings are figures too,
    // and the scopes are named.
    let t = TestStore::new();
    grant(&t, "editor.files,editor.content");
    capture(&t, saves(now_ns()));
    let out = t.tmp.path().join("export");
    let o = t.run(
        "candor-export",
        &[
            "episodes",
            "--quiet",
            "--format",
            ALL_FORMATS,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "export: {}", stderr(&o));
    let figures = check_card(&out);
    assert!(
        figures
            .keys()
            .any(|k| k.starts_with("redaction.findings_by_rule.")),
        "{figures:?}"
    );
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(!card.contains("- synthetic"));
    for scope in ["capture.meta", "editor.files", "editor.content"] {
        assert!(card.contains(&format!("- `{scope}`: ")), "{scope}");
    }
    let m = json(&out.join("manifest.json"));
    assert_eq!(m["consent"]["scopes"].as_array().unwrap().len(), 3, "{m}");

    // A card that says what the manifest does not is caught, even with
    // its checksum fixed up.
    tamper(&out, "README.md", |c| {
        c.replace(
            &format!("| `counts.episodes` | {} |", m["counts"]["episodes"]),
            "| `counts.episodes` | 99999 |",
        )
    });
    let v = verify(&t, &out);
    assert!(!v.status.success());
    assert!(stderr(&v).contains("README.md"), "{}", stderr(&v));
}

/// Checks the card of the export in `out` against its manifest and files,
/// and returns its figures.
fn check_card(out: &Path) -> BTreeMap<String, String> {
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    let m = json(&out.join("manifest.json"));
    // The Hugging Face template: YAML front matter first, licence left open.
    assert!(card.starts_with("---\n"), "{card}");
    let front = &card[4..card[4..].find("\n---\n").unwrap() + 4];
    assert!(front.contains("license: other  # set by the data team"));
    assert!(front.contains("size_categories:\n- n<1K"), "{front}");
    for section in ["What was recorded", "What was removed", "Known limits"] {
        assert!(card.contains(&format!("\n## {section}\n")), "{section}");
    }

    // Every file the manifest lists (but the card) is covered by one row
    // of the Files table, whose counts and bytes add up.
    let files: Vec<(String, u64)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["bytes"].as_u64().unwrap(),
            )
        })
        .filter(|(p, _)| p != "README.md")
        .collect();
    assert!(m["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"] == "README.md"));
    let rows = table(&card, "Files");
    let mut seen = BTreeMap::new();
    for (path, bytes) in &files {
        let covering: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[0] == *path || (r[0].ends_with('/') && path.starts_with(&r[0])))
            .collect();
        assert_eq!(covering.len(), 1, "{path} in {rows:?}");
        let e = seen.entry(covering[0][0].clone()).or_insert((0u64, 0u64));
        e.0 += 1;
        e.1 += bytes;
    }
    for r in &rows {
        let (n, b) = seen.get(&r[0]).copied().unwrap_or_default();
        assert_eq!(
            (n.to_string(), b.to_string()),
            (r[1].clone(), r[2].clone()),
            "{r:?}"
        );
    }
    for want in [
        "episodes.jsonl",
        "next_edit.jsonl",
        "parquet/episodes/",
        "parquet/actions/",
        "parquet/files/",
        "progsnap2/MainTable.csv",
    ] {
        assert!(rows.iter().any(|r| r[0] == want), "no {want} in {rows:?}");
    }

    // Every figure of the manifest is in the card, with its value.
    let figures: BTreeMap<String, String> = table(&card, "Figures")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut want = BTreeMap::new();
    leaves("counts", &m["counts"], &mut want);
    leaves("redaction", &m["redaction"], &mut want);
    for k in ["salt", "timing", "timing_quantum_ms", "idle_gap_ms"] {
        leaves(
            &format!("anonymization.{k}"),
            &m["anonymization"][k],
            &mut want,
        );
    }
    assert!(want.len() > 10, "{want:?}");
    assert!(want.contains_key("anonymization.timing"));
    for (k, v) in &want {
        assert_eq!(figures.get(k), Some(v), "figure {k}");
    }
    assert_eq!(
        figures["next_edit examples"],
        examples(out).len().to_string()
    );

    figures
}

fn code(path: &str, content: Option<&str>) -> CodeState {
    CodeState {
        path: path.into(),
        exists: content.is_some(),
        content: content.map(str::to_owned),
        state_id: content.map(state_id),
    }
}

fn act(seq: u32, body: ActionBody) -> Action {
    Action {
        seq,
        t_ms: i64::from(seq) * 1000,
        body,
    }
}

fn edit(seq: u32, id: &str, path: &str, old: &str, new: &str, create: bool) -> Action {
    let (file_id, path, diff, state) = (
        id.to_owned(),
        path.to_owned(),
        Some(unified(old, new, path, path)),
        Some(state_id(new)),
    );
    act(
        seq,
        if create {
            ActionBody::FileCreate {
                file_id,
                path,
                diff,
                state_id: state,
            }
        } else {
            ActionBody::Edit {
                file_id,
                path,
                diff,
                state_id: state,
            }
        },
    )
}

#[test]
fn next_edit_examples_of_a_small_episode_are_the_ones_worked_out_by_hand() {
    let v1 = "fn main() {\n}\n";
    let v2 = "fn main() {\n    run();\n}\n";
    let v3 = "fn main() {\n    run(1);\n}\n";
    let u1 = "x = 1\n";
    let u2 = "x = 2\n";
    let ep = Episode {
        schema: SCHEMA_VERSION,
        episode_id: "e".repeat(32),
        subject_id: "s".repeat(32),
        workspace_id: None,
        week: "2026-W49".into(),
        duration_ms: 9000,
        end_reason: EndReason::End,
        files: vec![
            FileStates {
                file_id: "f1".into(),
                initial: code("src/main.rs", None),
                final_: code("src/main.rs", Some(v3)),
            },
            FileStates {
                file_id: "f2".into(),
                initial: code("a.py", Some(u1)),
                final_: code("a.py", Some(u2)),
            },
        ],
        actions: vec![
            edit(0, "f1", "src/main.rs", "", v1, true),
            act(
                1,
                ActionBody::Focus {
                    app: Some("code".into()),
                    title: None,
                },
            ),
            edit(2, "f1", "src/main.rs", v1, v2, false),
            edit(3, "f2", "a.py", u1, u2, false),
            edit(4, "f1", "src/main.rs", v2, v3, false),
        ],
    };
    let mut skipped = Skipped::default();
    let got = next_edit::examples(&ep, None, &mut skipped).unwrap();
    assert_eq!(skipped, Skipped::default());
    let ids: Vec<&str> = got.iter().map(|e| e.example_id.as_str()).collect();
    let e = "e".repeat(32);
    assert_eq!(
        ids,
        [
            format!("{e}-0"),
            format!("{e}-2"),
            format!("{e}-3"),
            format!("{e}-4")
        ]
    );
    let framed = |path: &str, excerpt: &str| {
        format!(
            "```{path}\n<|start_of_file|>\n<|editable_region_start|>\n{excerpt}<|editable_region_end|>\n```"
        )
    };
    // The new file: nothing before, cursor at its start, no history.
    assert_eq!(got[0].events, "");
    assert_eq!(got[0].input, framed("src/main.rs", CURSOR));
    assert_eq!(got[0].output, framed("src/main.rs", v1));
    // The inserted line: the cursor where it goes, the creation as history.
    assert_eq!(
        got[1].input,
        framed("src/main.rs", &format!("fn main() {{\n{CURSOR}}}\n"))
    );
    assert_eq!(got[1].output, framed("src/main.rs", v2));
    assert_eq!(
        got[1].events,
        format!(
            "User edited \"src/main.rs\":\n```diff\n{}```\n",
            unified("", v1, "src/main.rs", "src/main.rs")
        )
    );
    // Another file: its own excerpt, the cursor after the common `x = `.
    assert_eq!(got[2].input, framed("a.py", &format!("x = {CURSOR}1\n")));
    assert_eq!(got[2].output, framed("a.py", u2));
    assert_eq!(got[2].path, "a.py");
    // The last: the cursor inside `run(`, and all three edits before it.
    assert_eq!(
        got[3].input,
        framed(
            "src/main.rs",
            &format!("fn main() {{\n    run({CURSOR});\n}}\n")
        )
    );
    assert_eq!(got[3].output, framed("src/main.rs", v3));
    assert_eq!(got[3].events.matches("User edited").count(), 3);
    assert!(got[3].events.ends_with(&format!(
        "User edited \"a.py\":\n```diff\n{}```\n",
        unified(u1, u2, "a.py", "a.py")
    )));
    assert_eq!(got[3].seq, 4);
    assert_eq!(got[3].excerpt_start_line, 0);
}

/// The line of `text` at which byte offset of line `n` starts.
fn line_offset(text: &str, n: usize) -> usize {
    text.split_inclusive('\n').take(n).map(str::len).sum()
}

#[test]
fn every_next_edit_example_is_the_replayed_file_around_the_change() {
    let t = TestStore::new();
    write_synthetic(&t, 6000);
    let out = t.tmp.path().join("export");
    export_synthetic(&t, &out, &[]);
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    let eps: BTreeMap<String, Episode> = candor::export::jsonl::read(&out)
        .unwrap()
        .into_iter()
        .map(|e| (e.episode_id.clone(), e))
        .collect();
    let exs = examples(&out);
    assert!(exs.len() >= 5, "{} examples", exs.len());
    let mut with_history = 0;
    for ex in &exs {
        let ep = &eps[&ex.episode_id];
        let replayed = replay::replay(ep).unwrap();
        let pos = replayed
            .states
            .iter()
            .position(|(seq, id, _)| *seq == ex.seq && *id == ex.file_id)
            .unwrap();
        let after = &replayed.states[pos].2;
        let before = replayed.states[..pos]
            .iter()
            .rev()
            .find(|(_, id, _)| *id == ex.file_id)
            .map(|s| s.2.clone())
            .or_else(|| {
                ep.files
                    .iter()
                    .find(|f| f.file_id == ex.file_id)
                    .and_then(|f| f.initial.content.clone())
            })
            .unwrap_or_default();
        let output = next_edit::unframe(&ex.output).unwrap();
        let input = next_edit::unframe(&ex.input).unwrap();
        assert_eq!(input.matches(CURSOR).count(), 1, "{}", ex.input);
        assert!(!output.contains(CURSOR));
        let (at_a, at_b) = (
            line_offset(after, ex.excerpt_start_line),
            line_offset(&before, ex.excerpt_start_line),
        );
        assert!(after[at_a..].starts_with(output), "{}", ex.example_id);
        assert!(
            before[at_b..].starts_with(&input.replace(CURSOR, "")),
            "{}",
            ex.example_id
        );
        // Whole lines, and the change is inside: the text outside the
        // excerpts is the same before and after.
        let (a_end, b_end) = (at_a + output.len(), at_b + input.len() - CURSOR.len());
        assert!(a_end == after.len() || output.ends_with('\n'));
        assert_eq!(after[..at_a], before[..at_b]);
        assert_eq!(after[a_end..], before[b_end..]);
        if !ex.events.is_empty() {
            with_history += 1;
            assert!(ex.events.matches("User edited").count() <= next_edit::HISTORY);
        }
    }
    assert!(with_history > 0);
}

fn ev(kind: Kind, ts: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new(kind, at(ts));
    for (k, v) in fields {
        e.set(k, *v).unwrap();
    }
    e
}

fn file_event(kind: Kind, ts: i64, path: &str, content: &str) -> Event {
    let mut e = ev(kind, ts, &[("workspace", "payroll"), ("path", path)]);
    e.set("content", content.as_bytes().to_vec()).unwrap();
    e
}

/// A few saves of one file, the second with a token pasted in.
fn saves(t0: i64) -> Vec<Event> {
    let v1 = "fn main() {\n}\n".to_owned();
    let v2 = format!("fn main() {{\n    let token = \"{PAT}\";\n}}\n");
    let v3 = format!("fn main() {{\n    let token = \"{PAT}\";\n    call(token);\n}}\n");
    vec![
        file_event(Kind::FileCreate, t0, "src/main.rs", &v1),
        file_event(Kind::FileModify, t0 + 2_000 * MS, "src/main.rs", &v2),
        file_event(Kind::FileModify, t0 + 4_000 * MS, "src/main.rs", &v3),
    ]
}

#[test]
fn a_secret_saved_in_an_edit_never_reaches_the_next_edit_examples() {
    let t = TestStore::new();
    grant(&t, "editor.files,editor.content");
    capture(&t, saves(now_ns()));
    let out = t.tmp.path().join("export");
    let o = t.run(
        "candor-export",
        &[
            "episodes",
            "--quiet",
            "--format",
            ALL_FORMATS,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "export: {}", stderr(&o));
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    let text = std::fs::read_to_string(out.join(next_edit::FILE)).unwrap();
    let exs = examples(&out);
    assert_eq!(exs.len(), 3, "{text}");
    assert!(!text.contains(PAT) && !text.contains("ghp_"), "{text}");
    // The edit that pasted it is there, with the placeholder.
    assert!(
        exs[1].output.contains("let token = \"<SECRET:"),
        "{}",
        exs[1].output
    );
    assert!(exs[2].events.contains("<SECRET:"));
    // And verify scans the file: a token planted in it is found.
    tamper(&out, next_edit::FILE, |c| {
        c.replacen("call(token)", &format!("call(\\\"{PAT}\\\")"), 1)
    });
    let v = verify(&t, &out);
    assert!(!v.status.success());
    assert!(stderr(&v).contains(next_edit::FILE), "{}", stderr(&v));
}

fn have_python_module(m: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {m}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Counts rows per (table, subject_id, week) with DuckDB and, when asked,
/// with Spark in local mode. `subject_id` and `week` are read from inside
/// the files when the files have them, and from the hive path otherwise.
const READ_COMBINED: &str = r#"
import json, os, sys
root, want_spark = sys.argv[1], sys.argv[2] == "spark"
tables = ["episodes", "actions", "files"]
import duckdb
con = duckdb.connect()
out = {"duckdb": {}, "spark": None}
for t in tables:
    glob = os.path.join(root, "parquet", t, "**", "*.parquet")
    cols = [r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = false)").fetchall()]
    hive = "false" if "subject_id" in cols and "week" in cols else "true"
    rows = con.execute(f"""
        SELECT subject_id, week, count(*) FROM read_parquet('{glob}',
            hive_partitioning = {hive}, hive_types_autocast = false)
        GROUP BY ALL ORDER BY ALL""").fetchall()
    out["duckdb"][t] = [[s, w, n] for s, w, n in rows]
if want_spark:
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[1]")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    out["spark"] = {}
    for t in tables:
        df = spark.read.parquet(os.path.join(root, "parquet", t))
        rows = (df.groupBy("subject_id", "week").count()
                .orderBy("subject_id", "week").collect())
        out["spark"][t] = [[r["subject_id"], r["week"], r["count"]] for r in rows]
    spark.stop()
print(json.dumps(out))
"#;

fn combine(t: &TestStore, dirs: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["combine".to_owned()];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap().to_owned()));
    args.extend(["--out".to_owned(), out.to_str().unwrap().to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    t.run("candor-export", &args)
}

fn inode(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn combine_makes_one_dataset_that_duckdb_and_spark_count_alike() {
    if !have_python_module("duckdb") {
        skip_or_fail("python3 with duckdb is not installed (scripts/setup.sh installs it)");
        return;
    }
    let spark = have_python_module("pyspark")
        && std::process::Command::new("java")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !spark {
        skip_or_fail(
            "pyspark or a JRE is missing (scripts/setup.sh installs both): Spark is not checked",
        );
    }
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (TestStore::new(), TestStore::new());
    write_synthetic(&a, 3000);
    write_synthetic(&b, 5000);
    let (ea, eb) = (root.path().join("ada"), root.path().join("grace"));
    export_synthetic(&a, &ea, &[]);
    export_synthetic(&b, &eb, &[]);
    let out = root.path().join("combined");
    let o = combine(&a, &[&ea, &eb], &out);
    assert!(o.status.success(), "combine: {}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(printed.contains("combined 2 exports"), "{printed}");

    let m = json(&out.join("manifest.json"));
    assert_eq!(m["kind"], "combined");
    let (ma, mb) = (
        json(&ea.join("manifest.json")),
        json(&eb.join("manifest.json")),
    );
    for k in ["episodes", "actions", "keys", "events_read"] {
        assert_eq!(
            m["counts"][k].as_u64().unwrap(),
            ma["counts"][k].as_u64().unwrap() + mb["counts"][k].as_u64().unwrap(),
            "{k}"
        );
    }
    // Every file is listed with its checksum, and linked, not copied.
    for f in m["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            "{rel}"
        );
    }
    let id_a = ma["export_id"].as_str().unwrap();
    assert_eq!(
        inode(&out.join(format!("exports/{id_a}/episodes.jsonl"))),
        inode(&ea.join("episodes.jsonl"))
    );
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains(id_a) && card.contains(mb["export_id"].as_str().unwrap()));
    assert!(card.contains(&format!(
        "| `counts.episodes` | {} |",
        m["counts"]["episodes"]
    )));

    // DuckDB (and Spark) see every engineer, with subject_id and week.
    let res = std::process::Command::new("python3")
        .args([
            "-c",
            READ_COMBINED,
            out.to_str().unwrap(),
            if spark { "spark" } else { "duckdb" },
        ])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "python: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let per_subject = |table: &str| -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in got["duckdb"][table].as_array().unwrap() {
            assert!(r[1].as_str().unwrap().contains("-W"), "week {r}");
            *out.entry(r[0].as_str().unwrap().to_owned()).or_default() += r[2].as_u64().unwrap();
        }
        out
    };
    let want = |key: &str, times: u64| -> BTreeMap<String, u64> {
        [&ma, &mb]
            .iter()
            .map(|m| {
                (
                    m["consent"]["subject_ids"][0].as_str().unwrap().to_owned(),
                    m["counts"][key].as_u64().unwrap() * times,
                )
            })
            .collect()
    };
    assert_eq!(per_subject("episodes"), want("episodes", 1));
    assert_eq!(per_subject("actions"), want("actions", 1));
    if spark {
        assert_eq!(got["spark"], got["duckdb"], "Spark and DuckDB disagree");
    }

    // `verify` checks a combined dataset: its files, its card, and each
    // export put back together from them.
    let v = verify(&a, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout)
            .contains(&format!("{} episodes", m["counts"]["episodes"])),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    let o = combine(&a, &[&out, &ea], &root.path().join("nested"));
    assert!(
        stderr(&o).contains("is a combined dataset"),
        "{}",
        stderr(&o)
    );
    let copy = root.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for rel in candor::export::verify::list_files(&out).unwrap() {
        let to = copy.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(out.join(&rel), to).unwrap();
    }
    let rel = format!("exports/{id_a}/episodes.jsonl");
    // Same length: the combined card's byte counts still hold, so only the
    // export's own manifest can catch it.
    tamper(&copy, &rel, |c| {
        c.replacen(&format!("\"schema\":{SCHEMA_VERSION}"), "\"schema\":9", 1)
    });
    let v = verify(&a, &copy);
    assert!(!v.status.success());
    assert!(stderr(&v).contains(id_a), "{}", stderr(&v));

    // Refused: the same export twice, and existing output.
    let o = combine(&a, &[&ea, &ea], &root.path().join("twice"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("same export"), "{}", stderr(&o));
    assert!(!root.path().join("twice").exists());
    let o = combine(&a, &[&ea, &eb], &out);
    assert!(!o.status.success());
    // An export that does not verify is not combined.
    tamper(&eb, "episodes.jsonl", |c| {
        c.replacen("\"schema\"", "\"schema\" ", 1)
    });
    let o = combine(&a, &[&ea, &eb], &root.path().join("bad"));
    assert!(stderr(&o).contains("does not verify"), "{}", stderr(&o));
    assert!(!root.path().join("bad").exists());
}

#[test]
fn combine_refuses_one_engineer_under_two_salts_and_the_same_episodes_twice() {
    let t = TestStore::new();
    grant(&t, "editor.files,editor.content");
    capture(&t, saves(now_ns()));
    let dir = t.tmp.path();
    let salt = dir.join("salt");
    std::fs::write(&salt, "a salt the data team keeps, 32+ bytes long").unwrap();
    let export = |name: &str, extra: &[&str]| -> PathBuf {
        let out = dir.join(name);
        let mut args = vec!["episodes", "--quiet", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = t.run("candor-export", &args);
        assert!(o.status.success(), "export: {}", stderr(&o));
        out
    };
    let salted = ["--salt-file", salt.to_str().unwrap()];
    let (r1, r2) = (export("random1", &[]), export("random2", &[]));
    let o = combine(&t, &[&r1, &r2], &dir.join("c1"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("different salts"), "{}", stderr(&o));

    let s1 = export("salted1", &salted);
    let mut both = salted.to_vec();
    both.extend(["--format", "jsonl,parquet"]);
    let s2 = export("salted2", &both);
    let o = combine(&t, &[&s1, &s2], &dir.join("c2"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("same episodes"), "{}", stderr(&o));
    assert!(!dir.join("c1").exists() && !dir.join("c2").exists());
}

#[test]
fn combine_copies_what_it_cannot_link_across_filesystems() {
    let shm = Path::new("/dev/shm");
    let t = TestStore::new();
    if !shm.is_dir() || inode(shm).0 == inode(t.tmp.path()).0 {
        eprintln!("SKIPPED: no second filesystem (/dev/shm) beside the test's temporary directory");
        return;
    }
    let u = TestStore::new();
    write_synthetic(&t, 2000);
    write_synthetic(&u, 2000);
    let (ea, eb) = (t.tmp.path().join("a"), u.tmp.path().join("b"));
    export_synthetic(&t, &ea, &[]);
    export_synthetic(&u, &eb, &[]);
    let parent = tempfile::tempdir_in(shm).unwrap();
    let out = parent.path().join("combined");
    let o = combine(&t, &[&ea, &eb], &out);
    assert!(o.status.success(), "combine: {}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(printed.contains(" 0 files linked"), "{printed}");
    assert_ne!(
        inode(&out.join(format!(
            "exports/{}/episodes.jsonl",
            json(&ea.join("manifest.json"))["export_id"].as_str().unwrap()
        ))),
        inode(&ea.join("episodes.jsonl"))
    );
    let v = verify(&t, &out);
    assert!(v.status.success(), "verify: {}", stderr(&v));
}
