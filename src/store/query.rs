//! Reading the store back: the summary behind `candor stats`, and the
//! decoded events behind `candor events`, with sealed fields opened for the
//! owner. Both read through the registry, so what they show is named the
//! same way the notice names it.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::params;
use serde::Serialize;

use super::codec::{self, Group};
use super::{migrate, purge, seal, Store, StoreError};
use crate::event::{Event, Stamp, Value};
use crate::registry::{FieldType, Kind, Scope};

/// Formats wall-clock ns as RFC 3339 UTC with microseconds.
pub fn format_ns(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_micros(t).to_string()
}

#[derive(Debug, Serialize)]
pub struct KindCount {
    pub kind: &'static str,
    pub scope: &'static str,
    pub sensitivity: &'static str,
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct ScopeCount {
    pub scope: &'static str,
    /// Events recorded under this scope, including events of other kinds
    /// that carry a field this scope covers.
    pub events: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct GapSummary {
    pub reason: String,
    pub spans: u64,
    pub lost_events: u64,
    pub total_ns: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct SessionSummary {
    pub total: u64,
    pub synthetic: u64,
    pub unclean: u64,
    pub open: u64,
    pub coalesced_moves: u64,
    pub dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub data_dir: String,
    pub schema_version: u32,
    pub events: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    pub by_kind: Vec<KindCount>,
    pub by_scope: Vec<ScopeCount>,
    pub sessions: SessionSummary,
    pub gaps: Vec<GapSummary>,
    pub database_bytes: u64,
    pub blobs: u64,
    pub blob_bytes_stored: u64,
    pub blob_bytes_plain: u64,
    pub ledger_entries: u64,
    pub key_location: Option<String>,
}

pub fn stats(store: &Store) -> Result<Stats, StoreError> {
    let conn = store.conn();
    let mut by_kind = Vec::new();
    let mut by_scope: BTreeMap<Scope, u64> = Scope::ALL.iter().map(|s| (*s, 0)).collect();
    let (mut total, mut first, mut last) = (0u64, None::<i64>, None::<i64>);
    {
        let mut stmt = conn.prepare(
            "SELECT kind, count(*), count(sealed), count(blob_id), min(ts_ns), max(ts_ns) FROM events GROUP BY kind",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let code: i64 = r.get(0)?;
            let (n, sealed, blobs): (i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?);
            let (lo, hi): (i64, i64) = (r.get(4)?, r.get(5)?);
            total += n as u64;
            first = Some(first.map_or(lo, |f| f.min(lo)));
            last = Some(last.map_or(hi, |l| l.max(hi)));
            let Some(kind) = Kind::from_code(code) else {
                by_kind.push(KindCount {
                    kind: "unknown (newer Candor)",
                    scope: "unknown",
                    sensitivity: "unknown",
                    events: n as u64,
                });
                continue;
            };
            *by_scope.entry(kind.scope()).or_default() += n as u64;
            let (sealed_scopes, blob_scope) = kind.sealed_scopes();
            for s in sealed_scopes {
                *by_scope.entry(s).or_default() += sealed as u64;
            }
            if let Some(s) = blob_scope {
                *by_scope.entry(s).or_default() += blobs as u64;
            }
            by_kind.push(KindCount {
                kind: kind.name(),
                scope: kind.scope().name(),
                sensitivity: kind.sensitivity().name(),
                events: n as u64,
            });
        }
    }
    let mut gaps = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT reason, count(*), sum(count), sum(end_ns - start_ns) FROM gaps GROUP BY reason ORDER BY reason",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            gaps.push(GapSummary {
                reason: r.get(0)?,
                spans: r.get::<_, i64>(1)? as u64,
                lost_events: r.get::<_, i64>(2)? as u64,
                total_ns: r.get(3)?,
            });
        }
        *by_scope.entry(Scope::CaptureMeta).or_default() +=
            gaps.iter().map(|g| g.spans).sum::<u64>();
    }
    let sessions = conn.query_row(
        "SELECT count(*), coalesce(sum(synthetic), 0), \
                coalesce(sum(ended_ns IS NOT NULL AND clean_exit = 0), 0), \
                coalesce(sum(ended_ns IS NULL), 0), coalesce(sum(coalesced), 0), coalesce(sum(dropped), 0) \
         FROM sessions",
        [],
        |r| {
            Ok(SessionSummary {
                total: r.get::<_, i64>(0)? as u64,
                synthetic: r.get::<_, i64>(1)? as u64,
                unclean: r.get::<_, i64>(2)? as u64,
                open: r.get::<_, i64>(3)? as u64,
                coalesced_moves: r.get::<_, i64>(4)? as u64,
                dropped: r.get::<_, i64>(5)? as u64,
            })
        },
    )?;
    let (blobs, blob_stored, blob_plain): (i64, i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(length(data)), 0), coalesce(sum(size), 0) FROM blobs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let ledger_entries: i64 =
        conn.query_row("SELECT count(*) FROM consent_ledger", [], |r| r.get(0))?;
    Ok(Stats {
        data_dir: store.paths().data_dir.display().to_string(),
        schema_version: migrate::user_version(conn)?,
        events: total,
        first: first.map(format_ns),
        last: last.map(format_ns),
        first_ns: first,
        last_ns: last,
        by_kind,
        by_scope: by_scope
            .into_iter()
            .map(|(s, n)| ScopeCount {
                scope: s.name(),
                events: n,
            })
            .collect(),
        sessions,
        gaps,
        database_bytes: purge::disk_bytes(store),
        blobs: blobs as u64,
        blob_bytes_stored: blob_stored as u64,
        blob_bytes_plain: blob_plain as u64,
        ledger_entries: ledger_entries as u64,
        key_location: store.key_location_recorded()?,
    })
}

