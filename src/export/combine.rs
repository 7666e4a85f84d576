//! `candor-export combine EXPORT… --out DIR`: many exports (many engineers,
//! many weeks) into one dataset a data team loads in one line.
//!
//! Every export is verified first, with `verify`'s own code (manifest,
//! checksums, replay, a fresh redaction scan). Exports that would make a
//! dataset that lies are refused: the same export twice (same export id),
//! the same episodes twice, and one engineer under two salts (the same
//! consent records with different subject pseudonyms), which would count
//! one person as two.
//!
//! The layout keeps the Parquet tables whole, since their files are named
//! by export id and never clash, and keeps each export's other files
//! under its id:
//!
//! ```text
//! DIR/README.md   the combined card
//! DIR/manifest.json   the combined manifest: each export, summed counts, every file's SHA-256
//! DIR/parquet/<table>/subject_id=…/week=…/part-<export_id>.parquet
//! DIR/exports/<export_id>/{manifest.json,README.md,episodes.jsonl,next_edit.jsonl,progsnap2/…}
//! ```
//!
//! Files are hard links where the filesystem allows, copies otherwise
//! (across filesystems). Like an export, the dataset is written into a
//! temporary directory beside `--out` and renamed into place whole.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::card;
use super::manifest::{Counts, FileEntry, Manifest, MANIFEST_FILE};
use super::sink::{create_dir_all, create_file, io_err, DIR_MODE};
use super::{jsonl, verify, ExportError};
use crate::redact::Redactor;

/// The `kind` of a combined manifest.
pub const KIND: &str = "combined";

/// `manifest.json` of a combined dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinedManifest {
    pub kind: String,
    pub schema_version: u32,
    pub tool: String,
    /// SHA-256 (first 32 hex chars) of the sorted export ids.
    pub dataset_id: String,
    pub exports: Vec<Source>,
    pub subject_ids: Vec<String>,
    pub counts: Counts,
    pub files: Vec<FileEntry>,
}

/// One export in a combined dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub export_id: String,
    /// SHA-256 of its manifest (kept at `exports/<id>/manifest.json`), as
    /// the engineer's consent ledger records it.
    pub manifest_sha256: String,
    pub synthetic: bool,
    pub formats: Vec<String>,
    pub salt: String,
    pub timing: String,
    pub ruleset_sha256: String,
    pub subject_ids: Vec<String>,
    pub scopes: Vec<String>,
    pub episodes: u64,
    pub actions: u64,
}

/// What `combine` did.
#[derive(Debug)]
pub struct Combined {
    pub out: PathBuf,
    pub manifest: CombinedManifest,
    /// Files hard-linked, and files copied.
    pub linked: usize,
    pub copied: usize,
}

fn refuse(why: String) -> ExportError {
    ExportError::Refused(why)
}

/// A verified export, with what the checks across exports need.
struct Input {
    dir: PathBuf,
    manifest: Manifest,
    manifest_sha256: String,
    episode_ids: BTreeSet<String>,
}

fn read_input(dir: &Path, redactor: &Redactor) -> Result<Input, ExportError> {
    if is_combined(dir) {
        return Err(refuse(format!(
            "{} is a combined dataset: combine the exports it was made of",
            dir.display()
        )));
    }
    verify::verify(dir, redactor).map_err(|e| {
        refuse(format!(
            "{} does not verify, and is not combined: {e}",
            dir.display()
        ))
    })?;
    let manifest = Manifest::read(dir)?;
    let mpath = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&mpath).map_err(|e| io_err(&mpath, e))?;
    let episode_ids = jsonl::read(dir)?
        .into_iter()
        .map(|e| e.episode_id)
        .collect();
    Ok(Input {
        dir: dir.to_path_buf(),
        manifest,
        manifest_sha256: hex::encode(Sha256::digest(&bytes)),
        episode_ids,
    })
}

/// The refusals across exports.
fn check_inputs(inputs: &[Input]) -> Result<(), ExportError> {
    for (i, a) in inputs.iter().enumerate() {
        for b in &inputs[i + 1..] {
            let (ma, mb) = (&a.manifest, &b.manifest);
            let names = format!("{} and {}", a.dir.display(), b.dir.display());
            if ma.export_id == mb.export_id {
                return Err(refuse(format!(
                    "{names} are the same export (export id {}): give each export once",
                    ma.export_id
                )));
            }
            if let Some(e) = a.episode_ids.intersection(&b.episode_ids).next() {
                return Err(refuse(format!(
                    "{names} hold the same episodes (episode {e} is in both): they are exports of the same work with one salt, whose time ranges overlap; combine one of them, or export without the overlap"
                )));
            }
            let ra: BTreeSet<&String> = ma.consent.record_ids.iter().collect();
            let rb: BTreeSet<&String> = mb.consent.record_ids.iter().collect();
            let sa: BTreeSet<&String> = ma.consent.subject_ids.iter().collect();
            let sb: BTreeSet<&String> = mb.consent.subject_ids.iter().collect();
            if !ra.is_disjoint(&rb) && sa != sb {
                return Err(refuse(format!(
                    "{names} come from the same engineers' consent records but were made with different salts (salt {} and {}): their subject pseudonyms differ, so the combined dataset would count one engineer as two; export both with the same `--salt-file`",
                    ma.anonymization.salt, mb.anonymization.salt
                )));
            }
            if ma.synthetic != mb.synthetic {
                return Err(refuse(format!(
                    "{names}: one is synthetic and the other is not; synthetic data is never mixed with a person's"
                )));
            }
        }
    }
    Ok(())
}

