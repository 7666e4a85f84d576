//! Cutting admitted events into coding episodes, and turning each into its
//! redacted, anonymized form.
//!
//! The [`Segmenter`] closes an episode at an idle gap, after a git commit,
//! and when work moves to another workspace or subject. The [`Builder`]
//! then makes the episode's actions: typing bursts (redacted text, key
//! timing re-synthesized from a population model, pauses kept), edits as unified diffs between
//! redacted snapshots, file events, focus changes, mouse summaries, commits
//! and capture gaps; and, from the ingest socket's clients, shell commands,
//! test and build runs (command lines redacted and anonymized, see
//! [`super::command`]), editor focus, commands and diagnostics, and editor
//! edits and cursor moves summarized per file (never the text an edit
//! inserted). Contents are redacted once, as whole states, and diffs
//! are taken between redacted states, so states and diffs always agree and
//! replay is exact. Every episode is replayed and re-scanned before it is
//! handed to a writer; a failure stops the export.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::anonymize::{iso_week, Anonymizer, TimeWarp, TimingMode};
use super::command;
use super::model::{
    Action, ActionBody, CodeState, EndReason, Episode, FileStates, KeyTime, RunResult,
    SCHEMA_VERSION,
};
use super::replay::{replay, state_id, unified};
use super::source::Admitted;
use super::ExportError;
use crate::event::{Event, Value};
use crate::redact::engine::apply;
use crate::redact::keystrokes::{KeyRedaction, KeyStroke};
use crate::redact::{Finding, Placeholders, Redactor};
use crate::registry::Kind;

const MS: i64 = 1_000_000;
/// A pause longer than this ends a typing burst.
const BURST_GAP_NS: i64 = 2_000 * MS;
/// A pause longer than this ends a mouse summary.
const MOUSE_GAP_NS: i64 = 2_000 * MS;
/// A pause longer than this ends a run of editor edits, or of cursor moves.
const EDITOR_GAP_NS: i64 = 2_000 * MS;
/// A cursor move this soon after an edit in the same file is the caret
/// following the text typed, not navigation.
const CARET_NS: i64 = 200 * MS;
/// The subject of synthetic sessions, which have no consent record.
pub const SYNTHETIC_SUBJECT: &str = "synthetic";

fn str_field<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
    match e.get(name) {
        Some(Value::Str(s)) => Some(s.as_ref()),
        _ => None,
    }
}

fn int_field(e: &Event, name: &str) -> i64 {
    opt_int(e, name).unwrap_or(0)
}

fn opt_int(e: &Event, name: &str) -> Option<i64> {
    match e.get(name) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The kinds whose `workspace` field places them: file events, commits,
/// and what the shell hook and editor plugins send.
fn names_workspace(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::GitCommit
            | Kind::FileCreate
            | Kind::FileModify
            | Kind::FileDelete
            | Kind::FileRename
            | Kind::ShellCommand
            | Kind::RunTest
            | Kind::RunBuild
            | Kind::EditorFocus
            | Kind::EditorEdit
            | Kind::EditorCursor
            | Kind::EditorSelection
            | Kind::EditorCommand
            | Kind::EditorDiagnostics
    )
}

/// When a command started: it is stamped when it ended.
fn command_start(e: &Event) -> i64 {
    let ms = int_field(e, "duration_ms").clamp(0, i64::MAX / MS);
    e.wall_ns.saturating_sub(ms * MS)
}

/// A focus segment's typed keys, replayed and redacted as a whole, before
/// the segment is cut into episodes or bursts: a secret typed across a
/// pause, a save in another workspace or the edge of the time range is
/// still one secret.
pub struct SegKeys {
    strokes: Vec<KeyStroke>,
    red: KeyRedaction,
}

/// An admitted event, with its place among its segment's keys.
pub struct Staged {
    pub a: Admitted,
    key: Option<(Arc<SegKeys>, usize)>,
}

/// Past this many events, a focus segment is redacted in parts, to bound
/// memory (a day in one window); a secret typed across that seam is
/// redacted in two halves.
const MAX_SEGMENT_EVENTS: usize = 200_000;

/// The events of one episode, before redaction.
pub struct RawEpisode {
    pub events: Vec<Staged>,
    pub end: EndReason,
    pub workspace: Option<String>,
    pub subject: String,
}

/// Cuts the admitted stream into episodes.
pub struct Segmenter {
    idle_gap_ns: i64,
    cur: Vec<Staged>,
    last_ts: i64,
    workspace: Option<String>,
    subject: Option<String>,
}

impl Segmenter {
    pub fn new(idle_gap_ns: i64) -> Segmenter {
        Segmenter {
            idle_gap_ns,
            cur: Vec::new(),
            last_ts: i64::MIN,
            workspace: None,
            subject: None,
        }
    }

    fn close(&mut self, end: EndReason) -> Option<RawEpisode> {
        if self.cur.is_empty() {
            return None;
        }
        Some(RawEpisode {
            events: std::mem::take(&mut self.cur),
            end,
            workspace: self.workspace.take(),
            subject: self
                .subject
                .take()
                .unwrap_or_else(|| SYNTHETIC_SUBJECT.to_owned()),
        })
    }

