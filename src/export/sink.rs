//! The seam between the episode builder and the dataset formats: a writer
//! takes episodes one at a time (so memory stays bounded by one episode,
//! not by the export), and at the end names the files it wrote.

use std::path::{Path, PathBuf};

use super::model::Episode;
use super::ExportError;

/// A dataset format's writer, rooted in the export's temporary directory.
pub trait DatasetWriter {
    /// The format's name, as given to `--format`.
    fn format(&self) -> &'static str;
    fn write_episode(&mut self, episode: &Episode) -> Result<(), ExportError>;
    /// Flushes and closes everything, and returns the files written,
    /// relative to the export directory.
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, ExportError>;
}

/// An I/O error with the path it happened on.
pub fn io_err(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}
