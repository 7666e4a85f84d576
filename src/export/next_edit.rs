//! The `next-edit` format: `next_edit.jsonl`, training examples for
//! next-edit (edit-prediction) models, in the shape of the open
//! edit-prediction datasets (Zed's zeta): the recent edits of the episode
//! as unified diffs (`events`), the file excerpt around the cursor before
//! the edit with a cursor marker (`input`), and the same excerpt after it
//! (`output`).
//!
//! Editor plugins send summaries of edits, never their text, so examples
//! come from saved diffs (`edit` and `file_create` actions with content):
//! one example per saved diff, the cursor placed where the change begins.
//! File contents come from replaying the episode ([`replay`]), so an
//! example's output is the replayed file, byte for byte. Everything in an
//! example is cut from already-redacted episode text; each example is
//! scanned again before it is written, and `verify` rebuilds the whole
//! file from `episodes.jsonl` and compares.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{ActionBody, Episode};
use super::sink::{io_err, DatasetWriter, Written};
use super::{replay, ExportError};
use crate::redact::Redactor;

pub const FILE: &str = "next_edit.jsonl";
/// The name given to `--format`.
pub const FORMAT: &str = "next-edit";

pub const CURSOR: &str = "<|user_cursor_is_here|>";
pub const REGION_START: &str = "<|editable_region_start|>";
pub const REGION_END: &str = "<|editable_region_end|>";
pub const START_OF_FILE: &str = "<|start_of_file|>";

/// Earlier edits of the episode given as history, at most.
pub const HISTORY: usize = 5;
/// A history diff longer than this is named but not given.
pub const MAX_HISTORY_DIFF_BYTES: usize = 4096;
/// Unchanged lines kept on each side of the change.
pub const CONTEXT_LINES: usize = 5;
/// A save that changes more lines than this (on either side) gives no
/// example: it is a paste or a generated file, not an edit to predict.
pub const MAX_CHANGED_LINES: usize = 40;

/// One training example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// `<episode_id>-<seq>`.
    pub example_id: String,
    pub episode_id: String,
    pub subject_id: String,
    pub week: String,
    /// The action the example predicts.
    pub seq: u32,
    pub file_id: String,
    pub path: String,
    /// The recent edits of the episode before this one, oldest first, each
    /// as `User edited "PATH":` and a fenced unified diff.
    pub events: String,
    /// The excerpt before the edit, fenced, with the editable region
    /// marked and the cursor in it.
    pub input: String,
    /// The same excerpt after the edit, without the cursor.
    pub output: String,
    /// The first line (0-based) of the excerpt in the file, before and
    /// after the edit (the lines above the change are the same).
    pub excerpt_start_line: usize,
}

/// Why no example was made of a saved diff.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub too_large: u64,
    pub unclean: u64,
}

fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// The largest index `<= i` on a char boundary of `s`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The excerpts of one change: `(start line, before with cursor, after)`,
/// or `None` when nothing changed or too much did.
pub fn excerpts(before: &str, after: &str) -> Option<(usize, String, String)> {
    if before == after {
        return None;
    }
    let (b, a) = (lines(before), lines(after));
    let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let room = b.len().min(a.len()) - prefix;
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let (b_end, a_end) = (b.len() - suffix, a.len() - suffix);
    if b_end - prefix > MAX_CHANGED_LINES || a_end - prefix > MAX_CHANGED_LINES {
        return None;
    }
    let start = prefix.saturating_sub(CONTEXT_LINES);
    let b_stop = (b_end + CONTEXT_LINES).min(b.len());
    let a_stop = (a_end + CONTEXT_LINES).min(a.len());
    let old = b[start..b_stop].concat();
    let new = a[start..a_stop].concat();
    // The cursor sits where the texts first differ: where typing began.
    let lead: usize = b[start..prefix].iter().map(|l| l.len()).sum();
    let common = old[lead..]
        .bytes()
        .zip(new[lead..].bytes())
        .take_while(|(x, y)| x == y)
        .count();
    let at = floor_boundary(&old, lead + common);
    let mut with_cursor = String::with_capacity(old.len() + CURSOR.len());
    with_cursor.push_str(&old[..at]);
    with_cursor.push_str(CURSOR);
    with_cursor.push_str(&old[at..]);
    Some((start, with_cursor, new))
}