fn add_counts(sum: &mut Counts, c: &Counts) {
    sum.episodes += c.episodes;
    sum.actions += c.actions;
    sum.keys += c.keys;
    sum.events_read += c.events_read;
    sum.events_exported += c.events_exported;
    for (k, v) in &c.actions_by_type {
        *sum.actions_by_type.entry(k.clone()).or_default() += v;
    }
    for (k, v) in &c.events_excluded {
        *sum.events_excluded.entry(k.clone()).or_default() += v;
    }
}

/// Where a file of an export goes in the combined dataset.
fn target(export_id: &str, rel: &str) -> String {
    if rel.starts_with("parquet/") {
        rel.to_owned()
    } else {
        format!("exports/{export_id}/{rel}")
    }
}

/// Hard-links `from` to `to`, or copies it when they are on different
/// filesystems (or the filesystem has no hard links). True if linked.
fn link_or_copy(from: &Path, to: &Path) -> Result<bool, ExportError> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(e)
            // EXDEV across filesystems; EPERM where links to others'
            // files are refused (protected_hardlinks) or not supported.
            if matches!(
                e.kind(),
                std::io::ErrorKind::CrossesDevices
                    | std::io::ErrorKind::Unsupported
                    | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            let mut src = std::fs::File::open(from).map_err(|e| io_err(from, e))?;
            let mut dst = create_file(to).map_err(|e| io_err(to, e))?;
            std::io::copy(&mut src, &mut dst).map_err(|e| io_err(to, e))?;
            dst.sync_all().map_err(|e| io_err(to, e))?;
            Ok(false)
        }
        Err(e) => Err(io_err(to, e)),
    }
}

