//! The export's tables, declared once: every column's name, type,
//! nullability, meaning, the action kinds that fill it, its JSONL key and
//! its ProgSnap2 column. An action becomes one flat row in exactly one
//! place ([`action_row`]) and a row becomes an action again in exactly one
//! place ([`action_from_row`]). The Parquet writer derives its schemas from
//! these tables, ProgSnap2 its `X-` columns, `verify` reads Parquet by these
//! names, and `docs/dataset.md`'s field tables are generated from them
//! ([`markdown`], checked by a test), so a new column or event kind is
//! declared here and nowhere else.

use super::model::{Action, ActionBody, Episode, FileStates, KeyTime};

/// A column's type, the same in every format that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    I32,
    I64,
    Str,
    /// Per key: its offset (a typing burst's `keys[].t`).
    KeyTimes,
    /// Per key: its class (`keys[].class`).
    KeyClasses,
}

impl Ty {
    /// The name docs/dataset.md uses.
    pub fn doc(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::I32 => "int32",
            Ty::I64 => "int64",
            Ty::Str => "string",
            Ty::KeyTimes => "list\\<int64\\>",
            Ty::KeyClasses => "list\\<string\\>",
        }
    }
}

/// Where an `actions` column goes in ProgSnap2's MainTable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ps2 {
    /// Not in the MainTable (carried by code states, or by a standard
    /// column computed from the action).
    Skip,
    /// `CodeStateSection`.
    Section,
    /// `DestinationCodeStateSection`.
    Destination,
    /// An extension column of this name.
    X(&'static str),
}

/// One column of one table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: Ty,
    pub nullable: bool,
    /// Free text: rarely repeated (so Parquet writes no dictionary for it),
    /// and the only kind of column whose ProgSnap2 cell may hold a newline.
    pub free_text: bool,
    /// The action types that fill it (`actions` only; empty: every row).
    pub kinds: &'static [&'static str],
    /// The key of the JSONL action object that holds it; `None` for a
    /// column the JSONL has elsewhere (the episode's fields).
    pub json: Option<&'static str>,
    pub ps2: Ps2,
    pub doc: &'static str,
}

const fn col(name: &'static str, ty: Ty, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        free_text: false,
        kinds: &[],
        json: Some(name),
        ps2: Ps2::Skip,
        doc,
    }
}

