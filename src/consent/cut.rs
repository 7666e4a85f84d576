//! The consent cut: the writer's last word on every event, judged inside
//! its write transaction against the consent in force at the event's own
//! time, so that a revocation, an expiry or a narrowing amendment is a hard
//! boundary rather than something a 200 ms poll notices later.
//!
//! The ledger lives in the same database as the events. The writer asks
//! this cut to refresh once it holds the write lock; a ledger whose head
//! moved is re-read and re-verified. `consent::append` dates revocations
//! and amendments once it holds that same lock. So an event the writer
//! commits before a revocation was stamped before it, and every commit
//! after it sees it. The judgment is the audit's own (`History::window_at`
//! and the record's scopes), so what the cut lets through the audit accepts.
//!
//! Pauses are not judged here. The daemon makes them: its gate refuses
//! events from the moment of the pause, and it writes the ledger entry
//! afterwards, dated at that moment. A resume is likewise recorded a little
//! after it happens, so judging by the ledger would cut what was recorded,
//! with consent, in between.

use crate::event::{Event, Value};
use crate::store::seal::Sealer;
use crate::store::writer::{Admission, Verdict};
use crate::store::StoreError;

use super::ledger;
use super::state::History;

/// The consent history as the writer last read it.
pub struct ConsentCut {
    /// The ledger head the history was read at (-1: not read yet).
    head: i64,
    /// `None` when the ledger could not be read or verified: then nothing
    /// is written until it can be (the daemon stops on its own check).
    history: Option<History>,
    notice: String,
}

impl ConsentCut {
    /// A cut for this build's notice.
    pub fn new() -> ConsentCut {
        ConsentCut::for_notice(super::notice::notice_hash())
    }

    /// A cut that admits only consents given to `notice`.
    pub fn for_notice(notice: String) -> ConsentCut {
        ConsentCut {
            head: -1,
            history: None,
            notice,
        }
    }
}

impl Default for ConsentCut {
    fn default() -> ConsentCut {
        ConsentCut::new()
    }
}

