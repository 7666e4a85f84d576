//! The consent ledger: an append-only, hash-chained log in `consent_ledger`.
//!
//! Each entry is hashed from its canonical JSON (sorted keys, no spaces),
//! which includes its sequence number, time, action, data and the previous
//! entry's hash. The hash is SHA-256 over a leaf prefix byte and a domain
//! label, after RFC 6962, so a ledger hash can never be confused with any
//! other hash Candor computes. Triggers refuse UPDATE and DELETE; anyone who
//! bypasses them (by dropping the triggers or editing the file) breaks the
//! chain, which `verify` finds.
//!
//! A plain hash chain cannot show that its tail was cut off, or that every
//! hash was recomputed after an edit. So each append also stores an
//! *anchor* in `meta`: the new head's sequence number and hash, with an HMAC
//! under a key derived from the store key. Without that key nobody can move
//! the anchor to match a shortened or re-hashed ledger.
//!
//! Entries never hold captured content.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::store::seal::LedgerKey;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const LEAF_PREFIX: u8 = 0x00;
const DOMAIN: &[u8] = b"candor/consent-ledger/v1\0";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger entry {seq} is broken: {why}")]
    Broken { seq: i64, why: String },
    #[error("the ledger does not match its anchor: {0}")]
    Anchor(String),
    #[error("ledger database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

const ANCHOR_META: &str = "ledger_anchor";

fn anchor_mac(key: &LedgerKey, seq: i64, hash: &str) -> String {
    key.mac(format!("{seq}:{hash}").as_bytes())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Anchor {
    seq: i64,
    hash: String,
    mac: String,
}

/// The outcome of a full verification.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub entries: i64,
    pub head: String,
    /// Whether the anchor was checked (it needs the store key).
    pub anchor_checked: bool,
}

/// What the ledger records. Captured content never appears in an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Grant,
    Amend,
    Revoke,
    Expire,
    NoticeChanged,
    Pause,
    Resume,
    Purge,
    Export,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Amend => "amend",
            Action::Revoke => "revoke",
            Action::Expire => "expire",
            Action::NoticeChanged => "notice-changed",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Purge => "purge",
            Action::Export => "export",
        }
    }
}

/// One ledger entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub ts_ns: i64,
    pub action: String,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical bytes an entry is hashed from. serde_json's map is sorted
/// by key, so this is stable.
pub fn canonical(seq: i64, ts_ns: i64, action: &str, data: &Value, prev_hash: &str) -> String {
    json!({ "seq": seq, "ts_ns": ts_ns, "action": action, "data": data, "prev_hash": prev_hash })
        .to_string()
}

pub fn leaf_hash(canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(DOMAIN);
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The latest entry's sequence number and hash (0 and [`GENESIS`] if empty).
pub fn head(conn: &Connection) -> Result<(i64, String), LedgerError> {
    Ok(conn
        .query_row(
            "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_owned())))
}

/// Appends an entry and moves the anchor. Call inside the transaction that
/// makes the change the entry describes, so they land together or not at all.
pub fn append(
    conn: &Connection,
    key: &LedgerKey,
    ts_ns: i64,
    action: Action,
    data: Value,
) -> Result<Entry, LedgerError> {
    let (last, prev_hash) = head(conn)?;
    let seq = last + 1;
    let body = canonical(seq, ts_ns, action.name(), &data, &prev_hash);
    let hash = leaf_hash(&body);
    conn.execute(
        "INSERT INTO consent_ledger(seq, ts_ns, action, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![seq, ts_ns, action.name(), body, prev_hash, hash],
    )?;
    let anchor = Anchor {
        seq,
        mac: anchor_mac(key, seq, &hash),
        hash: hash.clone(),
    };
    let anchor = serde_json::to_string(&anchor).expect("an anchor always serializes");
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![ANCHOR_META, anchor],
    )?;
    Ok(Entry {
        seq,
        ts_ns,
        action: action.name().to_owned(),
        data,
        prev_hash,
        hash,
    })
}

/// Reads every entry in order, checking each row's columns against the
/// canonical body they claim to come from.
pub fn entries(conn: &Connection) -> Result<Vec<Entry>, LedgerError> {
    let mut stmt = conn.prepare(
        "SELECT seq, ts_ns, action, body, prev_hash, hash FROM consent_ledger ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, ts_ns, action, body, prev_hash, hash) = row?;
        let broken = |why: &str| LedgerError::Broken {
            seq,
            why: why.to_owned(),
        };
        let parsed: Value =
            serde_json::from_str(&body).map_err(|_| broken("its body is not JSON"))?;
        let data = parsed
            .get("data")
            .cloned()
            .ok_or_else(|| broken("its body has no data"))?;
        if canonical(seq, ts_ns, &action, &data, &prev_hash) != body {
            return Err(broken("its columns do not match its hashed body"));
        }
        out.push(Entry {
            seq,
            ts_ns,
            action,
            data,
            prev_hash,
            hash,
        });
    }
    Ok(out)
}

/// Verifies the chain: consecutive sequence numbers from 1, each entry's
/// hash recomputed from its canonical body, each linked to the one before.
/// Returns the head, or names the first bad entry.
pub fn verify_chain(entries: &[Entry]) -> Result<(i64, String), LedgerError> {
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    for e in entries {
        let broken = |why: String| LedgerError::Broken { seq: e.seq, why };
        if e.seq != expected_seq {
            return Err(broken(format!(
                "expected entry {expected_seq} here: entries were removed or reordered"
            )));
        }
        if e.prev_hash != prev {
            return Err(broken("it does not link to the entry before it".into()));
        }
        let body = canonical(e.seq, e.ts_ns, &e.action, &e.data, &e.prev_hash);
        if leaf_hash(&body) != e.hash {
            return Err(broken("its hash does not match its content".into()));
        }
        prev = e.hash.clone();
        expected_seq += 1;
    }
    Ok((expected_seq - 1, prev))
}

/// Reads and verifies the ledger in the database: the chain, and with the
/// store's ledger key also the anchor (so truncation and re-hashing show).
pub fn verify(conn: &Connection, key: Option<&LedgerKey>) -> Result<Verified, LedgerError> {
    let (seq, head) = verify_chain(&entries(conn)?)?;
    let Some(key) = key else {
        return Ok(Verified {
            entries: seq,
            head,
            anchor_checked: false,
        });
    };
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [ANCHOR_META],
            |r| r.get(0),
        )
        .optional()?;
    match stored {
        None if seq == 0 => {}
        None => return Err(LedgerError::Anchor("the anchor is missing".into())),
        Some(text) => {
            let a: Anchor = serde_json::from_str(&text)
                .map_err(|_| LedgerError::Anchor("the anchor is not readable".into()))?;
            if a.mac != anchor_mac(key, a.seq, &a.hash) {
                return Err(LedgerError::Anchor(
                    "the anchor was not written with this store's key".into(),
                ));
            }
            if a.seq > seq {
                return Err(LedgerError::Anchor(format!(
                    "the ledger ends at entry {seq} but entry {} was written: entries were removed from the end",
                    a.seq
                )));
            }
            if a.seq < seq {
                return Err(LedgerError::Anchor(format!(
                    "entries {} to {seq} were added without Candor",
                    a.seq + 1
                )));
            }
            if a.hash != head {
                return Err(LedgerError::Anchor(
                    "the last entry's hash is not the one Candor wrote: the ledger was re-hashed"
                        .into(),
                ));
            }
        }
    }
    Ok(Verified {
        entries: seq,
        head,
        anchor_checked: true,
    })
}