    /// Adds an event; returns the episodes it closed (at most two: the one
    /// before it, and its own when it is a commit).
    pub fn push(&mut self, staged: Staged) -> Vec<RawEpisode> {
        let a = &staged.a;
        let mut out = Vec::new();
        let ts = a.event.wall_ns;
        let subject = a
            .covered
            .as_ref()
            .map_or(SYNTHETIC_SUBJECT, |c| c.subject.as_str());
        // Commands from outside every workspace name none, and join the
        // episode under way.
        let workspace = if names_workspace(a.event.kind) {
            str_field(&a.event, "workspace")
        } else {
            None
        };
        // A command that ran is activity from its start: a long build
        // does not make its episode idle.
        let active_from = match a.event.kind {
            Kind::ShellCommand | Kind::RunTest | Kind::RunBuild => command_start(&a.event),
            _ => ts,
        };
        if !self.cur.is_empty() {
            let end = if active_from.saturating_sub(self.last_ts) > self.idle_gap_ns {
                Some(EndReason::Idle)
            } else if self.subject.as_deref() != Some(subject) {
                Some(EndReason::End)
            } else if matches!((workspace, &self.workspace), (Some(w), Some(cur)) if w != cur) {
                Some(EndReason::Workspace)
            } else {
                None
            };
            if let Some(end) = end {
                out.extend(self.close(end));
            }
        }
        if self.subject.is_none() {
            self.subject = Some(subject.to_owned());
        }
        if self.workspace.is_none() {
            self.workspace = workspace.map(str::to_owned);
        }
        // A gap's end is not activity: after a night's pause or a crash,
        // the next event starts a new episode.
        self.last_ts = self.last_ts.max(ts);
        let commit = a.event.kind == Kind::GitCommit;
        self.cur.push(staged);
        if commit {
            out.extend(self.close(EndReason::Commit));
        }
        out
    }

    pub fn finish(&mut self) -> Option<RawEpisode> {
        self.close(EndReason::End)
    }
}

/// What is known of a file between episodes: its redacted content.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Absent,
    /// It exists, but its content was not recorded.
    Unknown,
    Text(String),
}

impl Known {
    fn state(&self, path: String) -> CodeState {
        match self {
            Known::Absent => CodeState {
                path,
                exists: false,
                content: None,
                state_id: None,
            },
            Known::Unknown => CodeState {
                path,
                exists: true,
                content: None,
                state_id: None,
            },
            Known::Text(t) => CodeState {
                path,
                exists: true,
                state_id: Some(state_id(t)),
                content: Some(t.clone()),
            },
        }
    }
}

struct Tracked {
    file_id: String,
    known: Known,
}

/// A file as one episode sees it.
struct EpFile {
    key: (String, String),
    file_id: String,
    initial: CodeState,
    cur: Known,
}

/// Counts of what the builder did, for the manifest.
#[derive(Debug, Default, Clone)]
pub struct BuildStats {
    pub episodes: u64,
    pub actions: u64,
    pub actions_by_type: BTreeMap<&'static str, u64>,
    pub findings_by_rule: BTreeMap<&'static str, u64>,
    pub records: BTreeSet<String>,
    pub subjects: BTreeSet<String>,
    pub keys: u64,
}

/// Workspace names and file names, and what replaces them in titles.
type NameTable = Option<(aho_corasick::AhoCorasick, Vec<String>)>;

/// Turns raw episodes into dataset episodes. One builder serves a whole
/// export: the placeholder book and the file pseudonyms are shared, so the
/// same value and the same file read the same in every episode.
pub struct Builder<'a> {
    redactor: &'a Redactor,
    pub anon: Anonymizer,
    book: Placeholders,
    /// Workspace names and file names, and what replaces them in titles
    /// and command lines.
    names: NameTable,
    /// Workspace names: a path component that is one becomes
    /// `<WORKSPACE>` in command lines.
    workspaces: HashSet<String>,
    files: HashMap<(String, String), Tracked>,
    /// The focus segment being read, until its keys can be redacted.
    pending: Vec<Admitted>,
    pub stats: BuildStats,
}

struct Burst {
    start: i64,
    last: i64,
    app: Option<String>,
    /// (event index, time, class)
    keys: Vec<(usize, i64, String)>,
}

/// Editor edits to one file, summed.
struct EditAcc {
    key: (String, String),
    start: i64,
    last: i64,
    edits: i64,
    inserted: i64,
    deleted: i64,
    min_line: Option<i64>,
    max_line: Option<i64>,
}

/// Cursor moves and selections in one file, summed.
struct NavAcc {
    key: (String, String),
    start: i64,
    last: i64,
    moves: u32,
    selections: u32,
    start_line: i64,
    end_line: i64,
    min_line: i64,
    max_line: i64,
}

/// What an episode remembers of the editor, to leave out repeats.
#[derive(Default)]
struct EditorSeen {
    /// The file the editor last showed.
    focus: Option<(String, String)>,
    /// Each file's last diagnostics counts.
    diagnostics: HashMap<(String, String), [i64; 4]>,
    /// The file and time of the last edit (the caret follows it).
    last_edit: Option<((String, String), i64)>,
}

#[derive(Default)]
struct MouseAcc {
    start: i64,
    last: i64,
    moves: u32,
    distance: f64,
    pos: Option<(i64, i64)>,
    clicks: u32,
    scroll: i64,
}

