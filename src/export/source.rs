//! The exporter's view of the store: the ledger verified first, then every
//! event and gap checked against the consent history before anything else
//! sees it.
//!
//! An event leaves only if a consent window covers its time, that window's
//! record grants the event's scope (fields of narrower, ungranted scopes
//! are stripped), capture was not paused, the subject did not later revoke,
//! no purge covered its time, and it is within retention. Everything turned
//! away is counted by reason, for the manifest. The check knows no kind by
//! name: what local clients send (`shell.commands`, `editor.actions`, and
//! editor edits under `editor.content`) is admitted by its registry scope
//! like everything else.
//!
//! An export of measured key timing (`--timing raw`) is refused outright,
//! rather than thinned, unless every event it would carry was recorded
//! under a consent granting `keys.rhythm` that is still in force.
//!
//! All reads happen in one read transaction, so the ledger that vouches for
//! the events and the events themselves are one snapshot.

use std::collections::BTreeMap;

use rusqlite::params;

use super::ExportError;
use crate::consent::ledger::{self, Entry};
use crate::consent::state::History;
use crate::event::{Event, Stamp, Value};
use crate::registry::Kind;
use crate::store::query::{decode_row, gap_event};
use crate::store::{writer, Store};

const NS_PER_DAY: i64 = 86_400_000_000_000;
const CHUNK: i64 = 20_000;

/// Why an event was left out of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exclusion {
    OutsideConsent,
    ScopeNotGranted,
    /// Granted when recorded, but not by the consent in force now.
    ScopeWithdrawn,
    Paused,
    Revoked,
    Purged,
    PastRetention,
    /// Synthetic sessions are exported only with `--synthetic`, and then
    /// nothing else is.
    SyntheticMismatch,
    OutsideRange,
}

impl Exclusion {
    pub fn name(self) -> &'static str {
        match self {
            Exclusion::OutsideConsent => "outside-consent",
            Exclusion::ScopeNotGranted => "scope-not-granted",
            Exclusion::ScopeWithdrawn => "scope-withdrawn",
            Exclusion::Paused => "paused",
            Exclusion::Revoked => "revoked",
            Exclusion::Purged => "purged",
            Exclusion::PastRetention => "past-retention",
            Exclusion::SyntheticMismatch => "synthetic-mismatch",
            Exclusion::OutsideRange => "outside-range",
        }
    }
}

/// The ledger's say on what may leave, fixed when the export starts.
pub struct Admission {
    pub history: History,
    /// The last entry that bears on consent (exports do not), so that two
    /// exports of the same store with the same salt stay identical.
    pub consent_head: (i64, String),
    /// The ledger's head when the export read it.
    pub head: (i64, String),
    pub anchor_checked: bool,
    purged: Vec<(i64, i64)>,
    /// (subject, time of a revocation): everything that subject recorded
    /// before it is withdrawn.
    revocations: Vec<(String, i64)>,
    now_ns: i64,
    synthetic: bool,
    range: (i64, i64),
    /// `--timing raw`: every admitted event's consent must grant
    /// `keys.rhythm`, or the export is refused.
    rhythm_required: bool,
}

/// The consent record an admitted event falls under.
#[derive(Clone, Debug)]
pub struct Covered {
    pub record_id: String,
    pub subject: String,
    /// Whether `keys.rhythm` was granted when the event was recorded and
    /// still is by the consent in force now.
    pub grants_rhythm: bool,
}

impl Admission {
    /// Verifies the ledger (a broken one refuses the export) and reads the
    /// consent history from it.
    pub fn read(
        store: &mut Store,
        now_ns: i64,
        synthetic: bool,
        range: (i64, i64),
    ) -> Result<Admission, ExportError> {
        let key = match store.meta("key_fingerprint")? {
            Some(_) => Some(store.sealer(false)?.ledger_key()),
            None => None,
        };
        let verified = ledger::verify(store.conn(), key.as_ref())
            .map_err(|e| ExportError::Refused(format!("the consent ledger is broken: {e}")))?;
        let entries = ledger::entries(store.conn())?;
        let history = History::from_entries(&entries);
        if !history.unreadable.is_empty() {
            return Err(ExportError::Refused(format!(
                "ledger entries {:?} cannot be read by this Candor; export with the version that wrote them",
                history.unreadable
            )));
        }
        let consent_head = entries
            .iter()
            .rev()
            .find(|e| e.action != "export")
            .map_or((0, String::new()), |e| (e.seq, e.hash.clone()));
        Ok(Admission {
            purged: purged_ranges(&entries),
            revocations: revocations(&entries, &history),
            history,
            consent_head,
            head: (verified.entries, verified.head),
            anchor_checked: verified.anchor_checked,
            now_ns,
            synthetic,
            range,
            rhythm_required: false,
        })
    }

