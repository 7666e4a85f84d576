//! Diffs between code states, and replay: applying an episode's diffs in
//! order to its initial states must give back every intermediate state and
//! the final state byte for byte. The exporter checks this for every episode
//! before writing it, and `verify` checks it again on the written files.
//!
//! Diffs are standard unified diffs (`diff -u`, `patch -p1` read them), made
//! and applied by the `diffy` crate.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::model::{ActionBody, Episode};

/// Content-address of a code state: SHA-256 of its text, in hex.
pub fn state_id(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// A unified diff from `old` to `new`, with `a/` and `b/` paths.
pub fn unified(old: &str, new: &str, old_path: &str, new_path: &str) -> String {
    let mut opts = diffy::DiffOptions::new();
    opts.set_original_filename(format!("a/{old_path}"))
        .set_modified_filename(format!("b/{new_path}"));
    opts.create_patch(old, new).to_string()
}

/// Applies a unified diff made by [`unified`].
pub fn apply(base: &str, diff: &str) -> Result<String, String> {
    // diffy reads text without hunks as an empty patch; a diff of ours
    // always has its header.
    if !diff.starts_with("--- ") {
        return Err("not a unified diff (no `---` header)".into());
    }
    let patch = diffy::Patch::from_str(diff).map_err(|e| format!("unreadable diff: {e}"))?;
    diffy::apply(base, &patch).map_err(|e| format!("diff does not apply: {e}"))
}

/// Where replay went wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("episode {episode}: action {seq}: {problem}")]
pub struct ReplayError {
    pub episode: String,
    pub seq: u32,
    pub problem: String,
}

/// What a replay gives: each edit's resulting state, in order.
#[derive(Debug, Default)]
pub struct Replayed {
    /// (action seq, file id, content after it).
    pub states: Vec<(u32, String, String)>,
}

/// Replays an episode: every diff must apply to the state before it and
/// give the state its action names, and the end must match each file's final
/// state. Files without recorded content have nothing to replay.
pub fn replay(ep: &Episode) -> Result<Replayed, ReplayError> {
    let fail = |seq: u32, problem: String| ReplayError {
        episode: ep.episode_id.clone(),
        seq,
        problem,
    };
    // file id -> current content (None: absent or not recorded).
    let mut current: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for f in &ep.files {
        if let (Some(c), Some(id)) = (&f.initial.content, &f.initial.state_id) {
            if state_id(c) != *id {
                return Err(fail(
                    0,
                    format!("initial state of {} does not match its id", f.file_id),
                ));
            }
        }
        current.insert(&f.file_id, f.initial.content.clone());
    }
    let mut out = Replayed::default();
    for a in &ep.actions {
        let (file_id, diff, want) = match &a.body {
            ActionBody::Edit {
                file_id,
                diff,
                state_id,
                ..
            }
            | ActionBody::FileCreate {
                file_id,
                diff,
                state_id,
                ..
            } => (file_id, diff, state_id),
            ActionBody::FileDelete { file_id, .. } => {
                current.insert(file_id, None);
                continue;
            }
            _ => continue,
        };
        let (Some(diff), Some(want)) = (diff, want) else {
            continue;
        };
        let Some(slot) = current.get_mut(file_id.as_str()) else {
            return Err(fail(
                a.seq,
                format!("file {file_id} is not among the episode's files"),
            ));
        };
        let base = slot.as_deref().unwrap_or("");
        let next = apply(base, diff).map_err(|e| fail(a.seq, e))?;
        if state_id(&next) != *want {
            return Err(fail(
                a.seq,
                format!("replayed state of {file_id} does not match state {want}"),
            ));
        }
        out.states.push((a.seq, file_id.clone(), next.clone()));
        *slot = Some(next);
    }
    for f in &ep.files {
        for (which, st) in [("initial", &f.initial), ("final", &f.final_)] {
            let consistent = match (&st.content, &st.state_id) {
                (Some(c), Some(id)) => state_id(c) == *id && st.exists,
                (None, None) => true,
                _ => false,
            };
            if !consistent {
                return Err(fail(
                    u32::MAX,
                    format!(
                        "the {which} state of {} is not consistent with its id",
                        f.file_id
                    ),
                ));
            }
        }
        let got = current.get(f.file_id.as_str()).cloned().flatten();
        match (&f.final_.content, got) {
            (Some(want), Some(got)) if *want != got => {
                return Err(fail(
                    u32::MAX,
                    format!("final state of {} differs from the replayed one", f.file_id),
                ))
            }
            (Some(_), None) => {
                return Err(fail(
                    u32::MAX,
                    format!(
                        "final state of {} has content replay cannot reach",
                        f.file_id
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_round_trip_on_awkward_texts() {
        let cases = [
            ("", "one\n"),
            ("one\n", ""),
            ("a\nb\nc\n", "a\nB\nc\n"),
            ("no newline", "no newline\nnow two"),
            ("crlf\r\nline\r\n", "crlf\r\nchanged\r\n"),
            ("x\n\n\n", "\n\nx\n"),
            ("tail\n", "tail"),
            ("ünïcödé ✓\n", "ünïcödé ✗\n"),
        ];
        for (old, new) in cases {
            let d = unified(old, new, "p", "p");
            assert_eq!(
                apply(old, &d).as_deref(),
                Ok(new),
                "{old:?} -> {new:?}\n{d}"
            );
        }
    }

    #[test]
    fn a_diff_does_not_apply_to_the_wrong_base() {
        let d = unified("a\nb\nc\n", "a\nX\nc\n", "p", "p");
        assert!(apply("q\nr\ns\n", &d).is_err());
        assert!(apply("", "this is not a diff @@").is_err());
    }
}
