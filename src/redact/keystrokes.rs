//! Typed keystrokes: a secret typed by hand is split over many key events and
//! corrected with backspaces on the way, so no single event shows it.
//!
//! For one focus segment, this module replays the keys into a text buffer
//! (characters, Return, Tab, Backspace, Delete, arrows, Home/End, pastes),
//! runs the detectors on the resulting text, and maps each finding back to
//! the key events whose characters must be masked. Characters typed and then
//! deleted travel with the character that took their place, so a typo inside
//! a token, or a first attempt erased and retyped, is masked with the token.
//!
//! A password typed at a terminal prompt is invisible to the text detectors
//! (the prompt is printed, not typed); the lines typed after a command that
//! prompts for one (`sudo`, `passwd`, `mysql -p`...), or in a window whose
//! title asks for one, are treated as passwords: see [`super::dialogues`].

use super::dialogues;
use super::engine::{apply, resolve, Redactor};
use super::placeholders::Placeholders;
use super::{Category, Finding, RedactError};
use crate::event::{Event, Value};
use crate::registry::Kind;

const CTRL: i64 = 2;
const ALT: i64 = 4;
const META: i64 = 8;

/// One key press: its rdev name, the text it produced (a character, or a
/// pasted string), and the held modifiers (1 shift, 2 ctrl, 4 alt, 8 meta).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStroke {
    pub key: String,
    pub text: Option<String>,
    pub mods: i64,
}

impl KeyStroke {
    /// A key that typed `text`.
    pub fn typed(key: &str, text: &str) -> KeyStroke {
        KeyStroke {
            key: key.to_owned(),
            text: Some(text.to_owned()),
            mods: 0,
        }
    }

    /// A key that typed nothing (Backspace, arrows...).
    pub fn named(key: &str) -> KeyStroke {
        KeyStroke {
            key: key.to_owned(),
            text: None,
            mods: 0,
        }
    }

    /// The key strokes that type `s` on a US layout (tests, synthetic data).
    pub fn type_str(s: &str) -> Vec<KeyStroke> {
        s.chars()
            .map(|c| {
                let key = crate::keymap::us_key_for_char(c)
                    .map_or_else(|| "Unknown".to_owned(), |(k, _)| k);
                KeyStroke::typed(&key, &c.to_string())
            })
            .collect()
    }

    /// Text inserted at once: a paste, or an editor's completion.
    pub fn paste(s: &str) -> KeyStroke {
        KeyStroke {
            key: "Paste".to_owned(),
            text: Some(s.to_owned()),
            mods: 0,
        }
    }

    /// A `key.down` event's key, text and mods; `None` for other kinds, or
    /// when `keys.text` was not granted (no key name: nothing to replay).
    pub fn from_event(e: &Event) -> Option<KeyStroke> {
        if e.kind != Kind::KeyDown {
            return None;
        }
        let key = match e.get("key")? {
            Value::Str(s) => s.to_string(),
            _ => return None,
        };
        let text = match e.get("text") {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        };
        let mods = match e.get("mods") {
            Some(Value::Int(m)) => *m,
            _ => 0,
        };
        Some(KeyStroke { key, text, mods })
    }
}

/// The events between two `window.focus` events, and the title of the
/// window that had focus (when `window.titles` was granted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FocusSegment {
    pub events: std::ops::Range<usize>,
    pub title: Option<String>,
}

/// Splits a run of events into focus segments.
pub fn focus_segments(events: &[Event]) -> Vec<FocusSegment> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut title = None;
    for (i, e) in events.iter().enumerate() {
        if e.kind == Kind::WindowFocus {
            if i > start {
                out.push(FocusSegment {
                    events: start..i,
                    title: title.take(),
                });
            }
            start = i + 1;
            title = match e.get("title") {
                Some(Value::Str(t)) => Some(t.to_string()),
                _ => None,
            };
        }
    }
    if start < events.len() {
        out.push(FocusSegment {
            events: start..events.len(),
            title,
        });
    }
    out
}

/// One focus segment's keys, replayed and redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRedaction {
    pub segment: FocusSegment,
    /// Indices (into the events given) of the key events replayed;
    /// `keys.masked[i]` is about `events[key_events[i]]`.
    pub key_events: Vec<usize>,
    pub keys: KeyRedaction,
}

