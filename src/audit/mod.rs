//! Audit for privacy reviewers.
//!
//! On a store: verify the consent ledger (chain and anchor), then check
//! every stored event against the consent history derived from it: inside a
//! consent window, of a granted scope (sealed fields and snapshots need
//! their own scopes), not during a pause, and not past its retention. On an
//! exported ledger file: verify the chain alone, for a reviewer who was
//! sent only that file.
//!
//! Audit reads; it never repairs. Expiry and notice changes are evaluated
//! from the ledger as it stands, not recorded.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use serde::Serialize;

use crate::consent::ledger::{self, Entry, LedgerError};
use crate::consent::state::{History, WindowEnd};
use crate::registry::Kind;
use crate::store::query::format_ns;
use crate::store::{Store, StoreError};

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {why}")]
    BadLine {
        path: String,
        line: usize,
        why: String,
    },
    #[error(
        "{path} is larger than {} MiB (MAX_LEDGER_FILE): not a ledger Candor wrote; refusing to read further",
        limit >> 20
    )]
    FileTooLarge { path: String, limit: u64 },
    #[error(
        "{path} line {line} is longer than {} KiB (MAX_LEDGER_LINE): not a ledger entry; refusing to read further",
        limit >> 10
    )]
    LineTooLong {
        path: String,
        line: usize,
        limit: usize,
    },
}

/// The largest ledger file read. A ledger gains an entry per grant, pause,
/// purge or export, each well under a KiB: a million entries fit.
pub const MAX_LEDGER_FILE: u64 = 256 << 20;
/// The longest line read. The largest entry, an export's, lists the
/// consent records it drew on: a few KiB even after years of renewals.
pub const MAX_LEDGER_LINE: usize = 1 << 20;

impl From<rusqlite::Error> for AuditError {
    fn from(e: rusqlite::Error) -> AuditError {
        AuditError::Store(e.into())
    }
}

/// The verdict on a ledger.
#[derive(Debug, Serialize)]
pub struct LedgerCheck {
    pub intact: bool,
    pub entries: i64,
    pub head: Option<String>,
    pub anchor_checked: bool,
    /// The first problem found, naming the entry.
    pub problem: Option<String>,
}

impl LedgerCheck {
    fn from_result(r: Result<ledger::Verified, LedgerError>, count: i64) -> LedgerCheck {
        match r {
            Ok(v) => LedgerCheck {
                intact: true,
                entries: v.entries,
                head: Some(v.head),
                anchor_checked: v.anchor_checked,
                problem: None,
            },
            Err(e) => LedgerCheck {
                intact: false,
                entries: count,
                head: None,
                anchor_checked: false,
                problem: Some(e.to_string()),
            },
        }
    }
}

/// One consent window and what was captured under it.
#[derive(Debug, Serialize)]
pub struct WindowSummary {
    pub record_id: String,
    pub method: &'static str,
    pub scopes: Vec<String>,
    pub from: String,
    pub until: String,
    pub end: WindowEnd,
    pub events_by_kind: BTreeMap<&'static str, u64>,
}

/// A class of events that should not be in the store.
#[derive(Debug, Serialize)]
pub struct Violation {
    /// outside-consent, scope-not-granted, during-pause, past-retention,
    /// unknown-kind.
    pub rule: &'static str,
    pub kind: String,
    pub events: u64,
    pub first_event_id: i64,
    pub first_time: String,
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub ledger: LedgerCheck,
    pub history: Vec<WindowSummary>,
    pub pauses: usize,
    pub purges: usize,
    pub exports: usize,
    pub events_checked: u64,
    pub synthetic_events: u64,
    pub violations: Vec<Violation>,
    pub ok: bool,
}

fn summarize(history: &History) -> Vec<WindowSummary> {
    history
        .windows
        .iter()
        .map(|w| WindowSummary {
            record_id: w.record.record_id.clone(),
            method: w.record.method_name(),
            scopes: w.record.scopes.clone(),
            from: format_ns(w.from_ns),
            until: format_ns(w.effective_end()),
            end: w.end.clone(),
            events_by_kind: BTreeMap::new(),
        })
        .collect()
}

