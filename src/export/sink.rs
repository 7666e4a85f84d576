//! The seam between the episode builder and the dataset formats: a writer
//! takes episodes one at a time (so memory stays bounded by one episode,
//! not by the export), and at the end names the files it wrote.

use std::path::{Path, PathBuf};

use super::model::Episode;
use super::ExportError;

/// A file a writer wrote, relative to the export directory, with its
/// SHA-256 and size when the writer hashed it as it wrote (thousands of
/// small code-state files: reading them back would cost an open each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub digest: Option<(String, u64)>,
}

impl Written {
    /// A file to be hashed from disk.
    pub fn on_disk(path: PathBuf) -> Written {
        Written { path, digest: None }
    }

    /// A file hashed while it was written.
    pub fn hashed(path: PathBuf, bytes: &[u8]) -> Written {
        use sha2::{Digest, Sha256};
        Written {
            path,
            digest: Some((hex::encode(Sha256::digest(bytes)), bytes.len() as u64)),
        }
    }
}

/// A dataset format's writer, rooted in the export's temporary directory.
pub trait DatasetWriter {
    /// The format's name, as given to `--format`.
    fn format(&self) -> &'static str;
    fn write_episode(&mut self, episode: &Episode) -> Result<(), ExportError>;
    /// Flushes and closes everything, and returns every file written.
    fn finish(self: Box<Self>) -> Result<Vec<Written>, ExportError>;
}

/// An I/O error with the path it happened on.
pub fn io_err(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}