/// What the replay of one segment gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRedaction {
    /// The reconstructed text. It holds the secrets: never export it.
    pub text: String,
    /// The reconstructed text with placeholders.
    pub redacted: String,
    /// Findings, as byte ranges in `text`.
    pub findings: Vec<Finding>,
    /// One flag per input key: whether its character must be masked.
    pub masked: Vec<bool>,
    /// For each masked key, the finding (index into `findings`) it belongs to.
    pub finding_of: Vec<Option<usize>>,
}

/// A character of the replayed text, the key that produced it (an index
/// into the keys replayed), and the keys whose characters were deleted in
/// its place. Masking a finding masks `key` and every ghost of each of its
/// characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedChar {
    pub ch: char,
    pub key: usize,
    pub ghosts: Vec<usize>,
}

/// What a run of keys leaves behind, character by character: the mapping
/// from text back to keys that [`Redactor::redact_keys`] masks by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub chars: Vec<TypedChar>,
    /// Keys whose characters were deleted with no character after them to
    /// join (the run ended on them).
    pub pending: Vec<usize>,
}

impl Replay {
    /// The reconstructed text. It holds the secrets: never export it.
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }
}

/// Replays `keys` into text. A key with an empty name is refused (it names
/// nothing that could be replayed); every other key is replayed, and one
/// that types nothing known is skipped.
pub fn replay(keys: &[KeyStroke]) -> Result<Replay, RedactError> {
    let mut buf = Buffer::default();
    for (i, k) in keys.iter().enumerate() {
        if k.key.is_empty() {
            return Err(RedactError::BadKey {
                index: i,
                reason: "empty key name".into(),
            });
        }
        buf.apply(i, k);
    }
    Ok(Replay {
        chars: buf.cells,
        pending: buf.pending,
    })
}

#[derive(Default)]
struct Buffer {
    cells: Vec<TypedChar>,
    cursor: usize,
    /// Deleted keys with no right-hand neighbour yet: they join the next
    /// character typed (usually the correction).
    pending: Vec<usize>,
}

impl Buffer {
    fn insert(&mut self, ch: char, key: usize) {
        let ghosts = std::mem::take(&mut self.pending);
        self.cells
            .insert(self.cursor, TypedChar { ch, key, ghosts });
        self.cursor += 1;
    }

    fn delete_at(&mut self, p: usize) {
        let gone = self.cells.remove(p);
        let mut ghosts = gone.ghosts;
        ghosts.push(gone.key);
        match self.cells.get_mut(p) {
            Some(right) if right.ch != '\n' => right.ghosts.extend(ghosts),
            _ => self.pending.extend(ghosts),
        }
    }

    fn line_start(&self, p: usize) -> usize {
        self.cells[..p]
            .iter()
            .rposition(|c| c.ch == '\n')
            .map_or(0, |i| i + 1)
    }

    fn line_end(&self, p: usize) -> usize {
        self.cells[p..]
            .iter()
            .position(|c| c.ch == '\n')
            .map_or(self.cells.len(), |i| p + i)
    }

    fn vertical(&mut self, up: bool) {
        let start = self.line_start(self.cursor);
        let col = self.cursor - start;
        let target_start = if up {
            if start == 0 {
                return;
            }
            self.line_start(start - 1)
        } else {
            let end = self.line_end(self.cursor);
            if end >= self.cells.len() {
                return;
            }
            end + 1
        };
        let target_end = self.line_end(target_start);
        self.cursor = (target_start + col).min(target_end);
    }

    fn word_left(&self) -> usize {
        let mut p = self.cursor;
        while p > 0 && !self.cells[p - 1].ch.is_alphanumeric() {
            p -= 1;
        }
        while p > 0 && self.cells[p - 1].ch.is_alphanumeric() {
            p -= 1;
        }
        p
    }