impl Column {
    const fn null(mut self) -> Column {
        self.nullable = true;
        self
    }
    const fn text(mut self) -> Column {
        self.free_text = true;
        self
    }
    const fn of(mut self, kinds: &'static [&'static str]) -> Column {
        self.kinds = kinds;
        self
    }
    const fn json(mut self, key: Option<&'static str>) -> Column {
        self.json = key;
        self
    }
    const fn ps2(mut self, ps2: Ps2) -> Column {
        self.ps2 = ps2;
        self
    }
    /// Whether an action of type `kind` may fill it.
    pub fn filled_by(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// Declares a table: an enum naming its columns (for indexing a row) and
/// the column list, in the same order by construction.
macro_rules! table {
    ($(#[$m:meta])* $enum:ident, $all:ident, [$($var:ident = $col:expr),* $(,)?]) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $enum { $($var),* }
        pub const $all: &[Column] = &[$($col),*];
    };
}

use Ty::{Bool, KeyClasses, KeyTimes, Str, I32, I64};

const FILE_KINDS: &[&str] = &[
    "edit",
    "file_switch",
    "file_create",
    "file_delete",
    "file_rename",
    "file_focus",
    "editor_edits",
    "navigation",
    "diagnostics",
    "editor_command",
];
const PATH_KINDS: &[&str] = &[
    "edit",
    "file_switch",
    "file_create",
    "file_delete",
    "file_focus",
    "editor_edits",
    "navigation",
    "diagnostics",
    "editor_command",
];
const RUNS: &[&str] = &["test_run", "build_run"];
const COMMANDS: &[&str] = &["shell_command", "test_run", "build_run"];

table!(
    /// A column of the `episodes` table: one row per episode.
    EpisodeCol, EPISODES, [
    SubjectId = col("subject_id", Str, "pseudonym of the consenting engineer (also the `subject_id=` directory)"),
    Week = col("week", Str, "ISO week the episode started in, `2026-W48` (also the `week=` directory): the only absolute time"),
    Schema = col("schema", I32, "dataset schema version"),
    EpisodeId = col("episode_id", Str, "episode pseudonym (32 hex chars)"),
    WorkspaceId = col("workspace_id", Str, "pseudonym of the workspace; null when no event named one").null(),
    DurationMs = col("duration_ms", I64, "from the episode's start to its last action's `t_ms` or later"),
    EndReason = col("end_reason", Str, "`idle`, `commit`, `workspace` or `end`"),
    NActions = col("n_actions", I64, "number of actions (rows in `actions`)").json(None),
    NFiles = col("n_files", I64, "files touched (`files` has two rows each)").json(None),
    NKeys = col("n_keys", I64, "keys typed, summed over the typing actions").json(None),
    NEdits = col("n_edits", I64, "`edit` and `file_create` actions").json(None),
    NGaps = col("n_gaps", I64, "`gap` actions").json(None),
]);

table!(
    /// A column of the `actions` table: one row per action.
    ActionCol, ACTIONS, [
    SubjectId = col("subject_id", Str, "as in `episodes`").json(None),
    Week = col("week", Str, "as in `episodes`").json(None),
    EpisodeId = col("episode_id", Str, "the episode the action belongs to").json(None),
    Seq = col("seq", I64, "position in the episode, from 0").ps2(Ps2::X("X-Seq")),
    TMs = col("t_ms", I64, "time since the episode's start"),
    Type = col("type", Str, "the action type (`typing`, `edit`, … `diagnostics`)").ps2(Ps2::X("X-ActionType")),
    FileId = col("file_id", Str, "file pseudonym, stable across renames").null().of(FILE_KINDS).ps2(Ps2::X("X-FileID")),
    Path = col("path", Str, "anonymized path relative to the workspace").null().of(PATH_KINDS).ps2(Ps2::Section),
    FromPath = col("from_path", Str, "path before the rename").null().of(&["file_rename"]).json(Some("from")).ps2(Ps2::Section),
    ToPath = col("to_path", Str, "path after the rename").null().of(&["file_rename"]).json(Some("to")).ps2(Ps2::Destination),
    App = col("app", Str, "application class; null when unknown").null().of(&["typing", "focus"]).ps2(Ps2::X("X-App")),
    Title = col("title", Str, "redacted window title (with `window.titles`)").null().text().of(&["focus"]).ps2(Ps2::X("X-Title")),
    Text = col("text", Str, "redacted typed text (with `keys.text`)").null().text().of(&["typing"]).ps2(Ps2::X("X-Text")),
    Diff = col("diff", Str, "unified diff from the previous state (with `editor.content`)").null().text().of(&["edit", "file_create"]),
    StateId = col("state_id", Str, "SHA-256 of the content after the action").null().of(&["edit", "file_create"]),
    DurationMs = col("duration_ms", I64, "length (`shell_command`: null when the end was not seen)").null()
        .of(&["typing", "mouse", "gap", "shell_command", "test_run", "build_run", "editor_edits", "navigation"]).ps2(Ps2::X("X-DurationMs")),
    Moves = col("moves", I64, "pointer moves (`mouse`), cursor moves (`navigation`)").null().of(&["mouse", "navigation"]).ps2(Ps2::X("X-Moves")),
    DistancePx = col("distance_px", I64, "pointer distance in pixels").null().of(&["mouse"]).ps2(Ps2::X("X-DistancePx")),
    Clicks = col("clicks", I64, "clicks").null().of(&["mouse"]).ps2(Ps2::X("X-Clicks")),
    Scroll = col("scroll", I64, "scroll amount").null().of(&["mouse"]).ps2(Ps2::X("X-Scroll")),
    Message = col("message", Str, "redacted commit message (with `editor.content`)").null().text().of(&["commit"]).ps2(Ps2::X("X-Message")),
    Reason = col("reason", Str, "why events are missing: `dropped`, `crashed`, `rate-limited`, `excluded`, `paused`").null().of(&["gap"]).ps2(Ps2::X("X-Reason")),
    Lost = col("lost", I64, "events lost").null().of(&["gap"]).ps2(Ps2::X("X-Lost")),
    KeyTMs = col("key_t_ms", KeyTimes, "per key, offset from the burst's start (re-synthesized); an empty list when no keys").null().of(&["typing"]).json(Some("keys")).ps2(Ps2::X("X-KeyTimesMs")),
    KeyClass = col("key_class", KeyClasses, "per key, its class, aligned with `key_t_ms`").null().of(&["typing"]).json(Some("keys")).ps2(Ps2::X("X-KeyClasses")),
    Command = col("command", Str, "the command line, redacted and anonymized; an editor command's id").null().text()
        .of(&["shell_command", "test_run", "build_run", "editor_command"]).ps2(Ps2::X("X-Command")),
    Cwd = col("cwd", Str, "working directory relative to the workspace, anonymized; `.` or `outside`").null().of(COMMANDS).ps2(Ps2::X("X-Cwd")),
    Exit = col("exit", I64, "exit status (`shell_command`: null when not seen)").null().of(COMMANDS).ps2(Ps2::X("X-Exit")),
    Runner = col("runner", Str, "`cargo`, `pytest`, `go`, `npm` or `other`").null().of(RUNS).ps2(Ps2::X("X-Runner")),
    Passed = col("passed", I64, "tests passed, where the runner's output said").null().of(RUNS).ps2(Ps2::X("X-Passed")),
    Failed = col("failed", I64, "tests failed, where the runner's output said").null().of(RUNS).ps2(Ps2::X("X-Failed")),
    Skipped = col("skipped", I64, "tests skipped, where the runner's output said").null().of(RUNS).ps2(Ps2::X("X-Skipped")),
    Language = col("language", Str, "the editor's language id, when sent").null().of(&["file_focus"]).ps2(Ps2::X("X-Language")),
    Edits = col("edits", I64, "edits made").null().of(&["editor_edits"]).ps2(Ps2::X("X-Edits")),
    InsertedBytes = col("inserted_bytes", I64, "bytes inserted").null().of(&["editor_edits"]).ps2(Ps2::X("X-InsertedBytes")),
    DeletedBytes = col("deleted_bytes", I64, "bytes deleted").null().of(&["editor_edits"]).ps2(Ps2::X("X-DeletedBytes")),
    Selections = col("selections", I64, "selections made").null().of(&["navigation"]).ps2(Ps2::X("X-Selections")),
    StartLine = col("start_line", I64, "the cursor's first line, 0-based").null().of(&["navigation"]).ps2(Ps2::X("X-StartLine")),
    EndLine = col("end_line", I64, "the cursor's last line, 0-based").null().of(&["navigation"]).ps2(Ps2::X("X-EndLine")),
    MinLine = col("min_line", I64, "lowest line reached or edited, 0-based (`editor_edits`: when sent)").null().of(&["navigation", "editor_edits"]).ps2(Ps2::X("X-MinLine")),
    MaxLine = col("max_line", I64, "highest line reached or edited, 0-based (`editor_edits`: when sent)").null().of(&["navigation", "editor_edits"]).ps2(Ps2::X("X-MaxLine")),
    Errors = col("errors", I64, "diagnostics of severity error").null().of(&["diagnostics"]).ps2(Ps2::X("X-Errors")),
    Warnings = col("warnings", I64, "diagnostics of severity warning").null().of(&["diagnostics"]).ps2(Ps2::X("X-Warnings")),
    Info = col("info", I64, "diagnostics of severity info").null().of(&["diagnostics"]).ps2(Ps2::X("X-Info")),
    Hints = col("hints", I64, "diagnostics of severity hint").null().of(&["diagnostics"]).ps2(Ps2::X("X-Hints")),
]);

table!(
    /// A column of the `files` table: two rows per file an episode touches.
    FileCol, FILES, [
    SubjectId = col("subject_id", Str, "as in `episodes`").json(None),
    Week = col("week", Str, "as in `episodes`").json(None),
    EpisodeId = col("episode_id", Str, "the episode").json(None),
    FileId = col("file_id", Str, "file pseudonym (stable across renames within an export)"),
    Which = col("which", Str, "`initial` (at the episode's start) or `final` (at its end)").json(None),
    Path = col("path", Str, "anonymized path at that point"),
    Exists = col("exists", Bool, "whether the file existed at that point"),
    Content = col("content", Str, "redacted content; null when absent or not recorded").null().text(),
    StateId = col("state_id", Str, "SHA-256 of `content`; null with it").null(),
]);

pub const N_EPISODES: usize = EPISODES.len();
pub const N_ACTIONS: usize = ACTIONS.len();
pub const N_FILES: usize = FILES.len();

/// One cell of a row being written, borrowed from the episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    I64(i64),
    Str(&'a str),
    /// A typing burst's keys: [`Ty::KeyTimes`] and [`Ty::KeyClasses`]
    /// columns each take their half.
    Keys(&'a [KeyTime]),
}

impl<'a> Val<'a> {
    fn opt_str(s: &'a Option<String>) -> Val<'a> {
        s.as_deref().map_or(Val::Null, Val::Str)
    }
    fn opt_i64(v: Option<i64>) -> Val<'a> {
        v.map_or(Val::Null, Val::I64)
    }
}

/// The `episodes` row of an episode.
pub fn episode_row(ep: &Episode) -> [Val<'_>; N_EPISODES] {
    use EpisodeCol as E;
    let count = |f: fn(&ActionBody) -> bool| ep.actions.iter().filter(|a| f(&a.body)).count();
    let mut r = [Val::Null; N_EPISODES];
    r[E::SubjectId as usize] = Val::Str(&ep.subject_id);
    r[E::Week as usize] = Val::Str(&ep.week);
    r[E::Schema as usize] = Val::I64(i64::from(ep.schema));
    r[E::EpisodeId as usize] = Val::Str(&ep.episode_id);
    r[E::WorkspaceId as usize] = Val::opt_str(&ep.workspace_id);
    r[E::DurationMs as usize] = Val::I64(ep.duration_ms);
    r[E::EndReason as usize] = Val::Str(ep.end_reason.as_str());
    r[E::NActions as usize] = Val::I64(ep.actions.len() as i64);
    r[E::NFiles as usize] = Val::I64(ep.files.len() as i64);
    r[E::NKeys as usize] = Val::I64(ep.key_count() as i64);
    r[E::NEdits as usize] =
        Val::I64(
            count(|b| matches!(b, ActionBody::Edit { .. } | ActionBody::FileCreate { .. })) as i64,
        );
    r[E::NGaps as usize] = Val::I64(count(|b| matches!(b, ActionBody::Gap { .. })) as i64);
    r
}

/// The two `files` rows (`initial`, `final`) of a file of an episode.
pub fn file_rows<'a>(ep: &'a Episode, f: &'a FileStates) -> [[Val<'a>; N_FILES]; 2] {
    use FileCol as F;
    [("initial", &f.initial), ("final", &f.final_)].map(|(which, s)| {
        let mut r = [Val::Null; N_FILES];
        r[F::SubjectId as usize] = Val::Str(&ep.subject_id);
        r[F::Week as usize] = Val::Str(&ep.week);
        r[F::EpisodeId as usize] = Val::Str(&ep.episode_id);
        r[F::FileId as usize] = Val::Str(&f.file_id);
        r[F::Which as usize] = Val::Str(which);
        r[F::Path as usize] = Val::Str(&s.path);
        r[F::Exists as usize] = Val::Bool(s.exists);
        r[F::Content as usize] = Val::opt_str(&s.content);
        r[F::StateId as usize] = Val::opt_str(&s.state_id);
        r
    })
}

/// The `actions` row of an action: the one place an action is flattened.
pub fn action_row<'a>(ep: &'a Episode, a: &'a Action) -> [Val<'a>; N_ACTIONS] {
    use ActionCol as C;
    let mut r = [Val::Null; N_ACTIONS];
    let mut set = |c: ActionCol, v: Val<'a>| r[c as usize] = v;
    set(C::SubjectId, Val::Str(&ep.subject_id));
    set(C::Week, Val::Str(&ep.week));
    set(C::EpisodeId, Val::Str(&ep.episode_id));
    set(C::Seq, Val::I64(i64::from(a.seq)));
    set(C::TMs, Val::I64(a.t_ms));
    set(C::Type, Val::Str(a.body.type_name()));
    let s = Val::Str;
    let n = Val::I64;
    match &a.body {
        ActionBody::Typing {
            app,
            text,
            duration_ms,
            keys,
        } => {
            set(C::App, Val::opt_str(app));
            set(C::Text, Val::opt_str(text));
            set(C::DurationMs, n(*duration_ms));
            set(C::KeyTMs, Val::Keys(keys));
            set(C::KeyClass, Val::Keys(keys));
        }
        ActionBody::Edit {
            file_id,
            path,
            diff,
            state_id,
        }
        | ActionBody::FileCreate {
            file_id,
            path,
            diff,
            state_id,
        } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
            set(C::Diff, Val::opt_str(diff));
            set(C::StateId, Val::opt_str(state_id));
        }
        ActionBody::FileSwitch { file_id, path } | ActionBody::FileDelete { file_id, path } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
        }
        ActionBody::FileRename { file_id, from, to } => {
            set(C::FileId, s(file_id));
            set(C::FromPath, s(from));
            set(C::ToPath, s(to));
        }
        ActionBody::Focus { app, title } => {
            set(C::App, Val::opt_str(app));
            set(C::Title, Val::opt_str(title));
        }
        ActionBody::Mouse {
            duration_ms,
            moves,
            distance_px,
            clicks,
            scroll,
        } => {
            set(C::DurationMs, n(*duration_ms));
            set(C::Moves, n(i64::from(*moves)));
            set(C::DistancePx, n(*distance_px));
            set(C::Clicks, n(i64::from(*clicks)));
            set(C::Scroll, n(*scroll));
        }
        ActionBody::Commit { message } => set(C::Message, Val::opt_str(message)),
        ActionBody::Gap {
            reason,
            duration_ms,
            lost,
        } => {
            set(C::Reason, s(reason));
            set(C::DurationMs, n(*duration_ms));
            set(C::Lost, n(*lost));
        }
        ActionBody::ShellCommand {
            command,
            cwd,
            exit,
            duration_ms,
        } => {
            set(C::Command, s(command));
            set(C::Cwd, s(cwd));
            set(C::Exit, Val::opt_i64(*exit));
            set(C::DurationMs, Val::opt_i64(*duration_ms));
        }
        ActionBody::TestRun(r) | ActionBody::BuildRun(r) => {
            set(C::Command, s(&r.command));
            set(C::Cwd, s(&r.cwd));
            set(C::Runner, s(&r.runner));
            set(C::Exit, n(r.exit));
            set(C::DurationMs, n(r.duration_ms));
            set(C::Passed, Val::opt_i64(r.passed));
            set(C::Failed, Val::opt_i64(r.failed));
            set(C::Skipped, Val::opt_i64(r.skipped));
        }
        ActionBody::FileFocus {
            file_id,
            path,
            language,
        } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
            set(C::Language, Val::opt_str(language));
        }
        ActionBody::EditorEdits {
            file_id,
            path,
            duration_ms,
            edits,
            inserted_bytes,
            deleted_bytes,
            min_line,
            max_line,
        } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
            set(C::DurationMs, n(*duration_ms));
            set(C::Edits, n(*edits));
            set(C::InsertedBytes, n(*inserted_bytes));
            set(C::DeletedBytes, n(*deleted_bytes));
            set(C::MinLine, Val::opt_i64(*min_line));
            set(C::MaxLine, Val::opt_i64(*max_line));
        }
        ActionBody::Navigation {
            file_id,
            path,
            duration_ms,
            moves,
            selections,
            start_line,
            end_line,
            min_line,
            max_line,
        } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
            set(C::DurationMs, n(*duration_ms));
            set(C::Moves, n(i64::from(*moves)));
            set(C::Selections, n(i64::from(*selections)));
            set(C::StartLine, n(*start_line));
            set(C::EndLine, n(*end_line));
            set(C::MinLine, n(*min_line));
            set(C::MaxLine, n(*max_line));
        }
        ActionBody::EditorCommand {
            command,
            file_id,
            path,
        } => {
            set(C::Command, s(command));
            set(C::FileId, Val::opt_str(file_id));
            set(C::Path, Val::opt_str(path));
        }
        ActionBody::Diagnostics {
            file_id,
            path,
            errors,
            warnings,
            info,
            hints,
        } => {
            set(C::FileId, s(file_id));
            set(C::Path, s(path));
            set(C::Errors, n(*errors));
            set(C::Warnings, n(*warnings));
            set(C::Info, n(*info));
            set(C::Hints, n(*hints));
        }
    }
    r
}

