//! One export from start to finish, and the preview that shows it without
//! writing anything.
//!
//! The order matters: the ledger is verified before any event is read; all
//! reading happens in one read transaction; everything is written into a
//! temporary directory beside `--out`; the export is recorded in the ledger
//! (refused if consent changed meanwhile); only then is the directory
//! renamed into place. A failure at any step leaves no partial export (the
//! temporary directory is removed when dropped); a killed export leaves
//! its temporary directory with a marker naming the process, and the next
//! export into the same parent removes it once that process is gone.
//! Everything is created 0700/0600 and set exactly so before the rename.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::anonymize::{Anonymizer, Salt, TimingMode, PATH_ALLOWLIST};
use super::episodes::{Builder, Segmenter};
use super::manifest::{
    AnonymizationInfo, ConsentInfo, Counts, FileEntry, Manifest, RedactionInfo, MANIFEST_FILE,
};
use super::model::{Episode, SCHEMA_VERSION};
use super::sink::{create_file, io_err, DatasetWriter, DIR_MODE};
use super::source::{file_names, read_events, Admission, Admitted, Tally};
use super::{jsonl, parquet, progsnap2, ExportError};
use crate::consent::ledger::{self, Action};
use crate::consent::notice::notice_hash;
use crate::consent::state::Status;
use crate::redact::{rules, Redactor};
use crate::store::Store;

