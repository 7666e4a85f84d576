//! `candor-export verify DIR`: re-checks a finished export from its files
//! alone: the manifest's checksums, the schema of every file, replay of
//! every episode, and a fresh redaction scan of every text field (command
//! lines are also scanned for what only their shape gives away: see
//! [`command::secrets`]). The exporter runs the same scan on each episode
//! before writing it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::{Manifest, MANIFEST_FILE};
use super::model::{ActionBody, Episode, SCHEMA_VERSION};
use super::{command, jsonl, parquet, progsnap2, replay, ExportError};
use crate::redact::Redactor;
use crate::registry::RUNNERS;

/// The first text of an episode a fresh scan still finds something in,
/// named by place and rule (never by value).
pub fn unclean(redactor: &Redactor, ep: &Episode) -> Option<String> {
    let hit = |what: String, text: &str| {
        redactor
            .scan(text)
            .first()
            .map(|f| format!("{what}: rule `{}` still matches after redaction", f.rule))
    };
    for f in &ep.files {
        for (which, s) in [("initial", &f.initial), ("final", &f.final_)] {
            if let Some(p) = [Some(s.path.as_str()), s.content.as_deref()]
                .into_iter()
                .flatten()
                .find_map(|c| hit(format!("file {} {which} state", f.file_id), c))
            {
                return Some(p);
            }
        }
    }
    for a in &ep.actions {
        for t in a.body.texts() {
            if let Some(p) = hit(format!("action {} ({})", a.seq, a.body.type_name()), t) {
                return Some(p);
            }
        }
        if let Some(f) = a.body.command_line().and_then(command_secret) {
            return Some(format!(
                "action {} ({}): rule `{f}` still matches after redaction",
                a.seq,
                a.body.type_name()
            ));
        }
    }
    None
}

/// The rule of the first secret a command line's shape still gives away.
fn command_secret(line: &str) -> Option<&'static str> {
    command::secrets(line).first().map(|f| f.rule)
}

/// Reads `episodes.jsonl` strictly: every line must be exactly what the
/// exporter writes for the episode it parses to (so no unknown key, which
/// `#[serde(flatten)]` would otherwise let through, and nothing out of
/// place), every string in it must scan clean, and every run's runner must
/// be one the registry knows.
fn read_jsonl(dir: &Path, redactor: &Redactor) -> Result<Vec<Episode>, ExportError> {
    let path = dir.join(jsonl::FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| super::sink::io_err(&path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bad = |problem: String| invalid(jsonl::FILE, format!("line {}: {problem}", i + 1));
        let Some(line) = line.strip_suffix('\n') else {
            return Err(bad("does not end with a newline".into()));
        };
        let ep: Episode = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let again = serde_json::to_string(&ep).map_err(|e| bad(e.to_string()))?;
        if again != line {
            return Err(bad(
                "is not what the exporter writes for it (an unknown key, or a field out of place)"
                    .into(),
            ));
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if let Some(rule) = first_finding(redactor, &value) {
            return Err(bad(format!(
                "episode {}: rule `{rule}` still matches after redaction",
                ep.episode_id
            )));
        }
        for a in &ep.actions {
            if let ActionBody::TestRun(r) | ActionBody::BuildRun(r) = &a.body {
                if !RUNNERS.contains(&r.runner.as_str()) {
                    return Err(bad(format!(
                        "episode {}: action {} has runner {:?}, not one of {RUNNERS:?}",
                        ep.episode_id, a.seq, r.runner
                    )));
                }
            }
        }
        out.push(ep);
    }
    Ok(out)
}

/// The rule of the first finding in any string of a JSON value, keys
/// included.
fn first_finding(redactor: &Redactor, v: &serde_json::Value) -> Option<&'static str> {
    use serde_json::Value as J;
    match v {
        J::String(s) => redactor.scan(s).first().map(|f| f.rule),
        J::Array(items) => items.iter().find_map(|x| first_finding(redactor, x)),
        J::Object(map) => map.iter().find_map(|(k, x)| {
            redactor
                .scan(k)
                .first()
                .map(|f| f.rule)
                .or_else(|| first_finding(redactor, x))
        }),
        _ => None,
    }
}

/// What a verify found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub files_checked: usize,
    pub episodes: usize,
    pub actions: usize,
    pub formats: Vec<String>,
    pub replayed_states: usize,
}

