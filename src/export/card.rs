//! The dataset card: `README.md` in every export (and in every combined
//! dataset), after the Hugging Face dataset-card template: YAML front
//! matter, then what was recorded and under which consent scopes, what was
//! removed and how, what the data cannot be trusted for, and the figures.
//!
//! Everything in it is derived from the manifest (and the line count of
//! `next_edit.jsonl`), so `verify` re-renders it and compares bytes: a card
//! that says something the manifest does not is caught like any other
//! tampered file. Its figures table names each figure by its manifest path
//! (`counts.episodes`), so a reader (or a test) can tie them back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::manifest::{Counts, FileEntry, Manifest};
use super::sink::{create_file, io_err};
use super::source::Admission;
use super::ExportError;
use crate::registry::Scope;

/// The card's file name, at the root of the export.
pub const FILE: &str = "README.md";

/// The scopes granted by the consent records an export's events fall
/// under, sorted.
pub fn granted_scopes(adm: &Admission, records: &BTreeSet<String>) -> Vec<String> {
    let set: BTreeSet<String> = adm
        .history
        .windows
        .iter()
        .filter(|w| records.contains(&w.record.record_id))
        .flat_map(|w| w.record.scopes.iter().cloned())
        .collect();
    set.into_iter().collect()
}

/// How the files of an export are grouped in the card: each Parquet table,
/// the ProgSnap2 code states and every other file on its own.
pub fn group_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["parquet", table, _, ..] => format!("parquet/{table}/"),
        ["progsnap2", "CodeStates", _, ..] => "progsnap2/CodeStates/".into(),
        ["exports", id, "progsnap2", "CodeStates", _, ..] => {
            format!("exports/{id}/progsnap2/CodeStates/")
        }
        _ => path.to_owned(),
    }
}

/// Files and bytes by group, in path order.
pub fn groups(files: &[FileEntry]) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for f in files {
        let g = out.entry(group_of(&f.path)).or_default();
        g.0 += 1;
        g.1 += f.bytes;
    }
    out
}

/// The Hugging Face size category for `n` rows.
pub fn size_category(n: u64) -> &'static str {
    match n {
        0..=999 => "n<1K",
        1_000..=9_999 => "1K<n<10K",
        10_000..=99_999 => "10K<n<100K",
        100_000..=999_999 => "100K<n<1M",
        1_000_000..=9_999_999 => "1M<n<10M",
        10_000_000..=99_999_999 => "10M<n<100M",
        100_000_000..=999_999_999 => "100M<n<1B",
        _ => "n>1B",
    }
}

/// The YAML front matter: licence left for the data team, task, size and
/// one config per table a loader can read in one line.
pub fn render_front(episodes: u64, synthetic: bool, files: &[FileEntry]) -> String {
    let mut out = String::new();
    let g = groups(files);
    let has = |k: &str| g.keys().any(|p| p == k || p.ends_with(&format!("/{k}")));
    out.push_str("---\nlicense: other  # set by the data team\n");
    out.push_str("pretty_name: Candor coding episodes\n");
    out.push_str("task_categories:\n- text-generation\n");
    out.push_str("tags:\n- code\n- developer-activity\n- candor\n");
    if has(super::next_edit::FILE) {
        out.push_str("- edit-prediction\n");
    }
    if synthetic {
        out.push_str("- synthetic\n");
    }
    let _ = writeln!(out, "size_categories:\n- {}", size_category(episodes));
    let mut configs = Vec::new();
    for table in ["episodes", "actions", "files"] {
        if g.contains_key(&format!("parquet/{table}/")) {
            configs.push((table.to_owned(), format!("parquet/{table}/**/*.parquet")));
        }
    }
    let jsonl: Vec<&String> = g.keys().filter(|k| k.ends_with("episodes.jsonl")).collect();
    if !jsonl.is_empty() && configs.is_empty() {
        configs.push(("episodes".into(), glob_of(&jsonl)));
    }
    let ne: Vec<&String> = g
        .keys()
        .filter(|k| k.ends_with(super::next_edit::FILE))
        .collect();
    if !ne.is_empty() {
        configs.push(("next_edit".into(), glob_of(&ne)));
    }
    if !configs.is_empty() {
        out.push_str("configs:\n");
        for (i, (name, files)) in configs.iter().enumerate() {
            let _ = writeln!(out, "- config_name: {name}");
            if i == 0 {
                out.push_str("  default: true\n");
            }
            let _ = writeln!(out, "  data_files: \"{files}\"");
        }
    }
    out.push_str("---\n\n");
    out
}