    fn apply(&mut self, i: usize, k: &KeyStroke) {
        let chord = k.mods & (CTRL | ALT | META) != 0;
        match k.key.as_str() {
            "Return" | "KpReturn" if !chord => self.insert('\n', i),
            "Tab" if !chord => self.insert('\t', i),
            "Backspace" if chord => {
                let to = self.word_left();
                while self.cursor > to {
                    self.cursor -= 1;
                    self.delete_at(self.cursor);
                }
            }
            "Backspace" => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.delete_at(self.cursor);
                }
            }
            "Delete" => {
                if self.cursor < self.cells.len() {
                    self.delete_at(self.cursor);
                }
            }
            "LeftArrow" if chord => self.cursor = self.word_left(),
            "LeftArrow" => self.cursor = self.cursor.saturating_sub(1),
            "RightArrow" => self.cursor = (self.cursor + 1).min(self.cells.len()),
            "UpArrow" => self.vertical(true),
            "DownArrow" => self.vertical(false),
            "Home" => self.cursor = self.line_start(self.cursor),
            "End" => self.cursor = self.line_end(self.cursor),
            _ if chord => {}
            _ => {
                if let Some(t) = &k.text {
                    for ch in t
                        .chars()
                        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
                    {
                        self.insert(ch, i);
                    }
                }
            }
        }
    }
}

impl Redactor {
    /// Replays and redacts every focus segment of a run of events. Key
    /// events without a key name (only `keys.timing` granted) carry no text
    /// and are left out. The focused window's title serves as the prompt.
    pub fn redact_key_events(
        &self,
        events: &[Event],
        book: &mut Placeholders,
    ) -> Result<Vec<SegmentRedaction>, RedactError> {
        let mut out = Vec::new();
        for segment in focus_segments(events) {
            let mut key_events = Vec::new();
            let mut keys = Vec::new();
            for i in segment.events.clone() {
                if let Some(k) = KeyStroke::from_event(&events[i]) {
                    key_events.push(i);
                    keys.push(k);
                }
            }
            if keys.is_empty() {
                continue;
            }
            let keys = self.redact_keys(&keys, segment.title.as_deref(), book)?;
            out.push(SegmentRedaction {
                segment,
                key_events,
                keys,
            });
        }
        Ok(out)
    }
}

impl Redactor {
    /// Replays one focus segment's keys, redacts the typed text, and marks
    /// the keys to mask. `prompt` is the focused window's title or the last
    /// prompt shown, when known: if it asks for a password or passphrase,
    /// the lines typed first are answers.
    pub fn redact_keys(
        &self,
        keys: &[KeyStroke],
        prompt: Option<&str>,
        book: &mut Placeholders,
    ) -> Result<KeyRedaction, RedactError> {
        let buf = replay(keys)?;
        let text = buf.text();
        // Byte offset of each character, to map findings back.
        let mut offsets = Vec::with_capacity(buf.chars.len() + 1);
        let mut o = 0;
        for c in &buf.chars {
            offsets.push(o);
            o += c.ch.len_utf8();
        }
        offsets.push(o);

        let mut findings = self.scan(&text);
        findings.extend(typed_passwords(&text, prompt));
        let merged = resolve(findings);

        let mut masked = vec![false; keys.len()];
        let mut finding_of = vec![None; keys.len()];
        for (fi, f) in merged.iter().enumerate() {
            let first = offsets.partition_point(|&x| x < f.start);
            let last = offsets.partition_point(|&x| x < f.end);
            for cell in &buf.chars[first..last] {
                for k in std::iter::once(cell.key).chain(cell.ghosts.iter().copied()) {
                    masked[k] = true;
                    finding_of[k] = Some(fi);
                }
            }
        }
        // Deleted keys still waiting for a neighbour: the segment ended on
        // them. Mask them when they sit right after a finding.
        if merged.last().is_some_and(|f| f.end == text.len()) {
            for &g in &buf.pending {
                masked[g] = true;
                finding_of[g] = Some(merged.len() - 1);
            }
        }
        let redacted = apply(&text, &merged, book);
        Ok(KeyRedaction {
            text,
            redacted,
            findings: merged,
            masked,
            finding_of,
        })
    }