/// A dataset format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Jsonl,
    Parquet,
    Progsnap2,
    NextEdit,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Jsonl,
        Format::Parquet,
        Format::Progsnap2,
        Format::NextEdit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::Progsnap2 => "progsnap2",
            Format::NextEdit => super::next_edit::FORMAT,
        }
    }

    /// Parses `jsonl,parquet,progsnap2` (any subset, any order).
    pub fn parse_list(s: &str) -> Result<Vec<Format>, ExportError> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let f = Format::ALL
                .into_iter()
                .find(|f| f.name() == part)
                .ok_or_else(|| {
                    ExportError::Option(format!(
                        "unknown format `{part}`: choose from jsonl, parquet, progsnap2, next-edit"
                    ))
                })?;
            out.push(f);
        }
        if out.is_empty() {
            return Err(ExportError::Option("no format given".into()));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// How to cut and anonymize.
pub struct Shape {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub idle_gap_ns: i64,
    pub quantum_ms: i64,
    pub jitter_ms: i64,
    /// Re-synthesized (the default) or measured key timing.
    pub timing: TimingMode,
    /// Export synthetic sessions (and only those) instead of captured ones.
    pub synthetic: bool,
}

impl Shape {
    fn range(&self) -> (i64, i64) {
        (
            self.since_ns.unwrap_or(i64::MIN),
            self.until_ns.unwrap_or(i64::MAX),
        )
    }

    fn validate(&self) -> Result<(), ExportError> {
        if self.idle_gap_ns <= 0 {
            return Err(ExportError::Option("the idle gap must be positive".into()));
        }
        if let (Some(a), Some(b)) = (self.since_ns, self.until_ns) {
            if a >= b {
                return Err(ExportError::Option("--since must be before --until".into()));
            }
        }
        Ok(())
    }

    /// The options that shape the output, as they enter the export id.
    fn fingerprint(&self, formats: &[Format]) -> String {
        format!(
            "{:?}|{:?}|{}|{}|{}|{}|{:?}{}",
            self.since_ns,
            self.until_ns,
            self.idle_gap_ns,
            self.quantum_ms,
            self.jitter_ms,
            self.synthetic,
            formats,
            // Absent for the default, so default export ids do not change.
            match self.timing {
                TimingMode::Anonymized => "",
                TimingMode::Raw => "|timing=raw",
            }
        )
    }
}

/// The anonymizer for `salt`, its jitter keyed from the store's own key
/// (which never leaves the machine), or from the salt for a store that
/// never sealed anything.
fn anonymizer(store: &mut Store, salt: Salt, shape: &Shape) -> Result<Anonymizer, ExportError> {
    let mut anon = Anonymizer::new(salt, shape.quantum_ms, shape.jitter_ms)?;
    anon.timing = shape.timing;
    Ok(match store.sealer(false) {
        Ok(sealer) => {
            let mac = sealer.ledger_key().mac(b"candor export jitter v1");
            anon.with_jitter_key(<sha2::Sha256 as sha2::Digest>::digest(mac.as_bytes()).into())
        }
        Err(_) => anon,
    })
}

/// Refuses what consent forbids outright, with the reason.
fn admission(store: &mut Store, shape: &Shape, now_ns: i64) -> Result<Admission, ExportError> {
    let mut adm = Admission::read(store, now_ns, shape.synthetic, shape.range())?;
    if shape.timing == TimingMode::Raw {
        adm.require_rhythm();
    }
    if !shape.synthetic {
        // Data leaves only under a consent in force now, to this build's
        // notice (which describes exports): an expired consent, or one to an
        // older notice, must be renewed first.
        let why = match adm.history.status(&notice_hash(), now_ns) {
            Status::Active(_) => None,
            Status::None => Some("no consent was ever given in this store: nothing may leave".to_owned()),
            Status::Revoked { .. } => Some(
                "consent was revoked: nothing recorded under it may leave (grant consent again to export what you record from now on)".to_owned(),
            ),
            Status::Expired(r) => Some(format!(
                "the consent expired at {}: renew it (`candor consent`) before exporting",
                r.expires_at
            )),
            Status::NoticeChanged { record, current } => Some(format!(
                "the consent was given to notice {} and this build's is {current}: review the notice and consent again (`candor consent`) before exporting",
                record.notice_sha256
            )),
        };
        if let Some(why) = why {
            return Err(ExportError::Refused(why));
        }
    }
    Ok(adm)
}

/// Builds every episode the store may give, handing each to `each`.
///
/// Two stages on two threads: one reads, unseals and admits events (the
/// AEAD dominates it), the other segments, redacts, diffs and writes. They
/// meet over a bounded channel of batches, so memory stays bounded.
fn episodes(
    store: &mut Store,
    adm: &Admission,
    builder: &mut Builder<'_>,
    idle_gap_ns: i64,
    tally: &mut Tally,
    progress: Option<&indicatif::ProgressBar>,
    mut each: impl FnMut(Episode) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    const BATCH: usize = 2048;
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Admitted>>(8);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut local = Tally::default();
            let result = read_events(store, adm, &mut local, |a| {
                batch.push(a);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    // The builder stopped: its error is the one to report.
                    tx.send(full)
                        .map_err(|_| ExportError::Option("stopped".into()))?;
                }
                Ok(())
            });
            if result.is_ok() && !batch.is_empty() {
                let _ = tx.send(batch);
            }
            (result, local)
        });
        let mut seg = Segmenter::new(idle_gap_ns);
        let mut n = 0u64;
        let mut built: Result<(), ExportError> = Ok(());
        'recv: for batch in rx.iter() {
            n += batch.len() as u64;
            if let Some(p) = progress {
                p.set_position(n);
            }
            for a in batch {
                let staged = match builder.stage(a) {
                    Ok(s) => s,
                    Err(e) => {
                        built = Err(e);
                        break 'recv;
                    }
                };
                for st in staged {
                    for raw in seg.push(st) {
                        if let Err(e) = builder.build(raw).and_then(&mut each) {
                            built = Err(e);
                            break 'recv;
                        }
                    }
                }
            }
        }
        // Unblocks the reader if the builder stopped early.
        drop(rx);
        let (read, local) = reader
            .join()
            .map_err(|_| ExportError::Option("the reading thread panicked".into()))?;
        *tally = local;
        built?;
        read?;
        for st in builder.finish_stage()? {
            for raw in seg.push(st) {
                each(builder.build(raw)?)?;
            }
        }
        if let Some(raw) = seg.finish() {
            each(builder.build(raw)?)?;
        }
        Ok(())
    })
}

fn progress_bar(store: &Store, show: bool) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let total: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0);
    let bar = indicatif::ProgressBar::new(total.max(0) as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} exporting {bar:40} {human_pos}/{human_len} events, {eta} left",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// What a finished export reports.