/// Combines the exports in `dirs` into a new dataset at `out`.
pub fn combine(dirs: &[PathBuf], out: &Path, redactor: &Redactor) -> Result<Combined, ExportError> {
    if dirs.len() < 2 {
        return Err(ExportError::Option(
            "combine needs at least two exports".into(),
        ));
    }
    if out.exists() {
        return Err(ExportError::Option(format!(
            "{} already exists: combine never overwrites; choose a new directory",
            out.display()
        )));
    }
    let mut inputs = Vec::with_capacity(dirs.len());
    for d in dirs {
        inputs.push(read_input(d, redactor)?);
    }
    check_inputs(&inputs)?;
    inputs.sort_by(|a, b| a.manifest.export_id.cmp(&b.manifest.export_id));

    let parent = super::sink::parent_of(out);
    let name = out
        .file_name()
        .ok_or_else(|| ExportError::Option(format!("{} names no directory", out.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.combining-"))
        .permissions(std::fs::Permissions::from_mode(DIR_MODE))
        .tempdir_in(&parent)
        .map_err(|e| io_err(&parent, e))?;

    let mut files = Vec::new();
    let (mut linked, mut copied) = (0, 0);
    let mut counts = Counts::default();
    let mut subjects = BTreeSet::new();
    let mut sources = Vec::new();
    for inp in &inputs {
        let m = &inp.manifest;
        let mut own = m.files.clone();
        own.push(FileEntry {
            path: MANIFEST_FILE.into(),
            bytes: std::fs::metadata(inp.dir.join(MANIFEST_FILE))
                .map_err(|e| io_err(&inp.dir, e))?
                .len(),
            sha256: inp.manifest_sha256.clone(),
        });
        for f in own {
            let rel = target(&m.export_id, &f.path);
            let to = tmp.path().join(&rel);
            if let Some(p) = to.parent() {
                create_dir_all(p).map_err(|e| io_err(p, e))?;
            }
            if link_or_copy(&inp.dir.join(&f.path), &to)? {
                linked += 1;
            } else {
                copied += 1;
            }
            files.push(FileEntry { path: rel, ..f });
        }
        add_counts(&mut counts, &m.counts);
        subjects.extend(m.consent.subject_ids.iter().cloned());
        sources.push(Source {
            export_id: m.export_id.clone(),
            manifest_sha256: inp.manifest_sha256.clone(),
            synthetic: m.synthetic,
            formats: m.formats.clone(),
            salt: m.anonymization.salt.clone(),
            timing: m.anonymization.timing.clone(),
            ruleset_sha256: m.redaction.ruleset_sha256.clone(),
            subject_ids: m.consent.subject_ids.clone(),
            scopes: m.consent.scopes.clone(),
            episodes: m.counts.episodes,
            actions: m.counts.actions,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let ids: Vec<&str> = sources.iter().map(|s| s.export_id.as_str()).collect();
    let mut manifest = CombinedManifest {
        kind: KIND.into(),
        schema_version: inputs[0].manifest.schema_version,
        tool: format!("candor-export {}", env!("CARGO_PKG_VERSION")),
        dataset_id: hex::encode(Sha256::digest(ids.join("\n").as_bytes()))[..32].to_owned(),
        exports: sources,
        subject_ids: subjects.into_iter().collect(),
        counts,
        files,
    };
    manifest
        .files
        .push(card::write_text(tmp.path(), &render_card(&manifest))?);
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExportError::Option(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    let mpath = tmp.path().join(MANIFEST_FILE);
    create_file(&mpath)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()
        })
        .map_err(|e| io_err(&mpath, e))?;
    super::sink::publish_dir(tmp, out)?;
    Ok(Combined {
        out: out.to_path_buf(),
        manifest,
        linked,
        copied,
    })
}

/// The card of a combined dataset: each export with what its own card
/// says (kept at `exports/<id>/README.md`), and the summed figures.
pub fn render_card(m: &CombinedManifest) -> String {
    let mut out = String::new();
    let synthetic = m.exports.iter().all(|e| e.synthetic);
    // Front matter and the files table are the single export's.
    let single = card::render_front(m.counts.episodes, synthetic, &m.files);
    out.push_str(&single);
    let _ = writeln!(out, "# Candor dataset `{}`\n", m.dataset_id);
    let _ = writeln!(
        out,
        "{} exports combined by {}: {} engineer(s) (pseudonyms), episode schema {}.{} Each export was verified (checksums, replay, a fresh redaction scan) before it was combined; its own manifest and card are under `exports/<export_id>/`.\n",
        m.exports.len(),
        m.tool,
        m.subject_ids.len(),
        m.schema_version,
        if synthetic {
            " **The data is synthetic.**"
        } else {
            ""
        }
    );
    out.push_str("Read every engineer's actions in one line, e.g. with DuckDB: `SELECT subject_id, week, count(*) FROM read_parquet('parquet/actions/**/*.parquet', hive_partitioning = true, hive_types_autocast = false) GROUP BY ALL`.\n\n");
    card::files_table(&mut out, &m.files);
    out.push_str("## Exports\n\n| export_id | manifest SHA-256 | salt | timing | redaction rule set | scopes | subjects | episodes | actions |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for e in &m.exports {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} | `{}` | {} | {} | {} | {} |",
            e.export_id,
            e.manifest_sha256,
            e.salt,
            e.timing,
            e.ruleset_sha256,
            e.scopes.join(" "),
            e.subject_ids.len(),
            e.episodes,
            e.actions
        );
    }
    out.push('\n');
    let rulesets: BTreeSet<&str> = m
        .exports
        .iter()
        .map(|e| e.ruleset_sha256.as_str())
        .collect();
    if rulesets.len() > 1 {
        out.push_str("**The exports were redacted by different rule sets** (see above): what one removed, another may have kept.\n\n");
    }
    out.push_str(card::LIMITS);
    let rows = card::count_rows("", &m.counts);
    card::figures(&mut out, &rows);
    out.push_str("## Licence\n\nLeft for the data team to set (`license` above): the engineers' consent covers the purposes in Candor's notice, and a licence must not grant more.\n");
    out
}

/// Reads a combined manifest.
pub fn read_manifest(dir: &Path) -> Result<CombinedManifest, ExportError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| ExportError::Invalid {
        file: MANIFEST_FILE.into(),
        problem: e.to_string(),
    })
}

/// Whether the manifest in `dir` is a combined one.
pub fn is_combined(dir: &Path) -> bool {
    std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some(KIND))
}

/// `candor-export verify` on a combined dataset: every file matches the
/// combined manifest and none is unlisted; the card is the one the
/// manifest gives; and each export, put back together from its files
/// (hard links in a temporary directory beside the dataset), verifies as
/// on its own, with the manifest the combined one names.
pub fn verify(dir: &Path, redactor: &Redactor) -> Result<verify::VerifyReport, ExportError> {
    let m = read_manifest(dir)?;
    let bad = |file: &str, problem: String| ExportError::Invalid {
        file: file.to_owned(),
        problem,
    };
    let listed: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    let present = verify::list_files(dir)?;
    for p in &present {
        if p != MANIFEST_FILE && !listed.contains(p.as_str()) {
            return Err(bad(p, "not listed in the manifest".into()));
        }
    }
    for f in &m.files {
        if !present.contains(&f.path) {
            return Err(bad(&f.path, "listed in the manifest but missing".into()));
        }
        let got = sha256_file(&dir.join(&f.path))?;
        if got != f.sha256 {
            return Err(bad(
                &f.path,
                format!("SHA-256 is {got}, the manifest says {}", f.sha256),
            ));
        }
    }
    let mut without = m.clone();
    without.files.retain(|f| f.path != card::FILE);
    let cpath = dir.join(card::FILE);
    let got = std::fs::read_to_string(&cpath).map_err(|e| io_err(&cpath, e))?;
    if got != render_card(&without) {
        return Err(bad(
            card::FILE,
            "the dataset card is not the one the manifest gives".into(),
        ));
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".candor-verify-")
        .tempdir_in(parent)
        .map_err(|e| io_err(parent, e))?;
    let mut report = verify::VerifyReport {
        files_checked: present.len(),
        episodes: 0,
        actions: 0,
        formats: Vec::new(),
        replayed_states: 0,
    };
    let mut accounted: BTreeSet<&str> = [MANIFEST_FILE, card::FILE].into_iter().collect();
    for src in &m.exports {
        let prefix = format!("exports/{}/", src.export_id);
        let view = tmp.path().join(&src.export_id);
        let suffix = format!("part-{}.parquet", src.export_id);
        for f in &m.files {
            let rel = if let Some(r) = f.path.strip_prefix(&prefix) {
                r
            } else if f.path.starts_with("parquet/") && f.path.ends_with(&suffix) {
                f.path.as_str()
            } else {
                continue;
            };
            accounted.insert(&f.path);
            let to = view.join(rel);
            if let Some(p) = to.parent() {
                create_dir_all(p).map_err(|e| io_err(p, e))?;
            }
            link_or_copy(&dir.join(&f.path), &to)?;
        }
        let mpath = view.join(MANIFEST_FILE);
        let bytes = std::fs::read(&mpath).map_err(|e| io_err(&mpath, e))?;
        if hex::encode(Sha256::digest(&bytes)) != src.manifest_sha256 {
            return Err(bad(
                &format!("{prefix}{MANIFEST_FILE}"),
                "is not the manifest the combined manifest names".into(),
            ));
        }
        let r = verify::verify(&view, redactor).map_err(|e| match e {
            ExportError::Invalid { file, problem } => ExportError::Invalid {
                file: format!("export {}: {file}", src.export_id),
                problem,
            },
            other => other,
        })?;
        report.episodes += r.episodes;
        report.actions += r.actions;
        report.replayed_states += r.replayed_states;
        for f in r.formats {
            if !report.formats.contains(&f) {
                report.formats.push(f);
            }
        }
    }
    if let Some(f) = m
        .files
        .iter()
        .find(|f| !accounted.contains(f.path.as_str()))
    {
        return Err(bad(
            &f.path,
            "belongs to none of the combined exports".into(),
        ));
    }
    if report.episodes as u64 != m.counts.episodes || report.actions as u64 != m.counts.actions {
        return Err(bad(
            MANIFEST_FILE,
            format!(
                "the exports hold {} episodes and {} actions, the manifest says {} and {}",
                report.episodes, report.actions, m.counts.episodes, m.counts.actions
            ),
        ));
    }
    Ok(report)
}

fn sha256_file(path: &Path) -> Result<String, ExportError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io_err(path, e))?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_stays_whole_and_everything_else_goes_under_its_export() {
        assert_eq!(
            target("e1", "parquet/actions/subject_id=s/week=w/part-e1.parquet"),
            "parquet/actions/subject_id=s/week=w/part-e1.parquet"
        );
        assert_eq!(target("e1", "episodes.jsonl"), "exports/e1/episodes.jsonl");
        assert_eq!(
            target("e1", "progsnap2/MainTable.csv"),
            "exports/e1/progsnap2/MainTable.csv"
        );
    }

    #[test]
    fn counts_add_up_by_key() {
        let mut a = Counts {
            episodes: 2,
            ..Counts::default()
        };
        a.actions_by_type.insert("edit".into(), 3);
        let mut b = a.clone();
        b.events_excluded.insert("paused".into(), 4);
        let mut sum = Counts::default();
        add_counts(&mut sum, &a);
        add_counts(&mut sum, &b);
        assert_eq!(sum.episodes, 4);
        assert_eq!(sum.actions_by_type["edit"], 6);
        assert_eq!(sum.events_excluded["paused"], 4);
    }
}