impl<'a> Builder<'a> {
    pub fn new(redactor: &'a Redactor, anon: Anonymizer) -> Builder<'a> {
        Builder {
            redactor,
            anon,
            book: Placeholders::new(),
            names: None,
            workspaces: HashSet::new(),
            files: HashMap::new(),
            pending: Vec::new(),
            stats: BuildStats::default(),
        }
    }

    /// Teaches the builder the workspace names and file paths (`(ws, "")`
    /// for a workspace alone) to take out of window titles, which name the
    /// open file and project ("billing.rs - acme - Code") and would
    /// otherwise undo the path hashing.
    pub fn set_names(&mut self, names: &[(String, String)]) -> Result<(), ExportError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (ws, path) in names {
            if path.is_empty() {
                if !ws.is_empty() {
                    self.workspaces.insert(ws.clone());
                }
                if ws.chars().count() >= 3 {
                    pairs.push((ws.clone(), "<WORKSPACE>".into()));
                }
                continue;
            }
            let anon = self.anon.path(path);
            pairs.push((path.clone(), anon.clone()));
            if let (Some(base), Some(abase)) = (path.rsplit('/').next(), anon.rsplit('/').next()) {
                if base.chars().count() >= 3 && base != abase {
                    pairs.push((base.to_owned(), abase.to_owned()));
                }
            }
        }
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        if pairs.is_empty() {
            self.names = None;
            return Ok(());
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(pairs.iter().map(|p| &p.0))
            .map_err(|e| ExportError::Option(format!("too many file names to match: {e}")))?;
        self.names = Some((ac, pairs.into_iter().map(|p| p.1).collect()));
        Ok(())
    }

    /// A title with file and workspace names replaced, then redacted.
    fn title(&mut self, title: &str) -> String {
        let named = replace_names(&self.names, title);
        let pathless = self.title_paths(&named);
        self.redact(&pathless)
    }

    /// A command line, redacted (the engine's rules and the command line's
    /// own: [`command::findings`]), then with paths, URLs, hosts and names
    /// anonymized ([`command::anonymize`]).
    fn command_line(&mut self, raw: &str) -> String {
        let found = command::merge(self.redactor.scan(raw), command::findings(raw));
        let redacted = self.apply(raw, &found);
        let Builder {
            anon,
            names,
            workspaces,
            ..
        } = self;
        let replace = |s: &str| replace_names(names, s);
        let mut n = command::Names {
            anon,
            workspaces,
            replace: &replace,
        };
        let out = command::anonymize(&redacted, &mut n);
        // What the scan of `verify` would find is taken out here too
        // (normally nothing: anonymizing only hashes and keeps placeholders).
        let stats = &mut self.stats;
        command::settle(out, self.redactor, &mut self.book, |f| {
            *stats.findings_by_rule.entry(f.rule).or_default() += 1;
        })
    }

    /// Puts placeholders in for `found`, counting them for the manifest.
    fn apply(&mut self, text: &str, found: &[Finding]) -> String {
        if found.is_empty() {
            return text.to_owned();
        }
        for f in found {
            *self.stats.findings_by_rule.entry(f.rule).or_default() += 1;
        }
        apply(text, found, &mut self.book)
    }

    /// A working directory relative to its workspace, hashed as file paths
    /// are; `.` and `outside` say where, and stay.
    fn cwd(&mut self, cwd: &str) -> String {
        match cwd {
            "" | "." | "./" => ".".to_owned(),
            "outside" => "outside".to_owned(),
            c => self.anon.path(c),
        }
    }

    /// A file of a workspace as editor events name it: its pseudonym (the
    /// one its saves have) and its anonymized path.
    fn file_ref(&mut self, e: &Event) -> Option<((String, String), String, String)> {
        let ws = str_field(e, "workspace")?.to_owned();
        let path = str_field(e, "path")?.to_owned();
        let key = (ws, path);
        let (id, anon_path) = self.key_ref(&key);
        Some((key, id, anon_path))
    }

    /// The actions of the editor's own events (the editor plugins', sent over
    /// the ingest socket), other than edits and cursor moves.
    fn editor(&mut self, e: &Event, seen: &mut EditorSeen, actions: &mut Vec<(i64, ActionBody)>) {
        let ts = e.wall_ns;
        match e.kind {
            Kind::EditorFocus => {
                let Some((key, file_id, path)) = self.file_ref(e) else {
                    return;
                };
                if seen.focus.as_ref() == Some(&key) {
                    return;
                }
                seen.focus = Some(key);
                let language = str_field(e, "language")
                    .filter(|l| {
                        !l.is_empty()
                            && l.len() <= 40
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"+#._-".contains(&b))
                    })
                    .map(|l| self.redact(l));
                actions.push((
                    ts,
                    ActionBody::FileFocus {
                        file_id,
                        path,
                        language,
                    },
                ));
            }
            Kind::EditorCommand => {
                let command = self.redact(str_field(e, "command").unwrap_or(""));
                let (file_id, path) = match self.file_ref(e) {
                    Some((_, id, p)) => (Some(id), Some(p)),
                    None => (None, None),
                };
                actions.push((
                    ts,
                    ActionBody::EditorCommand {
                        command,
                        file_id,
                        path,
                    },
                ));
            }
            Kind::EditorDiagnostics => {
                let Some((key, file_id, path)) = self.file_ref(e) else {
                    return;
                };
                let counts = ["errors", "warnings", "info", "hints"].map(|f| int_field(e, f));
                if seen.diagnostics.insert(key, counts) == Some(counts) {
                    return;
                }
                let [errors, warnings, info, hints] = counts;
                actions.push((
                    ts,
                    ActionBody::Diagnostics {
                        file_id,
                        path,
                        errors,
                        warnings,
                        info,
                        hints,
                    },
                ));
            }
            _ => {}
        }
    }

