//! The report people look at: the engineer's and the reviewer's timeline
//! in one offline HTML file. `model` aggregates the store (one streaming
//! pass plus the small tables); `html` draws the aggregates. The file is
//! written 0600 through a temporary file and a rename, so a reader never
//! sees half a report and nobody else can read it.

pub mod html;
pub mod model;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use model::{build, Lane, Model, Options};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Ledger(#[from] crate::consent::ledger::LedgerError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for ReportError {
    fn from(e: rusqlite::Error) -> ReportError {
        ReportError::Store(e.into())
    }
}

/// Writes `html` to `path`, mode 0600 whatever the umask, atomically.
pub fn write_file(path: &Path, html: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // tempfile creates the file 0600 and in the same directory, so the
    // rename is atomic and the report is never readable by others.
    let mut tmp = tempfile::Builder::new()
        .prefix(".candor-report-")
        .suffix(".partial")
        .tempfile_in(&parent)
        .map_err(err)?;
    tmp.write_all(html.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}