/// One cell read back from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Owned {
    Null,
    Bool(bool),
    I64(i64),
    Str(String),
    I64s(Vec<i64>),
    Strs(Vec<String>),
}

/// A row read back, by column, remembering which columns were read: every
/// column an action's type does not read must be null, so that nothing
/// rides along in another type's columns.
pub struct ReadRow<'c> {
    cols: &'c [Column],
    cells: Vec<Owned>,
    used: Vec<bool>,
}

impl<'c> ReadRow<'c> {
    /// `cells` in the order of `cols`.
    pub fn new(cols: &'c [Column], cells: Vec<Owned>) -> ReadRow<'c> {
        ReadRow {
            used: vec![false; cells.len()],
            cols,
            cells,
        }
    }

    fn take(&mut self, i: usize) -> Result<Owned, String> {
        let name = self.cols.get(i).map_or("?", |c| c.name);
        let cell = self
            .cells
            .get_mut(i)
            .ok_or_else(|| format!("row without column {name}"))?;
        self.used[i] = true;
        Ok(std::mem::replace(cell, Owned::Null))
    }

    fn name(&self, i: usize) -> &'static str {
        self.cols.get(i).map_or("?", |c| c.name)
    }

    pub fn opt_str(&mut self, i: usize) -> Result<Option<String>, String> {
        match self.take(i)? {
            Owned::Null => Ok(None),
            Owned::Str(s) => Ok(Some(s)),
            other => Err(format!(
                "{}: expected a string, found {other:?}",
                self.name(i)
            )),
        }
    }
    pub fn str(&mut self, i: usize) -> Result<String, String> {
        let name = self.name(i);
        self.opt_str(i)?.ok_or_else(|| format!("{name} is null"))
    }
    pub fn opt_i64(&mut self, i: usize) -> Result<Option<i64>, String> {
        match self.take(i)? {
            Owned::Null => Ok(None),
            Owned::I64(v) => Ok(Some(v)),
            other => Err(format!(
                "{}: expected an integer, found {other:?}",
                self.name(i)
            )),
        }
    }
    pub fn i64(&mut self, i: usize) -> Result<i64, String> {
        let name = self.name(i);
        self.opt_i64(i)?.ok_or_else(|| format!("{name} is null"))
    }
    pub fn u32(&mut self, i: usize) -> Result<u32, String> {
        let v = self.i64(i)?;
        u32::try_from(v).map_err(|_| format!("{}: {v} out of range", self.name(i)))
    }
    pub fn bool(&mut self, i: usize) -> Result<bool, String> {
        match self.take(i)? {
            Owned::Bool(b) => Ok(b),
            other => Err(format!(
                "{}: expected a boolean, found {other:?}",
                self.name(i)
            )),
        }
    }

