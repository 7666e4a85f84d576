//! The redaction engine: takes text (or typed key streams) and gives
//! findings and redacted output, with typed, consistent placeholders.
//!
//! It knows nothing of the store; the exporter feeds it text and keeps one
//! [`Placeholders`] book for a whole export run, so that the same value gets
//! the same placeholder in every file and episode.
//!
//! - [`rules`]: the secret rule table (ids, keywords, regexes, vectors).
//! - [`keep`]: the keep-list (placeholders, references, hashes, versions).
//! - [`pii`]: e-mails, phones, public IPs, cards, IBANs, SSNs.
//! - [`seeds`]: wallet seed phrases (BIP-39 and Monero word runs).
//! - [`identity`]: the engineer's username, name, hostname and home path.
//! - [`engine`]: the keyword prefilter, the scan and overlap resolution.
//! - [`placeholders`]: the consistent-placeholder book.
//! - [`command_rules`]: per-program command-line secret rules (`mysql -pX`).
//! - [`dialogues`]: programs and window titles that ask for a password.
//! - [`keystrokes`]: reconstruction of typed text and masking of key events.
//! - [`jsonl`]: the line-oriented mode of `candor-export redact --jsonl`.

pub mod command_rules;
pub mod dialogues;
pub mod engine;
pub mod identity;
pub mod jsonl;
pub mod keep;
pub mod keystrokes;
pub mod pii;
pub mod placeholders;
pub mod rules;
pub mod seeds;

pub use engine::Redactor;
pub use identity::{Identity, IdentityKind};
pub use keystrokes::{
    focus_segments, replay, FocusSegment, KeyRedaction, KeyStroke, Replay, SegmentRedaction,
    TypedChar,
};
pub use placeholders::Placeholders;

/// The family a finding belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Credentials: they grant access.
    Secret,
    /// Personal data about anyone.
    Pii,
    /// The engineer's own identity and machine.
    Identity,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Pii => "pii",
            Category::Identity => "identity",
        }
    }
}

/// One thing found: which rule, and the byte range in the scanned text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub category: Category,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    /// The placeholder label: `SECRET:github-pat`, `EMAIL`, `USER`...
    pub fn label(&self) -> std::borrow::Cow<'static, str> {
        match (self.category, self.rule) {
            (Category::Secret, r) => format!("SECRET:{r}").into(),
            (_, "email") => "EMAIL".into(),
            (_, "phone") => "PHONE".into(),
            (_, "ipv4" | "ipv6") => "IP".into(),
            (_, "payment-card") => "CARD".into(),
            (_, "iban") => "IBAN".into(),
            (_, "ssn") => "SSN".into(),
            (_, "username") => "USER".into(),
            (_, "full-name") => "NAME".into(),
            (_, "hostname") => "HOST".into(),
            (_, "home-path") => "HOME".into(),
            (_, r) => r.to_ascii_uppercase().into(),
        }
    }
}

/// Redacted text and what was taken out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// Byte ranges in the *input* text, sorted and non-overlapping.
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("a secret rule is broken: {0}")]
    BadRule(String),
    #[error("the input is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("line {line}: not valid UTF-8 (byte {offset} of the line)")]
    LineNotUtf8 { line: usize, offset: usize },
    #[error("line {line}: not a JSON object: {reason}")]
    BadJson { line: usize, reason: String },
    #[error("line {line}: no \"text\" field")]
    MissingText { line: usize },
    #[error("line {line}: \"text\" is not a string")]
    TextNotString { line: usize },
    #[error("key event {index}: {reason}")]
    BadKey { index: usize, reason: String },
}
