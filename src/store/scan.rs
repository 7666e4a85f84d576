//! Streaming reads of the whole store for readers that summarize it (the
//! HTML report): one pass over `events` in a time range with borrowed
//! column bytes, and the small tables (sessions, gaps, exports) as rows.
//! Aggregation happens in the caller's closure, so millions of events never
//! sit in memory at once. This module knows nothing of what is drawn.

use std::collections::HashSet;

use rusqlite::params;

use super::codec::{self, Group};
use super::{Store, StoreError};
use crate::event::{Event, Stamp};
use crate::registry::Kind;

/// One `events` row, its bytes borrowed from SQLite for the closure's call.
pub struct RawEvent<'a> {
    pub id: i64,
    pub session_id: i64,
    pub kind: i64,
    pub ts_ns: i64,
    pub data: Option<&'a [u8]>,
    pub sealed: Option<&'a [u8]>,
    pub blob_id: Option<i64>,
}

impl RawEvent<'_> {
    /// The event with its public fields only: no key is needed.
    pub fn decode_public(&self) -> Result<Option<Event>, StoreError> {
        let Some(kind) = Kind::from_code(self.kind) else {
            return Ok(None);
        };
        let mut values: crate::event::Slots =
            std::iter::repeat_n(None, kind.fields().len()).collect();
        if let Some(d) = self.data {
            codec::decode_group(kind, d, Group::Public, &mut values)?;
        }
        Ok(Some(Event::from_slots(
            kind,
            Stamp {
                wall_ns: self.ts_ns,
                mono_ns: 0,
            },
            values,
        )))
    }
}

/// A `gaps` row.
#[derive(Debug, Clone)]
pub struct GapRow {
    pub id: i64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub reason: String,
    pub count: i64,
    pub lost_kind: Option<String>,
}

/// An `exports` row.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: i64,
    pub created_ns: i64,
    pub formats: String,
    pub out_name: String,
    pub manifest_sha256: String,
    pub ledger_seq: i64,
    pub events: i64,
}

fn range(from: Option<i64>, until: Option<i64>) -> (i64, i64) {
    (from.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX))
}

impl Store {
    /// Calls `f` with every event stamped in `[from, until)`, in storage
    /// order (the order they were written). The table has no time index, so
    /// this is one sequential scan whatever the range.
    pub fn scan_events<E: From<StoreError>>(
        &self,
        from: Option<i64>,
        until: Option<i64>,
        mut f: impl FnMut(&RawEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let (lo, hi) = range(from, until);
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT id, session_id, kind, ts_ns, data, sealed, blob_id FROM events \
                 WHERE ts_ns >= ?1 AND ts_ns < ?2",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query(params![lo, hi]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let get = || -> Result<RawEvent<'_>, rusqlite::Error> {
                Ok(RawEvent {
                    id: r.get(0)?,
                    session_id: r.get(1)?,
                    kind: r.get(2)?,
                    ts_ns: r.get(3)?,
                    data: r.get_ref(4)?.as_blob_or_null()?,
                    sealed: r.get_ref(5)?.as_blob_or_null()?,
                    blob_id: r.get(6)?,
                })
            };
            let raw = get().map_err(StoreError::from)?;
            f(&raw)?;
        }
        Ok(())
    }

    /// The ids of sessions written by the synthetic generator.
    pub fn synthetic_sessions(&self) -> Result<HashSet<i64>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id FROM sessions WHERE synthetic != 0")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Gaps that overlap `[from, until)`, oldest first.
    pub fn gaps_overlapping(
        &self,
        from: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<GapRow>, StoreError> {
        let (lo, hi) = range(from, until);
        let mut stmt = self.conn().prepare(
            "SELECT id, start_ns, end_ns, reason, count, lost_kind FROM gaps \
             WHERE end_ns >= ?1 AND start_ns < ?2 ORDER BY start_ns, id",
        )?;
        let rows = stmt
            .query_map(params![lo, hi], |r| {
                Ok(GapRow {
                    id: r.get(0)?,
                    start_ns: r.get(1)?,
                    end_ns: r.get(2)?,
                    reason: r.get(3)?,
                    count: r.get(4)?,
                    lost_kind: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Every export made from this store, oldest first.
    pub fn export_rows(&self) -> Result<Vec<ExportRow>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT id, created_ns, formats, out_name, manifest_sha256, ledger_seq, events \
             FROM exports ORDER BY created_ns, id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ExportRow {
                    id: r.get(0)?,
                    created_ns: r.get(1)?,
                    formats: r.get(2)?,
                    out_name: r.get(3)?,
                    manifest_sha256: r.get(4)?,
                    ledger_seq: r.get(5)?,
                    events: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