fn sha256_file(path: &Path) -> Result<String, ExportError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| super::sink::io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| super::sink::io_err(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Every file under `dir`, relative, sorted.
pub fn list_files(dir: &Path) -> Result<Vec<String>, ExportError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| super::sink::io_err(&d, e))? {
            let entry = entry.map_err(|e| super::sink::io_err(&d, e))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(|e| super::sink::io_err(&p, e))?;
            if ft.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn invalid(file: &str, problem: impl Into<String>) -> ExportError {
    ExportError::Invalid {
        file: file.to_owned(),
        problem: problem.into(),
    }
}

/// Verifies the export in `dir`.
pub fn verify(dir: &Path, redactor: &Redactor) -> Result<VerifyReport, ExportError> {
    if super::combine::is_combined(dir) {
        return super::combine::verify(dir, redactor);
    }
    let manifest = Manifest::read(dir)?;
    // The Parquet and ProgSnap2 schemas are checked column for column: an
    // export of another schema cannot be told from a damaged one.
    if manifest.schema_version != SCHEMA_VERSION {
        return Err(invalid(
            MANIFEST_FILE,
            format!(
                "the export has schema {}, and this candor-export verifies schema {SCHEMA_VERSION}: verify it with the candor-export that wrote it ({})",
                manifest.schema_version, manifest.tool
            ),
        ));
    }
    // Checksums, and no file the manifest does not name.
    let listed: BTreeMap<&str, &str> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let present = list_files(dir)?;
    for p in &present {
        if p == MANIFEST_FILE {
            continue;
        }
        let Some(want) = listed.get(p.as_str()) else {
            return Err(invalid(p, "not listed in the manifest"));
        };
        let got = sha256_file(&dir.join(p))?;
        if got != *want {
            return Err(invalid(
                p,
                format!("SHA-256 is {got}, the manifest says {want}"),
            ));
        }
    }
    for p in listed.keys() {
        if !present.iter().any(|q| q == p) {
            return Err(invalid(p, "listed in the manifest but missing"));
        }
    }
    // Schema and content: the JSONL is the reference every format is
    // checked against.
    let has = |f: &str| manifest.formats.iter().any(|x| x == f);
    let episodes: Vec<Episode> = if has("jsonl") {
        read_jsonl(dir, redactor)?
    } else {
        return Err(invalid(
            MANIFEST_FILE,
            "verify needs the jsonl format in the export to replay episodes",
        ));
    };
    let actions: usize = episodes.iter().map(|e| e.actions.len()).sum();
    if episodes.len() as u64 != manifest.counts.episodes
        || actions as u64 != manifest.counts.actions
    {
        return Err(invalid(
            jsonl::FILE,
            format!(
                "{} episodes and {actions} actions, the manifest says {} and {}",
                episodes.len(),
                manifest.counts.episodes,
                manifest.counts.actions
            ),
        ));
    }
    let mut replayed = 0;
    for ep in &episodes {
        if ep.schema != manifest.schema_version {
            return Err(invalid(
                jsonl::FILE,
                format!("episode {} has schema {}", ep.episode_id, ep.schema),
            ));
        }
        replayed += replay::replay(ep)?.states.len();
        if let Some(problem) = unclean(redactor, ep) {
            return Err(invalid(
                jsonl::FILE,
                format!("episode {}: {problem}", ep.episode_id),
            ));
        }
    }
    if has("parquet") {
        check_parquet(dir, &episodes)?;
    }
    if has("progsnap2") {
        check_progsnap2(dir, &episodes, redactor)?;
    }
    if has(super::next_edit::FORMAT) {
        super::next_edit::check(dir, &episodes, redactor)?;
    }
    super::card::check(dir, &manifest)?;
    Ok(VerifyReport {
        files_checked: present.len(),
        episodes: episodes.len(),
        actions,
        formats: manifest.formats.clone(),
        replayed_states: replayed,
    })
}

/// The ProgSnap2 tables against the JSONL: the same sessions and events by
/// type, and every code state file scanned afresh (intermediate states
/// exist only there).
fn check_progsnap2(
    dir: &Path,
    episodes: &[Episode],
    redactor: &Redactor,
) -> Result<(), ExportError> {
    let summary = progsnap2::check(dir)?;
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for ep in episodes {
        *want.entry(progsnap2::SESSION_START.into()).or_default() += 1;
        *want.entry(progsnap2::SESSION_END.into()).or_default() += 1;
        for a in &ep.actions {
            *want
                .entry(progsnap2::event_type(&a.body).into())
                .or_default() += 1;
        }
    }
    let file = format!("{}/{}", progsnap2::DIR, progsnap2::MAIN_TABLE_FILE);
    if summary.sessions != episodes.len() as u64 || summary.by_type != want {
        return Err(invalid(
            &file,
            format!(
                "{} sessions and events {:?}; the JSONL gives {} and {:?}",
                summary.sessions,
                summary.by_type,
                episodes.len(),
                want
            ),
        ));
    }
    // Its free text, scanned afresh like the JSONL's.
    let main = dir.join(progsnap2::DIR).join(progsnap2::MAIN_TABLE_FILE);
    let mut rd = csv::Reader::from_path(&main).map_err(|e| invalid(&file, e.to_string()))?;
    let header = rd
        .headers()
        .map_err(|e| invalid(&file, e.to_string()))?
        .clone();
    // Every column is scanned: the integer ones must hold an integer (or
    // nothing), so that nothing else can hide there either.
    let int_cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| progsnap2::int_columns().contains(h))
        .map(|(i, _)| i)
        .collect();
    let runner_col = header.iter().position(|h| h == "X-Runner");
    let command_col = header.iter().position(|h| h == "X-Command");
    let type_col = header.iter().position(|h| h == "EventType");
    for (n, row) in rd.records().enumerate() {
        let row = row.map_err(|e| invalid(&file, e.to_string()))?;
        if let Some(c) = int_cols.iter().find(|&&c| {
            row.get(c)
                .is_some_and(|v| !v.is_empty() && v.parse::<i64>().is_err())
        }) {
            return Err(invalid(
                &file,
                format!("row {}: {} is not an integer", n + 2, &header[*c]),
            ));
        }
        if let Some(r) = runner_col.and_then(|c| row.get(c)) {
            if !r.is_empty() && !RUNNERS.contains(&r) {
                return Err(invalid(
                    &file,
                    format!("row {}: X-Runner {r:?} is not one of {RUNNERS:?}", n + 2),
                ));
            }
        }
        let found = row
            .iter()
            .find_map(|t| redactor.scan(t).into_iter().next())
            .map(|f| f.rule)
            .or_else(|| {
                // Command lines only: an editor command id is no shell line.
                let ty = type_col.and_then(|c| row.get(c)).unwrap_or("");
                matches!(ty, "Run.Program" | "Run.Test" | "Compile")
                    .then(|| {
                        command_col
                            .and_then(|c| row.get(c))
                            .and_then(command_secret)
                    })
                    .flatten()
            });
        if let Some(rule) = found {
            return Err(invalid(
                &file,
                format!("row {}: rule `{rule}` still matches after redaction", n + 2),
            ));
        }
    }
    let states = dir.join(progsnap2::DIR).join(progsnap2::CODE_STATES_DIR);
    if states.is_dir() {
        for rel in list_files(&states)? {
            let path = states.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(|e| super::sink::io_err(&path, e))?;
            if let Some(f) = redactor.scan(&text).first() {
                return Err(invalid(
                    &format!("{}/{}/{rel}", progsnap2::DIR, progsnap2::CODE_STATES_DIR),
                    format!("rule `{}` still matches after redaction", f.rule),
                ));
            }
        }
    }
    Ok(())
}

