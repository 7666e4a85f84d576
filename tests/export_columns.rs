//! The dataset as its readers load it: a synthetic export read back the way
//! a data team would (Parquet without hive partitioning, ProgSnap2 with
//! pandas as the community readers do, code states by id), held against
//! ProgSnap2's required-column table, and `docs/dataset.md`'s field tables
//! held against the column declarations.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use candor::export::columns;
use candor::export::model::{ActionBody, Episode};
use common::*;

/// A synthetic export (jsonl, parquet, progsnap2 with `codestates`), verified.
fn synthetic_export(t: &TestStore, name: &str, codestates: &str) -> PathBuf {
    let out = t.tmp.path().join(name);
    let o = t.run(
        "candor-export",
        &[
            "episodes",
            "--synthetic",
            "--quiet",
            "--progsnap2-codestates",
            codestates,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "export: {}", stderr(&o));
    let v = t.run("candor-export", &["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    out
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn docs_field_tables_are_the_column_declarations() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dataset.md");
    let docs = std::fs::read_to_string(&path).unwrap();
    let want = [
        ("episodes", columns::markdown(columns::EPISODES)),
        ("actions", columns::markdown(columns::ACTIONS)),
        ("files", columns::markdown(columns::FILES)),
        ("progsnap2", columns::markdown_ps2()),
    ];
    let mut fixed = docs.clone();
    let mut stale = Vec::new();
    for (name, table) in want {
        let open = format!("<!-- columns:{name} (generated from src/export/columns.rs) -->\n");
        let close = "<!-- /columns -->";
        let start = fixed
            .find(&open)
            .unwrap_or_else(|| panic!("docs/dataset.md has no {open:?} marker"))
            + open.len();
        let end = start + fixed[start..].find(close).unwrap();
        if fixed[start..end] != table {
            stale.push(name);
            fixed.replace_range(start..end, &table);
        }
    }
    if !stale.is_empty() && std::env::var_os("CANDOR_BLESS").is_some() {
        std::fs::write(&path, fixed).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "docs/dataset.md's tables {stale:?} differ from src/export/columns.rs \
         (rerun with CANDOR_BLESS=1 to rewrite them)"
    );
}

#[test]
fn docs_jsonl_fields_are_the_declared_json_keys() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dataset.md"))
            .unwrap();
    let fields = |ty: &str| -> BTreeSet<String> {
        let row = format!("| `{ty}` | ");
        // In the JSONL action table, not the end_reason one above it.
        let line = docs
            .lines()
            .skip_while(|l| !l.starts_with("| `type` | fields | meaning |"))
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("docs/dataset.md has no JSONL row for {ty}"));
        let cell = line[row.len()..].split(" | ").next().unwrap();
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    for ty in ActionBody::TYPE_NAMES {
        let mut documented = fields(ty);
        if documented == BTreeSet::from(["test_run".to_owned()]) {
            documented = fields("test_run");
        }
        let declared: BTreeSet<String> = columns::ACTIONS
            .iter()
            .filter(|c| !c.kinds.is_empty() && c.filled_by(ty))
            .filter_map(|c| c.json.map(str::to_owned))
            .collect();
        assert_eq!(documented, declared, "JSONL fields of {ty}");
    }
}

/// The spec's required columns per event type (ProgSnap2 v6, MainTable):
/// written from the spec's table, not from the writer.
const REQUIRED_ALWAYS: [&str; 6] = [
    "EventType",
    "EventID",
    "Order",
    "SubjectID",
    "ToolInstances",
    "CodeStateID",
];
const REQUIRED_BY_TYPE: [(&str, &[&str]); 11] = [
    ("Session.Start", &["SessionID"]),
    ("Session.End", &["SessionID"]),
    ("File.Create", &["CodeStateSection"]),
    ("File.Delete", &["CodeStateSection"]),
    ("File.Focus", &["CodeStateSection"]),
    (
        "File.Rename",
        &["CodeStateSection", "DestinationCodeStateSection"],
    ),
    ("File.Edit", &["CodeStateSection", "EditType"]),
    ("Compile", &["CodeStateSection", "CompileResult"]),
    ("Run.Program", &["ExecutionID", "ExecutionResult"]),
    ("Run.Test", &["ExecutionID", "TestID", "ExecutionResult"]),
    ("Submit", &["CodeStateSection"]),
];
const EDIT_TYPES: [&str; 8] = [
    "Insert",
    "Delete",
    "Replace",
    "Move",
    "Paste",
    "Undo",
    "Redo",
    "GenericEdit",
];

/// The free-text columns docs/dataset.md names: no dictionary for them.
const FREE_TEXT: [&str; 6] = ["title", "text", "diff", "message", "command", "content"];

fn main_table(dir: &Path) -> Vec<BTreeMap<String, String>> {
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
fn synthetic_export_meets_the_spec_and_its_readers() {
    let t = TestStore::new();
    write_synthetic(&t, 8_000);
    let out = synthetic_export(&t, "ds", "table");
    let episodes: Vec<Episode> = candor::export::jsonl::read(&out).unwrap();
    assert!(episodes.len() > 3, "{} episodes", episodes.len());

    // Problems of the data itself are collected, so that one run names all.
    let mut problems: Vec<String> = Vec::new();
    // Every episode covers its actions.
    for ep in &episodes {
        let last = ep.actions.last().map_or(0, |a| a.t_ms);
        if ep.duration_ms < last {
            problems.push(format!(
                "episode {}: duration {} < last t_ms {last}",
                ep.episode_id, ep.duration_ms
            ));
        }
    }
    // A file_create creates: the file is absent before it.
    let mut creates = 0;
    for ep in &episodes {
        let mut exists: BTreeMap<&str, bool> = ep
            .files
            .iter()
            .map(|f| (f.file_id.as_str(), f.initial.exists))
            .collect();
        for a in &ep.actions {
            match &a.body {
                ActionBody::FileCreate { file_id, .. } => {
                    if exists.get(file_id.as_str()).copied().unwrap_or(false) {
                        problems.push(format!(
                            "episode {}: action {} creates a file that exists",
                            ep.episode_id, a.seq
                        ));
                    }
                    exists.insert(file_id, true);
                    creates += 1;
                }
                ActionBody::Edit { file_id, .. } => {
                    exists.insert(file_id, true);
                }
                ActionBody::FileDelete { file_id, .. } => {
                    exists.insert(file_id, false);
                }
                _ => {}
            }
        }
    }
    assert!(creates > 0);
    // Pseudonyms that name directories start with a letter.
    for ep in &episodes {
        if !ep.subject_id.starts_with(|c: char| c.is_ascii_alphabetic()) {
            problems.push(format!("subject_id {} starts with a digit", ep.subject_id));
        }
    }

    // Parquet: subject_id and week are columns of every file (and agree
    // with the directories), and free text has no dictionary.
    let mut files = 0;
    for rel in candor::export::verify::list_files(&out).unwrap() {
        if !rel.ends_with(".parquet") {
            continue;
        }
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader =
            SerializedFileReader::new(std::fs::File::open(out.join(&rel)).unwrap()).unwrap();
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        assert!(names.contains(&"subject_id".to_string()), "{rel}");
        assert!(names.contains(&"week".to_string()), "{rel}");
        let table = rel.split('/').nth(1).unwrap();
        assert!(["episodes", "actions", "files"].contains(&table), "{rel}");
        for rg in meta.row_groups() {
            for c in rg.columns() {
                let name = c.column_path().string();
                // The docs' list, not the declaration's: the test must not
                // move with the code it checks.
                let free = FREE_TEXT.contains(&name.as_str());
                if free && c.dictionary_page_offset().is_some() {
                    problems.push(format!(
                        "{rel}: free-text column {name} is dictionary-encoded"
                    ));
                }
            }
        }
        files += 1;
    }
    assert!(files >= 3);
    problems.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // ProgSnap2: the spec's required columns, per event type.
    let rows = main_table(&out);
    for (i, r) in rows.iter().enumerate() {
        let ty = r["EventType"].as_str();
        let by_type = REQUIRED_BY_TYPE
            .iter()
            .find(|(t, _)| *t == ty)
            .map_or(&[][..], |(_, c)| *c);
        assert!(
            !by_type.is_empty() || ty.starts_with("X-"),
            "row {i}: EventType {ty} is neither the spec's nor an X- extension"
        );
        for col in REQUIRED_ALWAYS.iter().chain(by_type) {
            // An empty CodeStateID is the spec's "unknown"; no other
            // required cell may be empty.
            if *col == "CodeStateID" {
                assert!(r.contains_key(*col));
                continue;
            }
            assert!(
                r.get(*col).is_some_and(|v| !v.is_empty()),
                "row {i} ({ty}): required {col} is empty"
            );
        }
        if ty == "File.Edit" {
            assert!(EDIT_TYPES.contains(&r["EditType"].as_str()), "{r:?}");
        }
        if !r["ExecutionResult"].is_empty() {
            let v = r["ExecutionResult"].as_str();
            assert!(
                ["Success", "Timeout", "Error", "TestFailed"].contains(&v) || v.starts_with("X-"),
                "{v}"
            );
        }
    }
    let metadata = std::fs::read_to_string(out.join("progsnap2/DatasetMetadata.csv")).unwrap();
    assert!(metadata.contains("CodeStateRepresentation,Table\n"));
    for ty in ["Session.Start", "File.Edit", "Run.Program"] {
        assert!(rows.iter().any(|r| r["EventType"] == ty), "no {ty} row");
    }

    // Readers without hive partitioning still see subject_id and week.
    if python_has("duckdb") {
        let got = python(
            r#"
import duckdb, sys
con = duckdb.connect()
t = "read_parquet('" + sys.argv[1] + "/parquet/actions/**/*.parquet', hive_partitioning = false)"
n, subjects = con.execute("SELECT count(*), count(DISTINCT subject_id) FROM " + t + " WHERE week LIKE '____-W__'").fetchone()
h = con.execute("SELECT count(*) FROM read_parquet('" + sys.argv[1] + "/parquet/actions/**/*.parquet', hive_partitioning = true, hive_types_autocast = false)").fetchone()[0]
print(n, subjects, h)
"#,
            &[&out],
        );
        let actions: usize = episodes.iter().map(|e| e.actions.len()).sum();
        assert_eq!(got.trim(), format!("{actions} 1 {actions}"));
    } else {
        skip_or_fail("python3 with duckdb is not installed (scripts/setup.sh installs it)");
    }

    // A community-style reader: pandas over the CSVs, code states by id;
    // every File.Edit row's InsertText/DeleteText at SourceLocation turns
    // the previous state of its file into the next.
    if !python_has("pandas") {
        skip_or_fail("python3 with pandas is not installed (scripts/setup.sh installs it)");
        return;
    }
    let got = python(
        r#"
import sys, pandas as pd
root = sys.argv[1] + "/progsnap2/"
main = pd.read_csv(root + "MainTable.csv", dtype=str, keep_default_na=False)
states = pd.read_csv(root + "CodeStates/CodeStates.csv", dtype=str, keep_default_na=False)
code = {(r.CodeStateID, r.CodeStateSection): r.Contents for r in states.itertuples()}
ids = set(states.CodeStateID)
assert set(main.CodeStateID) - {""} == ids, "states and rows disagree"
checked = 0
for sid, ses in main.groupby("SessionID", sort=False):
    ses = ses.assign(o=ses.Order.astype(int)).sort_values("o")
    prev = None
    for r in ses.itertuples():
        if r.EventType in ("File.Edit", "File.Create") and r.SourceLocation:
            at = int(r.SourceLocation.split(":")[1])
            before = code.get((prev, r.CodeStateSection), "") if prev else ""
            assert before[at:at + len(r.DeleteText)] == r.DeleteText, (sid, r.Order)
            after = before[:at] + r.InsertText + before[at + len(r.DeleteText):]
            assert code[(r.CodeStateID, r.CodeStateSection)] == after, (sid, r.Order)
            checked += 1
        prev = r.CodeStateID or prev
print(len(main), len(ids), checked)
"#,
        &[&out],
    );
    let nums: Vec<usize> = got.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(nums[0], rows.len());
    let edits = rows
        .iter()
        .filter(|r| !r["SourceLocation"].is_empty())
        .count();
    assert!(edits > 10, "{edits} edit rows with text");
    assert_eq!(nums[2], edits, "{got}");
}

#[test]
fn both_code_state_representations_hold_the_same_states() {
    let t = TestStore::new();
    write_synthetic(&t, 3_000);
    let salt = t.tmp.path().join("salt");
    std::fs::write(&salt, "0123456789abcdef0123456789abcdef\n").unwrap();
    let export = |name: &str, rep: &str| {
        let out = t.tmp.path().join(name);
        let o = t.run(
            "candor-export",
            &[
                "episodes",
                "--synthetic",
                "--quiet",
                "--salt-file",
                salt.to_str().unwrap(),
                "--progsnap2-codestates",
                rep,
                "--format",
                "jsonl,progsnap2",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "export: {}", stderr(&o));
        let v = t.run("candor-export", &["verify", out.to_str().unwrap()]);
        assert!(v.status.success(), "verify: {}", stderr(&v));
        out
    };
    let (table, dir) = (export("t", "table"), export("d", "directory"));
    let ids = |d: &Path| -> BTreeSet<String> {
        main_table(d)
            .into_iter()
            .map(|r| r["CodeStateID"].clone())
            .filter(|s| !s.is_empty())
            .collect()
    };
    assert_eq!(ids(&table), ids(&dir));
    let meta = std::fs::read_to_string(dir.join("progsnap2/DatasetMetadata.csv")).unwrap();
    assert!(meta.contains("CodeStateRepresentation,Directory\n"));
    let bad = t.run(
        "candor-export",
        &[
            "episodes",
            "--synthetic",
            "--progsnap2-codestates",
            "git",
            "--out",
            t.tmp.path().join("x").to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("table or directory"),
        "{}",
        stderr(&bad)
    );
}