    /// Fails on a column that was not read and is not null.
    pub fn finish(self, what: &str) -> Result<(), String> {
        match (0..self.cells.len()).find(|&i| !self.used[i] && self.cells[i] != Owned::Null) {
            Some(i) => Err(format!(
                "column {} is set in a {what} row, which has no such field",
                self.name(i)
            )),
            None => Ok(()),
        }
    }
}

/// Reads an `actions` row back into its action: the inverse of
/// [`action_row`]. The row's `episode_id`, `subject_id` and `week` are
/// left for the caller.
///
/// The row becomes the JSONL action object through each column's declared
/// JSONL key, and serde reads that as the JSONL reader does: there is no
/// second hand-written mapping to keep in step with [`action_row`]. A
/// cell set in a column the row's type does not fill (by the declaration)
/// is an error, so that nothing rides along in another type's columns.
pub fn action_from_row(r: &mut ReadRow<'_>) -> Result<Action, String> {
    let kind = match r.cells.get(ActionCol::Type as usize) {
        Some(Owned::Str(k)) => k.clone(),
        other => return Err(format!("type: expected a string, found {other:?}")),
    };
    let mut obj = serde_json::Map::new();
    let (mut times, mut classes) = (None, None);
    for i in 0..r.cols.len() {
        let Some(key) = r.cols[i].json else {
            continue;
        };
        let cell = r.take(i)?;
        if cell != Owned::Null && !r.cols[i].filled_by(&kind) {
            return Err(format!(
                "column {} is set in a {kind} row, which has no such field",
                r.name(i)
            ));
        }
        let value = match cell {
            Owned::Null => continue,
            Owned::I64s(v) => {
                times = Some(v);
                continue;
            }
            Owned::Strs(v) => {
                classes = Some(v);
                continue;
            }
            Owned::Bool(b) => serde_json::Value::from(b),
            Owned::I64(v) => serde_json::Value::from(v),
            Owned::Str(s) => serde_json::Value::from(s),
        };
        obj.insert(key.to_owned(), value);
    }
    if kind == "typing" {
        let (times, classes) = (times.unwrap_or_default(), classes.unwrap_or_default());
        if times.len() != classes.len() {
            return Err("key_t_ms and key_class differ in length".into());
        }
        let keys: Vec<KeyTime> = times
            .into_iter()
            .zip(classes)
            .map(|(t, class)| KeyTime { t, class })
            .collect();
        obj.insert("keys".into(), serde_json::json!(keys));
    }
    serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| format!("a {kind} row: {e}"))
}

