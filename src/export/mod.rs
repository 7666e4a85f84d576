//! The exporter: the last stage of the flow. It reads the store read-only,
//! keeps only what consent covers, redacts, cuts the work into coding
//! episodes, anonymizes them, and writes datasets.
//!
//! ```text
//! source (ledger check, consent filter) → episodes (redact, segment)
//!   → anonymize (pseudonyms, paths, timing) → writers (jsonl, parquet,
//!   progsnap2) → manifest → atomic rename → ledger entry
//! ```
//!
//! - [`model`]: the dataset's types, shared by every format.
//! - [`columns`]: every table's columns, declared once; the flat row of an
//!   action, built in one place.
//! - [`replay`]: unified diffs and the replay check.
//! - [`sink`], [`jsonl`], [`parquet`], [`progsnap2`], [`next_edit`]: the writers.
//! - [`card`]: the dataset card (`README.md`); [`combine`]: many exports
//!   into one dataset.

pub mod anonymize;
pub mod card;
pub mod columns;
pub mod combine;
pub mod command;
pub mod episodes;
pub mod jsonl;
pub mod manifest;
pub mod model;
pub mod next_edit;
pub mod parquet;
pub mod progsnap2;
pub mod replay;
pub mod run;
pub mod sink;
pub mod source;
pub mod verify;

use std::path::PathBuf;

/// Why an export (or a verify) failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file of an export is not what its format says.
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("bad option: {0}")]
    Option(String),
    /// Consent or the ledger forbids the export.
    #[error("export refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Ledger(#[from] crate::consent::ledger::LedgerError),
    #[error("store database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Redact(#[from] crate::redact::RedactError),
}