    /// Requires `keys.rhythm` of every admitted event's consent, for an
    /// export of measured timing.
    pub fn require_rhythm(&mut self) {
        self.rhythm_required = true;
    }

    /// Refuses an export of measured timing that an admitted event's
    /// consent does not allow. Synthetic sessions have no consent to ask
    /// and no person to identify.
    fn check_rhythm(&self, covered: Option<&Covered>) -> Result<(), ExportError> {
        match covered {
            Some(c) if self.rhythm_required && !c.grants_rhythm => {
                Err(ExportError::Refused(format!(
                    "--timing raw needs the keys.rhythm scope, and consent record {} does not \
                     grant it (or no longer does): a typing rhythm identifies the typist. Export \
                     with the default --timing anonymized, or grant keys.rhythm (`candor \
                     consent`) and export only what was recorded under it (--since)",
                    c.record_id
                )))
            }
            _ => Ok(()),
        }
    }

    /// Decides on one event; on admission, strips the fields its consent
    /// does not grant.
    pub fn admit(
        &self,
        ev: &mut Event,
        synthetic_session: bool,
    ) -> Result<Option<Covered>, Exclusion> {
        let ts = ev.wall_ns;
        if ts < self.range.0 || ts >= self.range.1 {
            return Err(Exclusion::OutsideRange);
        }
        self.admit_in_range(ev, synthetic_session)
    }

    /// [`Admission::admit`] but for the time range, which the caller has
    /// checked (or reads the event as context only).
    fn admit_in_range(
        &self,
        ev: &mut Event,
        synthetic_session: bool,
    ) -> Result<Option<Covered>, Exclusion> {
        let ts = ev.wall_ns;
        // A command is stamped when it ended but placed where it started:
        // the whole span it ran must be admissible, not just its end.
        let start = span_start(ev);
        if synthetic_session != self.synthetic {
            return Err(Exclusion::SyntheticMismatch);
        }
        if self.purged.iter().any(|(a, b)| *a <= ts && start < *b) {
            return Err(Exclusion::Purged);
        }
        let retention = i64::from(ev.kind.decl().retention_days) * NS_PER_DAY;
        if start < self.now_ns.saturating_sub(retention) {
            return Err(Exclusion::PastRetention);
        }
        if self.synthetic {
            // Generated, not captured from a person: no consent to check.
            return Ok(None);
        }
        let window = self
            .history
            .window_at(ts)
            .filter(|w| w.contains(start))
            .ok_or(Exclusion::OutsideConsent)?;
        let record = &window.record;
        if self
            .revocations
            .iter()
            .any(|(s, at)| *s == record.subject && ts < *at)
        {
            return Err(Exclusion::Revoked);
        }
        // A pause leaves a `paused` gap, which is exactly what a reader
        // should see of it.
        if ev.kind != Kind::CaptureGap && self.paused_during(start, ts) {
            return Err(Exclusion::Paused);
        }
        if !ev.retain_scopes(|s| record.grants(s)) {
            return Err(Exclusion::ScopeNotGranted);
        }
        // A scope the engineer has since withdrawn takes its data with it:
        // the consent in force now must grant it too.
        if let Some(now) = self.history.windows.last() {
            if !ev.retain_scopes(|s| now.record.grants(s)) {
                return Err(Exclusion::ScopeWithdrawn);
            }
        }
        let rhythm = crate::registry::Scope::KeysRhythm;
        let grants_rhythm = record.grants(rhythm)
            && self
                .history
                .windows
                .last()
                .is_some_and(|now| now.record.grants(rhythm));
        Ok(Some(Covered {
            record_id: record.record_id.clone(),
            subject: record.subject.clone(),
            grants_rhythm,
        }))
    }
}

impl Admission {
    /// Whether capture was paused at any time in `[start, end]`.
    fn paused_during(&self, start: i64, end: i64) -> bool {
        if start >= end {
            return self.history.paused_at(end);
        }
        self.history
            .pauses
            .iter()
            .any(|p| p.from_ns <= end && p.to_ns.is_none_or(|t| t > start))
    }
}

