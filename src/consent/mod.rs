//! Consent: the notice, consent records, the hash-chained ledger, the state
//! derived from it, and the gate that keeps capture inside what was granted.
//!
//! Every change of consent is a ledger entry written in one transaction with
//! its anchor; the current state is always derived from the ledger, never
//! kept beside it, so there is one truth for the gate, status and audit.

pub mod cut;
pub mod gate;
pub mod ledger;
pub mod notice;
pub mod record;
pub mod screen;
pub mod state;

use std::time::Duration;

use serde_json::json;

use crate::registry::Scope;
use crate::store::{purge, Store, StoreError};
use ledger::{Action, LedgerError};
use record::{ConsentRecord, Method};
use state::{History, Status};

/// How long a consent lasts unless the engineer chooses less.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(180 * 86_400);

/// The shortest consent: one that ends before the engineer has read the
/// confirmation is a mistake (`--expires-in 0s`), not a choice.
pub const MIN_VALIDITY: Duration = Duration::from_secs(60);

/// The phrase the consent screen asks the engineer to type.
pub const CONFIRM_PHRASE: &str = "I agree";

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(
        "the notice you accepted ({given}) is not this build's notice ({expected}); read CONSENT.md \
         and pass the sha256 of that file"
    )]
    NoticeMismatch { given: String, expected: String },
    #[error("`{name}` is not a scope; the scopes are: {known}")]
    UnknownScope { name: String, known: String },
    #[error("{scope} needs {needs}: grant both, or neither")]
    MissingPrerequisite { scope: Scope, needs: Scope },
    #[error("choose at least one scope to record")]
    NoScopes,
    #[error("a consent lasts at most 180 days")]
    TooLong,
    #[error("a consent lasts at least one minute (`--expires-in 1m`); {0} is too short")]
    TooShort(String),
    #[error("there is no active consent to {0}")]
    NothingActive(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Parses a comma-separated scope list, naming any unknown scope.
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, ConsentError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let scope = Scope::from_name(name).ok_or_else(|| ConsentError::UnknownScope {
            name: name.to_owned(),
            known: Scope::ALL
                .iter()
                .filter(|s| s.decl().toggleable)
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        out.push(scope);
    }
    Ok(out)
}

/// Checks that a set of scopes can be granted together.
pub fn check_scopes(scopes: &[Scope]) -> Result<(), ConsentError> {
    if !scopes.iter().any(|s| s.decl().toggleable) {
        return Err(ConsentError::NoScopes);
    }
    for s in scopes {
        for needs in s.requires() {
            if !scopes.contains(&needs) {
                return Err(ConsentError::MissingPrerequisite { scope: *s, needs });
            }
        }
    }
    Ok(())
}

/// The random per-install pseudonym of the engineer, made on first use.
fn subject(store: &Store) -> Result<String, StoreError> {
    if let Some(s) = store.meta("subject_pseudonym")? {
        return Ok(s);
    }
    let bytes: [u8; 16] = crate::store::seal::random_bytes()?;
    let s = format!("subj-{}", hex::encode(bytes));
    store.conn().execute(
        "INSERT INTO meta(key, value) VALUES ('subject_pseudonym', ?1)",
        [&s],
    )?;
    Ok(s)
}

/// Reads and verifies the ledger, and derives the consent history from it.
/// A broken ledger is an error: nothing may rely on it.
pub fn history(store: &mut Store) -> Result<History, ConsentError> {
    let key = match store.meta("key_fingerprint")? {
        Some(_) => Some(store.sealer(false)?.ledger_key()),
        None => None,
    };
    ledger::verify(store.conn(), key.as_ref())?;
    Ok(History::from_entries(&ledger::entries(store.conn())?))
}

/// When a ledger entry is dated.
#[derive(Clone, Copy, Debug)]
enum Dated {
    /// At this time (an expiry found, a pause the daemon stamped).
    At(i64),
    /// By the clock read once the write lock is held, and no earlier than
    /// the given time. A grant, amendment or revocation is dated so: the
    /// writer commits only under the same lock, so every event committed
    /// before the entry was stamped before it, and every commit after it
    /// sees it (the consent cut), which makes the entry a hard boundary.
    Locked(i64),
}

fn append(
    store: &mut Store,
    when: Dated,
    action: Action,
    data: serde_json::Value,
) -> Result<ledger::Entry, ConsentError> {
    let key = store.sealer(true)?.ledger_key();
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let ts_ns = match when {
        Dated::At(ns) => ns,
        Dated::Locked(not_before) => crate::event::wall_now_ns().max(not_before),
    };
    let entry = ledger::append(&tx, &key, ts_ns, action, data)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(entry)
}

/// The current status, read-only: nothing is recorded. A running daemon
/// watches with this, so that an older daemon seeing a consent to a newer
/// notice stops without closing that consent in the ledger.
pub fn current(store: &mut Store, now_ns: i64) -> Result<Status, ConsentError> {
    Ok(history(store)?.status(&notice::notice_hash(), now_ns))
}

/// Records the state changes that time and a new binary bring: an expired
/// consent, or a consent given for another notice. Idempotent. Returns the
/// current status.
pub fn refresh(store: &mut Store, now_ns: i64) -> Result<Status, ConsentError> {
    let notice = notice::notice_hash();
    let h = history(store)?;
    let status = h.status(&notice, now_ns);
    let open = h
        .windows
        .last()
        .is_some_and(|w| w.end == state::WindowEnd::Open);
    if open {
        match &status {
            Status::Expired(r) => {
                append(
                    store,
                    Dated::At(now_ns),
                    Action::Expire,
                    json!({ "record_id": r.record_id, "expired_at": r.expires_at }),
                )?;
            }
            Status::NoticeChanged { record, current } => {
                append(
                    store,
                    Dated::At(now_ns),
                    Action::NoticeChanged,
                    json!({ "record_id": record.record_id, "old": record.notice_sha256, "new": current }),
                )?;
            }
            _ => {}
        }
    }
    Ok(status)
}

/// Grants consent for `scopes` (or amends the active consent). The
/// engineer must have accepted exactly this build's notice.
pub fn grant(
    store: &mut Store,
    scopes: &[Scope],
    accepted_notice: &str,
    method: Method,
    validity: Duration,
    now_ns: i64,
) -> Result<ConsentRecord, ConsentError> {
    let expected = notice::notice_hash();
    if !accepted_notice.eq_ignore_ascii_case(&expected) {
        return Err(ConsentError::NoticeMismatch {
            given: accepted_notice.to_owned(),
            expected,
        });
    }
    check_scopes(scopes)?;
    if validity > DEFAULT_VALIDITY {
        return Err(ConsentError::TooLong);
    }
    if validity < MIN_VALIDITY {
        return Err(ConsentError::TooShort(
            humantime::format_duration(validity).to_string(),
        ));
    }
    let status = refresh(store, now_ns)?;
    let replaces = match &status {
        Status::Active(r) => Some(r.record_id.clone()),
        _ => None,
    };
    let action = if replaces.is_some() {
        Action::Amend
    } else {
        Action::Grant
    };
    let record = ConsentRecord::new(
        &subject(store)?,
        &expected,
        scopes,
        method,
        now_ns,
        i64::try_from(validity.as_nanos()).unwrap_or(i64::MAX),
        replaces,
    );
    append(
        store,
        Dated::Locked(now_ns),
        action,
        json!({ "record": record }),
    )?;
    Ok(record)
}

/// Withdraws consent at once; with `erase`, also purges everything captured.
pub fn revoke(
    store: &mut Store,
    erase: bool,
    now_ns: i64,
) -> Result<Option<purge::PurgeReport>, ConsentError> {
    let status = refresh(store, now_ns)?;
    let record = match status {
        Status::Active(r) => r,
        // Expired or for an old notice: still worth closing explicitly only
        // if data is to be erased; otherwise there is nothing to withdraw.
        Status::Expired(r) | Status::NoticeChanged { record: r, .. } if erase => r,
        _ if erase => {
            return Ok(Some(purge::purge(store, purge::Range::ALL, now_ns)?));
        }
        _ => return Err(ConsentError::NothingActive("revoke")),
    };
    append(
        store,
        Dated::Locked(now_ns),
        Action::Revoke,
        json!({ "record_id": record.record_id, "erase": erase }),
    )?;
    if erase {
        return Ok(Some(purge::purge(store, purge::Range::ALL, now_ns)?));
    }
    Ok(None)
}

/// Records a pause or a resume, with the reason given.
pub fn record_pause(
    store: &mut Store,
    paused: bool,
    reason: &str,
    now_ns: i64,
) -> Result<(), ConsentError> {
    let action = if paused {
        Action::Pause
    } else {
        Action::Resume
    };
    append(
        store,
        Dated::At(now_ns),
        action,
        json!({ "reason": reason }),
    )?;
    Ok(())
}

/// What `candor consent status` shows.
#[derive(Debug, serde::Serialize)]
pub struct StatusReport {
    /// none, active, expired, revoked or notice-changed.
    pub state: &'static str,
    /// Why capture may not run, when it may not.
    pub refusal: Option<String>,
    /// This build's notice.
    pub notice_sha256: String,
    pub record: Option<ConsentRecord>,
}

pub fn status_report(status: &Status, notice: &str) -> StatusReport {
    let (state, record) = match status {
        Status::None => ("none", None),
        Status::Active(r) => ("active", Some(r.clone())),
        Status::Expired(r) => ("expired", Some(r.clone())),
        Status::Revoked { record, .. } => ("revoked", Some(record.clone())),
        Status::NoticeChanged { record, .. } => ("notice-changed", Some(record.clone())),
    };
    StatusReport {
        state,
        refusal: gate::Gate::check(status).err().map(|r| r.to_string()),
        notice_sha256: notice.to_owned(),
        record,
    }
}

pub fn status_text(r: &StatusReport) -> String {
    let mut out = format!("consent    {}\n", r.state);
    if let Some(rec) = &r.record {
        out += &format!(
            "record     {} ({}, {})\n",
            rec.record_id,
            rec.method_name(),
            rec.tool
        );
        out += &format!("scopes     {}\n", rec.scopes.join(", "));
        out += &format!("granted    {}\n", rec.granted_at);
        out += &format!("expires    {}\n", rec.expires_at);
        out += &format!("subject    {}\n", rec.subject);
    }
    out += &format!("notice     {}\n", r.notice_sha256);
    if let Some(why) = &r.refusal {
        out += &format!("capture    refused: {why}\n");
    } else {
        out += "capture    allowed\n";
    }
    out
}