    fn edit_action(&mut self, acc: EditAcc) -> (i64, ActionBody) {
        let (file_id, path) = self.key_ref(&acc.key);
        (
            acc.start,
            ActionBody::EditorEdits {
                file_id,
                path,
                duration_ms: acc.last.saturating_sub(acc.start) / MS,
                edits: acc.edits,
                inserted_bytes: acc.inserted,
                deleted_bytes: acc.deleted,
                min_line: acc.min_line,
                max_line: acc.max_line,
            },
        )
    }

    fn nav_action(&mut self, acc: NavAcc) -> (i64, ActionBody) {
        let (file_id, path) = self.key_ref(&acc.key);
        (
            acc.start,
            ActionBody::Navigation {
                file_id,
                path,
                duration_ms: acc.last.saturating_sub(acc.start) / MS,
                moves: acc.moves,
                selections: acc.selections,
                start_line: acc.start_line,
                end_line: acc.end_line,
                min_line: acc.min_line,
                max_line: acc.max_line,
            },
        )
    }

    /// A file's pseudonym and anonymized path, without registering it: a
    /// file only looked at has no known state, and must not hide its first
    /// snapshot from a later save.
    fn key_ref(&mut self, key: &(String, String)) -> (String, String) {
        let id = match self.files.get(key) {
            Some(t) => t.file_id.clone(),
            None => self
                .anon
                .pseudonym("file", &format!("{}\0{}", key.0, key.1)),
        };
        (id, self.anon.path(&key.1))
    }

