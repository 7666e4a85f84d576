//! The consent gate: capture may start only under a current, unexpired,
//! unrevoked consent for this build's notice, and then only events (and
//! fields) whose scopes that consent grants pass into the store.

use std::fmt;

use super::record::ConsentRecord;
use super::state::Status;
use crate::event::Event;
use crate::registry::Scope;
use crate::store::query::format_ns;

/// Why capture may not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoConsent,
    Expired { at: String },
    Revoked { at: String },
    NoticeChanged { old: String, new: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoConsent => write!(f, "no consent: run `candor consent` to read the notice and choose what to share"),
            Refusal::Expired { at } => write!(f, "consent expired on {at}: run `candor consent` to consent again"),
            Refusal::Revoked { at } => write!(f, "consent was revoked on {at}: nothing is recorded unless you consent again"),
            Refusal::NoticeChanged { old, new } => write!(
                f,
                "the notice changed since you consented (you accepted {old}, this build's notice is {new}): \
                 run `candor consent` to read it and consent again"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A passed gate: the consent capture runs under.
#[derive(Clone, Debug)]
pub struct Gate {
    record: ConsentRecord,
}

impl Gate {
    /// Passes only for an active consent.
    pub fn check(status: &Status) -> Result<Gate, Refusal> {
        match status {
            Status::Active(record) => Ok(Gate {
                record: record.clone(),
            }),
            Status::None => Err(Refusal::NoConsent),
            Status::Expired(r) => Err(Refusal::Expired {
                at: r.expires_at.clone(),
            }),
            Status::Revoked { at_ns, .. } => Err(Refusal::Revoked {
                at: format_ns(*at_ns),
            }),
            Status::NoticeChanged { record, current } => Err(Refusal::NoticeChanged {
                old: record.notice_sha256.clone(),
                new: current.clone(),
            }),
        }
    }

    pub fn record(&self) -> &ConsentRecord {
        &self.record
    }

    pub fn grants(&self, scope: Scope) -> bool {
        self.record.grants(scope)
    }

    /// Strips fields outside the consent; false if the event may not be
    /// recorded at all.
    pub fn admit(&self, event: &mut Event) -> bool {
        event.retain_scopes(|s| self.grants(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::record::Method;
    use crate::event::{Stamp, Value};
    use crate::registry::Kind;

    fn record(scopes: &[Scope]) -> ConsentRecord {
        ConsentRecord::new("subj-x", "abc", scopes, Method::Cli, 0, 1_000, None)
    }

    #[test]
    fn each_status_but_active_is_refused_with_its_reason() {
        let r = record(&[Scope::Mouse]);
        assert_eq!(Gate::check(&Status::None).unwrap_err(), Refusal::NoConsent);
        assert!(matches!(
            Gate::check(&Status::Expired(r.clone())),
            Err(Refusal::Expired { .. })
        ));
        let revoked = Status::Revoked {
            record: r.clone(),
            at_ns: 5,
        };
        assert!(matches!(
            Gate::check(&revoked),
            Err(Refusal::Revoked { .. })
        ));
        let changed = Status::NoticeChanged {
            record: r.clone(),
            current: "def".into(),
        };
        let msg = Gate::check(&changed).unwrap_err().to_string();
        assert!(msg.contains("abc") && msg.contains("def"), "{msg}");
        assert!(Gate::check(&Status::Active(r)).is_ok());
    }

    #[test]
    fn admit_keeps_only_granted_scopes() {
        let gate = Gate::check(&Status::Active(record(&[Scope::KeysTiming]))).unwrap();
        let stamp = Stamp {
            wall_ns: 1,
            mono_ns: 0,
        };
        let mut key = Event::new(Kind::KeyDown, stamp)
            .with("class", "letter")
            .and_then(|e| e.with("mods", 0))
            .and_then(|e| e.with("text", "p"))
            .unwrap();
        assert!(gate.admit(&mut key));
        assert_eq!(key.get("text"), None);
        assert_eq!(key.get("class"), Some(&Value::from("letter")));
        let mut mv = Event::new(Kind::MouseMove, stamp)
            .with("x", 1)
            .and_then(|e| e.with("y", 1))
            .unwrap();
        assert!(!gate.admit(&mut mv));
        assert!(
            gate.grants(Scope::CaptureMeta),
            "capture.meta is part of every consent"
        );
    }
}
