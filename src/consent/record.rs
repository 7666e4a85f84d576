//! The consent record, shaped after ISO/IEC TS 27560 (consent record
//! information structure): who consented (a pseudonym, never a name), to
//! which notice, for which purposes and scopes, for how long, how, and with
//! which tool. Records live inside grant and amend entries of the ledger, so
//! an exported ledger alone tells a reviewer what was agreed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::registry::{Kind, Scope};
use crate::store::query::format_ns;

/// How consent was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The full-screen consent screen: notice read to the end, phrase typed.
    Screen,
    /// `candor consent grant --accept-notice <sha256>`, for scripted setups.
    Cli,
}

/// One consent, as granted or amended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Version of this record's shape.
    pub schema: u32,
    /// TS 27560 `record_id`.
    pub record_id: String,
    /// TS 27560 PII principal: a random per-install pseudonym.
    pub subject: String,
    /// SHA-256 of the notice the engineer accepted (CONSENT.md).
    pub notice_sha256: String,
    /// Granted scopes, `capture.meta` included.
    pub scopes: Vec<String>,
    /// The purposes of what the scopes cover, from the registry.
    pub purposes: Vec<String>,
    /// Longest retention, in days, of what each scope covers.
    pub retention_days: BTreeMap<String, u32>,
    pub granted_at: String,
    pub granted_ns: i64,
    pub expires_at: String,
    pub expires_ns: i64,
    pub method: Method,
    /// The tool and version that recorded the consent.
    pub tool: String,
    /// The record this one amends, if any.
    pub replaces: Option<String>,
}

impl ConsentRecord {
    /// Builds a record for `scopes` (capture.meta is added), valid from
    /// `now_ns` for `valid_ns`.
    pub fn new(
        subject: &str,
        notice_sha256: &str,
        scopes: &[Scope],
        method: Method,
        now_ns: i64,
        valid_ns: i64,
        replaces: Option<String>,
    ) -> ConsentRecord {
        let mut all: Vec<Scope> = scopes.to_vec();
        all.push(Scope::CaptureMeta);
        all.sort();
        all.dedup();
        let mut purposes: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| all.iter().any(|s| k.covered_by(*s)))
            .map(|k| k.decl().purpose.to_owned())
            .collect();
        purposes.sort();
        purposes.dedup();
        let expires_ns = now_ns.saturating_add(valid_ns);
        ConsentRecord {
            schema: 1,
            record_id: uuid::Uuid::new_v4().to_string(),
            subject: subject.to_owned(),
            notice_sha256: notice_sha256.to_owned(),
            scopes: all.iter().map(|s| s.name().to_owned()).collect(),
            purposes,
            retention_days: all
                .iter()
                .map(|s| (s.name().to_owned(), s.retention_days()))
                .collect(),
            granted_at: format_ns(now_ns),
            granted_ns: now_ns,
            expires_at: format_ns(expires_ns),
            expires_ns,
            method,
            tool: format!("candor {}", env!("CARGO_PKG_VERSION")),
            replaces,
        }
    }

    /// The granted scopes this build knows.
    pub fn scope_set(&self) -> Vec<Scope> {
        self.scopes
            .iter()
            .filter_map(|s| Scope::from_name(s))
            .collect()
    }

    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::Screen => "screen",
            Method::Cli => "cli",
        }
    }

    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s == scope.name())
    }
}