/// Audits a store as of `now_ns`.
pub fn audit_store(store: &mut Store, now_ns: i64) -> Result<AuditReport, AuditError> {
    let entries = ledger::entries(store.conn());
    let count: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM consent_ledger", [], |r| r.get(0))?;
    let key = match store.meta("key_fingerprint")? {
        Some(_) => Some(store.sealer(false)?.ledger_key()),
        None => None,
    };
    let verified = ledger::verify(store.conn(), key.as_ref());
    let check = LedgerCheck::from_result(verified, count);
    let entries = match (check.intact, entries) {
        (true, Ok(e)) => e,
        _ => {
            // A broken ledger cannot vouch for any event: stop here.
            return Ok(AuditReport {
                ledger: check,
                history: Vec::new(),
                pauses: 0,
                purges: 0,
                exports: 0,
                events_checked: 0,
                synthetic_events: 0,
                violations: Vec::new(),
                ok: false,
            });
        }
    };
    let history = History::from_entries(&entries);
    let mut summary = summarize(&history);
    let mut violations: BTreeMap<(&'static str, String), Violation> = BTreeMap::new();
    let mut flag = |rule: &'static str, kind: &str, id: i64, ts: i64| {
        violations
            .entry((rule, kind.to_owned()))
            .and_modify(|v| v.events += 1)
            .or_insert_with(|| Violation {
                rule,
                kind: kind.to_owned(),
                events: 1,
                first_event_id: id,
                first_time: format_ns(ts),
            });
    };
    let (mut checked, mut synthetic) = (0u64, 0u64);
    let mut stmt = store.conn().prepare(
        "SELECT e.id, e.kind, e.ts_ns, e.sealed IS NOT NULL, e.blob_id IS NOT NULL, s.synthetic \
         FROM events e JOIN sessions s ON s.id = e.session_id ORDER BY e.id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (id, code, ts): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let (has_sealed, has_blob, is_synthetic): (bool, bool, bool) =
            (r.get(3)?, r.get(4)?, r.get(5)?);
        checked += 1;
        let Some(kind) = Kind::from_code(code) else {
            flag("unknown-kind", &format!("code {code}"), id, ts);
            continue;
        };
        if ts < now_ns.saturating_sub(i64::from(kind.decl().retention_days) * NS_PER_DAY) {
            flag("past-retention", kind.name(), id, ts);
        }
        if is_synthetic {
            // Generated, not captured from a person: reported, not held to
            // a consent.
            synthetic += 1;
            continue;
        }
        let Some(wi) = history.windows.iter().rposition(|w| w.contains(ts)) else {
            flag("outside-consent", kind.name(), id, ts);
            continue;
        };
        let record = &history.windows[wi].record;
        let (sealed_scopes, blob_scope) = kind.sealed_scopes();
        let mut needed = vec![kind.scope()];
        if has_sealed {
            needed.extend(sealed_scopes);
        }
        if has_blob {
            needed.extend(blob_scope);
        }
        if needed.iter().any(|s| !record.grants(*s)) {
            flag("scope-not-granted", kind.name(), id, ts);
        }
        if history.paused_at(ts) {
            flag("during-pause", kind.name(), id, ts);
        }
        *summary[wi].events_by_kind.entry(kind.name()).or_default() += 1;
    }
    let violations: Vec<Violation> = violations.into_values().collect();
    Ok(AuditReport {
        ok: violations.is_empty(),
        ledger: check,
        history: summary,
        pauses: history.pauses.len(),
        purges: history.purges.len(),
        exports: history.exports.len(),
        events_checked: checked,
        synthetic_events: synthetic,
        violations,
    })
}

/// The verdict on an exported ledger file.
#[derive(Debug, Serialize)]
pub struct LedgerFileReport {
    pub path: String,
    pub ledger: LedgerCheck,
    pub history: Vec<WindowSummary>,
    pub ok: bool,
}