impl Admission for ConsentCut {
    fn refresh(&mut self, conn: &rusqlite::Connection, sealer: &Sealer) -> Result<(), StoreError> {
        let head = match ledger::head(conn) {
            Ok((seq, _)) => seq,
            Err(ledger::LedgerError::Sql(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!("the consent ledger cannot be read; nothing is written: {e}");
                self.history = None;
                return Ok(());
            }
        };
        if head == self.head && self.history.is_some() {
            return Ok(());
        }
        // A new head is rare (a grant, a pause, a revocation): the full
        // verification, anchor included, costs little then.
        match ledger::verify(conn, Some(&sealer.ledger_key())) {
            Ok(_) => {
                let entries = match ledger::entries(conn) {
                    Ok(e) => e,
                    Err(ledger::LedgerError::Sql(e)) => return Err(e.into()),
                    Err(e) => {
                        tracing::error!(
                            "the consent ledger cannot be read; nothing is written: {e}"
                        );
                        self.history = None;
                        return Ok(());
                    }
                };
                self.history = Some(History::from_entries(&entries));
                self.head = head;
            }
            Err(ledger::LedgerError::Sql(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!("the consent ledger does not verify; nothing is written: {e}");
                self.history = None;
                self.head = head;
            }
        }
        Ok(())
    }

    fn judge(&self, event: &Event) -> Verdict {
        let Some(history) = &self.history else {
            return Verdict::Cut;
        };
        let ts = event.wall_ns;
        let Some(window) = history.window_at(ts) else {
            return Verdict::Cut;
        };
        let record = &window.record;
        if record.notice_sha256 != self.notice {
            return Verdict::Cut;
        }
        if !record.grants(event.kind.scope()) {
            return Verdict::Cut;
        }
        // Most events carry nothing outside the consent: copy only when a
        // field must go.
        let outside = event
            .kind
            .fields()
            .iter()
            .zip(event.values())
            .any(|(decl, v)| v.is_some() && decl.scope.is_some_and(|s| !record.grants(s)));
        if !outside {
            return Verdict::Write;
        }
        let mut copy = event.clone();
        if copy.retain_scopes(|s| record.grants(s)) {
            Verdict::Narrowed(copy)
        } else {
            Verdict::Cut
        }
    }

    /// A gap is bookkeeping about consented time: one that starts where no
    /// consent is in force (keys withheld after a revocation, say) would
    /// itself describe what the person did after withdrawing, so it is cut;
    /// one that runs past the end of consent is cut short there (through
    /// back-to-back amendments, consent goes on).
    fn judge_gap(&self, gap: &Event) -> Verdict {
        let Some(history) = &self.history else {
            return Verdict::Cut;
        };
        let start = gap.wall_ns;
        let Some(mut window) = history.window_at(start) else {
            return Verdict::Cut;
        };
        let duration = match gap.get("duration_ns") {
            Some(Value::Int(n)) => (*n).max(0),
            _ => 0,
        };
        let end = start.saturating_add(duration);
        let mut covered = window.effective_end();
        while covered < end {
            match history.window_at(covered) {
                Some(next) if !std::ptr::eq(next, window) => {
                    window = next;
                    covered = window.effective_end();
                }
                _ => break,
            }
        }
        if covered >= end {
            return Verdict::Write;
        }
        match gap.clone().with("duration_ns", covered - start) {
            Ok(copy) => Verdict::Narrowed(copy),
            Err(_) => Verdict::Cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::ledger::Entry;
    use crate::consent::record::{ConsentRecord, Method};
    use crate::event::Stamp;
    use crate::registry::{Kind, Scope};
    use serde_json::json;

    const NOTICE: &str = "n0";

    fn entry(seq: i64, ts_ns: i64, action: &str, data: serde_json::Value) -> Entry {
        Entry {
            seq,
            ts_ns,
            action: action.into(),
            data,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn record(scopes: &[Scope], from: i64, validity: i64) -> serde_json::Value {
        let r = ConsentRecord::new("subj-x", NOTICE, scopes, Method::Cli, from, validity, None);
        json!({ "record": r })
    }

    fn cut(entries: &[Entry]) -> ConsentCut {
        let mut c = ConsentCut::for_notice(NOTICE.into());
        c.history = Some(History::from_entries(entries));
        c
    }

    fn key(ts: i64) -> Event {
        Event::new(
            Kind::KeyDown,
            Stamp {
                wall_ns: ts,
                mono_ns: 0,
            },
        )
        .with("class", "letter")
        .and_then(|e| e.with("mods", 0))
        .and_then(|e| e.with("key", "KeyH"))
        .and_then(|e| e.with("text", "h"))
        .unwrap()
    }

    fn verdict(c: &ConsentCut, ts: i64) -> &'static str {
        match c.judge(&key(ts)) {
            Verdict::Write => "write",
            Verdict::Narrowed(e) => {
                assert_eq!(e.get("text"), None);
                assert!(e.get("key").is_none() || e.get("class").is_some());
                "narrowed"
            }
            Verdict::Cut => "cut",
        }
    }

    #[test]
    fn a_revocation_cuts_from_its_own_time_on() {
        let both = [Scope::KeysTiming, Scope::KeysText];
        let c = cut(&[
            entry(1, 100, "grant", record(&both, 100, 1_000)),
            entry(2, 500, "revoke", json!({})),
        ]);
        assert_eq!(verdict(&c, 99), "cut", "before the grant");
        assert_eq!(verdict(&c, 100), "write");
        assert_eq!(verdict(&c, 499), "write");
        assert_eq!(verdict(&c, 500), "cut", "at the revocation");
        assert_eq!(verdict(&c, 501), "cut");
    }

    #[test]
    fn an_expiry_cuts_even_before_it_is_recorded() {
        let c = cut(&[entry(
            1,
            100,
            "grant",
            record(&[Scope::KeysTiming, Scope::KeysText], 100, 400),
        )]);
        assert_eq!(verdict(&c, 499), "write");
        assert_eq!(verdict(&c, 500), "cut");
    }

    #[test]
    fn a_narrowing_amendment_strips_fields_only_after_it() {
        let c = cut(&[
            entry(
                1,
                100,
                "grant",
                record(&[Scope::KeysTiming, Scope::KeysText], 100, 10_000),
            ),
            entry(2, 300, "amend", record(&[Scope::KeysTiming], 300, 10_000)),
            entry(3, 600, "amend", record(&[Scope::Mouse], 600, 10_000)),
        ]);
        assert_eq!(verdict(&c, 299), "write");
        assert_eq!(verdict(&c, 300), "narrowed");
        assert_eq!(verdict(&c, 599), "narrowed");
        assert_eq!(verdict(&c, 600), "cut", "keys.timing withdrawn");
    }

    #[test]
    fn another_notice_and_an_unread_ledger_cut() {
        let both = [Scope::KeysTiming, Scope::KeysText];
        let mut other = cut(&[entry(1, 100, "grant", record(&both, 100, 10_000))]);
        other.notice = "n1".into();
        assert_eq!(verdict(&other, 150), "cut");
        let unread = ConsentCut::for_notice(NOTICE.into());
        assert_eq!(verdict(&unread, 150), "cut");
    }
}