/// One path, or the glob that covers `exports/<id>/FILE` for every id.
fn glob_of(paths: &[&String]) -> String {
    match paths {
        [one] => (*one).clone(),
        _ => {
            let name = paths[0].rsplit('/').next().unwrap_or("");
            format!("exports/*/{name}")
        }
    }
}

pub fn files_table(out: &mut String, files: &[FileEntry]) {
    out.push_str("## Files\n\n");
    out.push_str(
        "Every file of the dataset but `manifest.json` (which lists each one with its SHA-256) and this card.\n\n",
    );
    out.push_str("| path | files | bytes |\n| --- | --- | --- |\n");
    for (g, (n, bytes)) in groups(files) {
        let _ = writeln!(out, "| `{g}` | {n} | {bytes} |");
    }
    out.push('\n');
}

fn scopes_section(out: &mut String, scopes: &[String]) {
    out.push_str("Consent scopes granted by the engineers' consent records:\n\n");
    if scopes.is_empty() {
        out.push_str("- (none in the manifest: synthetic data, or an export made before scopes were recorded)\n");
    }
    for s in scopes {
        match Scope::ALL.iter().find(|x| x.decl().name == s) {
            Some(x) => {
                let _ = writeln!(out, "- `{s}`: {}", x.decl().title);
            }
            None => {
                let _ = writeln!(out, "- `{s}`");
            }
        }
    }
    out.push('\n');
}

/// The figures, each named by its path in the manifest.
pub fn figures(out: &mut String, rows: &[(String, String)]) {
    out.push_str("## Figures\n\n");
    out.push_str(
        "Each figure is named by its path in `manifest.json`, where it can be checked.\n\n",
    );
    out.push_str("| figure | value |\n| --- | --- |\n");
    for (k, v) in rows {
        // A pipe would end the cell early.
        let _ = writeln!(out, "| `{k}` | {} |", v.replace('|', "\\|"));
    }
    out.push('\n');
}

pub fn count_rows(prefix: &str, c: &Counts) -> Vec<(String, String)> {
    let mut rows = vec![
        (format!("{prefix}counts.episodes"), c.episodes.to_string()),
        (format!("{prefix}counts.actions"), c.actions.to_string()),
        (format!("{prefix}counts.keys"), c.keys.to_string()),
        (
            format!("{prefix}counts.events_read"),
            c.events_read.to_string(),
        ),
        (
            format!("{prefix}counts.events_exported"),
            c.events_exported.to_string(),
        ),
    ];
    for (k, v) in &c.actions_by_type {
        rows.push((format!("{prefix}counts.actions_by_type.{k}"), v.to_string()));
    }
    for (k, v) in &c.events_excluded {
        rows.push((format!("{prefix}counts.events_excluded.{k}"), v.to_string()));
    }
    rows
}

pub const LIMITS: &str = "## Known limits