    /// The text that `keys[range]` (a burst within the segment `seg` was
    /// made from) type on their own, with every key the segment masked
    /// shown as its finding's placeholder. The result is scanned again, so
    /// a secret typed and then erased within the burst, which the segment's
    /// final text no longer shows, is caught too; the flag says whether
    /// that scan found anything (the keys of such a secret are not masked).
    pub fn burst_text(
        &self,
        keys: &[KeyStroke],
        seg: &KeyRedaction,
        range: std::ops::Range<usize>,
        book: &mut Placeholders,
    ) -> (String, bool) {
        let mut buf = Buffer::default();
        for i in range {
            if let Some(k) = keys.get(i) {
                buf.apply(i, k);
            }
        }
        let mut out = String::new();
        let mut last: Option<Option<usize>> = None;
        for cell in &buf.cells {
            if seg.masked.get(cell.key).copied().unwrap_or(false) {
                let fi = seg.finding_of[cell.key];
                if last != Some(fi) {
                    match fi.and_then(|fi| seg.findings.get(fi)) {
                        Some(f) => {
                            let value = seg.text.get(f.start..f.end).unwrap_or("");
                            out.push_str(&book.placeholder(f, value));
                        }
                        None => out.push_str("<REDACTED>"),
                    }
                }
                last = Some(fi);
            } else {
                out.push(cell.ch);
                last = None;
            }
        }
        let again = self.redact(&out, book);
        let found = !again.findings.is_empty();
        (again.text, found)
    }
}

/// Lines typed in answer to a password prompt: after a command that opens
/// a dialogue (see [`super::dialogues`]), or from the start when the
/// focused window's title asks for a password. Every line of the dialogue
/// is masked, typos, retries and usernames included, until a line that
/// looks like a shell command or the dialogue's longest run is over.
fn typed_passwords(text: &str, prompt: Option<&str>) -> Vec<Finding> {
    /// A title prompt (pinentry, polkit, `[sudo] password for`) reads one
    /// secret, but a retry or a second field may follow.
    const TITLE_ANSWERS: usize = 3;
    let mut out = Vec::new();
    // (lines left that may be answers, of which sure answers, the prompting line)
    // A terminal titled with the command it runs (`ssh db1`, `sudo -i`)
    // is in that command's dialogue when it gets the focus.
    let mut open: Option<(usize, usize, &str)> = match prompt {
        // The window says it asks: its first line is the answer, whatever
        // it looks like.
        Some(p) if dialogues::title_asks_for_password(p) => Some((TITLE_ANSWERS, 1, "")),
        Some(p) if !dialogues::names_a_file_being_edited(p) => {
            dialogues::dialogue_length(p).map(|(len, _)| (len, 0, p))
        }
        _ => None,
    };
    let mut at = 0;
    for line in text.split('\n') {
        let start = at;
        at += line.len() + 1;
        if let Some((left, sure, cmd)) = open.take() {
            if left > 0 && (sure > 0 || !dialogues::looks_like_command(line, cmd)) {
                let t = line.trim_end_matches('\r');
                if !t.is_empty() {
                    out.push(Finding {
                        rule: "typed-password",
                        category: Category::Secret,
                        start,
                        end: start + t.len(),
                    });
                }
                open = Some((left - 1, sure.saturating_sub(1), cmd));
                continue;
            }
        }
        open = dialogues::dialogue_length(line).map(|(len, sure)| (len, sure, line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_applies_edits_and_moves() {
        let mut keys = KeyStroke::type_str("helo");
        keys.push(KeyStroke::named("LeftArrow"));
        keys.extend(KeyStroke::type_str("l"));
        keys.push(KeyStroke::named("End"));
        keys.extend(KeyStroke::type_str("x"));
        keys.push(KeyStroke::named("Backspace"));
        keys.extend(KeyStroke::type_str("!\nab"));
        keys.push(KeyStroke::named("UpArrow"));
        keys.push(KeyStroke::named("Delete"));
        let mut buf = Buffer::default();
        for (i, k) in keys.iter().enumerate() {
            buf.apply(i, k);
        }
        let text: String = buf.cells.iter().map(|c| c.ch).collect();
        assert_eq!(text, "helo!\nab");
    }

    #[test]
    fn every_line_of_a_dialogue_is_masked() {
        let text = "passwd\n0ld-pw\nN3w-pw\nN3w-pw\ncargo build\n";
        let f = typed_passwords(text, None);
        let got: Vec<&str> = f.iter().map(|f| &text[f.start..f.end]).collect();
        assert_eq!(got, ["0ld-pw", "N3w-pw", "N3w-pw"]);
        // A line that looks like a command ends the dialogue.
        let text = "sudo apt update\nsudo apt upgrade\nls\n";
        assert!(typed_passwords(text, None).is_empty());
    }
}