/// An excerpt as the model sees it: fenced with the file's path, the
/// editable region marked.
pub fn frame(path: &str, start_line: usize, excerpt: &str) -> String {
    format!(
        "```{path}\n{}{REGION_START}\n{excerpt}{REGION_END}\n```",
        if start_line == 0 {
            format!("{START_OF_FILE}\n")
        } else {
            String::new()
        }
    )
}

/// The excerpt inside a framed `input` or `output`.
pub fn unframe(framed: &str) -> Option<&str> {
    let from = framed.find(REGION_START)? + REGION_START.len() + 1;
    let to = framed.rfind(REGION_END)?;
    framed.get(from..to)
}

fn history_event(path: &str, diff: &str) -> String {
    if diff.len() > MAX_HISTORY_DIFF_BYTES {
        format!(
            "User edited \"{path}\" (a diff of {} bytes, left out)\n",
            diff.len()
        )
    } else {
        format!("User edited \"{path}\":\n```diff\n{diff}```\n")
    }
}

/// The examples of one episode, in action order, and what was skipped.
/// Each example's strings must scan clean under `redactor` (when given).
pub fn examples(
    ep: &Episode,
    redactor: Option<&Redactor>,
    skipped: &mut Skipped,
) -> Result<Vec<Example>, ExportError> {
    // Replay checks every diff; its states give each edit's result.
    let replayed = replay::replay(ep)?;
    let after: BTreeMap<(u32, &str), &str> = replayed
        .states
        .iter()
        .map(|(seq, id, c)| ((*seq, id.as_str()), c.as_str()))
        .collect();
    let mut current: BTreeMap<&str, String> = ep
        .files
        .iter()
        .map(|f| {
            (
                f.file_id.as_str(),
                f.initial.content.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut history: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for a in &ep.actions {
        let (file_id, path, diff) = match &a.body {
            ActionBody::Edit {
                file_id,
                path,
                diff: Some(diff),
                ..
            }
            | ActionBody::FileCreate {
                file_id,
                path,
                diff: Some(diff),
                ..
            } => (file_id, path, diff),
            ActionBody::FileDelete { file_id, .. } => {
                current.insert(file_id, String::new());
                continue;
            }
            _ => continue,
        };
        let Some(next) = after.get(&(a.seq, file_id.as_str())) else {
            continue;
        };
        let before = current.get(file_id.as_str()).map_or("", String::as_str);
        if let Some((start, old, new)) = excerpts(before, next) {
            let first = history.len().saturating_sub(HISTORY);
            let ex = Example {
                example_id: format!("{}-{}", ep.episode_id, a.seq),
                episode_id: ep.episode_id.clone(),
                subject_id: ep.subject_id.clone(),
                week: ep.week.clone(),
                seq: a.seq,
                file_id: file_id.clone(),
                path: path.clone(),
                events: history[first..].concat(),
                input: frame(path, start, &old),
                output: frame(path, start, &new),
                excerpt_start_line: start,
            };
            let clean = redactor.is_none_or(|r| {
                [&ex.events, &ex.input, &ex.output, &ex.path]
                    .iter()
                    .all(|t| r.scan(t).is_empty())
            });
            if clean {
                out.push(ex);
            } else {
                skipped.unclean += 1;
            }
        } else if before != *next {
            skipped.too_large += 1;
        }
        history.push(history_event(path, diff));
        current.insert(file_id, (*next).to_owned());
    }
    Ok(out)
}

/// Writes `next_edit.jsonl`.
pub struct NextEditWriter<'a> {
    path: PathBuf,
    out: BufWriter<File>,
    redactor: &'a Redactor,
    pub skipped: Skipped,
}

pub fn create<'a>(dir: &Path, redactor: &'a Redactor) -> Result<NextEditWriter<'a>, ExportError> {
    let path = dir.join(FILE);
    let file = super::sink::create_file(&path).map_err(|e| io_err(&path, e))?;
    Ok(NextEditWriter {
        out: BufWriter::with_capacity(1 << 20, file),
        path,
        redactor,
        skipped: Skipped::default(),
    })
}