#[derive(Debug)]
pub struct Exported {
    pub out: PathBuf,
    /// Stale partial exports (of killed runs) removed from the parent.
    pub removed_partials: Vec<RemovedPartial>,
    pub manifest: Manifest,
    pub manifest_sha256: String,
    pub ledger_seq: i64,
}

/// Everything an export needs besides the store.
pub struct ExportRequest<'a> {
    pub out: &'a Path,
    pub formats: Vec<Format>,
    /// How ProgSnap2 writes code states.
    pub progsnap2_codestates: progsnap2::CodeStates,
    pub shape: Shape,
    pub salt: Salt,
    pub redactor: &'a Redactor,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Runs an export. `store` is read-only; `open_ledger` opens the store for
/// the one write an export makes: its ledger entry.
pub fn export(
    store: &mut Store,
    open_ledger: impl FnOnce() -> Result<Store, ExportError>,
    req: ExportRequest<'_>,
    now_ns: i64,
) -> Result<Exported, ExportError> {
    let ExportRequest {
        out,
        formats,
        progsnap2_codestates,
        shape,
        salt,
        redactor,
        progress,
    } = req;
    shape.validate()?;
    if out.exists() {
        return Err(ExportError::Option(format!(
            "{} already exists: exports never overwrite; choose a new directory",
            out.display()
        )));
    }
    let name = out
        .file_name()
        .ok_or_else(|| ExportError::Option(format!("{} names no directory", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = super::sink::parent_of(out);
    let removed_partials = remove_stale_partials(&parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}{PARTIAL_INFIX}"))
        .permissions(std::fs::Permissions::from_mode(DIR_MODE))
        .tempdir_in(&parent)
        .map_err(|e| io_err(&parent, e))?;
    PartialMarker::mine()
        .write(tmp.path())
        .map_err(|e| io_err(tmp.path(), e))?;

    // One snapshot for the ledger and the events it vouches for.
    store.conn().execute_batch("BEGIN")?;
    let adm = admission(store, &shape, now_ns)?;
    let salt_supplied = salt.supplied();
    let anon = anonymizer(store, salt, &shape)?;
    let export_id = anon.pseudonym(
        "export",
        &format!("{}|{}", adm.consent_head.1, shape.fingerprint(&formats)),
    );
    let mut writers: Vec<Box<dyn DatasetWriter + '_>> = Vec::new();
    for f in &formats {
        writers.push(match f {
            Format::Jsonl => Box::new(jsonl::JsonlWriter::create(tmp.path())?),
            Format::Parquet => Box::new(parquet::create(tmp.path(), &export_id)?),
            Format::Progsnap2 => Box::new(progsnap2::create(tmp.path(), progsnap2_codestates)?),
            Format::NextEdit => Box::new(super::next_edit::create(tmp.path(), redactor)?),
        });
    }
    let mut builder = Builder::new(redactor, anon);
    builder.set_names(&file_names(store)?)?;
    let mut tally = Tally::default();
    let bar = progress_bar(store, progress);
    episodes(
        store,
        &adm,
        &mut builder,
        shape.idle_gap_ns,
        &mut tally,
        bar.as_ref(),
        |ep| {
            for w in writers.iter_mut() {
                w.write_episode(&ep)?;
            }
            Ok(())
        },
    )?;
    store.conn().execute_batch("COMMIT")?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let stats = builder.stats.clone();
    if stats.episodes == 0 {
        return Err(ExportError::Refused(format!(
            "nothing to export: {} events and gaps read, none may leave ({})",
            tally.read,
            tally
                .excluded
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    let mut written = Vec::new();
    for w in writers {
        written.extend(w.finish()?);
    }
    let mut files = Vec::with_capacity(written.len());
    for w in written {
        let (sha256, bytes) = match w.digest {
            Some(d) => d,
            None => {
                let path = tmp.path().join(&w.path);
                let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                (
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                    bytes.len() as u64,
                )
            }
        };
        files.push(FileEntry {
            path: w.path.to_string_lossy().into_owned(),
            bytes,
            sha256,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: format!("candor-export {}", env!("CARGO_PKG_VERSION")),
        export_id: export_id.clone(),
        formats: formats.iter().map(|f| f.name().to_owned()).collect(),
        synthetic: shape.synthetic,
        consent: ConsentInfo {
            record_ids: stats.records.iter().cloned().collect(),
            ledger_seq: adm.consent_head.0,
            ledger_head: adm.consent_head.1.clone(),
            anchor_checked: adm.anchor_checked,
            subject_ids: stats.subjects.iter().cloned().collect(),
            scopes: super::card::granted_scopes(&adm, &stats.records),
        },
        redaction: RedactionInfo {
            ruleset_sha256: rules::ruleset_fingerprint(),
            rules: redactor.rule_ids().count(),
            findings_by_rule: stats
                .findings_by_rule
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        },
        anonymization: AnonymizationInfo {
            pseudonyms: "HMAC-SHA256 under a per-export salt, truncated to 128 bits".into(),
            salt: if salt_supplied { "supplied" } else { "random" }.into(),
            path_allowlist: PATH_ALLOWLIST.iter().map(|s| (*s).to_owned()).collect(),
            timing: shape.timing.description().into(),
            timing_mode: shape.timing.name().into(),
            timing_quantum_ms: shape.quantum_ms,
            timing_jitter_ms: shape.jitter_ms,
            idle_gap_ms: shape.idle_gap_ns / 1_000_000,
            absolute_time: "ISO week of each episode's start only".into(),
            time_range_limited: shape.since_ns.is_some() || shape.until_ns.is_some(),
        },
        counts: Counts {
            episodes: stats.episodes,
            actions: stats.actions,
            keys: stats.keys,
            actions_by_type: stats
                .actions_by_type
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            events_read: tally.read,
            events_exported: tally.admitted,
            events_excluded: tally
                .excluded
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        },
        files,
    };
    manifest
        .files
        .push(super::card::write(tmp.path(), &manifest)?);
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest_bytes = manifest.to_bytes();
    let manifest_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest_bytes));
    let mpath = tmp.path().join(MANIFEST_FILE);
    create_file(&mpath)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, &manifest_bytes)?;
            f.sync_all()
        })
        .map_err(|e| io_err(&mpath, e))?;
    std::fs::File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(tmp.path(), e))?;

    // The ledger entry comes before the rename: a crash in between leaves
    // an export recorded that did not land, never one that left unrecorded.
    let mut rw = open_ledger()?;
    let key = rw.sealer(true)?.ledger_key();
    let tx = rw
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let changed: Vec<String> = tx
        .prepare("SELECT action FROM consent_ledger WHERE seq > ?1")?
        .query_map([adm.head.0], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|a| a != "export")
        .collect();
    if !changed.is_empty() {
        return Err(ExportError::Refused(format!(
            "consent changed while exporting ({}); nothing was written, run the export again",
            changed.join(", ")
        )));
    }
    let entry = ledger::append(
        &tx,
        &key,
        now_ns,
        Action::Export,
        json!({
            "export_id": export_id,
            "records": manifest.consent.record_ids,
            "ledger_head": { "seq": adm.consent_head.0, "hash": adm.consent_head.1 },
            "manifest_sha256": manifest_sha256,
            "formats": manifest.formats,
            "episodes": stats.episodes,
            "actions": stats.actions,
            "events": tally.admitted,
            "synthetic": shape.synthetic,
            "out_name": name,
        }),
    )?;
    tx.execute(
        "INSERT INTO exports(created_ns, formats, out_name, manifest_sha256, ledger_seq, events) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            now_ns,
            manifest.formats.join(","),
            name,
            manifest_sha256,
            entry.seq,
            tally.admitted as i64
        ],
    )?;
    tx.commit()?;
    // From here the directory is a finished export: no marker, exact modes.
    let marker = tmp.path().join(PARTIAL_MARKER);
    std::fs::remove_file(&marker).map_err(|e| io_err(&marker, e))?;
    super::sink::publish_dir(tmp, out)?;
    Ok(Exported {
        out: out.to_path_buf(),
        removed_partials,
        manifest,
        manifest_sha256,
        ledger_seq: entry.seq,
    })
}

/// What sits between an export's name and its random suffix in the name
/// of its temporary directory: `.NAME.partial-XXXXXX`.
pub const PARTIAL_INFIX: &str = ".partial-";
/// The file that marks a temporary directory as a partial export of
/// Candor's, naming the process writing it.
pub const PARTIAL_MARKER: &str = ".candor-partial-export";

/// Who is writing a partial export: a pid alone may be reused, so the
/// process's start time and the boot it ran in identify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialMarker {
    pub tool: String,
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks since boot.
    pub start_ticks: Option<u64>,
    pub boot_id: Option<String>,
}

const MARKER_TOOL: &str = "candor-export";

fn proc_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start at the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

impl PartialMarker {
    /// The marker for this process.
    pub fn mine() -> PartialMarker {
        let pid = std::process::id();
        PartialMarker {
            tool: MARKER_TOOL.into(),
            pid,
            start_ticks: proc_start_ticks(pid),
            boot_id: boot_id(),
        }
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut f = create_file(&dir.join(PARTIAL_MARKER))?;
        std::io::Write::write_all(&mut f, &serde_json::to_vec(self)?)?;
        f.sync_all()
    }

    /// Whether the process that wrote this marker is certainly gone. When
    /// that cannot be known (no /proc, a marker without a start time) it is
    /// taken as alive: a live export's files are never removed.
    pub fn writer_is_gone(&self) -> bool {
        let Some(ticks) = self.start_ticks else {
            return false;
        };
        if self.boot_id.is_some() && boot_id().is_some() && self.boot_id != boot_id() {
            return true;
        }
        if !Path::new("/proc/self/stat").exists() {
            return false;
        }
        proc_start_ticks(self.pid) != Some(ticks)
    }
}

/// A stale partial export that was removed.
#[derive(Debug, Clone)]
pub struct RemovedPartial {
    pub path: PathBuf,
    pub pid: u32,
}

/// Removes, from `parent`, the partial exports that killed runs left: a
/// directory named `.NAME.partial-*`, ours, holding a marker (a regular
/// file of ours that parses) whose process is gone. A lookalike without
/// that marker, someone else's, or a running export's, is left alone.
pub fn remove_stale_partials(parent: &Path) -> Result<Vec<RemovedPartial>, ExportError> {
    let me = rustix::process::geteuid().as_raw();
    let mut removed = Vec::new();
    // A parent we may write but not list (mode 0300) holds nothing we can
    // find: the export goes on.
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(removed);
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(parent, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') || !name.contains(PARTIAL_INFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let marker_path = dir.join(PARTIAL_MARKER);
        let marker = match std::fs::symlink_metadata(&marker_path) {
            Ok(m) if m.is_file() && m.uid() == me && m.len() <= 4096 => std::fs::read(&marker_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<PartialMarker>(&b).ok()),
            _ => None,
        };
        let Some(marker) = marker else { continue };
        if marker.tool != MARKER_TOOL || !marker.writer_is_gone() {
            continue;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        removed.push(RemovedPartial {
            path: dir,
            pid: marker.pid,
        });
    }
    Ok(removed)
}

/// Builds the episodes an export would write, without writing or
/// recording anything: what `preview` shows.
pub fn preview(
    store: &mut Store,
    shape: &Shape,
    redactor: &Redactor,
    now_ns: i64,
    mut each: impl FnMut(Episode) -> Result<(), ExportError>,
) -> Result<Tally, ExportError> {
    shape.validate()?;
    store.conn().execute_batch("BEGIN")?;
    let adm = admission(store, shape, now_ns)?;
    let anon = anonymizer(store, Salt::random()?, shape)?;
    let mut builder = Builder::new(redactor, anon);
    builder.set_names(&file_names(store)?)?;
    let mut tally = Tally::default();
    episodes(
        store,
        &adm,
        &mut builder,
        shape.idle_gap_ns,
        &mut tally,
        None,
        &mut each,
    )?;
    store.conn().execute_batch("COMMIT")?;
    Ok(tally)
}
