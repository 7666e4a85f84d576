//! `manifest.json`: what an export is, how it was made, and the checksum of
//! every file in it. It holds no absolute time, no path outside the export
//! and never the salt. The ledger entry of the export records the
//! manifest's own SHA-256, which ties the dataset to the consent it left
//! under.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ExportError;

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub tool: String,
    /// A pseudonym for this export: the same store, salt and options give
    /// the same id; no salt gives a fresh one.
    pub export_id: String,
    pub formats: Vec<String>,
    pub synthetic: bool,
    pub consent: ConsentInfo,
    pub redaction: RedactionInfo,
    pub anonymization: AnonymizationInfo,
    pub counts: Counts,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentInfo {
    /// The consent records whose windows the exported events fall in.
    pub record_ids: Vec<String>,
    /// The ledger entry that vouches for them: the last entry that bears on
    /// consent when the export read the store.
    pub ledger_seq: i64,
    pub ledger_head: String,
    /// Whether the ledger's HMAC anchor was checked too (it needs the key).
    pub anchor_checked: bool,
    /// The subjects' pseudonyms in this export.
    pub subject_ids: Vec<String>,
    /// Every scope granted by those records (`capture.meta` included):
    /// what the data could hold. Absent from older manifests.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionInfo {
    /// SHA-256 of the rule set: two exports with the same hash were
    /// redacted by the same rules.
    pub ruleset_sha256: String,
    pub rules: usize,
    pub findings_by_rule: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymizationInfo {
    pub pseudonyms: String,
    /// `random` (never written; exports cannot be linked) or `supplied`
    /// (a salt file the data team keeps; exports with it can be linked).
    pub salt: String,
    pub path_allowlist: Vec<String>,
    /// How key timing was made, in words: `synthesized: ...` (the
    /// default) or `measured: ...` (see docs/dataset.md). Absent from
    /// older manifests.
    #[serde(default)]
    pub timing: String,
    /// `anonymized` (the default) or `raw` (`--timing raw`, allowed only
    /// under `keys.rhythm`). Absent from older manifests.
    #[serde(default)]
    pub timing_mode: String,
    pub timing_quantum_ms: i64,
    /// Always 0 now: kept so older readers still parse the manifest.
    pub timing_jitter_ms: i64,
    pub idle_gap_ms: i64,
    pub absolute_time: String,
    /// Whether `--since`/`--until` narrowed the export (the bounds
    /// themselves are absolute times, so they are not written).
    pub time_range_limited: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub episodes: u64,
    pub actions: u64,
    pub keys: u64,
    pub actions_by_type: BTreeMap<String, u64>,
    /// Events and gaps read from the store in the export's range.
    pub events_read: u64,
    pub events_exported: u64,
    /// Events left out, by reason (outside consent, scope not granted,
    /// paused, revoked, purged, past retention...).
    pub events_excluded: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        v.push(b'\n');
        v
    }

    pub fn read(dir: &Path) -> Result<Manifest, ExportError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| super::sink::io_err(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ExportError::Invalid {
            file: MANIFEST_FILE.into(),
            problem: e.to_string(),
        })
    }
}
