//! Consent state, derived by replaying the ledger: the consent windows (who
//! agreed to what, from when until when), the pauses, and where things
//! stand now. The gate, `consent status`, audit and export all read this,
//! so they cannot disagree about what was consented.

use serde::Serialize;

use super::ledger::Entry;
use super::record::ConsentRecord;

/// Why a consent window closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowEnd {
    /// Still open (it may have run past its expiry; see `effective_end`).
    Open,
    Amended,
    Revoked,
    Expired,
    NoticeChanged,
}

/// One stretch of time under one consent record.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub record: ConsentRecord,
    pub from_ns: i64,
    /// When the ledger closed it, if it did.
    pub closed_ns: Option<i64>,
    pub end: WindowEnd,
}

impl Window {
    /// The end of the window in time: its closing, or its expiry if earlier.
    pub fn effective_end(&self) -> i64 {
        self.closed_ns
            .map_or(self.record.expires_ns, |c| c.min(self.record.expires_ns))
    }

    pub fn contains(&self, ts_ns: i64) -> bool {
        ts_ns >= self.from_ns && ts_ns < self.effective_end()
    }
}

/// A paused span: `to_ns` is `None` while still paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub from_ns: i64,
    pub to_ns: Option<i64>,
    pub reason: String,
}

/// Everything the ledger says about consent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    pub windows: Vec<Window>,
    pub pauses: Vec<Pause>,
    pub purges: Vec<serde_json::Value>,
    pub exports: Vec<serde_json::Value>,
    /// Entries whose meaning could not be read (reported by audit).
    pub unreadable: Vec<i64>,
}

/// Where consent stands now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// No consent was ever given.
    None,
    Active(ConsentRecord),
    Expired(ConsentRecord),
    Revoked {
        record: ConsentRecord,
        at_ns: i64,
    },
    /// The consent was for another notice than this build's.
    NoticeChanged {
        record: ConsentRecord,
        current: String,
    },
}

impl History {
    pub fn from_entries(entries: &[Entry]) -> History {
        let mut h = History::default();
        for e in entries {
            let close = |h: &mut History, end: WindowEnd| {
                if let Some(w) = h.windows.last_mut() {
                    if w.end == WindowEnd::Open {
                        w.closed_ns = Some(e.ts_ns);
                        w.end = end;
                    }
                }
            };
            match e.action.as_str() {
                "grant" | "amend" => {
                    let Ok(record) =
                        serde_json::from_value::<ConsentRecord>(e.data["record"].clone())
                    else {
                        h.unreadable.push(e.seq);
                        continue;
                    };
                    close(&mut h, WindowEnd::Amended);
                    h.windows.push(Window {
                        record,
                        from_ns: e.ts_ns,
                        closed_ns: None,
                        end: WindowEnd::Open,
                    });
                }
                "revoke" => close(&mut h, WindowEnd::Revoked),
                "expire" => close(&mut h, WindowEnd::Expired),
                "notice-changed" => close(&mut h, WindowEnd::NoticeChanged),
                "pause" => {
                    if h.pauses.last().is_none_or(|p| p.to_ns.is_some()) {
                        h.pauses.push(Pause {
                            from_ns: e.ts_ns,
                            to_ns: None,
                            reason: e.data["reason"].as_str().unwrap_or("").to_owned(),
                        });
                    }
                }
                "resume" => {
                    if let Some(p) = h.pauses.last_mut() {
                        if p.to_ns.is_none() {
                            p.to_ns = Some(e.ts_ns);
                        }
                    }
                }
                "purge" => h.purges.push(e.data.clone()),
                "export" => h.exports.push(e.data.clone()),
                _ => h.unreadable.push(e.seq),
            }
        }
        h
    }

    /// The current state for a build whose notice hash is `notice`.
    pub fn status(&self, notice: &str, now_ns: i64) -> Status {
        let Some(w) = self.windows.last() else {
            return Status::None;
        };
        let record = w.record.clone();
        match w.end {
            WindowEnd::Revoked => Status::Revoked {
                record,
                at_ns: w.closed_ns.unwrap_or(w.from_ns),
            },
            WindowEnd::Expired => Status::Expired(record),
            WindowEnd::NoticeChanged => Status::NoticeChanged {
                record,
                current: notice.to_owned(),
            },
            // The last window is never closed by an amend: the amend opens
            // the next one.
            WindowEnd::Open | WindowEnd::Amended => {
                if record.notice_sha256 != notice {
                    Status::NoticeChanged {
                        record,
                        current: notice.to_owned(),
                    }
                } else if now_ns >= record.expires_ns {
                    Status::Expired(record)
                } else {
                    Status::Active(record)
                }
            }
        }
    }

    /// Whether capture is paused at `ts_ns` (an open pause runs on).
    pub fn paused_at(&self, ts_ns: i64) -> bool {
        self.pauses
            .iter()
            .any(|p| ts_ns >= p.from_ns && p.to_ns.is_none_or(|t| ts_ns < t))
    }

    /// The window covering `ts_ns`, if any. A linear scan: there are few
    /// windows, and a wall clock that jumped back may have left them out of
    /// order.
    pub fn window_at(&self, ts_ns: i64) -> Option<&Window> {
        self.windows.iter().rev().find(|w| w.contains(ts_ns))
    }
}
