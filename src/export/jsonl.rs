//! The JSONL writer: `episodes.jsonl`, one episode per line, with fields in
//! declaration order (documented in `docs/dataset.md`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::model::Episode;
use super::sink::{io_err, DatasetWriter, Written};
use super::ExportError;

pub const FILE: &str = "episodes.jsonl";

pub struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlWriter {
    pub fn create(dir: &Path) -> Result<JsonlWriter, ExportError> {
        let path = dir.join(FILE);
        let file = super::sink::create_file(&path).map_err(|e| io_err(&path, e))?;
        Ok(JsonlWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
        })
    }
}

impl DatasetWriter for JsonlWriter {
    fn format(&self) -> &'static str {
        "jsonl"
    }

    fn write_episode(&mut self, episode: &Episode) -> Result<(), ExportError> {
        serde_json::to_writer(&mut self.out, episode).map_err(|e| io_err(&self.path, e.into()))?;
        self.out.write_all(b"\n").map_err(|e| io_err(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<Vec<Written>, ExportError> {
        let JsonlWriter { path, out } = *self;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        Ok(vec![Written::on_disk(PathBuf::from(FILE))])
    }
}

/// Reads `episodes.jsonl` back, naming the line of any bad record.
pub fn read(dir: &Path) -> Result<Vec<Episode>, ExportError> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| ExportError::Invalid {
                file: FILE.into(),
                problem: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