    /// Paths in a title (`vim /srv/clients/acme/x.rs`, `~/src/acme`) keep
    /// their shape, with names hashed as in file paths; an absolute path
    /// loses its root to `…/`.
    fn title_paths(&mut self, title: &str) -> String {
        let mut out = String::with_capacity(title.len());
        for (i, token) in title.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let trim: &[char] = &['(', ')', '[', ']', '"', '\'', ',', ':', ';'];
            let core = token.trim_matches(trim);
            let (lead, rest) = if let Some(r) = core.strip_prefix("~/") {
                ("~/", r)
            } else if let Some(r) = core.strip_prefix('/') {
                ("…/", r)
            } else if core.starts_with("./") || core.starts_with("../") {
                ("", core)
            } else {
                ("", "")
            };
            if rest.is_empty() || core.contains("://") {
                out.push_str(token);
                continue;
            }
            let start = token.find(core).unwrap_or(0);
            out.push_str(&token[..start]);
            out.push_str(lead);
            out.push_str(&self.anon.path(rest));
            out.push_str(&token[start + core.len()..]);
        }
        out
    }

    fn redact(&mut self, text: &str) -> String {
        let r = self.redactor.redact(text, &mut self.book);
        for f in &r.findings {
            *self.stats.findings_by_rule.entry(f.rule).or_default() += 1;
        }
        r.text
    }

    fn file_id(&mut self, key: &(String, String)) -> String {
        if let Some(t) = self.files.get(key) {
            return t.file_id.clone();
        }
        let id = self
            .anon
            .pseudonym("file", &format!("{}\0{}", key.0, key.1));
        self.files.insert(
            key.clone(),
            Tracked {
                file_id: id.clone(),
                known: Known::Unknown,
            },
        );
        id
    }

    /// Takes the next admitted event; returns the events of the focus
    /// segments now complete, their keys redacted, context events dropped.
    pub fn stage(&mut self, a: Admitted) -> Result<Vec<Staged>, ExportError> {
        let mut out = Vec::new();
        if a.event.kind == Kind::WindowFocus || self.pending.len() >= MAX_SEGMENT_EVENTS {
            out = self.flush_segment()?;
        }
        self.pending.push(a);
        Ok(out)
    }

    /// The last segment, at the end of the data.
    pub fn finish_stage(&mut self) -> Result<Vec<Staged>, ExportError> {
        self.flush_segment()
    }

    fn flush_segment(&mut self) -> Result<Vec<Staged>, ExportError> {
        let events = std::mem::take(&mut self.pending);
        let mut at = Vec::new();
        let mut strokes = Vec::new();
        for (i, a) in events.iter().enumerate() {
            if let Some(k) = KeyStroke::from_event(&a.event) {
                at.push(i);
                strokes.push(k);
            }
        }
        let mut keys: Vec<Option<(Arc<SegKeys>, usize)>> = events.iter().map(|_| None).collect();
        if !strokes.is_empty() {
            let prompt = events
                .first()
                .filter(|a| a.event.kind == Kind::WindowFocus)
                .and_then(|a| str_field(&a.event, "title"))
                .map(str::to_owned);
            let red = self
                .redactor
                .redact_keys(&strokes, prompt.as_deref(), &mut self.book)?;
            for f in &red.findings {
                *self.stats.findings_by_rule.entry(f.rule).or_default() += 1;
            }
            let seg = Arc::new(SegKeys { strokes, red });
            for (pos, i) in at.into_iter().enumerate() {
                keys[i] = Some((seg.clone(), pos));
            }
        }
        Ok(events
            .into_iter()
            .zip(keys)
            .filter(|(a, _)| !a.context)
            .map(|(a, key)| Staged { a, key })
            .collect())
    }

    /// Builds, replays and re-scans one episode.
    pub fn build(&mut self, raw: RawEpisode) -> Result<Episode, ExportError> {
        let mut items = raw.events;
        // Store order is arrival order; sources stamp a little apart.
        items.sort_by_key(|st| st.a.event.wall_ns);
        for st in &items {
            if let Some(c) = &st.a.covered {
                self.stats.records.insert(c.record_id.clone());
            }
        }
        let mut key_slot: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut segments: Vec<Arc<SegKeys>> = Vec::new();
        let mut events: Vec<Event> = Vec::with_capacity(items.len());
        for (i, st) in items.into_iter().enumerate() {
            if let Some((seg, pos)) = st.key {
                let si = match segments.iter().position(|s| Arc::ptr_eq(s, &seg)) {
                    Some(si) => si,
                    None => {
                        segments.push(seg);
                        segments.len() - 1
                    }
                };
                key_slot.insert(i, (si, pos));
            }
            events.push(st.a.event);
        }
        let t0 = events.first().map_or(0, |e| e.wall_ns);
        let t_end = events.iter().map(|e| e.wall_ns).max().unwrap_or(t0);
        let episode_id = self
            .anon
            .pseudonym("episode", &format!("{}\0{t0}", raw.subject));
        let subject_id = self.anon.subject_pseudonym(&raw.subject);
        self.stats.subjects.insert(subject_id.clone());
        let workspace_id = raw
            .workspace
            .as_deref()
            .map(|w| self.anon.pseudonym("workspace", w));
        let mut rng = self.anon.timing_rng(&format!("{}\0{t0}", raw.subject));
        // Every exported time and duration goes through one warp built from
        // the key presses: the measured rhythm, and the pace it adds up
        // to, never reach the output.
        let key_times: Vec<i64> = events
            .iter()
            .filter(|e| e.kind == Kind::KeyDown)
            .map(|e| e.wall_ns)
            .collect();
        let warp = match self.anon.timing {
            TimingMode::Anonymized => TimeWarp::new(t0, t_end, &key_times, &mut rng),
            // Admission has checked `keys.rhythm` for every event.
            TimingMode::Raw => TimeWarp::measured(t0, t_end),
        };

        let mut actions: Vec<(i64, ActionBody)> = Vec::new();
        let mut burst: Option<Burst> = None;
        let mut mouse: Option<MouseAcc> = None;
        let mut app: Option<String> = None;
        let mut ep_files: Vec<EpFile> = Vec::new();
        let mut last_file: Option<usize> = None;
        let mut edits: Option<EditAcc> = None;
        let mut nav: Option<NavAcc> = None;
        let mut seen = EditorSeen::default();

        for (i, e) in events.iter().enumerate() {
            let ts = e.wall_ns;
            match e.kind {
                Kind::KeyDown => {
                    if burst.as_ref().is_some_and(|b| ts - b.last > BURST_GAP_NS) {
                        let b = burst.take().expect("checked");
                        actions.push(self.burst(b, &key_slot, &segments, &warp));
                    }
                    let b = burst.get_or_insert_with(|| Burst {
                        start: ts,
                        last: ts,
                        app: app.clone(),
                        keys: Vec::new(),
                    });
                    b.last = ts;
                    b.keys
                        .push((i, ts, str_field(e, "class").unwrap_or("other").to_owned()));
                }
                // Hold times are a strong keystroke-dynamics signal, and a
                // model of coding does not need them: key-ups stay home.
                Kind::KeyUp => {}
                Kind::MouseMove | Kind::MouseDown | Kind::MouseUp | Kind::MouseWheel => {
                    if mouse.as_ref().is_some_and(|m| ts - m.last > MOUSE_GAP_NS) {
                        actions.push(mouse_action(mouse.take().expect("checked")));
                    }
                    let m = mouse.get_or_insert_with(|| MouseAcc {
                        start: ts,
                        ..MouseAcc::default()
                    });
                    m.last = ts;
                    match e.kind {
                        Kind::MouseMove => {
                            let p = (int_field(e, "x"), int_field(e, "y"));
                            if let Some(q) = m.pos {
                                // In floats: a client's coordinates may
                                // be anything an i64 holds.
                                let (dx, dy) = (p.0 as f64 - q.0 as f64, p.1 as f64 - q.1 as f64);
                                m.distance += dx.hypot(dy);
                            }
                            m.pos = Some(p);
                            m.moves += 1;
                        }
                        Kind::MouseDown => m.clicks += 1,
                        Kind::MouseWheel => m.scroll = m.scroll.saturating_add(int_field(e, "dy")),
                        _ => {}
                    }
                }
                // An editor sends an edit and a cursor move with each key:
                // they run alongside typing, summed per file.
                Kind::EditorEdit => {
                    let Some(key) = str_field(e, "workspace")
                        .zip(str_field(e, "path"))
                        .map(|(w, p)| (w.to_owned(), p.to_owned()))
                    else {
                        continue;
                    };
                    if edits
                        .as_ref()
                        .is_some_and(|a| a.key != key || ts - a.last > EDITOR_GAP_NS)
                    {
                        let a = edits.take().expect("checked");
                        actions.push(self.edit_action(a));
                    }
                    let acc = edits.get_or_insert_with(|| EditAcc {
                        key: key.clone(),
                        start: ts,
                        last: ts,
                        edits: 0,
                        inserted: 0,
                        deleted: 0,
                        min_line: None,
                        max_line: None,
                    });
                    acc.last = ts;
                    acc.edits = acc.edits.saturating_add(1);
                    // Only the inserted text's length: the text itself
                    // never leaves (a secret typed one key per edit could
                    // not be told from the rest). Counts a client sent
                    // saturate rather than overflow.
                    let len = str_field(e, "text").map_or(0, str::len);
                    acc.inserted = acc
                        .inserted
                        .saturating_add(i64::try_from(len).unwrap_or(i64::MAX));
                    acc.deleted = acc.deleted.saturating_add(int_field(e, "deleted").max(0));
                    if let Some(line) = opt_int(e, "line") {
                        acc.min_line = Some(acc.min_line.map_or(line, |m| m.min(line)));
                        acc.max_line = Some(acc.max_line.map_or(line, |m| m.max(line)));
                    }
                    seen.last_edit = Some((key, ts));
                }
                Kind::EditorCursor | Kind::EditorSelection => {
                    let Some(key) = str_field(e, "workspace")
                        .zip(str_field(e, "path"))
                        .map(|(w, p)| (w.to_owned(), p.to_owned()))
                    else {
                        continue;
                    };
                    let caret = e.kind == Kind::EditorCursor
                        && seen
                            .last_edit
                            .as_ref()
                            .is_some_and(|(k, t)| *k == key && ts - t <= CARET_NS);
                    if caret {
                        continue;
                    }
                    if nav
                        .as_ref()
                        .is_some_and(|a| a.key != key || ts - a.last > EDITOR_GAP_NS)
                    {
                        let a = nav.take().expect("checked");
                        actions.push(self.nav_action(a));
                    }
                    let line = int_field(e, "line");
                    let acc = nav.get_or_insert(NavAcc {
                        key,
                        start: ts,
                        last: ts,
                        moves: 0,
                        selections: 0,
                        start_line: line,
                        end_line: line,
                        min_line: line,
                        max_line: line,
                    });
                    acc.last = ts;
                    acc.end_line = line;
                    acc.min_line = acc.min_line.min(line);
                    acc.max_line = acc.max_line.max(line);
                    if e.kind == Kind::EditorSelection {
                        acc.selections += 1;
                        let end = int_field(e, "end_line");
                        acc.min_line = acc.min_line.min(end);
                        acc.max_line = acc.max_line.max(end);
                    } else {
                        acc.moves += 1;
                    }
                }
                // Diagnostics and editor commands come in the middle of
                // typing; they do not cut it.
                Kind::EditorDiagnostics | Kind::EditorCommand => {
                    self.editor(e, &mut seen, &mut actions);
                }
                _ => {
                    // Anything else closes the burst and the pointer run, so
                    // the order of typing, saves and switches survives.
                    if let Some(b) = burst.take() {
                        actions.push(self.burst(b, &key_slot, &segments, &warp));
                    }
                    if let Some(m) = mouse.take() {
                        actions.push(mouse_action(m));
                    }
                    if let Some(a) = edits.take() {
                        actions.push(self.edit_action(a));
                    }
                    if let Some(a) = nav.take() {
                        actions.push(self.nav_action(a));
                    }
                    if e.kind == Kind::EditorFocus {
                        self.editor(e, &mut seen, &mut actions);
                    } else {
                        self.other(e, &mut actions, &mut app, &mut ep_files, &mut last_file)?;
                    }
                }
            }
        }
        if let Some(b) = burst.take() {
            actions.push(self.burst(b, &key_slot, &segments, &warp));
        }
        if let Some(m) = mouse.take() {
            actions.push(mouse_action(m));
        }
        if let Some(a) = edits.take() {
            actions.push(self.edit_action(a));
        }
        if let Some(a) = nav.take() {
            actions.push(self.nav_action(a));
        }
        actions.sort_by_key(|(t, _)| *t);

        let files = ep_files
            .into_iter()
            .map(|f| {
                let path = self.anon.path(&f.key.1);
                FileStates {
                    file_id: f.file_id,
                    initial: f.initial,
                    final_: f.cur.state(path),
                }
            })
            .collect();
        let mut prev_t = 0;
        let actions: Vec<Action> = actions
            .into_iter()
            .enumerate()
            .map(|(seq, (ts, mut body))| {
                let t = self.anon.quantize(warp.at(ts).round() as i64);
                let warped = |d: &mut i64| {
                    *d = self.anon.quantize(warp.span_ms(ts, *d).round() as i64);
                };
                match &mut body {
                    // Spans that run alongside the keys (an editor's edits,
                    // cursor moves, a pointer run, a gap) would carry the
                    // measured pace: warped like the keys.
                    ActionBody::EditorEdits { duration_ms, .. }
                    | ActionBody::Navigation { duration_ms, .. }
                    | ActionBody::Mouse { duration_ms, .. }
                    | ActionBody::Gap { duration_ms, .. } => warped(duration_ms),
                    // A run's or a command's length is the machine's, not
                    // the hands': kept, on the grid.
                    ActionBody::TestRun(RunResult { duration_ms, .. })
                    | ActionBody::BuildRun(RunResult { duration_ms, .. }) => {
                        *duration_ms = self.anon.quantize(*duration_ms);
                    }
                    ActionBody::ShellCommand { duration_ms, .. } => {
                        *duration_ms = duration_ms.map(|d| self.anon.quantize(d));
                    }
                    _ => {}
                }
                let t = t.max(prev_t);
                prev_t = t;
                Action {
                    seq: seq as u32,
                    t_ms: t,
                    body,
                }
            })
            .collect();
        let ep = Episode {
            schema: SCHEMA_VERSION,
            episode_id,
            subject_id,
            workspace_id,
            week: iso_week(t0),
            // Jitter can move the last action past the warped end: the
            // episode must still cover every action.
            duration_ms: self
                .anon
                .quantize(warp.at(t_end).round() as i64)
                .max(actions.last().map_or(0, |a| a.t_ms)),
            end_reason: raw.end,
            files,
            actions,
        };
        replay(&ep)?;
        if let Some(problem) = super::verify::unclean(self.redactor, &ep) {
            return Err(ExportError::Invalid {
                file: format!("episode {}", ep.episode_id),
                problem,
            });
        }
        self.stats.episodes += 1;
        self.stats.actions += ep.actions.len() as u64;
        self.stats.keys += ep.key_count() as u64;
        for a in &ep.actions {
            *self
                .stats
                .actions_by_type
                .entry(a.body.type_name())
                .or_default() += 1;
        }
        Ok(ep)
    }

    fn burst(
        &mut self,
        b: Burst,
        key_slot: &HashMap<usize, (usize, usize)>,
        segments: &[Arc<SegKeys>],
        warp: &TimeWarp,
    ) -> (i64, ActionBody) {
        // The burst's keys within its focus segment (bursts never cross a
        // focus change, so they share one).
        let slots: Vec<(usize, usize)> = b
            .keys
            .iter()
            .filter_map(|(i, _, _)| key_slot.get(i).copied())
            .collect();
        let seg = slots.first().map(|s| s.0);
        let mut erased_secret = false;
        let text = seg.map(|si| {
            let (strokes, red) = (&segments[si].strokes, &segments[si].red);
            let lo = slots.iter().map(|s| s.1).min().unwrap_or(0);
            let hi = slots.iter().map(|s| s.1).max().unwrap_or(0) + 1;
            let (text, found) = self
                .redactor
                .burst_text(strokes, red, lo..hi, &mut self.book);
            erased_secret = found;
            text
        });
        let mut masked: Vec<bool> = b
            .keys
            .iter()
            .map(|(i, _, _)| {
                key_slot
                    .get(i)
                    .is_some_and(|(si, pos)| segments[*si].red.masked[*pos])
            })
            .collect();
        // A secret typed and erased within the burst was found only in the
        // burst's own text: which keys typed it is not known, so none of
        // the burst's keys is shown.
        if erased_secret {
            masked.iter_mut().for_each(|m| *m = true);
        }
        // A modifier belongs to the key it modifies: Shift inside a token
        // would otherwise spell out where its capitals are, and split the
        // token's keys into one visible key each.
        for k in (0..b.keys.len()).rev() {
            if b.keys[k].2 == "modifier" {
                masked[k] = masked.get(k + 1).copied().unwrap_or(false);
            }
        }
        let mut keys: Vec<KeyTime> = Vec::with_capacity(b.keys.len());
        let mut prev_t = 0;
        let mut in_masked = false;
        for ((_, ts, class), &masked) in b.keys.iter().zip(&masked) {
            if masked && in_masked {
                continue;
            }
            in_masked = masked;
            // On the grid in episode time, so a key's offset plus its
            // burst's start is the key's exported time.
            let at = |ns: i64| self.anon.quantize(warp.at(ns).round() as i64);
            let t = (at(*ts) - at(b.start)).max(prev_t);
            prev_t = t;
            keys.push(KeyTime {
                t,
                class: if masked {
                    "redacted".into()
                } else {
                    class.clone()
                },
            });
        }
        (
            b.start,
            ActionBody::Typing {
                app: b.app,
                text,
                // From the synthesized keys: the raw span is the pace.
                duration_ms: keys.last().map_or(0, |k| k.t),
                keys,
            },
        )
    }

    fn other(
        &mut self,
        e: &Event,
        actions: &mut Vec<(i64, ActionBody)>,
        app: &mut Option<String>,
        ep_files: &mut Vec<EpFile>,
        last_file: &mut Option<usize>,
    ) -> Result<(), ExportError> {
        let ts = e.wall_ns;
        let ws = str_field(e, "workspace").unwrap_or("").to_owned();
        match e.kind {
            Kind::WindowFocus => {
                *app = str_field(e, "app").map(|a| self.redact(a));
                let title = str_field(e, "title").map(|t| self.title(t));
                actions.push((
                    ts,
                    ActionBody::Focus {
                        app: app.clone(),
                        title,
                    },
                ));
            }
            Kind::GitCommit => {
                let message = str_field(e, "message").map(|m| self.redact(m));
                actions.push((ts, ActionBody::Commit { message }));
            }
            Kind::ShellCommand | Kind::RunTest | Kind::RunBuild => {
                if !ws.is_empty() && !self.workspaces.contains(&ws) {
                    self.workspaces.insert(ws.clone());
                }
                let command = self.command_line(str_field(e, "command").unwrap_or(""));
                let cwd = self.cwd(str_field(e, "cwd").unwrap_or("outside"));
                let exit = opt_int(e, "exit");
                let duration_ms = opt_int(e, "duration_ms").map(|d| d.max(0));
                // Placed where it started: the event is stamped at its end.
                let start = command_start(e);
                let body = if e.kind == Kind::ShellCommand {
                    ActionBody::ShellCommand {
                        command,
                        cwd,
                        exit,
                        duration_ms,
                    }
                } else {
                    let runner = str_field(e, "runner").unwrap_or("other").to_owned();
                    let (exit, duration_ms) = (exit.unwrap_or(0), duration_ms.unwrap_or(0));
                    let (passed, failed, skipped) = (
                        opt_int(e, "passed"),
                        opt_int(e, "failed"),
                        opt_int(e, "skipped"),
                    );
                    let run = RunResult {
                        command,
                        cwd,
                        runner,
                        exit,
                        duration_ms,
                        passed,
                        failed,
                        skipped,
                    };
                    if e.kind == Kind::RunTest {
                        ActionBody::TestRun(run)
                    } else {
                        ActionBody::BuildRun(run)
                    }
                };
                actions.push((start, body));
            }
            Kind::CaptureGap => actions.push((
                ts,
                ActionBody::Gap {
                    reason: str_field(e, "reason").unwrap_or("unknown").to_owned(),
                    duration_ms: int_field(e, "duration_ns") / MS,
                    lost: int_field(e, "count"),
                },
            )),
            Kind::FileCreate | Kind::FileModify => {
                let path = str_field(e, "path").unwrap_or("").to_owned();
                let key = (ws, path);
                let new = match e.get("content") {
                    Some(Value::Blob(b)) => match std::str::from_utf8(b) {
                        Ok(t) => Known::Text(self.redact(t)),
                        // Not text: nothing a diff could carry.
                        Err(_) => Known::Unknown,
                    },
                    _ => Known::Unknown,
                };
                let idx = self.touch(ep_files, &key, Some((e.kind, &new)));
                let f = &mut ep_files[idx];
                let anon_path = self.anon.path(&key.1);
                if *last_file != Some(idx) {
                    actions.push((
                        ts,
                        ActionBody::FileSwitch {
                            file_id: f.file_id.clone(),
                            path: anon_path.clone(),
                        },
                    ));
                    *last_file = Some(idx);
                }
                let (diff, sid) = match (&f.cur, &new) {
                    (Known::Text(old), Known::Text(t)) => (
                        Some(unified(old, t, &anon_path, &anon_path)),
                        Some(state_id(t)),
                    ),
                    (Known::Absent, Known::Text(t)) => (
                        Some(unified("", t, &anon_path, &anon_path)),
                        Some(state_id(t)),
                    ),
                    _ => (None, None),
                };
                // With no diff, replay cannot reach the new content, so the
                // episode's view of the file stays unknown.
                f.cur = if diff.is_some() {
                    new.clone()
                } else {
                    Known::Unknown
                };
                let file_id = f.file_id.clone();
                if let Some(t) = self.files.get_mut(&key) {
                    t.known = new;
                }
                let body = if e.kind == Kind::FileCreate {
                    ActionBody::FileCreate {
                        file_id,
                        path: anon_path,
                        diff,
                        state_id: sid,
                    }
                } else {
                    ActionBody::Edit {
                        file_id,
                        path: anon_path,
                        diff,
                        state_id: sid,
                    }
                };
                actions.push((ts, body));
            }
            Kind::FileDelete => {
                let key = (ws, str_field(e, "path").unwrap_or("").to_owned());
                let idx = self.touch(ep_files, &key, None);
                ep_files[idx].cur = Known::Absent;
                if let Some(t) = self.files.get_mut(&key) {
                    t.known = Known::Absent;
                }
                actions.push((
                    ts,
                    ActionBody::FileDelete {
                        file_id: ep_files[idx].file_id.clone(),
                        path: self.anon.path(&key.1),
                    },
                ));
            }
            Kind::FileRename => {
                let from = (ws.clone(), str_field(e, "from").unwrap_or("").to_owned());
                let to = (ws, str_field(e, "to").unwrap_or("").to_owned());
                let idx = self.touch(ep_files, &from, None);
                if let Some(t) = self.files.remove(&from) {
                    self.files.insert(to.clone(), t);
                }
                ep_files[idx].key = to.clone();
                actions.push((
                    ts,
                    ActionBody::FileRename {
                        file_id: ep_files[idx].file_id.clone(),
                        from: self.anon.path(&from.1),
                        to: self.anon.path(&to.1),
                    },
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The episode's entry for a file, made on first touch with the file's
    /// state before the episode. A file never seen before starts absent if
    /// it is being created, and otherwise from its first snapshot.
    fn touch(
        &mut self,
        ep_files: &mut Vec<EpFile>,
        key: &(String, String),
        first: Option<(Kind, &Known)>,
    ) -> usize {
        if let Some(i) = ep_files.iter().position(|f| f.key == *key) {
            return i;
        }
        let seen = self.files.contains_key(key);
        let file_id = self.file_id(key);
        let before = if seen {
            self.files[key].known.clone()
        } else {
            match first {
                Some((Kind::FileCreate, _)) => Known::Absent,
                Some((_, new)) => new.clone(),
                None => Known::Unknown,
            }
        };
        let path = self.anon.path(&key.1);
        ep_files.push(EpFile {
            key: key.clone(),
            file_id,
            initial: before.state(path),
            cur: before,
        });
        ep_files.len() - 1
    }
}

/// `text` with the workspace and file names of `names` replaced, where
/// they stand as words.
fn replace_names(names: &NameTable, text: &str) -> String {
    let Some((ac, repl)) = names else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    for m in ac.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if m.start() < at || word(before) || word(after) {
            continue;
        }
        out.push_str(&text[at..m.start()]);
        out.push_str(&repl[m.pattern().as_usize()]);
        at = m.end();
    }
    out.push_str(&text[at..]);
    out
}

fn mouse_action(m: MouseAcc) -> (i64, ActionBody) {
    (
        m.start,
        ActionBody::Mouse {
            duration_ms: (m.last - m.start) / MS,
            moves: m.moves,
            distance_px: m.distance.round() as i64,
            clicks: m.clicks,
            scroll: m.scroll,
        },
    )
}