/// Verifies an exported ledger (`candor consent log --json`) without the
/// store. With `expect_head`, also checks the file ends at that hash, which
/// shows a truncated file.
pub fn audit_ledger_file(
    path: &Path,
    expect_head: Option<&str>,
) -> Result<LedgerFileReport, AuditError> {
    let name = path.display().to_string();
    let read_err = |source| AuditError::Read {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    // A regular file's size is known at once (a 2 GB sparse file fails
    // here); a device or a pipe is bounded as it is read.
    if file.metadata().map_err(read_err)?.len() > MAX_LEDGER_FILE {
        return Err(AuditError::FileTooLarge {
            path: name,
            limit: MAX_LEDGER_FILE,
        });
    }
    let entries = read_ledger_lines(std::io::BufReader::new(file), &name)?;
    let mut check = LedgerCheck::from_result(
        ledger::verify_chain(&entries).map(|(seq, head)| ledger::Verified {
            entries: seq,
            head,
            anchor_checked: false,
        }),
        entries.len() as i64,
    );
    if let (true, Some(want)) = (check.intact, expect_head) {
        if check.head.as_deref() != Some(want) {
            check.intact = false;
            check.problem = Some(format!(
                "the file ends at {} but the ledger's head is {want}: entries are missing from the end",
                check.head.clone().unwrap_or_default()
            ));
        }
    }
    if check.intact && entries.is_empty() {
        // Nothing to verify is not a verified ledger: a reviewer handed an
        // empty file must not read PASS.
        check.intact = false;
        check.problem = Some(
            "the file holds no ledger entries, so it vouches for nothing (write one with `candor consent log --json`)"
                .into(),
        );
    }
    let history = if check.intact {
        summarize(&History::from_entries(&entries))
    } else {
        Vec::new()
    };
    Ok(LedgerFileReport {
        path: name,
        ok: check.intact,
        ledger: check,
        history,
    })
}

/// Parses an exported ledger, one JSON entry per line (blank lines
/// skipped), reading at most [`MAX_LEDGER_FILE`] bytes and lines of at most
/// [`MAX_LEDGER_LINE`], so `/dev/zero` or an endless pipe fails at once.
pub fn read_ledger_lines(reader: impl BufRead, name: &str) -> Result<Vec<Entry>, AuditError> {
    read_lines_within(reader, name, MAX_LEDGER_FILE, MAX_LEDGER_LINE)
}

fn read_lines_within(
    reader: impl BufRead,
    name: &str,
    max_file: u64,
    max_line: usize,
) -> Result<Vec<Entry>, AuditError> {
    let mut reader = reader.take(max_file + 1);
    let mut entries = Vec::new();
    let mut buf = Vec::new();
    let mut total = 0u64;
    for line in 1.. {
        buf.clear();
        let n = (&mut reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| AuditError::Read {
                path: name.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max_file {
            return Err(AuditError::FileTooLarge {
                path: name.to_owned(),
                limit: max_file,
            });
        }
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if content.len() > max_line {
            return Err(AuditError::LineTooLong {
                path: name.to_owned(),
                line,
                limit: max_line,
            });
        }
        let bad = |why: String| AuditError::BadLine {
            path: name.to_owned(),
            line,
            why,
        };
        let text = std::str::from_utf8(content).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let e: Entry =
            serde_json::from_str(text).map_err(|e| bad(format!("not a ledger entry: {e}")))?;
        entries.push(e);
    }
    Ok(entries)
}

fn write_ledger(f: &mut fmt::Formatter<'_>, l: &LedgerCheck) -> fmt::Result {
    if l.intact {
        writeln!(
            f,
            "ledger     {} entries, chain intact{}, head {}",
            l.entries,
            if l.anchor_checked {
                ", anchor verified"
            } else {
                " (anchor not checked)"
            },
            l.head.as_deref().unwrap_or("-")
        )
    } else {
        writeln!(
            f,
            "ledger     BROKEN: {}",
            l.problem.as_deref().unwrap_or("unknown problem")
        )
    }
}

fn write_history(f: &mut fmt::Formatter<'_>, history: &[WindowSummary]) -> fmt::Result {
    if history.is_empty() {
        return writeln!(f, "consent    none recorded");
    }
    writeln!(f, "consent history")?;
    for (i, w) in history.iter().enumerate() {
        writeln!(
            f,
            "  {}. {} ({}) from {} until {} [{}]",
            i + 1,
            w.record_id,
            w.method,
            w.from,
            w.until,
            serde_json::to_value(&w.end)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )?;
        writeln!(f, "     scopes: {}", w.scopes.join(", "))?;
        if !w.events_by_kind.is_empty() {
            let captured: Vec<String> = w
                .events_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(f, "     captured: {}", captured.join(", "))?;
        }
    }
    Ok(())
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ledger(f, &self.ledger)?;
        if !self.ledger.intact {
            return writeln!(
                f,
                "verdict    FAIL: the ledger is broken, so no event can be vouched for"
            );
        }
        write_history(f, &self.history)?;
        writeln!(
            f,
            "also       {} pauses, {} purges, {} exports in the ledger",
            self.pauses, self.purges, self.exports
        )?;
        writeln!(
            f,
            "events     {} checked; {} synthetic (generated, not held to consent)",
            self.events_checked, self.synthetic_events
        )?;
        for v in &self.violations {
            writeln!(
                f,
                "VIOLATION  {}: {} {} events (first: event {} at {})",
                v.rule, v.events, v.kind, v.first_event_id, v.first_time
            )?;
        }
        if self.ok {
            writeln!(
                f,
                "verdict    PASS: every stored event is covered by consent"
            )
        } else {
            writeln!(f, "verdict    FAIL")
        }
    }
}

impl fmt::Display for LedgerFileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file       {}", self.path)?;
        write_ledger(f, &self.ledger)?;
        write_history(f, &self.history)?;
        writeln!(f, "verdict    {}", if self.ok { "PASS" } else { "FAIL" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless stream: what a pipe or a device can be.
    struct Endless(&'static [u8]);

    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            Ok(n)
        }
    }

    fn endless(unit: &'static [u8]) -> std::io::BufReader<Endless> {
        std::io::BufReader::new(Endless(unit))
    }

    #[test]
    fn an_endless_stream_stops_at_the_limits() {
        // Blank lines are skipped, so only the file limit stops them.
        let err = read_lines_within(endless(b"\n"), "pipe", 4096, 64).unwrap_err();
        assert!(
            matches!(err, AuditError::FileTooLarge { limit: 4096, .. }),
            "{err}"
        );
        let err = read_lines_within(endless(b"\0"), "zero", 4096, 64).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::LineTooLong {
                    line: 1,
                    limit: 64,
                    ..
                }
            ),
            "{err}"
        );
        // A line of exactly the limit is read (and then judged as JSON).
        let line = format!("{}\n", " ".repeat(64));
        let got = read_lines_within(line.as_bytes(), "edge", 4096, 64).unwrap();
        assert!(got.is_empty());
        let line = format!("{}\n", " ".repeat(65));
        assert!(read_lines_within(line.as_bytes(), "edge", 4096, 64).is_err());
    }
}