/// Rows of right-aligned numbers under a left-aligned name column, so the
/// digits of every row line up.
fn table(
    f: &mut fmt::Formatter<'_>,
    header: Option<&[&str]>,
    rows: &[Vec<String>],
    numeric: &[bool],
) -> fmt::Result {
    let cols = numeric.len();
    let mut width = vec![0usize; cols];
    for r in header
        .iter()
        .map(|h| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .chain(rows.iter().cloned())
    {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |f: &mut fmt::Formatter<'_>, r: &[String]| -> fmt::Result {
        let mut out = String::from("  ");
        for (i, c) in r.iter().enumerate().take(cols) {
            if i > 0 {
                out.push_str("  ");
            }
            if numeric[i] {
                out.push_str(&format!("{c:>w$}", w = width[i]));
            } else {
                out.push_str(&format!("{c:<w$}", w = width[i]));
            }
        }
        writeln!(f, "{}", out.trim_end())
    };
    if let Some(h) = header {
        let h: Vec<String> = h.iter().map(|s| (*s).to_owned()).collect();
        line(f, &h)?;
    }
    for r in rows {
        line(f, r)?;
    }
    Ok(())
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::units::{bytes, count, duration_ns};
        writeln!(
            f,
            "store      {} (schema v{})",
            self.data_dir, self.schema_version
        )?;
        writeln!(
            f,
            "size       {} database; {} blobs: {} stored, {} before compression",
            bytes(self.database_bytes),
            count(self.blobs),
            bytes(self.blob_bytes_stored),
            bytes(self.blob_bytes_plain)
        )?;
        writeln!(
            f,
            "key        {}",
            self.key_location
                .as_deref()
                .unwrap_or("none yet (nothing has been sealed)")
        )?;
        match (&self.first, &self.last, self.first_ns, self.last_ns) {
            (Some(a), Some(b), Some(lo), Some(hi)) => writeln!(
                f,
                "events     {} from {a} to {b} ({})",
                count(self.events),
                duration_ns(hi - lo)
            )?,
            _ => writeln!(f, "events     none recorded")?,
        }
        let s = &self.sessions;
        writeln!(
            f,
            "sessions   {} ({} synthetic, {} ended without a clean shutdown, {} open); {} mouse moves coalesced, {} events dropped",
            count(s.total),
            count(s.synthetic),
            count(s.unclean),
            count(s.open),
            count(s.coalesced_moves),
            count(s.dropped)
        )?;
        writeln!(f, "ledger     {} entries", count(self.ledger_entries))?;
        if !self.by_kind.is_empty() {
            writeln!(f, "\nby kind")?;
            let rows: Vec<Vec<String>> = self
                .by_kind
                .iter()
                .map(|k| {
                    vec![
                        k.kind.to_owned(),
                        count(k.events),
                        k.scope.to_owned(),
                        k.sensitivity.to_owned(),
                    ]
                })
                .collect();
            table(
                f,
                Some(&["kind", "events", "scope", "sensitivity"]),
                &rows,
                &[false, true, false, false],
            )?;
        }
        writeln!(f, "\nby scope")?;
        let rows: Vec<Vec<String>> = self
            .by_scope
            .iter()
            .map(|s| vec![s.scope.to_owned(), count(s.events)])
            .collect();
        table(f, Some(&["scope", "events"]), &rows, &[false, true])?;
        writeln!(f, "\ngaps")?;
        if self.gaps.is_empty() {
            writeln!(f, "  none")?;
            return Ok(());
        }
        let rows: Vec<Vec<String>> = self
            .gaps
            .iter()
            .map(|g| {
                vec![
                    g.reason.clone(),
                    count(g.spans),
                    count(g.lost_events),
                    duration_ns(g.total_ns),
                ]
            })
            .collect();
        table(
            f,
            Some(&["reason", "spans", "events lost", "time"]),
            &rows,
            &[false, true, true, true],
        )
    }
}

/// An event as read back, with where it is stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub session_id: Option<i64>,
    pub event: Event,
}

