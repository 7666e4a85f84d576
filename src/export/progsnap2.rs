//! The ProgSnap2 writer: not built yet. Every entry point fails loudly, so an
//! export asking for ProgSnap2 stops instead of leaving the format out.

use std::path::{Path, PathBuf};

use super::model::Episode;
use super::sink::DatasetWriter;
use super::ExportError;

fn not_yet() -> ExportError {
    ExportError::Option("the ProgSnap2 writer is not built yet; use --format jsonl".into())
}

pub struct ProgSnap2Writer;

pub fn create(_dir: &Path) -> Result<ProgSnap2Writer, ExportError> {
    Err(not_yet())
}

impl DatasetWriter for ProgSnap2Writer {
    fn format(&self) -> &'static str {
        "progsnap2"
    }
    fn write_episode(&mut self, _episode: &Episode) -> Result<(), ExportError> {
        Err(not_yet())
    }
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, ExportError> {
        Err(not_yet())
    }
}

pub fn verify(
    _dir: &Path,
    _episodes: &[Episode],
    _redactor: &crate::redact::Redactor,
) -> Result<(), ExportError> {
    Err(not_yet())
}
