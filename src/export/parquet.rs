//! The Parquet writer: not built yet. Every entry point fails loudly, so an
//! export asking for Parquet stops instead of leaving the format out.

use std::path::{Path, PathBuf};

use super::model::Episode;
use super::sink::DatasetWriter;
use super::ExportError;

fn not_yet() -> ExportError {
    ExportError::Parquet("the Parquet writer is not built yet; use --format jsonl".into())
}

pub struct ParquetWriter;

pub fn create(_dir: &Path, _export_id: &str) -> Result<ParquetWriter, ExportError> {
    Err(not_yet())
}

impl DatasetWriter for ParquetWriter {
    fn format(&self) -> &'static str {
        "parquet"
    }
    fn write_episode(&mut self, _episode: &Episode) -> Result<(), ExportError> {
        Err(not_yet())
    }
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, ExportError> {
        Err(not_yet())
    }
}

pub fn verify(_dir: &Path, _episodes: &[Episode]) -> Result<(), ExportError> {
    Err(not_yet())
}