- **Redaction is by rule.** Secrets, personal data and the engineer's identity are replaced by placeholders by a fixed rule set (its SHA-256 is above); a secret of a shape no rule knows, or a name nobody configured, can remain. `candor-export verify` rescans every text with the same rules, so it cannot find what they miss.
- **Timing is re-synthesized.** Intervals between keys are drawn from a population model, not measured: they say nothing about one person's rhythm. Pauses of a second or more are kept within 10 %, and episode durations and action offsets are on that clock.
- **Only what consent covered.** Events outside consent windows, under scopes not granted, paused, revoked, purged or past retention are left out (counted above by reason); an episode may therefore have holes, shown as `gap` actions where capture knew of them.
- **Pseudonyms are per salt.** Subjects, workspaces, files and episodes are HMAC pseudonyms: without a shared salt file, two exports of one engineer cannot be linked, and with one they can.
- **Editor edits are summaries.** Editor plugins send counts and line ranges, never the text typed; code content comes from saved snapshots. Next-edit examples are therefore built from saved diffs, with the cursor placed where the change begins.
- **Only the ISO week is absolute time.**

";

/// The card of one export, from its manifest. `files` are the export's
/// files but the card and the manifest; `next_edit_examples` is the line
/// count of `next_edit.jsonl` when the export has one.
pub fn render(m: &Manifest, next_edit_examples: Option<u64>) -> String {
    let mut out = render_front(m.counts.episodes, m.synthetic, &m.files);
    let _ = writeln!(out, "# Candor export `{}`\n", m.export_id);
    let _ = writeln!(
        out,
        "Redacted, anonymized coding episodes of {} engineer(s), written by {} (episode schema {}) in the formats {}.{}\n",
        m.consent.subject_ids.len(),
        m.tool,
        m.schema_version,
        m.formats.join(", "),
        if m.synthetic {
            " **The data is synthetic**: it was generated, not recorded from a person."
        } else {
            ""
        }
    );
    out.push_str(
        "An episode is a span of work in one workspace, with its ordered actions and the initial and final state of every file it touched; `docs/dataset.md` of Candor documents every field.\n\n",
    );
    files_table(&mut out, &m.files);
    out.push_str("## What was recorded\n\n");
    if m.synthetic && m.consent.record_ids.is_empty() {
        out.push_str("Synthetic sessions: no person's consent applies, and none was recorded.\n\n");
    } else {
        let _ = writeln!(
            out,
            "{} consent record(s), vouched for by consent ledger entry {} (head `{}`; ledger HMAC anchor {}).\n",
            m.consent.record_ids.len(),
            m.consent.ledger_seq,
            m.consent.ledger_head,
            if m.consent.anchor_checked { "checked" } else { "not checked" },
        );
    }
    let _ = writeln!(
        out,
        "Subjects (pseudonyms): {}.\n",
        m.consent
            .subject_ids
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    scopes_section(&mut out, &m.consent.scopes);
    out.push_str("## What was removed\n\n");
    let a = &m.anonymization;
    let _ = writeln!(
        out,
        "- **Redaction:** {} rules (rule set SHA-256 `{}`); findings replaced by rule are in the figures below.",
        m.redaction.rules, m.redaction.ruleset_sha256
    );
    let _ = writeln!(
        out,
        "- **Pseudonyms:** {}; salt {} (never written).",
        a.pseudonyms,
        if a.salt == "supplied" {
            "supplied by the data team: exports made with the same salt file link"
        } else {
            "random: this export links to no other"
        }
    );
    let _ = writeln!(
        out,
        "- **Paths:** every name hashed, keeping depth and extension; kept as they are: {}.",
        a.path_allowlist
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "- **Timing:** mode `{}`, quantum {} ms; episodes cut after {} ms idle; absolute time: {}{}.",
        a.timing,
        a.timing_quantum_ms,
        a.idle_gap_ms,
        a.absolute_time,
        if a.time_range_limited {
            "; the export was limited to a time range"
        } else {
            ""
        }
    );
    out.push_str(
        "- **Left out:** events, by reason, in the figures below (`counts.events_excluded.*`).\n\n",
    );
    out.push_str(LIMITS);
    let mut rows = count_rows("", &m.counts);
    if let Some(n) = next_edit_examples {
        rows.push(("next_edit examples".into(), n.to_string()));
    }
    rows.push((
        "redaction.ruleset_sha256".into(),
        m.redaction.ruleset_sha256.clone(),
    ));
    rows.push(("redaction.rules".into(), m.redaction.rules.to_string()));
    for (k, v) in &m.redaction.findings_by_rule {
        rows.push((format!("redaction.findings_by_rule.{k}"), v.to_string()));
    }
    rows.push(("anonymization.salt".into(), a.salt.clone()));
    rows.push(("anonymization.timing".into(), a.timing.clone()));
    rows.push((
        "anonymization.timing_quantum_ms".into(),
        a.timing_quantum_ms.to_string(),
    ));
    rows.push((
        "anonymization.idle_gap_ms".into(),
        a.idle_gap_ms.to_string(),
    ));
    rows.push((
        "anonymization.time_range_limited".into(),
        a.time_range_limited.to_string(),
    ));
    rows.push((
        "consent.ledger_seq".into(),
        m.consent.ledger_seq.to_string(),
    ));
    figures(&mut out, &rows);
    out.push_str("## Licence\n\nLeft for the data team to set (`license` above): the engineers' consent covers the purposes in Candor's notice, and a licence must not grant more.\n");
    out
}

/// Lines in `next_edit.jsonl` under `dir`, if the export has one.
pub fn next_edit_examples(dir: &Path, m: &Manifest) -> Result<Option<u64>, ExportError> {
    if !m.formats.iter().any(|f| f == super::next_edit::FORMAT) {
        return Ok(None);
    }
    let path = dir.join(super::next_edit::FILE);
    let text = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    Ok(Some(text.iter().filter(|&&b| b == b'\n').count() as u64))
}

/// Writes the card of the export in `dir` (whose manifest `m` does not
/// list the card yet), and returns its entry for the manifest.
pub fn write(dir: &Path, m: &Manifest) -> Result<FileEntry, ExportError> {
    let text = render(m, next_edit_examples(dir, m)?);
    write_text(dir, &text)
}

/// Writes `text` as the card in `dir`, and returns its manifest entry.
pub fn write_text(dir: &Path, text: &str) -> Result<FileEntry, ExportError> {
    let path = dir.join(FILE);
    create_file(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| io_err(&path, e))?;
    Ok(FileEntry {
        path: FILE.into(),
        bytes: text.len() as u64,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
    })
}

/// Checks that the card of the export in `dir` is the one its manifest
/// gives (an export made before cards has none, and passes).
pub fn check(dir: &Path, m: &Manifest) -> Result<(), ExportError> {
    if !m.files.iter().any(|f| f.path == FILE) {
        return Ok(());
    }
    let mut without = m.clone();
    without.files.retain(|f| f.path != FILE);
    let want = render(&without, next_edit_examples(dir, m)?);
    let path = dir.join(FILE);
    let got = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    if got != want {
        return Err(ExportError::Invalid {
            file: FILE.into(),
            problem: "the dataset card is not the one the manifest gives".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_group_by_table_and_code_states() {
        assert_eq!(
            group_of("parquet/actions/subject_id=a/week=2026-W01/part-x.parquet"),
            "parquet/actions/"
        );
        assert_eq!(
            group_of("progsnap2/CodeStates/ab/cd"),
            "progsnap2/CodeStates/"
        );
        assert_eq!(
            group_of("progsnap2/MainTable.csv"),
            "progsnap2/MainTable.csv"
        );
        assert_eq!(group_of("episodes.jsonl"), "episodes.jsonl");
    }

    #[test]
    fn size_categories_follow_the_hub() {
        assert_eq!(size_category(0), "n<1K");
        assert_eq!(size_category(999), "n<1K");
        assert_eq!(size_category(1_000), "1K<n<10K");
        assert_eq!(size_category(2_000_000), "1M<n<10M");
    }
}