/// The Parquet tables against the JSONL: every file's schema, and the same
/// episodes, value for value, rebuilt from the three tables.
fn check_parquet(dir: &Path, episodes: &[Episode]) -> Result<(), ExportError> {
    // One pass over the files: reading them checks every schema and refuses
    // rows of an episode the episodes table lacks.
    let got = parquet::read(dir)?;
    let count = |eps: &mut dyn Iterator<Item = &Episode>| {
        eps.fold((0, 0, 0), |(e, a, f), ep| {
            (e + 1, a + ep.actions.len(), f + 2 * ep.files.len())
        })
    };
    let (have, want_counts) = (count(&mut got.iter()), count(&mut episodes.iter()));
    if have != want_counts {
        return Err(invalid(
            parquet::DIR,
            format!(
                "{} episodes, {} actions and {} file states; the JSONL gives {}, {} and {}",
                have.0, have.1, have.2, want_counts.0, want_counts.1, want_counts.2
            ),
        ));
    }
    let mut want: Vec<&Episode> = episodes.iter().collect();
    want.sort_by(|a, b| {
        (&a.subject_id, &a.week, &a.episode_id).cmp(&(&b.subject_id, &b.week, &b.episode_id))
    });
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != *w) {
        return Err(invalid(
            parquet::DIR,
            format!(
                "episode {} (Parquet: {}) differs from the JSONL",
                w.episode_id, g.episode_id
            ),
        ));
    }
    Ok(())
}