impl StoredEvent {
    /// The blob this event refers to (a file snapshot), if any.
    pub fn blob_id(&self) -> Option<i64> {
        self.event.values().iter().find_map(|v| match v {
            Some(Value::BlobRef { id, .. }) => Some(*id),
            _ => None,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.event;
        serde_json::json!({
            "id": self.id,
            "session": self.session_id,
            "kind": e.kind.name(),
            "scope": e.kind.scope().name(),
            "time": format_ns(e.wall_ns),
            "ts_ns": e.wall_ns,
            "mono_ns": e.mono_ns,
            "fields": e.fields_json(),
        })
    }
}

impl fmt::Display for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.event;
        write!(f, "{}  {:<13}", format_ns(e.wall_ns), e.kind.name())?;
        for (decl, v) in e.kind.fields().iter().zip(e.values()) {
            match v {
                None => {}
                Some(Value::Str(s)) if matches!(decl.ty, FieldType::Enum(_)) => {
                    write!(f, " {}={s}", decl.name)?
                }
                Some(Value::Str(s)) => write!(f, " {}={s:?}", decl.name)?,
                Some(Value::Int(n)) => write!(f, " {}={n}", decl.name)?,
                Some(Value::Bool(b)) => write!(f, " {}={b}", decl.name)?,
                Some(Value::Blob(b)) => write!(f, " {}=<{} bytes>", decl.name, b.len())?,
                Some(Value::BlobRef { id, size }) => {
                    write!(f, " {}=<blob {id}, {size} bytes>", decl.name)?
                }
            }
        }
        Ok(())
    }
}

/// Decodes one `events` row.
pub fn decode_row(
    store: &mut Store,
    code: i64,
    stamp: Stamp,
    data: Option<&[u8]>,
    sealed: Option<&[u8]>,
    blob: Option<(i64, i64)>,
) -> Result<Event, StoreError> {
    let kind = Kind::from_code(code).ok_or_else(|| {
        StoreError::Corrupt(format!("event kind code {code} is unknown to this Candor"))
    })?;
    let mut values: crate::event::Slots = std::iter::repeat_n(None, kind.fields().len()).collect();
    if let Some(d) = data {
        codec::decode_group(kind, d, Group::Public, &mut values)?;
    }
    if let Some(s) = sealed {
        let plain = store
            .sealer(false)?
            .open(s, &seal::event_aad(kind.code(), stamp.wall_ns))?;
        codec::decode_group(kind, &plain, Group::Sealed, &mut values)?;
    }
    if let (Some((id, size)), Some(i)) = (blob, codec::blob_field(kind)) {
        values[i] = Some(Value::BlobRef { id, size });
    }
    Ok(Event::from_slots(kind, stamp, values))
}

/// The last `n` events and gaps, oldest first, decoded and unsealed.
pub fn recent(store: &mut Store, n: usize) -> Result<Vec<StoredEvent>, StoreError> {
    type Row = (
        i64,
        i64,
        i64,
        i64,
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<(i64, i64)>,
    );
    let rows: Vec<Row> = store
        .conn()
        .prepare(
            "SELECT e.id, e.session_id, e.kind, e.ts_ns, e.mono_ns, e.data, e.sealed, e.blob_id, b.size \
             FROM events e LEFT JOIN blobs b ON b.id = e.blob_id ORDER BY e.id DESC LIMIT ?1",
        )?
        .query_map(params![n as i64], |r| {
            let blob = match (r.get::<_, Option<i64>>(7)?, r.get::<_, Option<i64>>(8)?) {
                (Some(id), size) => Some((id, size.unwrap_or(0))),
                _ => None,
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, blob))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, session, code, wall_ns, mono_ns, data, sealed, blob) in rows {
        let event = decode_row(
            store,
            code,
            Stamp { wall_ns, mono_ns },
            data.as_deref(),
            sealed.as_deref(),
            blob,
        )?;
        out.push(StoredEvent {
            id,
            session_id: Some(session),
            event,
        });
    }
    out.extend(recent_gaps(store, n)?);
    out.sort_by_key(|e| (e.event.wall_ns, e.event.kind == Kind::CaptureGap, e.id));
    let skip = out.len().saturating_sub(n);
    Ok(out.split_off(skip))
}

/// A `gaps` row as the `capture.gap` event the registry declares.
pub fn gap_event(
    id: i64,
    start: i64,
    end: i64,
    reason: String,
    count: i64,
    lost_kind: Option<String>,
) -> Result<Event, StoreError> {
    let mut ev = Event::new(
        Kind::CaptureGap,
        Stamp {
            wall_ns: start,
            mono_ns: 0,
        },
    );
    let bad = |e: crate::event::EventError| StoreError::Corrupt(format!("gap {id}: {e}"));
    ev.set("reason", reason).map_err(bad)?;
    ev.set("duration_ns", end - start).map_err(bad)?;
    ev.set("count", count).map_err(bad)?;
    if let Some(k) = lost_kind {
        ev.set("lost_kind", k).map_err(bad)?;
    }
    Ok(ev)
}

fn recent_gaps(store: &Store, n: usize) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = store.conn().prepare(
        "SELECT id, session_id, start_ns, end_ns, reason, count, lost_kind FROM gaps ORDER BY start_ns DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![n as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, session_id, start, end, reason, count, lost_kind) = row?;
        let ev = gap_event(id, start, end, reason, count, lost_kind)?;
        out.push(StoredEvent {
            id,
            session_id,
            event: ev,
        });
    }
    Ok(out)
}