/// A table's columns as the Markdown table `docs/dataset.md` shows.
pub fn markdown(cols: &[Column]) -> String {
    let with_kinds = cols.iter().any(|c| !c.kinds.is_empty());
    let mut out = String::from(if with_kinds {
        "| column | type | nullable | filled by | meaning |\n|---|---|---|---|---|\n"
    } else {
        "| column | type | nullable | meaning |\n|---|---|---|---|\n"
    });
    for c in cols {
        let kinds = if c.kinds.is_empty() {
            "every row".to_string()
        } else {
            c.kinds
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let null = if c.nullable { "yes" } else { "no" };
        let kinds = if with_kinds {
            format!(" {kinds} |")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| `{}` | {} | {null} |{kinds} {} |\n",
            c.name,
            c.ty.doc(),
            c.doc
        ));
    }
    out
}

/// ProgSnap2's extension columns taken from `actions`, as Markdown.
pub fn markdown_ps2() -> String {
    let mut out = String::from("| column | from `actions` | filled by |\n|---|---|---|\n");
    for c in ACTIONS {
        let name = match c.ps2 {
            Ps2::X(n) => n,
            Ps2::Section => "CodeStateSection",
            Ps2::Destination => "DestinationCodeStateSection",
            Ps2::Skip => continue,
        };
        let kinds = if c.kinds.is_empty() {
            "every action".to_string()
        } else {
            c.kinds.join(", ")
        };
        out.push_str(&format!("| {name} | `{}` | {kinds} |\n", c.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_kinds_are_action_types() {
        for cols in [EPISODES, ACTIONS, FILES] {
            let mut names: Vec<&str> = cols.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), cols.len());
            for c in cols {
                for k in c.kinds {
                    assert!(ActionBody::TYPE_NAMES.contains(k), "{}: {k}", c.name);
                }
                assert!(c.nullable || c.kinds.is_empty(), "{}", c.name);
            }
        }
        assert_eq!(ACTIONS[ActionCol::Hints as usize].name, "hints");
        assert_eq!(EPISODES[EpisodeCol::NGaps as usize].name, "n_gaps");
        assert_eq!(FILES[FileCol::StateId as usize].name, "state_id");
    }
}