/// When the span an event stands for began: a command or run is stamped
/// when it ended, with how long it took; anything else is a moment.
fn span_start(ev: &Event) -> i64 {
    if !matches!(ev.kind, Kind::ShellCommand | Kind::RunTest | Kind::RunBuild) {
        return ev.wall_ns;
    }
    let ms = match ev.get("duration_ms") {
        Some(Value::Int(ms)) => (*ms).clamp(0, i64::MAX / 1_000_000),
        _ => 0,
    };
    ev.wall_ns.saturating_sub(ms * 1_000_000)
}

fn purged_ranges(entries: &[Entry]) -> Vec<(i64, i64)> {
    entries
        .iter()
        .filter(|e| e.action == "purge")
        .map(|e| {
            let r = &e.data["range"];
            if r.as_str() == Some("all") {
                // Everything recorded before the purge is gone.
                (i64::MIN, e.ts_ns)
            } else {
                (
                    r["since_ns"].as_i64().unwrap_or(i64::MIN),
                    r["until_ns"].as_i64().unwrap_or(e.ts_ns),
                )
            }
        })
        .collect()
}

fn revocations(entries: &[Entry], history: &History) -> Vec<(String, i64)> {
    entries
        .iter()
        .filter(|e| e.action == "revoke")
        .filter_map(|e| {
            // The window a revocation closes names its subject.
            history
                .windows
                .iter()
                .rev()
                .find(|w| w.from_ns <= e.ts_ns)
                .map(|w| (w.record.subject.clone(), e.ts_ns))
        })
        .collect()
}

/// One admitted event, with its file content loaded when consent covers it.
pub struct Admitted {
    pub id: i64,
    pub event: Event,
    pub covered: Option<Covered>,
    /// Read only so that typed text around the edge of `--since`/`--until`
    /// is redacted whole: a key or focus event just outside the range,
    /// never exported.
    pub context: bool,
}

/// How far beyond the time range key events are read as context: a secret
/// typed across the range's edge is typed within seconds.
pub const CONTEXT_NS: i64 = 10 * 60 * 1_000_000_000;

/// What reading the store turned away, by reason.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub read: u64,
    pub admitted: u64,
    pub excluded: BTreeMap<&'static str, u64>,
}