impl DatasetWriter for NextEditWriter<'_> {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn write_episode(&mut self, episode: &Episode) -> Result<(), ExportError> {
        for ex in examples(episode, Some(self.redactor), &mut self.skipped)? {
            serde_json::to_writer(&mut self.out, &ex).map_err(|e| io_err(&self.path, e.into()))?;
            self.out
                .write_all(b"\n")
                .map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Vec<Written>, ExportError> {
        let NextEditWriter { path, out, .. } = *self;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        Ok(vec![Written::on_disk(PathBuf::from(FILE))])
    }
}

/// `verify`'s check: `next_edit.jsonl` must be exactly the examples the
/// episodes give (so nothing was added, dropped or altered), and every
/// string in it must scan clean.
pub fn check(dir: &Path, episodes: &[Episode], redactor: &Redactor) -> Result<(), ExportError> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let bad = |problem: String| ExportError::Invalid {
        file: FILE.into(),
        problem,
    };
    let mut got = text.split_inclusive('\n');
    let mut n = 0usize;
    let mut skipped = Skipped::default();
    for ep in episodes {
        for want in examples(ep, Some(redactor), &mut skipped)? {
            n += 1;
            let Some(line) = got.next() else {
                return Err(bad(format!(
                    "ends after {} examples; the episodes give more",
                    n - 1
                )));
            };
            let value: serde_json::Value = serde_json::from_str(line.trim_end_matches('\n'))
                .map_err(|e| bad(format!("line {n}: {e}")))?;
            for s in strings(&value) {
                if let Some(f) = redactor.scan(s).first() {
                    return Err(bad(format!(
                        "line {n}: rule `{}` still matches after redaction",
                        f.rule
                    )));
                }
            }
            let mut expected = serde_json::to_string(&want).map_err(|e| bad(e.to_string()))?;
            expected.push('\n');
            if line != expected {
                return Err(bad(format!(
                    "line {n} is not the example the episodes give ({})",
                    want.example_id
                )));
            }
        }
    }
    if got.next().is_some() {
        return Err(bad(format!(
            "has more than the {n} examples the episodes give"
        )));
    }
    Ok(())
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    use serde_json::Value as J;
    match v {
        J::String(s) => vec![s.as_str()],
        J::Array(xs) => xs.iter().flat_map(strings).collect(),
        J::Object(m) => m
            .iter()
            .flat_map(|(k, x)| std::iter::once(k.as_str()).chain(strings(x)))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_covers_the_change_with_context_and_the_cursor_where_it_begins() {
        let before: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let after = before.replace("line 10\n", "line 10 changed\n");
        let (start, old, new) = excerpts(&before, &after).unwrap();
        assert_eq!(start, 5);
        let want_old: String = (5..16).map(|i| format!("line {i}\n")).collect();
        assert_eq!(old.replace(CURSOR, ""), want_old);
        assert!(old.contains(&format!("line 10{CURSOR}\n")), "{old}");
        assert_eq!(new, want_old.replace("line 10\n", "line 10 changed\n"));
    }

    #[test]
    fn a_new_file_starts_at_line_zero_and_a_huge_change_gives_nothing() {
        let (start, old, new) = excerpts("", "fn main() {}\n").unwrap();
        assert_eq!(
            (start, old.as_str(), new.as_str()),
            (0, CURSOR, "fn main() {}\n")
        );
        assert!(frame("a.rs", 0, &new).contains(START_OF_FILE));
        let big: String = (0..=MAX_CHANGED_LINES).map(|i| format!("{i}\n")).collect();
        assert_eq!(excerpts("", &big), None);
        assert_eq!(excerpts("same\n", "same\n"), None);
    }

    #[test]
    fn the_cursor_never_splits_a_character() {
        let (_, old, _) = excerpts("é\n", "è\n").unwrap();
        assert_eq!(old, format!("{CURSOR}é\n"));
    }

    #[test]
    fn unframe_gives_back_the_excerpt() {
        for ex in ["a\nb\n", "no newline", ""] {
            assert_eq!(unframe(&frame("p", 3, ex)), Some(ex));
        }
    }
}
