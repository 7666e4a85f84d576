//! Erasure: purges the engineer asks for, and retention that runs by itself.
//!
//! A purge deletes events and gaps in a time range (or everything), then the
//! blobs nothing references any more, records the purge in the consent ledger
//! in the same transaction (its range and counts, never content), and then
//! VACUUMs and truncates the WAL so that deleted content does not linger in
//! free pages. Retention deletes each kind's events once they are older than
//! the registry's retention for that kind.

use rusqlite::{params, Connection};
use serde_json::json;

use super::{Store, StoreError};
use crate::consent::ledger::{self, Action};
use crate::registry::Kind;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A time range in wall-clock ns; `since` inclusive, `until` exclusive.
/// Both `None` means everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Range {
    pub const ALL: Range = Range {
        since: None,
        until: None,
    };

    fn bounds(self) -> (i64, i64) {
        (
            self.since.unwrap_or(i64::MIN),
            self.until.unwrap_or(i64::MAX),
        )
    }

    fn to_json(self) -> serde_json::Value {
        if self == Range::ALL {
            json!("all")
        } else {
            json!({ "since_ns": self.since, "until_ns": self.until })
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub events: u64,
    pub gaps: u64,
    pub blobs: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub ledger_seq: i64,
}

fn delete_orphan_blobs(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "DELETE FROM blobs WHERE id NOT IN (SELECT blob_id FROM events WHERE blob_id IS NOT NULL)",
        [],
    )? as u64)
}

/// Bytes the database takes on disk, WAL included.
pub fn disk_bytes(store: &Store) -> u64 {
    let db = store.paths().db_file();
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    [db, wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Deletes everything captured in `range`, records it in the ledger, and
/// compacts the file.
pub fn purge(store: &mut Store, range: Range, now_ns: i64) -> Result<PurgeReport, StoreError> {
    let bytes_before = disk_bytes(store);
    let ledger_key = store.sealer(true)?.ledger_key();
    let (since, until) = range.bounds();
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let events = tx.execute(
        "DELETE FROM events WHERE ts_ns >= ?1 AND ts_ns < ?2",
        params![since, until],
    )? as u64;
    let gaps = tx.execute(
        "DELETE FROM gaps WHERE start_ns >= ?1 AND start_ns < ?2",
        params![since, until],
    )? as u64;
    let blobs = delete_orphan_blobs(&tx)?;
    let entry = ledger::append(
        &tx,
        &ledger_key,
        now_ns,
        Action::Purge,
        json!({ "range": range.to_json(), "events": events, "gaps": gaps, "blobs": blobs }),
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.commit()?;
    store.conn().execute_batch("VACUUM")?;
    store.checkpoint()?;
    Ok(PurgeReport {
        events,
        gaps,
        blobs,
        bytes_before,
        bytes_after: disk_bytes(store),
        ledger_seq: entry.seq,
    })
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub events_by_kind: Vec<(Kind, u64)>,
    pub gaps: u64,
    pub blobs: u64,
}

impl RetentionReport {
    pub fn total(&self) -> u64 {
        self.events_by_kind.iter().map(|(_, n)| n).sum::<u64>() + self.gaps
    }
}

/// Deletes events older than their kind's retention, in one pass over the
/// table, then old gaps and orphaned blobs.
pub fn apply_retention(conn: &mut Connection, now_ns: i64) -> Result<RetentionReport, StoreError> {
    let cutoff = |k: Kind| now_ns.saturating_sub(i64::from(k.decl().retention_days) * NS_PER_DAY);
    let cases: String = Kind::ALL
        .iter()
        .map(|k| format!(" WHEN {} THEN {}", k.code(), cutoff(*k)))
        .collect();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut report = RetentionReport::default();
    {
        let mut stmt = tx.prepare(&format!(
            "DELETE FROM events WHERE ts_ns < CASE kind{cases} ELSE {} END RETURNING kind",
            i64::MIN
        ))?;
        let mut counts = std::collections::BTreeMap::<Kind, u64>::new();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let code: i64 = row.get(0)?;
            // Kinds this build does not know (written by a newer Candor) are
            // left alone by the CASE above, so every code here is known.
            if let Some(kind) = Kind::from_code(code) {
                *counts.entry(kind).or_default() += 1;
            }
        }
        report.events_by_kind = counts.into_iter().collect();
    }
    report.gaps = tx.execute(
        "DELETE FROM gaps WHERE end_ns < ?1",
        [cutoff(Kind::CaptureGap)],
    )? as u64;
    report.blobs = delete_orphan_blobs(&tx)?;
    tx.commit()?;
    Ok(report)
}