/// Streams every admitted event and gap in the range, gaps merged in by
/// time, in store order. The caller's function may fail; reading stops.
pub fn read_events(
    store: &mut Store,
    adm: &Admission,
    tally: &mut Tally,
    mut each: impl FnMut(Admitted) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut gaps = read_gaps(store, adm, tally)?.into_iter().peekable();
    let mut last_id = 0i64;
    loop {
        type Row = (
            i64,
            i64,
            i64,
            i64,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<(i64, i64)>,
            bool,
        );
        let rows: Vec<Row> = store
            .conn()
            .prepare_cached(
                "SELECT e.id, e.kind, e.ts_ns, e.mono_ns, e.data, e.sealed, e.blob_id, b.size, s.synthetic \
                 FROM events e JOIN sessions s ON s.id = e.session_id \
                 LEFT JOIN blobs b ON b.id = e.blob_id \
                 WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
            )?
            .query_map(params![last_id, CHUNK], |r| {
                let blob = match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?) {
                    (Some(id), size) => Some((id, size.unwrap_or(0))),
                    _ => None,
                };
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    blob,
                    r.get(8)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        for (id, code, wall_ns, mono_ns, data, sealed, blob, synthetic) in rows {
            last_id = id;
            tally.read += 1;
            // Cheap checks first: most of a store is out of range or
            // consent when exporting a slice, and unsealing costs.
            let outside = wall_ns < adm.range.0 || wall_ns >= adm.range.1;
            if outside {
                *tally
                    .excluded
                    .entry(Exclusion::OutsideRange.name())
                    .or_default() += 1;
                let near = wall_ns >= adm.range.0.saturating_sub(CONTEXT_NS)
                    && wall_ns < adm.range.1.saturating_add(CONTEXT_NS);
                let keys = code == i64::from(Kind::KeyDown.code())
                    || code == i64::from(Kind::WindowFocus.code());
                if !(near && keys) {
                    continue;
                }
            }
            let mut event = decode_row(
                store,
                code,
                Stamp { wall_ns, mono_ns },
                data.as_deref(),
                sealed.as_deref(),
                blob,
            )?;
            let covered = match adm.admit_in_range(&mut event, synthetic) {
                Ok(c) => c,
                Err(why) => {
                    if !outside {
                        *tally.excluded.entry(why.name()).or_default() += 1;
                    }
                    continue;
                }
            };
            if outside {
                each(Admitted {
                    id,
                    event,
                    covered,
                    context: true,
                })?;
                continue;
            }
            // Context events (for redaction only) never leave: only what
            // does must have been recorded under keys.rhythm.
            adm.check_rhythm(covered.as_ref())?;
            load_content(store, &mut event)?;
            while let Some(g) = gaps.next_if(|g| g.event.wall_ns <= wall_ns) {
                each(g)?;
            }
            tally.admitted += 1;
            each(Admitted {
                id,
                event,
                covered,
                context: false,
            })?;
        }
    }
    for g in gaps {
        each(g)?;
    }
    Ok(())
}

/// Replaces a stored snapshot's reference by its text, if the consent kept
/// the field (the gate already cleared it otherwise).
fn load_content(store: &mut Store, ev: &mut Event) -> Result<(), ExportError> {
    let Some(i) = ev.kind.field_index("content") else {
        return Ok(());
    };
    if let Some(Value::BlobRef { id, .. }) = ev.values()[i] {
        let bytes = writer::load_blob(store, id)?;
        ev.set("content", Value::Blob(bytes))
            .map_err(|e| ExportError::Invalid {
                file: "store".into(),
                problem: e.to_string(),
            })?;
    }
    Ok(())
}

fn read_gaps(
    store: &Store,
    adm: &Admission,
    tally: &mut Tally,
) -> Result<Vec<Admitted>, ExportError> {
    let mut stmt = store.conn().prepare(
        "SELECT g.id, g.start_ns, g.end_ns, g.reason, g.count, g.lost_kind, coalesce(s.synthetic, 0) \
         FROM gaps g LEFT JOIN sessions s ON s.id = g.session_id ORDER BY g.start_ns, g.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, bool>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, start, end, reason, count, lost_kind, synthetic) = row?;
        let mut ev = gap_event(id, start, end, reason, count, lost_kind)?;
        tally.read += 1;
        match adm.admit(&mut ev, synthetic) {
            Ok(covered) => {
                adm.check_rhythm(covered.as_ref())?;
                tally.admitted += 1;
                out.push(Admitted {
                    id,
                    event: ev,
                    covered,
                    context: false,
                })
            }
            Err(why) => *tally.excluded.entry(why.name()).or_default() += 1,
        }
    }
    Ok(out)
}

/// Every workspace name and file path the store's file events (and the
/// editor plugins' focus and diagnostics events, and the workspace of
/// every shell command and run) name, read before the
/// export so that window titles and command lines can be stripped of them
/// even where they come before the file's first save. Cursor moves and
/// edits are left out: they name the same files far more often, and an
/// edit's names are sealed.
pub fn file_names(store: &mut Store) -> Result<Vec<(String, String)>, ExportError> {
    let codes: Vec<String> = [
        Kind::FileCreate,
        Kind::FileModify,
        Kind::FileDelete,
        Kind::FileRename,
        Kind::GitCommit,
        Kind::EditorFocus,
        Kind::EditorDiagnostics,
        Kind::ShellCommand,
        Kind::RunTest,
        Kind::RunBuild,
    ]
    .iter()
    .map(|k| k.code().to_string())
    .collect();
    let sql = format!(
        "SELECT kind, ts_ns, mono_ns, data, sealed FROM events WHERE kind IN ({})",
        codes.join(",")
    );
    type Row = (i64, i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = store
        .conn()
        .prepare(&sql)?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let shell = [Kind::ShellCommand, Kind::RunTest, Kind::RunBuild].map(|k| i64::from(k.code()));
    let mut out = std::collections::BTreeSet::new();
    for (code, wall_ns, mono_ns, data, sealed) in rows {
        // Public fields only for file and editor events: their names never
        // sit in the sealed part. A command is sealed whole, workspace
        // included.
        let sealed = if shell.contains(&code) {
            sealed.as_deref()
        } else {
            None
        };
        let ev = decode_row(
            store,
            code,
            Stamp { wall_ns, mono_ns },
            data.as_deref(),
            sealed,
            None,
        )?;
        let ws = match ev.get("workspace") {
            Some(Value::Str(w)) => w.to_string(),
            _ => continue,
        };
        out.insert((ws.clone(), String::new()));
        for f in ["path", "from", "to"] {
            if let Some(Value::Str(p)) = ev.get(f) {
                out.insert((ws.clone(), p.to_string()));
            }
        }
    }
    Ok(out.into_iter().collect())
}
