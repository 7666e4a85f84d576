//! The ProgSnap2 writer and its checker: `progsnap2/` in an export, for
//! tools that read the standard format for programming process data
//! (ProgSnap2, spec version 6).
//!
//! ```text
//! progsnap2/DatasetMetadata.csv       Property,Value
//! progsnap2/MainTable.csv             one row per event, columns in [`columns`]
//! progsnap2/CodeStates/CodeStates.csv CodeStateID,CodeStateSection,Contents (Table, the default)
//! progsnap2/CodeStates/<id>/...       one directory per code state (Directory)
//! ```
//!
//! Each episode is a session: `Session.Start`, one event per action (see
//! [`event_type`]), `Session.End`. `SessionID` is the episode id and `Order`
//! counts events within the session, so the metadata says ordering is
//! `Restricted` to `SubjectID;SessionID`. There are no timestamps: a row
//! carries its offset from the episode's start (`X-OffsetMs`) and the
//! episode's ISO week (`X-Week`), because the model holds no other time.
//! The `X-` columns after the standard ones come from the `actions` table's
//! declaration ([`super::columns`]); the standard ones are computed here.
//!
//! A code state is the episode's workspace as far as it was recorded: every
//! file of the episode that exists at that event and whose content was
//! recorded, at its (anonymized, relative) path. Files without recorded
//! content are left out; an event at which no file has recorded content has
//! an empty `CodeStateID`, which the spec reads as "unknown". Intermediate
//! contents come from [`replay::replay`], so a code state is exactly what
//! the diffs in the JSONL give. Code states are written in the spec's Table
//! representation (one `CodeStates.csv` row per file of a state: what most
//! readers load) or, with `--progsnap2-codestates directory`, in its
//! Directory representation; `DatasetMetadata.csv` says which.
//!
//! A `CodeStateID` is the SHA-256 (hex) of the lines `<path>\t<state_id>\n`
//! over the state's files sorted by path, `state_id` being the SHA-256 of the
//! content ([`replay::state_id`]). Identical states are written once, so
//! code states grow with distinct states, not with events, and anyone can
//! recompute an id from its files ([`check`] does).
//!
//! A `File.Edit` (and `File.Create`) row also carries the change as one
//! replacement: `SourceLocation` `Text:<offset>` (0-based, in characters of
//! the file before the change), `DeleteText` and `InsertText`, so readers
//! can rebuild each file without the code states. Newlines inside (quoted)
//! cells appear only in the free-text columns: `InsertText`, `DeleteText`,
//! `X-Text`, `X-Title`, `X-Message`, `X-Command`; in every other column a
//! newline or carriage return is written as a space, and [`check`] refuses
//! one. Memory stays bounded by one episode: rows are streamed, and code
//! states are written when they first arise.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::columns::{self as cols, ActionCol, Ps2, Ty, Val};
use super::model::{Action, ActionBody, Episode, FileStates, SCHEMA_VERSION};
use super::replay;
use super::sink::{io_err, DatasetWriter, Written};
use super::ExportError;

/// The format's directory inside an export.
pub const DIR: &str = "progsnap2";
pub const METADATA_FILE: &str = "DatasetMetadata.csv";
pub const MAIN_TABLE_FILE: &str = "MainTable.csv";
pub const CODE_STATES_DIR: &str = "CodeStates";
/// The code states' table, inside [`CODE_STATES_DIR`] (Table representation).
pub const CODE_STATES_FILE: &str = "CodeStates.csv";
/// `CodeStates.csv`'s columns.
pub const CODE_STATES_COLUMNS: [&str; 3] = ["CodeStateID", "CodeStateSection", "Contents"];

/// The ProgSnap2 spec version the files follow.
pub const SPEC_VERSION: &str = "6";

/// The standard columns, in order, before the `X-` ones: the spec's
/// required columns, then the optional ones we fill.
pub const STANDARD_COLUMNS: [&str; 21] = [
    "EventType",
    "EventID",
    "Order",
    "SubjectID",
    "ToolInstances",
    "CodeStateID",
    "SessionID",
    "CodeStateSection",
    "DestinationCodeStateSection",
    "EditType",
    "SourceLocation",
    "InsertText",
    "DeleteText",
    "CompileResult",
    "ExecutionID",
    "TestID",
    "ExecutionResult",
    "Score",
    // Per episode, not per action.
    "X-Week",
    "X-WorkspaceID",
    // `seq` and `t_ms`, which Session rows have too.
    "X-OffsetMs",
];

/// The standard columns that may hold a newline.
const MULTILINE_STANDARD: [&str; 2] = ["InsertText", "DeleteText"];

/// The `actions` columns a row's `X-` columns come from, in order.
fn x_columns() -> impl Iterator<Item = (usize, &'static str)> {
    cols::ACTIONS
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c.ps2 {
            Ps2::X(name) if c.name != "t_ms" => Some((i, name)),
            _ => None,
        })
}

/// The MainTable's columns, in order: [`STANDARD_COLUMNS`], then one `X-`
/// column per `actions` column that has one.
pub fn columns() -> &'static [&'static str] {
    static COLS: OnceLock<Vec<&'static str>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut v = STANDARD_COLUMNS.to_vec();
        v.extend(x_columns().map(|(_, n)| n));
        v
    })
}

/// The MainTable columns that hold integers (or nothing).
pub fn int_columns() -> &'static [&'static str] {
    static COLS: OnceLock<Vec<&'static str>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut v = vec!["Order", "X-OffsetMs"];
        v.extend(
            x_columns()
                .filter(|(i, _)| cols::ACTIONS[*i].ty == Ty::I64)
                .map(|(_, n)| n),
        );
        v
    })
}

/// The MainTable columns where a newline may appear (inside quotes).
pub fn multiline_columns() -> &'static [&'static str] {
    static COLS: OnceLock<Vec<&'static str>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut v = MULTILINE_STANDARD.to_vec();
        v.extend(
            x_columns()
                .filter(|(i, _)| cols::ACTIONS[*i].free_text)
                .map(|(_, n)| n),
        );
        v
    })
}

pub const SESSION_START: &str = "Session.Start";
pub const SESSION_END: &str = "Session.End";

/// Every event type a Candor dataset uses.
pub const EVENT_TYPES: [&str; 19] = [
    SESSION_START,
    SESSION_END,
    "File.Create",
    "File.Edit",
    "File.Delete",
    "File.Rename",
    "File.Focus",
    "X-Keystroke",
    "X-WindowFocus",
    "X-Mouse",
    "X-Commit",
    "X-Gap",
    "Run.Program",
    "Run.Test",
    "Compile",
    "X-EditorEdits",
    "X-Navigation",
    "X-EditorCommand",
    "X-Diagnostics",
];

/// The event type an action is written as; `verify` uses it to count the
/// JSONL's actions the way [`check`] counts the MainTable's rows.
pub fn event_type(body: &ActionBody) -> &'static str {
    match body {
        ActionBody::Typing { .. } => "X-Keystroke",
        ActionBody::Edit { .. } => "File.Edit",
        ActionBody::FileSwitch { .. } => "File.Focus",
        ActionBody::FileCreate { .. } => "File.Create",
        ActionBody::FileDelete { .. } => "File.Delete",
        ActionBody::FileRename { .. } => "File.Rename",
        ActionBody::Focus { .. } => "X-WindowFocus",
        ActionBody::Mouse { .. } => "X-Mouse",
        ActionBody::Commit { .. } => "X-Commit",
        ActionBody::Gap { .. } => "X-Gap",
        ActionBody::ShellCommand { .. } => "Run.Program",
        ActionBody::TestRun(_) => "Run.Test",
        ActionBody::BuildRun(_) => "Compile",
        ActionBody::FileFocus { .. } => "File.Focus",
        ActionBody::EditorEdits { .. } => "X-EditorEdits",
        ActionBody::Navigation { .. } => "X-Navigation",
        ActionBody::EditorCommand { .. } => "X-EditorCommand",
        ActionBody::Diagnostics { .. } => "X-Diagnostics",
    }
}

/// A process that exited with one of these (128 + SIGHUP, SIGINT,
/// SIGKILL, SIGALRM, SIGTERM) was stopped, by the user or the system:
/// ProgSnap2's `Timeout`.
const STOPPED: [i64; 5] = [129, 130, 137, 142, 143];

/// `ExecutionResult` of a `Run.Program`: `Success` on exit 0, `Timeout`
/// when stopped by a signal, `Error` otherwise, and `X-Unknown` when the
/// exit status was not seen (the shell or the daemon ended first): the
/// column is required, and none of the spec's values would be true.
pub fn program_result(exit: Option<i64>) -> &'static str {
    match exit {
        None => UNKNOWN_RESULT,
        Some(0) => "Success",
        Some(e) if STOPPED.contains(&e) => "Timeout",
        Some(_) => "Error",
    }
}

/// The `ExecutionResult` of a program whose end was not seen.
pub const UNKNOWN_RESULT: &str = "X-Unknown";

/// `ExecutionResult` of a `Run.Test` (one row for the whole run):
/// `TestFailed` when a test failed, `Success` on exit 0, `Timeout` when
/// stopped, `Error` otherwise (it failed without a failing test: a build
/// error, a crash).
pub fn test_result(exit: i64, failed: Option<i64>) -> &'static str {
    match (exit, failed) {
        (_, Some(f)) if f > 0 => "TestFailed",
        (0, _) => "Success",
        (e, _) if STOPPED.contains(&e) => "Timeout",
        _ => "Error",
    }
}

/// `Score` of a `Run.Test`: the share of tests that passed, from the
/// runner's counts (skipped tests left out); empty without counts.
pub fn test_score(passed: Option<i64>, failed: Option<i64>) -> String {
    let (p, f) = (passed.unwrap_or(0), failed.unwrap_or(0));
    // In floats: the counts come from a client and may be anything an i64
    // holds.
    let (p, f) = (p.max(0) as f64, f.max(0) as f64);
    if passed.is_none() && failed.is_none() || p + f <= 0.0 {
        return String::new();
    }
    let score = p / (p + f);
    // Four decimals: enough to tell 1 failure in 10,000 from none.
    let s = format!("{score:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// How code states are written (`--progsnap2-codestates`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CodeStates {
    /// `CodeStates/CodeStates.csv`: what most readers load.
    #[default]
    Table,
    /// `CodeStates/<CodeStateID>/<path>`.
    Directory,
}

impl CodeStates {
    /// The spec's name, as in `DatasetMetadata.csv`.
    pub fn name(self) -> &'static str {
        match self {
            CodeStates::Table => "Table",
            CodeStates::Directory => "Directory",
        }
    }

    /// Parses `table` or `directory`.
    pub fn parse(s: &str) -> Result<CodeStates, ExportError> {
        match s {
            "table" => Ok(CodeStates::Table),
            "directory" => Ok(CodeStates::Directory),
            other => Err(ExportError::Option(format!(
                "unknown code-state representation `{other}`: choose table or directory"
            ))),
        }
    }
}

/// The `DatasetMetadata.csv` rows, in order.
fn metadata(rep: CodeStates) -> Vec<(&'static str, String)> {
    vec![
        ("Version", SPEC_VERSION.into()),
        // Offsets within an episode come from one machine's clock.
        ("IsEventOrderingConsistent", "true".into()),
        ("EventOrderScope", "Restricted".into()),
        ("EventOrderScopeColumns", "SubjectID;SessionID".into()),
        ("CodeStateRepresentation", rep.name().into()),
        ("X-SchemaVersion", SCHEMA_VERSION.to_string()),
    ]
}

fn tool_instances() -> String {
    format!("Candor {}", env!("CARGO_PKG_VERSION"))
}

fn rel(name: &str) -> String {
    format!("{DIR}/{name}")
}

fn invalid(file: &str, problem: impl Into<String>) -> ExportError {
    ExportError::Invalid {
        file: rel(file),
        problem: problem.into(),
    }
}

fn csv_err(path: &Path, file: &str, e: csv::Error) -> ExportError {
    let problem = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io_err(path, io),
        _ => invalid(file, problem),
    }
}

/// Refuses a path that could escape a code state's directory or that a
/// reader on another system could not recreate; `what` says where it came
/// from.
fn check_path(path: &str, what: &dyn Fn() -> String) -> Result<(), ExportError> {
    let bad = |why: &str| invalid(CODE_STATES_DIR, format!("{}: path {path:?} {why}", what()));
    if path.is_empty() {
        return Err(bad("is empty"));
    }
    if path.starts_with('/') {
        return Err(bad("is absolute"));
    }
    // Tabs and newlines would also break the CodeStateID's line encoding.
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("has a control character or a backslash"));
    }
    for part in path.split('/') {
        match part {
            ".." => return Err(bad("has a `..` component")),
            "" | "." => return Err(bad("has an empty or `.` component")),
            _ => {}
        }
    }
    Ok(())
}

/// The id of a code state from its `(path, state_id)` pairs, sorted by path.
fn code_state_id<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (path, id) in files {
        h.update(path.as_bytes());
        h.update(b"\t");
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn is_code_state_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One live file of the workspace being replayed.
struct Live {
    path: String,
    /// (content, its state id); `None` when not recorded.
    content: Option<(String, String)>,
}

/// The workspace during one episode, by file id.
#[derive(Default)]
struct Workspace {
    files: BTreeMap<String, Live>,
}

impl Workspace {
    fn from_states<'a>(
        files: &'a [FileStates],
        pick: impl Fn(&'a FileStates) -> &'a super::model::CodeState,
    ) -> Workspace {
        let mut ws = Workspace::default();
        for f in files {
            let s = pick(f);
            if s.exists {
                ws.set(&f.file_id, &s.path, s.content.clone());
            }
        }
        ws
    }

    /// Puts a file at a path. Another file already there is replaced, as a
    /// rename or create onto an existing path replaces it on disk.
    fn set(&mut self, file_id: &str, path: &str, content: Option<String>) {
        self.files
            .retain(|id, live| id == file_id || live.path != path);
        let content = content.map(|c| {
            let id = replay::state_id(&c);
            (c, id)
        });
        self.files.insert(
            file_id.to_string(),
            Live {
                path: path.to_string(),
                content,
            },
        );
    }

    fn rename(&mut self, file_id: &str, to: &str) {
        let content = self.files.remove(file_id).and_then(|l| l.content);
        match content {
            Some((c, id)) => {
                self.files.retain(|_, live| live.path != to);
                self.files.insert(
                    file_id.to_string(),
                    Live {
                        path: to.to_string(),
                        content: Some((c, id)),
                    },
                );
            }
            None => self.set(file_id, to, None),
        }
    }

    /// The recorded files, by path.
    fn recorded(&self) -> BTreeMap<&str, (&str, &str)> {
        self.files
            .values()
            .filter_map(|l| {
                l.content
                    .as_ref()
                    .map(|(c, id)| (l.path.as_str(), (c.as_str(), id.as_str())))
            })
            .collect()
    }
}

/// The standard cells of one MainTable row that are not taken from the
/// `actions` row; empty strings are empty cells.
#[derive(Default)]
struct Std {
    event_type: &'static str,
    event_id: String,
    order: u64,
    code_state_id: String,
    /// Set only where the action has no path column (`Compile`).
    section: String,
    edit_type: &'static str,
    source_location: String,
    insert: String,
    delete: String,
    compile_result: &'static str,
    execution_id: String,
    test_id: String,
    execution_result: &'static str,
    score: String,
}

/// The change from `old` to `new` as one replacement: the character offset
/// where they first differ, the text removed there and the text inserted.
fn replacement(old: &str, new: &str) -> (usize, String, String) {
    let prefix: usize = old
        .char_indices()
        .zip(new.chars())
        .take_while(|((_, a), b)| a == b)
        .count();
    let start = old.char_indices().nth(prefix).map_or(old.len(), |(i, _)| i);
    let nstart = new.char_indices().nth(prefix).map_or(new.len(), |(i, _)| i);
    let (old_rest, new_rest) = (&old[start..], &new[nstart..]);
    let suffix = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let suffix = suffix.min(old_rest.len()).min(new_rest.len());
    (
        prefix,
        old_rest[..old_rest.len() - suffix].to_string(),
        new_rest[..new_rest.len() - suffix].to_string(),
    )
}

/// A short, stable id for a test command: the same command (redacted) is
/// the same `TestID` across runs.
fn test_id(command: &str) -> String {
    hex::encode(&Sha256::digest(command.as_bytes())[..8])
}

/// The EditType of a save, from its diff's line counts: what the spec's
/// enum can say about a change seen only at save granularity.
fn edit_type(diff: Option<&str>) -> &'static str {
    let Some(diff) = diff else {
        return "GenericEdit";
    };
    let (mut adds, mut dels) = (0, 0);
    // The `---`/`+++` header precedes the first hunk; inside hunks a removed
    // line `-- x` would look like a header, so only count after `@@`.
    for line in diff.lines().skip_while(|l| !l.starts_with("@@")) {
        match line.as_bytes().first() {
            Some(b'+') => adds += 1,
            Some(b'-') => dels += 1,
            _ => {}
        }
    }
    match (adds > 0, dels > 0) {
        (true, false) => "Insert",
        (false, true) => "Delete",
        (true, true) => "Replace",
        (false, false) => "GenericEdit",
    }
}

/// Writes `progsnap2/` into an export directory.
pub struct ProgSnap2Writer {
    root: PathBuf,
    main_path: PathBuf,
    main: csv::Writer<File>,
    tool: String,
    /// Episode ids already written: EventIDs are built from them.
    episodes: HashSet<String>,
    /// Code states already written.
    states_written: HashSet<String>,
    /// Table representation: `CodeStates.csv`.
    table: Option<csv::Writer<File>>,
    /// Directory representation: code states go to disk on their own
    /// thread: on a file system where a mkdir or a create costs half a
    /// millisecond of kernel time, the builder would otherwise wait on each.
    disk: Option<StateDisk>,
    /// Every code-state file, hashed as it was written (Directory).
    state_files: Vec<Written>,
}

/// Creates `progsnap2/` in `dir` (which must not have one yet) and writes
/// its metadata and the MainTable's header.
pub fn create(dir: &Path, rep: CodeStates) -> Result<ProgSnap2Writer, ExportError> {
    let root = dir.join(DIR);
    super::sink::create_dir(&root).map_err(|e| io_err(&root, e))?;
    let states = root.join(CODE_STATES_DIR);
    super::sink::create_dir(&states).map_err(|e| io_err(&states, e))?;

    let meta_path = root.join(METADATA_FILE);
    let mut meta = csv_file(&meta_path)?;
    let wrote = (|| {
        meta.write_record(["Property", "Value"])?;
        for (k, v) in metadata(rep) {
            meta.write_record([k, v.as_str()])?;
        }
        meta.flush()?;
        Ok::<_, csv::Error>(())
    })();
    wrote.map_err(|e| csv_err(&meta_path, METADATA_FILE, e))?;
    close_csv(meta, &meta_path)?;

    let main_path = root.join(MAIN_TABLE_FILE);
    let mut main = csv_file(&main_path)?;
    main.write_record(columns())
        .map_err(|e| csv_err(&main_path, MAIN_TABLE_FILE, e))?;
    let table = match rep {
        CodeStates::Table => {
            let path = states.join(CODE_STATES_FILE);
            let mut t = csv_file(&path)?;
            t.write_record(CODE_STATES_COLUMNS)
                .map_err(|e| csv_err(&path, CODE_STATES_FILE, e))?;
            Some(t)
        }
        CodeStates::Directory => None,
    };
    Ok(ProgSnap2Writer {
        root,
        main_path,
        main,
        tool: tool_instances(),
        episodes: HashSet::new(),
        states_written: HashSet::new(),
        disk: (rep == CodeStates::Directory).then(StateDisk::start),
        table,
        state_files: Vec::new(),
    })
}

fn csv_file(path: &Path) -> Result<csv::Writer<File>, ExportError> {
    let file = super::sink::create_file(path).map_err(|e| io_err(path, e))?;
    Ok(csv::WriterBuilder::new()
        .buffer_capacity(1 << 20)
        .from_writer(file))
}

fn close_csv(w: csv::Writer<File>, path: &Path) -> Result<(), ExportError> {
    let file = w.into_inner().map_err(|e| io_err(path, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(path, e))
}

/// A cell of a column where a reader does not expect a line break.
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

impl ProgSnap2Writer {
    /// Writes one row: the standard cells, then the `X-` cells of `flat`
    /// (the action's `actions` row, or a Session row's few cells).
    fn write_row(
        &mut self,
        ep: &Episode,
        std: &Std,
        flat: &[Val<'_>; cols::N_ACTIONS],
    ) -> Result<(), ExportError> {
        let subject = if ep.subject_id.is_empty() {
            // The spec's marker for an unknown subject.
            "UNKNOWN"
        } else {
            ep.subject_id.as_str()
        };
        let (mut section, mut destination) = (std.section.as_str(), "");
        for (c, v) in cols::ACTIONS.iter().zip(flat) {
            if let Val::Str(s) = v {
                match c.ps2 {
                    Ps2::Section => section = s,
                    Ps2::Destination => destination = s,
                    _ => {}
                }
            }
        }
        let order = std.order.to_string();
        let offset = match flat[ActionCol::TMs as usize] {
            Val::I64(t) => t.to_string(),
            _ => String::new(),
        };
        let standard: [&str; STANDARD_COLUMNS.len()] = [
            std.event_type,
            &std.event_id,
            &order,
            subject,
            &self.tool,
            &std.code_state_id,
            &ep.episode_id,
            section,
            destination,
            std.edit_type,
            &std.source_location,
            &std.insert,
            &std.delete,
            std.compile_result,
            &std.execution_id,
            &std.test_id,
            std.execution_result,
            &std.score,
            &ep.week,
            ep.workspace_id.as_deref().unwrap_or(""),
            &offset,
        ];
        let w = &mut self.main;
        let err = |e| csv_err(&self.main_path, MAIN_TABLE_FILE, e);
        for (name, cell) in STANDARD_COLUMNS.iter().zip(standard) {
            if MULTILINE_STANDARD.contains(name) {
                w.write_field(cell).map_err(err)?;
            } else {
                w.write_field(one_line(cell).as_ref()).map_err(err)?;
            }
        }
        for (i, _) in x_columns() {
            let c = &cols::ACTIONS[i];
            let cell: std::borrow::Cow<'_, str> = match (flat[i], c.ty) {
                (Val::Null, _) => "".into(),
                (Val::Bool(b), _) => b.to_string().into(),
                (Val::I64(v), _) => v.to_string().into(),
                (Val::Str(s), _) if c.free_text => s.into(),
                (Val::Str(s), _) => one_line(s),
                (Val::Keys(keys), Ty::KeyTimes) => keys
                    .iter()
                    .map(|k| k.t.to_string())
                    .collect::<Vec<_>>()
                    .join(";")
                    .into(),
                (Val::Keys(keys), _) => {
                    if let Some(k) = keys
                        .iter()
                        .find(|k| k.class.is_empty() || k.class.contains([';', '\n', '\r']))
                    {
                        return Err(invalid(
                            MAIN_TABLE_FILE,
                            format!("key class {:?} cannot be listed", k.class),
                        ));
                    }
                    keys.iter()
                        .map(|k| k.class.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                        .into()
                }
            };
            w.write_field(cell.as_bytes()).map_err(err)?;
        }
        w.write_record(None::<&[u8]>).map_err(err)
    }

    /// Writes the workspace's code state unless it exists already, and
    /// returns its id (empty: nothing recorded).
    fn store(&mut self, ws: &Workspace, what: &dyn Fn() -> String) -> Result<String, ExportError> {
        let mut files = ws.recorded();
        // A path that is also another path's directory cannot be written
        // (Directory): the file's delete was not captured (a pause, a drop),
        // and the newer files under it win; the stale file is left out of
        // the state, in either representation, so that ids agree.
        let mut dirs = BTreeSet::new();
        for path in files.keys() {
            check_path(path, what)?;
            let mut at = 0;
            while let Some(i) = path[at..].find('/') {
                dirs.insert(path[..at + i].to_owned());
                at += i + 1;
            }
        }
        files.retain(|p, _| !dirs.contains(*p));
        if files.is_empty() {
            return Ok(String::new());
        }
        let id = code_state_id(files.iter().map(|(p, (_, sid))| (*p, *sid)));
        if self.states_written.contains(&id) {
            return Ok(id);
        }
        if let Some(table) = &mut self.table {
            let path = self.root.join(CODE_STATES_DIR).join(CODE_STATES_FILE);
            for (p, (content, _)) in &files {
                table
                    .write_record([id.as_str(), p, content])
                    .map_err(|e| csv_err(&path, CODE_STATES_FILE, e))?;
            }
            self.states_written.insert(id.clone());
            return Ok(id);
        }
        // No state directory is written aside and renamed: the whole export
        // is, so a failure leaves no half state behind anyway.
        let target = self.root.join(CODE_STATES_DIR).join(&id);
        let mut batch = Vec::with_capacity(files.len());
        for (path, (content, _)) in &files {
            let rel = PathBuf::from(DIR)
                .join(CODE_STATES_DIR)
                .join(&id)
                .join(path);
            self.state_files
                .push(Written::hashed(rel, content.as_bytes()));
            batch.push((PathBuf::from(path), content.to_string()));
        }
        let sent = self
            .disk
            .as_ref()
            .is_some_and(|d| d.tx.send((target, batch)).is_ok());
        if !sent {
            // The thread stopped on an error: that error is the one to tell.
            let stopped = self.disk.take().map(StateDisk::finish);
            return Err(match stopped {
                Some(Err(e)) => e,
                _ => invalid(CODE_STATES_DIR, "the code-state writer stopped"),
            });
        }
        self.states_written.insert(id.clone());
        Ok(id)
    }
}

/// The standard cells of an action's row that depend on its kind alone
/// (results, ids); the code state and the edit's text are the caller's.
fn standard(ep: &Episode, a: &Action, order: u64) -> Std {
    let mut std = Std {
        event_type: event_type(&a.body),
        event_id: format!("{}-{}", ep.episode_id, a.seq),
        order,
        ..Std::default()
    };
    match &a.body {
        ActionBody::Edit { diff, .. } => std.edit_type = edit_type(diff.as_deref()),
        ActionBody::ShellCommand { exit, .. } => {
            std.execution_id = std.event_id.clone();
            std.execution_result = program_result(*exit);
        }
        ActionBody::TestRun(r) => {
            std.execution_id = std.event_id.clone();
            std.test_id = test_id(&r.command);
            std.execution_result = test_result(r.exit, r.failed);
            std.score = test_score(r.passed, r.failed);
        }
        ActionBody::BuildRun(r) => {
            std.compile_result = if r.exit == 0 { "Success" } else { "Error" };
            // What was built: the directory it ran in (`.` is the whole
            // workspace), as the spec wants a section for every Compile.
            std.section = r.cwd.clone();
        }
        _ => {}
    }
    std
}

impl DatasetWriter for ProgSnap2Writer {
    fn format(&self) -> &'static str {
        "progsnap2"
    }

    fn write_episode(&mut self, ep: &Episode) -> Result<(), ExportError> {
        let ep_id = ep.episode_id.as_str();
        if ep_id.is_empty() {
            return Err(invalid(MAIN_TABLE_FILE, "an episode has an empty id"));
        }
        if !self.episodes.insert(ep_id.to_string()) {
            return Err(invalid(
                MAIN_TABLE_FILE,
                format!("episode {ep_id} is written twice (its EventIDs would repeat)"),
            ));
        }
        for f in &ep.files {
            for s in [&f.initial, &f.final_] {
                check_path(&s.path, &|| format!("episode {ep_id}: file {}", f.file_id))?;
            }
        }
        let replayed = replay::replay(ep)?;
        let mut states = replayed.states.into_iter().peekable();

        let mut ws = Workspace::from_states(&ep.files, |f| &f.initial);
        let mut state = self.store(&ws, &|| format!("episode {ep_id}: initial state"))?;
        let mut session = [Val::Null; cols::N_ACTIONS];
        session[ActionCol::TMs as usize] = Val::I64(0);
        let start = Std {
            event_type: SESSION_START,
            event_id: format!("{ep_id}-start"),
            code_state_id: state.clone(),
            ..Std::default()
        };
        self.write_row(ep, &start, &session)?;

        let mut seqs = HashSet::new();
        let mut order = 0u64;
        for a in &ep.actions {
            if !seqs.insert(a.seq) {
                return Err(invalid(
                    MAIN_TABLE_FILE,
                    format!("episode {ep_id}: action seq {} repeats", a.seq),
                ));
            }
            let what = || format!("episode {ep_id}: action {}", a.seq);
            order += 1;
            let mut std = standard(ep, a, order);
            let flat = cols::action_row(ep, a);
            for (c, v) in cols::ACTIONS.iter().zip(&flat) {
                if let (Ps2::Section | Ps2::Destination, Val::Str(p)) = (c.ps2, v) {
                    check_path(p, &what)?;
                }
            }
            // The content replay gave this action, if it gave one.
            let mut replayed_for = |file_id: &str| {
                let hit = matches!(states.peek(), Some((s, f, _)) if *s == a.seq && f == file_id);
                if hit {
                    states.next().map(|(_, _, c)| c)
                } else {
                    None
                }
            };
            let changed = match &a.body {
                ActionBody::Edit { file_id, path, .. }
                | ActionBody::FileCreate { file_id, path, .. } => {
                    let new = replayed_for(file_id);
                    let old = match &a.body {
                        ActionBody::Edit { .. } => ws
                            .files
                            .get(file_id.as_str())
                            .and_then(|l| l.content.as_ref())
                            .map(|(c, _)| c.as_str()),
                        _ => Some(""),
                    };
                    if let (Some(old), Some(new)) = (old, &new) {
                        let (at, delete, insert) = replacement(old, new);
                        std.source_location = format!("Text:{at}");
                        std.delete = delete;
                        std.insert = insert;
                    }
                    ws.set(file_id, path, new);
                    true
                }
                ActionBody::FileDelete { file_id, .. } => {
                    ws.files.remove(file_id.as_str()).is_some()
                }
                ActionBody::FileRename { file_id, to, .. } => {
                    ws.rename(file_id, to);
                    true
                }
                _ => false,
            };
            if changed {
                state = self.store(&ws, &what)?;
            }
            std.code_state_id = state.clone();
            self.write_row(ep, &std, &flat)?;
        }

        // The final states are the model's word on how the episode ended.
        let end_ws = Workspace::from_states(&ep.files, |f| &f.final_);
        let end = Std {
            event_type: SESSION_END,
            event_id: format!("{ep_id}-end"),
            order: order + 1,
            code_state_id: self.store(&end_ws, &|| format!("episode {ep_id}: final state"))?,
            ..Std::default()
        };
        session[ActionCol::TMs as usize] = Val::I64(ep.duration_ms);
        session[ActionCol::DurationMs as usize] = Val::I64(ep.duration_ms);
        session[ActionCol::Reason as usize] = Val::Str(ep.end_reason.as_str());
        self.write_row(ep, &end, &session)
    }

    fn finish(self: Box<Self>) -> Result<Vec<Written>, ExportError> {
        let ProgSnap2Writer {
            root,
            main_path,
            main,
            mut state_files,
            disk,
            table,
            ..
        } = *self;
        if let Some(disk) = disk {
            disk.finish()?;
        }
        close_csv(main, &main_path)?;
        let mut out = vec![
            Written::on_disk(PathBuf::from(DIR).join(METADATA_FILE)),
            Written::on_disk(PathBuf::from(DIR).join(MAIN_TABLE_FILE)),
        ];
        if let Some(table) = table {
            close_csv(table, &root.join(CODE_STATES_DIR).join(CODE_STATES_FILE))?;
            state_files.push(Written::on_disk(
                PathBuf::from(DIR)
                    .join(CODE_STATES_DIR)
                    .join(CODE_STATES_FILE),
            ));
        }
        out.extend(state_files);
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// The thread that writes code-state directories, in the order given.
struct StateDisk {
    tx: crossbeam_channel::Sender<(PathBuf, Vec<(PathBuf, String)>)>,
    thread: std::thread::JoinHandle<Result<(), ExportError>>,
}

impl StateDisk {
    fn start() -> StateDisk {
        let (tx, rx) = crossbeam_channel::bounded::<(PathBuf, Vec<(PathBuf, String)>)>(256);
        let thread = std::thread::spawn(move || {
            let mut made: HashSet<PathBuf> = HashSet::new();
            for (target, files) in rx {
                super::sink::create_dir(&target).map_err(|e| io_err(&target, e))?;
                for (path, content) in files {
                    let p = target.join(path);
                    let mut missing = Vec::new();
                    let mut dir = p.parent();
                    while let Some(d) = dir {
                        if d == target || made.contains(d) {
                            break;
                        }
                        missing.push(d.to_path_buf());
                        dir = d.parent();
                    }
                    for d in missing.into_iter().rev() {
                        super::sink::create_dir(&d).map_err(|e| io_err(&d, e))?;
                        made.insert(d);
                    }
                    let mut f = super::sink::create_file(&p).map_err(|e| io_err(&p, e))?;
                    f.write_all(content.as_bytes()).map_err(|e| io_err(&p, e))?;
                }
            }
            Ok(())
        });
        StateDisk { tx, thread }
    }

    fn finish(self) -> Result<(), ExportError> {
        drop(self.tx);
        self.thread.join().map_err(|_| ExportError::Invalid {
            file: CODE_STATES_DIR.into(),
            problem: "the code-state writer panicked".into(),
        })?
    }
}

/// Every file under `dir`, as (`/`-separated relative path, full path),
/// sorted by relative path.
fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>, ExportError> {
    fn go(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), ExportError> {
        let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(invalid(
                    CODE_STATES_DIR,
                    format!("{}: a name is not UTF-8", path.display()),
                ));
            };
            let rel_name = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
            if kind.is_dir() {
                go(&path, &rel_name, out)?;
            } else if kind.is_file() {
                out.push((rel_name, path));
            } else {
                return Err(invalid(
                    CODE_STATES_DIR,
                    format!("{rel_name}: neither a file nor a directory"),
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// What [`check`] counted, for `verify` to hold against the JSONL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ps2Summary {
    /// MainTable rows.
    pub events: u64,
    /// Sessions (episodes): `Session.Start`/`Session.End` pairs.
    pub sessions: u64,
    /// Distinct code states referenced (each one a directory).
    pub code_states: u64,
    /// Rows by EventType.
    pub by_type: BTreeMap<String, u64>,
}

/// Reads `progsnap2/` back and checks it is what [`ProgSnap2Writer`]
/// writes: the metadata, the MainTable's exact columns, known event types,
/// unique EventIDs, sessions that open, order and close, the columns each
/// event type needs, and every referenced code state present with content
/// matching its id (and no other).
pub fn check(dir: &Path) -> Result<Ps2Summary, ExportError> {
    let root = dir.join(DIR);
    let rep = check_metadata(&root)?;
    let columns = columns();

    let main_path = root.join(MAIN_TABLE_FILE);
    let file = File::open(&main_path).map_err(|e| io_err(&main_path, e))?;
    let mut rd = csv::ReaderBuilder::new().from_reader(file);
    let header = rd
        .headers()
        .map_err(|e| csv_err(&main_path, MAIN_TABLE_FILE, e))?
        .clone();
    if header.iter().ne(columns.iter().copied()) {
        let got: Vec<&str> = header.iter().collect();
        let missing: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| !got.contains(c))
            .collect();
        let extra: Vec<&str> = got
            .iter()
            .copied()
            .filter(|c| !columns.contains(c))
            .collect();
        return Err(invalid(
            MAIN_TABLE_FILE,
            format!("header is not the expected column list (missing {missing:?}, unexpected {extra:?}, or out of order)"),
        ));
    }
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap_or(0);
    let multiline: Vec<bool> = columns
        .iter()
        .map(|c| multiline_columns().contains(c))
        .collect();
    let (c_exec_id, c_test_id, c_loc, c_insert, c_delete) = (
        col("ExecutionID"),
        col("TestID"),
        col("SourceLocation"),
        col("InsertText"),
        col("DeleteText"),
    );
    let (c_compile, c_exec, c_score, c_command) = (
        col("CompileResult"),
        col("ExecutionResult"),
        col("Score"),
        col("X-Command"),
    );
    let (c_type, c_id, c_order, c_subject, c_tools, c_state, c_session, c_section, c_dest, c_edit) = (
        col("EventType"),
        col("EventID"),
        col("Order"),
        col("SubjectID"),
        col("ToolInstances"),
        col("CodeStateID"),
        col("SessionID"),
        col("CodeStateSection"),
        col("DestinationCodeStateSection"),
        col("EditType"),
    );

    let mut summary = Ps2Summary::default();
    let mut ids = HashSet::new();
    // Open session -> the last Order seen in it.
    let mut open: HashMap<String, i64> = HashMap::new();
    let mut states = BTreeSet::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_err(&main_path, MAIN_TABLE_FILE, e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let bad = |problem: String| invalid(MAIN_TABLE_FILE, format!("line {line}: {problem}"));
        let get = |i: usize| rec.get(i).unwrap_or("");

        if let Some(i) = (0..rec.len())
            .find(|&i| !multiline.get(i).copied().unwrap_or(false) && get(i).contains(['\n', '\r']))
        {
            return Err(bad(format!("a line break in {}", columns[i])));
        }
        let ty = get(c_type);
        let Some(ty) = EVENT_TYPES.iter().find(|t| **t == ty) else {
            return Err(bad(format!("unknown EventType {ty:?}")));
        };
        let id = get(c_id);
        if id.is_empty() || !ids.insert(id.to_string()) {
            return Err(bad(format!("EventID {id:?} is empty or repeats")));
        }
        for (name, i) in [
            ("SubjectID", c_subject),
            ("ToolInstances", c_tools),
            ("SessionID", c_session),
        ] {
            if get(i).is_empty() {
                return Err(bad(format!("{name} is empty")));
            }
        }
        let order: i64 = get(c_order)
            .parse()
            .map_err(|_| bad(format!("Order {:?} is not an integer", get(c_order))))?;
        let session = get(c_session);
        match *ty {
            SESSION_START => {
                if open.insert(session.to_string(), order).is_some() {
                    return Err(bad(format!("session {session} starts twice")));
                }
                summary.sessions += 1;
            }
            _ => {
                let Some(last) = open.get_mut(session) else {
                    return Err(bad(format!("event outside session {session}")));
                };
                if order <= *last {
                    return Err(bad(format!(
                        "Order {order} does not follow {last} in session {session}"
                    )));
                }
                *last = order;
                if *ty == SESSION_END {
                    open.remove(session);
                }
            }
        }
        if (ty.starts_with("File.") || *ty == "Compile") && get(c_section).is_empty() {
            return Err(bad(format!("{ty} without CodeStateSection")));
        }
        if *ty == "File.Rename" && get(c_dest).is_empty() {
            return Err(bad("File.Rename without DestinationCodeStateSection".into()));
        }
        if *ty == "File.Edit" && get(c_edit).is_empty() {
            return Err(bad("File.Edit without EditType".into()));
        }
        let (compile, exec) = (get(c_compile), get(c_exec));
        let results_ok = match *ty {
            "Compile" => matches!(compile, "Success" | "Error") && exec.is_empty(),
            "Run.Test" => {
                compile.is_empty() && matches!(exec, "Success" | "TestFailed" | "Error" | "Timeout")
            }
            "Run.Program" => {
                compile.is_empty()
                    && matches!(exec, "Success" | "Error" | "Timeout" | UNKNOWN_RESULT)
            }
            _ => compile.is_empty() && exec.is_empty(),
        };
        if !results_ok {
            return Err(bad(format!(
                "{ty} with CompileResult {compile:?} and ExecutionResult {exec:?}"
            )));
        }
        let score = get(c_score);
        if !score.is_empty()
            && (*ty != "Run.Test" || !score.parse::<f64>().is_ok_and(|s| (0.0..=1.0).contains(&s)))
        {
            return Err(bad(format!("{ty} with Score {score:?}")));
        }
        if matches!(*ty, "Compile" | "Run.Test" | "Run.Program") && get(c_command).is_empty() {
            return Err(bad(format!("{ty} without X-Command")));
        }
        if matches!(*ty, "Run.Test" | "Run.Program") && get(c_exec_id).is_empty() {
            return Err(bad(format!("{ty} without ExecutionID")));
        }
        if *ty == "Run.Test" && get(c_test_id).is_empty() {
            return Err(bad("Run.Test without TestID".into()));
        }
        let (loc, ins, del) = (get(c_loc), get(c_insert), get(c_delete));
        if !loc.is_empty() || !ins.is_empty() || !del.is_empty() {
            let at_ok = loc
                .strip_prefix("Text:")
                .is_some_and(|n| n.parse::<u64>().is_ok());
            if !matches!(*ty, "File.Edit" | "File.Create") || !at_ok {
                return Err(bad(format!("{ty} with SourceLocation {loc:?}")));
            }
        }
        let state = get(c_state);
        if !state.is_empty() {
            if !is_code_state_id(state) {
                return Err(bad(format!("CodeStateID {state:?} is not one of ours")));
            }
            if !states.contains(state) {
                if rep == CodeStates::Directory && !root.join(CODE_STATES_DIR).join(state).is_dir()
                {
                    return Err(bad(format!(
                        "CodeStateID {state} has no directory in {DIR}/{CODE_STATES_DIR}"
                    )));
                }
                states.insert(state.to_string());
            }
        }
        summary.events += 1;
        *summary.by_type.entry(ty.to_string()).or_default() += 1;
    }
    if let Some(session) = open.keys().min() {
        return Err(invalid(
            MAIN_TABLE_FILE,
            format!("session {session} never ends"),
        ));
    }

    match rep {
        CodeStates::Directory => check_code_states(&root, &states)?,
        CodeStates::Table => check_code_state_table(&root, &states)?,
    }
    summary.code_states = states.len() as u64;
    Ok(summary)
}

/// Checks the metadata and returns the code states' representation.
fn check_metadata(root: &Path) -> Result<CodeStates, ExportError> {
    let path = root.join(METADATA_FILE);
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    let mut rd = csv::ReaderBuilder::new().from_reader(file);
    let header = rd
        .headers()
        .map_err(|e| csv_err(&path, METADATA_FILE, e))?
        .clone();
    if header.iter().ne(["Property", "Value"]) {
        return Err(invalid(METADATA_FILE, "header is not Property,Value"));
    }
    let mut got = BTreeMap::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_err(&path, METADATA_FILE, e))?;
        let (k, v) = (rec.get(0).unwrap_or(""), rec.get(1).unwrap_or(""));
        if got.insert(k.to_string(), v.to_string()).is_some() {
            return Err(invalid(METADATA_FILE, format!("property {k} repeats")));
        }
    }
    let rep = match got.get("CodeStateRepresentation").map(String::as_str) {
        Some("Directory") => CodeStates::Directory,
        _ => CodeStates::Table,
    };
    for (k, want) in metadata(rep) {
        match got.remove(k) {
            Some(v) if v == want => {}
            Some(v) => {
                return Err(invalid(
                    METADATA_FILE,
                    format!("{k} is {v:?}, expected {want:?}"),
                ))
            }
            None => return Err(invalid(METADATA_FILE, format!("{k} is missing"))),
        }
    }
    if let Some(k) = got.keys().next() {
        return Err(invalid(METADATA_FILE, format!("unexpected property {k}")));
    }
    Ok(rep)
}

/// Every referenced code state must hash to its id, and `CodeStates/` must
/// hold nothing else.
fn check_code_states(root: &Path, states: &BTreeSet<String>) -> Result<(), ExportError> {
    let dir = root.join(CODE_STATES_DIR);
    let entries = fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !states.contains(name.as_ref()) {
            return Err(invalid(
                CODE_STATES_DIR,
                format!("{name} is not a code state the MainTable references"),
            ));
        }
    }
    for id in states {
        let files = walk(&dir.join(id))?;
        let mut ids = Vec::with_capacity(files.len());
        for (rel_path, full) in &files {
            let bytes = fs::read(full).map_err(|e| io_err(full, e))?;
            ids.push((rel_path.as_str(), hex::encode(Sha256::digest(&bytes))));
        }
        let got = code_state_id(ids.iter().map(|(p, s)| (*p, s.as_str())));
        if got != *id {
            return Err(invalid(
                CODE_STATES_DIR,
                format!("{id}: its files hash to {got}, not to its id"),
            ));
        }
    }
    Ok(())
}

/// Table representation: `CodeStates.csv` holds exactly the referenced
/// states, each state's rows (one per file) together, hashing to its id;
/// nothing else is in `CodeStates/`.
fn check_code_state_table(root: &Path, states: &BTreeSet<String>) -> Result<(), ExportError> {
    let dir = root.join(CODE_STATES_DIR);
    for entry in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
        let entry = entry.map_err(|e| io_err(&dir, e))?;
        if entry.file_name() != CODE_STATES_FILE {
            return Err(invalid(
                CODE_STATES_DIR,
                format!(
                    "{} is not part of the Table representation",
                    entry.file_name().to_string_lossy()
                ),
            ));
        }
    }
    let path = dir.join(CODE_STATES_FILE);
    let name = format!("{CODE_STATES_DIR}/{CODE_STATES_FILE}");
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    let mut rd = csv::ReaderBuilder::new().from_reader(file);
    let header = rd.headers().map_err(|e| csv_err(&path, &name, e))?.clone();
    if header.iter().ne(CODE_STATES_COLUMNS) {
        return Err(invalid(
            &name,
            format!("header is not {CODE_STATES_COLUMNS:?}"),
        ));
    }
    // id -> (path, content hash), in file order.
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut last: Option<String> = None;
    for rec in rd.records() {
        let rec = rec.map_err(|e| csv_err(&path, &name, e))?;
        let (id, section, contents) = (
            rec.get(0).unwrap_or(""),
            rec.get(1).unwrap_or(""),
            rec.get(2).unwrap_or(""),
        );
        let line = rec.position().map_or(0, |p| p.line());
        if !states.contains(id) {
            return Err(invalid(
                &name,
                format!("line {line}: {id:?} is not a code state the MainTable references"),
            ));
        }
        if last.as_deref() != Some(id) && found.contains_key(id) {
            return Err(invalid(&name, format!("line {line}: state {id} is split")));
        }
        check_path(section, &|| format!("{name} line {line}"))?;
        found.entry(id.to_string()).or_default().push((
            section.to_string(),
            hex::encode(Sha256::digest(contents.as_bytes())),
        ));
        last = Some(id.to_string());
    }
    for id in states {
        let Some(files) = found.get_mut(id) else {
            return Err(invalid(&name, format!("CodeStateID {id} has no rows")));
        };
        files.sort();
        let got = code_state_id(files.iter().map(|(p, s)| (p.as_str(), s.as_str())));
        if got != *id {
            return Err(invalid(
                &name,
                format!("{id}: its files hash to {got}, not to its id"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests_support {
    pub use super::tests::{
        episode as episode_for_tests, rows as rows_of, workflow_episode as workflow_for_tests,
        write_as, A0 as A0_FOR_TESTS, A2 as A2_FOR_TESTS,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::model::{Action, CodeState, EndReason, KeyTime, RunResult};
    use crate::export::replay::{state_id, unified};

    fn cs(path: &str, content: Option<&str>, exists: bool) -> CodeState {
        CodeState {
            path: path.into(),
            exists,
            content: content.map(String::from),
            state_id: content.map(state_id),
        }
    }

    pub const A0: &str = "fn a() {}\n";
    const A1: &str = "fn a() {}\nfn b() { \"x,y\" }\n";
    pub const A2: &str = "fn a() { \"ünïcödé ✓\" }\nfn b() { \"x,y\" }\n";
    const B1: &str = "// new, \"quoted\"\n";

    fn edit(seq: u32, t: i64, file: &str, path: &str, old: &str, new: &str) -> Action {
        Action {
            seq,
            t_ms: t,
            body: ActionBody::Edit {
                file_id: file.into(),
                path: path.into(),
                diff: Some(unified(old, new, path, path)),
                state_id: Some(state_id(new)),
            },
        }
    }

    /// One episode with every action kind, a file without recorded content,
    /// and texts with commas, quotes, newlines and non-ASCII.
    pub fn episode(id: &str) -> Episode {
        let mut actions = vec![
            Action {
                seq: 1,
                t_ms: 10,
                body: ActionBody::Typing {
                    app: Some("code".into()),
                    text: Some("let s = \"a, b\";\nΩ≈ç √".into()),
                    duration_ms: 900,
                    keys: vec![
                        KeyTime {
                            t: 0,
                            class: "letter".into(),
                        },
                        KeyTime {
                            t: 120,
                            class: "punct".into(),
                        },
                        KeyTime {
                            t: 480,
                            class: "redacted".into(),
                        },
                    ],
                },
            },
            edit(2, 1000, "fa", "src/aaaa.rs", A0, A1),
            Action {
                seq: 3,
                t_ms: 1500,
                body: ActionBody::FileCreate {
                    file_id: "fb".into(),
                    path: "src/new/bbbb.rs".into(),
                    diff: Some(unified("", B1, "src/new/bbbb.rs", "src/new/bbbb.rs")),
                    state_id: Some(state_id(B1)),
                },
            },
            Action {
                seq: 4,
                t_ms: 1600,
                body: ActionBody::FileSwitch {
                    file_id: "fa".into(),
                    path: "src/aaaa.rs".into(),
                },
            },
            Action {
                seq: 5,
                t_ms: 1700,
                body: ActionBody::FileRename {
                    file_id: "fa".into(),
                    from: "src/aaaa.rs".into(),
                    to: "src/cccc.rs".into(),
                },
            },
            edit(6, 2000, "fa", "src/cccc.rs", A1, A2),
            Action {
                seq: 7,
                t_ms: 2100,
                body: ActionBody::Edit {
                    file_id: "fc".into(),
                    path: "secret/dddd.bin".into(),
                    diff: None,
                    state_id: None,
                },
            },
            Action {
                seq: 8,
                t_ms: 2200,
                body: ActionBody::Focus {
                    app: Some("firefox".into()),
                    title: Some("Docs, \"quoted\" — page".into()),
                },
            },
            Action {
                seq: 9,
                t_ms: 2300,
                body: ActionBody::Mouse {
                    duration_ms: 400,
                    moves: 12,
                    distance_px: 340,
                    clicks: 2,
                    scroll: -3,
                },
            },
            Action {
                seq: 10,
                t_ms: 2400,
                body: ActionBody::FileDelete {
                    file_id: "fb".into(),
                    path: "src/new/bbbb.rs".into(),
                },
            },
            Action {
                seq: 11,
                t_ms: 2500,
                body: ActionBody::Gap {
                    reason: "paused".into(),
                    duration_ms: 5000,
                    lost: 7,
                },
            },
        ];
        actions.push(Action {
            seq: 12,
            t_ms: 8000,
            body: ActionBody::Commit {
                message: Some("Fix \"a\", b\n\nbody line".into()),
            },
        });
        Episode {
            schema: SCHEMA_VERSION,
            episode_id: id.into(),
            subject_id: "subj0123".into(),
            workspace_id: Some("ws42".into()),
            week: "2026-W48".into(),
            duration_ms: 8100,
            end_reason: EndReason::Commit,
            files: vec![
                FileStates {
                    file_id: "fa".into(),
                    initial: cs("src/aaaa.rs", Some(A0), true),
                    final_: cs("src/cccc.rs", Some(A2), true),
                },
                FileStates {
                    file_id: "fb".into(),
                    initial: cs("src/new/bbbb.rs", None, false),
                    final_: cs("src/new/bbbb.rs", None, false),
                },
                FileStates {
                    file_id: "fc".into(),
                    initial: cs("secret/dddd.bin", None, true),
                    final_: cs("secret/dddd.bin", None, true),
                },
            ],
            actions,
        }
    }

    fn write(dir: &Path, eps: &[Episode]) -> Result<Vec<PathBuf>, ExportError> {
        write_as(dir, eps, CodeStates::Directory)
    }

    pub fn write_as(
        dir: &Path,
        eps: &[Episode],
        rep: CodeStates,
    ) -> Result<Vec<PathBuf>, ExportError> {
        let mut w: Box<dyn DatasetWriter> = Box::new(create(dir, rep)?);
        assert_eq!(w.format(), "progsnap2");
        for ep in eps {
            w.write_episode(ep)?;
        }
        Ok(w.finish()?.into_iter().map(|w| w.path).collect())
    }

    pub fn rows(dir: &Path) -> Vec<BTreeMap<String, String>> {
        let mut rd = csv::Reader::from_path(dir.join(DIR).join(MAIN_TABLE_FILE)).unwrap();
        let header = rd.headers().unwrap().clone();
        rd.records()
            .map(|r| {
                let r = r.unwrap();
                header
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_action_becomes_its_event_with_its_fields() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[episode("ep1")]).unwrap();
        let rows = rows(tmp.path());
        let types: Vec<&str> = rows.iter().map(|r| r["EventType"].as_str()).collect();
        assert_eq!(
            types,
            [
                "Session.Start",
                "X-Keystroke",
                "File.Edit",
                "File.Create",
                "File.Focus",
                "File.Rename",
                "File.Edit",
                "File.Edit",
                "X-WindowFocus",
                "X-Mouse",
                "File.Delete",
                "X-Gap",
                "X-Commit",
                "Session.End",
            ]
        );
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r["Order"], i.to_string());
            assert_eq!(r["SessionID"], "ep1");
            assert_eq!(r["SubjectID"], "subj0123");
            assert_eq!(r["X-Week"], "2026-W48");
            assert_eq!(r["X-WorkspaceID"], "ws42");
            assert_eq!(
                r["ToolInstances"],
                format!("Candor {}", env!("CARGO_PKG_VERSION"))
            );
        }
        assert_eq!(rows[0]["EventID"], "ep1-start");
        assert_eq!(rows[13]["EventID"], "ep1-end");
        assert_eq!(rows[13]["X-Reason"], "commit");
        assert_eq!(rows[13]["X-OffsetMs"], "8100");

        let typing = &rows[1];
        assert_eq!(typing["EventID"], "ep1-1");
        assert_eq!(typing["X-Text"], "let s = \"a, b\";\nΩ≈ç √");
        assert_eq!(typing["X-App"], "code");
        assert_eq!(typing["X-KeyTimesMs"], "0;120;480");
        assert_eq!(typing["X-KeyClasses"], "letter;punct;redacted");
        assert_eq!(typing["X-DurationMs"], "900");
        assert_eq!(typing["X-OffsetMs"], "10");

        assert_eq!(rows[2]["EditType"], "Insert");
        assert_eq!(rows[2]["CodeStateSection"], "src/aaaa.rs");
        assert_eq!(rows[2]["X-FileID"], "fa");
        assert_eq!(rows[6]["EditType"], "Replace");
        assert_eq!(rows[7]["EditType"], "GenericEdit");
        assert_eq!(rows[3]["EditType"], "");
        assert_eq!(rows[5]["CodeStateSection"], "src/aaaa.rs");
        assert_eq!(rows[5]["DestinationCodeStateSection"], "src/cccc.rs");
        assert_eq!(rows[8]["X-Title"], "Docs, \"quoted\" — page");
        assert_eq!(rows[8]["X-App"], "firefox");
        assert_eq!(
            [
                &rows[9]["X-Moves"],
                &rows[9]["X-DistancePx"],
                &rows[9]["X-Clicks"],
                &rows[9]["X-Scroll"]
            ],
            ["12", "340", "2", "-3"]
        );
        assert_eq!(
            [&rows[11]["X-Reason"], &rows[11]["X-Lost"]],
            ["paused", "7"]
        );
        assert_eq!(rows[12]["X-Message"], "Fix \"a\", b\n\nbody line");

        // The state follows the edits; unchanged events reuse it; the file
        // without recorded content is never in it.
        let state = |i: usize| rows[i]["CodeStateID"].clone();
        assert!(rows.iter().all(|r| !r["CodeStateID"].is_empty()));
        assert_eq!(state(0), state(1));
        assert_ne!(state(1), state(2));
        assert_eq!(state(3), state(4));
        assert_ne!(state(4), state(5));
        assert_eq!(
            state(6),
            state(7),
            "an unrecorded file does not change the state"
        );
        assert_eq!(
            state(12),
            state(13),
            "the final state is the last replayed one"
        );
        let at = |i: usize, p: &str| {
            fs::read_to_string(
                tmp.path()
                    .join(DIR)
                    .join(CODE_STATES_DIR)
                    .join(state(i))
                    .join(p),
            )
        };
        assert_eq!(at(0, "src/aaaa.rs").unwrap(), A0);
        assert_eq!(at(3, "src/new/bbbb.rs").unwrap(), B1);
        assert_eq!(at(5, "src/cccc.rs").unwrap(), A1);
        assert!(at(5, "src/aaaa.rs").is_err());
        assert_eq!(at(13, "src/cccc.rs").unwrap(), A2);
        assert!(at(13, "src/new/bbbb.rs").is_err());
        assert!(at(13, "secret/dddd.bin").is_err());

        let s = check(tmp.path()).unwrap();
        assert_eq!(s.events, 14);
        assert_eq!(s.sessions, 1);
        assert_eq!(s.by_type["File.Edit"], 3);
        assert_eq!(s.by_type["Session.End"], 1);
        let want: u64 = episode("x")
            .actions
            .iter()
            .filter(|a| event_type(&a.body) == "X-Keystroke")
            .count() as u64;
        assert_eq!(s.by_type["X-Keystroke"], want);
        // Start, after edit, after create, after rename, after edit, after delete.
        assert_eq!(s.code_states, 6);
    }

    /// An episode of the workflow actions only: commands, test and build
    /// runs, and what editor plugins send.
    pub fn workflow_episode() -> Episode {
        let bodies = vec![
            ActionBody::ShellCommand {
                command: "git status".into(),
                cwd: ".".into(),
                exit: Some(0),
                duration_ms: Some(30),
            },
            ActionBody::ShellCommand {
                command: "make, \"all\"".into(),
                cwd: "outside".into(),
                exit: None,
                duration_ms: None,
            },
            ActionBody::ShellCommand {
                command: "sleep 100".into(),
                cwd: "outside".into(),
                exit: Some(130),
                duration_ms: Some(5_000),
            },
            ActionBody::TestRun(RunResult {
                command: "cargo test".into(),
                cwd: ".".into(),
                runner: "cargo".into(),
                exit: 101,
                duration_ms: 9_000,
                passed: Some(3),
                failed: Some(1),
                skipped: Some(2),
            }),
            ActionBody::TestRun(RunResult {
                command: "pytest -q".into(),
                cwd: "tests".into(),
                runner: "pytest".into(),
                exit: 0,
                duration_ms: 900,
                passed: Some(4),
                failed: Some(0),
                skipped: None,
            }),
            ActionBody::TestRun(RunResult {
                command: "go test ./...".into(),
                cwd: ".".into(),
                runner: "go".into(),
                exit: 2,
                duration_ms: 900,
                passed: None,
                failed: None,
                skipped: None,
            }),
            ActionBody::BuildRun(RunResult {
                command: "cargo build".into(),
                cwd: ".".into(),
                runner: "cargo".into(),
                exit: 101,
                duration_ms: 3_000,
                passed: None,
                failed: None,
                skipped: None,
            }),
            ActionBody::BuildRun(RunResult {
                command: "cargo build".into(),
                cwd: ".".into(),
                runner: "cargo".into(),
                exit: 0,
                duration_ms: 3_000,
                passed: None,
                failed: None,
                skipped: None,
            }),
            ActionBody::FileFocus {
                file_id: "fa".into(),
                path: "src/aaaa.rs".into(),
                language: Some("rust".into()),
            },
            ActionBody::EditorEdits {
                file_id: "fa".into(),
                path: "src/aaaa.rs".into(),
                duration_ms: 800,
                edits: 6,
                inserted_bytes: 5,
                deleted_bytes: 1,
                min_line: Some(2),
                max_line: Some(3),
            },
            ActionBody::Navigation {
                file_id: "fa".into(),
                path: "src/aaaa.rs".into(),
                duration_ms: 1_500,
                moves: 4,
                selections: 1,
                start_line: 3,
                end_line: 9,
                min_line: 1,
                max_line: 9,
            },
            ActionBody::EditorCommand {
                command: "editor.action.formatDocument".into(),
                file_id: Some("fa".into()),
                path: Some("src/aaaa.rs".into()),
            },
            ActionBody::Diagnostics {
                file_id: "fa".into(),
                path: "src/aaaa.rs".into(),
                errors: 1,
                warnings: 2,
                info: 0,
                hints: 4,
            },
        ];
        Episode {
            schema: SCHEMA_VERSION,
            episode_id: "wf".into(),
            subject_id: "subj0123".into(),
            workspace_id: Some("ws42".into()),
            week: "2026-W48".into(),
            duration_ms: 20_000,
            end_reason: EndReason::Idle,
            files: vec![FileStates {
                file_id: "fa".into(),
                initial: cs("src/aaaa.rs", Some(A0), true),
                final_: cs("src/aaaa.rs", Some(A0), true),
            }],
            actions: bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| Action {
                    seq: i as u32,
                    t_ms: i as i64 * 100,
                    body,
                })
                .collect(),
        }
    }

    #[test]
    fn workflow_actions_become_run_compile_focus_and_x_events() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[workflow_episode()]).unwrap();
        let rows = rows(tmp.path());
        let got: Vec<(&str, &str, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["EventType"].as_str(),
                    r["X-ActionType"].as_str(),
                    r["CompileResult"].as_str(),
                    r["ExecutionResult"].as_str(),
                    r["Score"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Session.Start", "", "", "", ""),
                ("Run.Program", "shell_command", "", "Success", ""),
                ("Run.Program", "shell_command", "", "X-Unknown", ""),
                ("Run.Program", "shell_command", "", "Timeout", ""),
                ("Run.Test", "test_run", "", "TestFailed", "0.75"),
                ("Run.Test", "test_run", "", "Success", "1"),
                ("Run.Test", "test_run", "", "Error", ""),
                ("Compile", "build_run", "Error", "", ""),
                ("Compile", "build_run", "Success", "", ""),
                ("File.Focus", "file_focus", "", "", ""),
                ("X-EditorEdits", "editor_edits", "", "", ""),
                ("X-Navigation", "navigation", "", "", ""),
                ("X-EditorCommand", "editor_command", "", "", ""),
                ("X-Diagnostics", "diagnostics", "", "", ""),
                ("Session.End", "", "", "", ""),
            ]
        );
        let r = &rows[2];
        assert_eq!(
            [
                &r["X-Command"],
                &r["X-Cwd"],
                &r["X-Exit"],
                &r["X-DurationMs"]
            ],
            ["make, \"all\"", "outside", "", ""]
        );
        let r = &rows[4];
        assert_eq!(
            [
                &r["X-Runner"],
                &r["X-Exit"],
                &r["X-Passed"],
                &r["X-Failed"],
                &r["X-Skipped"],
                &r["X-DurationMs"]
            ],
            ["cargo", "101", "3", "1", "2", "9000"]
        );
        let r = &rows[9];
        assert_eq!(
            [&r["CodeStateSection"], &r["X-FileID"], &r["X-Language"]],
            ["src/aaaa.rs", "fa", "rust"]
        );
        let r = &rows[10];
        assert_eq!(
            [
                &r["X-Edits"],
                &r["X-InsertedBytes"],
                &r["X-DeletedBytes"],
                &r["X-MinLine"],
                &r["X-MaxLine"]
            ],
            ["6", "5", "1", "2", "3"]
        );
        let r = &rows[11];
        assert_eq!(
            [
                &r["X-Moves"],
                &r["X-Selections"],
                &r["X-StartLine"],
                &r["X-EndLine"]
            ],
            ["4", "1", "3", "9"]
        );
        assert_eq!(rows[12]["X-Command"], "editor.action.formatDocument");
        let r = &rows[13];
        assert_eq!(
            [
                &r["X-Errors"],
                &r["X-Warnings"],
                &r["X-Info"],
                &r["X-Hints"]
            ],
            ["1", "2", "0", "4"]
        );
        // Nothing here changes a code state.
        assert!(rows
            .iter()
            .all(|r| r["CodeStateID"] == rows[0]["CodeStateID"]));
        let s = check(tmp.path()).unwrap();
        assert_eq!(s.by_type["Run.Test"], 3);
        assert_eq!(s.by_type["Compile"], 2);
        assert_eq!(s.by_type["File.Focus"], 1);

        // The checker holds each event type to its outcome columns.
        let col = |name: &str| columns().iter().position(|c| *c == name).unwrap();
        let err = check_err_of(&workflow_episode(), |_, rows| {
            rows[7][col("CompileResult")] = "Warning?".into()
        });
        assert!(err.contains("Compile with CompileResult"), "{err}");
        let err = check_err_of(&workflow_episode(), |_, rows| {
            rows[4][col("Score")] = "1.5".into()
        });
        assert!(err.contains("Score"), "{err}");
        let err = check_err_of(&workflow_episode(), |_, rows| {
            rows[1][col("X-Command")] = String::new()
        });
        assert!(err.contains("without X-Command"), "{err}");
        let err = check_err_of(&workflow_episode(), |_, rows| {
            rows[9][col("ExecutionResult")] = "Success".into()
        });
        assert!(err.contains("File.Focus with"), "{err}");
    }

    #[test]
    fn test_outcomes_follow_the_spec() {
        assert_eq!(program_result(Some(0)), "Success");
        assert_eq!(program_result(Some(1)), "Error");
        assert_eq!(program_result(Some(143)), "Timeout");
        assert_eq!(program_result(None), "X-Unknown");
        assert_eq!(test_result(0, Some(0)), "Success");
        assert_eq!(test_result(1, Some(2)), "TestFailed");
        assert_eq!(test_result(101, None), "Error");
        assert_eq!(test_result(137, None), "Timeout");
        assert_eq!(test_score(Some(2), Some(1)), "0.6667");
        assert_eq!(test_score(Some(0), Some(3)), "0");
        assert_eq!(test_score(None, None), "");
        assert_eq!(test_score(Some(0), Some(0)), "");
    }

    #[test]
    fn metadata_is_the_spec_properties() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[]).unwrap();
        let text = fs::read_to_string(tmp.path().join(DIR).join(METADATA_FILE)).unwrap();
        assert_eq!(
            text,
            "Property,Value\nVersion,6\nIsEventOrderingConsistent,true\nEventOrderScope,Restricted\n\
             EventOrderScopeColumns,SubjectID;SessionID\nCodeStateRepresentation,Directory\n\
             X-SchemaVersion,3\n"
        );
        let s = check(tmp.path()).unwrap();
        assert_eq!(s, Ps2Summary::default());
    }

    #[test]
    fn output_is_deterministic_and_finish_lists_every_file() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let eps = [episode("ep1"), episode("ep2")];
        let la = write(a.path(), &eps).unwrap();
        let lb = write(b.path(), &eps).unwrap();
        assert_eq!(la, lb);
        let mut sorted = la.clone();
        sorted.sort();
        assert_eq!(la, sorted);
        let mut on_disk: Vec<PathBuf> = walk(a.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| PathBuf::from(p))
            .collect();
        on_disk.sort();
        assert_eq!(la, on_disk);
        for p in &la {
            assert_eq!(
                fs::read(a.path().join(p)).unwrap(),
                fs::read(b.path().join(p)).unwrap(),
                "{p:?}"
            );
        }
        // The same states in two episodes share directories.
        let dirs = fs::read_dir(a.path().join(DIR).join(CODE_STATES_DIR))
            .unwrap()
            .count();
        assert_eq!(dirs, 6);
        assert_eq!(check(a.path()).unwrap().sessions, 2);
    }

    #[test]
    fn bad_paths_and_repeats_are_errors() {
        for bad in [
            "../up.rs",
            "/abs.rs",
            "src/../x.rs",
            "a//b",
            "./a",
            "a\\b",
            "tab\there",
        ] {
            let mut ep = episode("ep1");
            ep.actions.push(Action {
                seq: 99,
                t_ms: 9000,
                body: ActionBody::FileSwitch {
                    file_id: "fa".into(),
                    path: bad.into(),
                },
            });
            let tmp = tempfile::tempdir().unwrap();
            let err = write(tmp.path(), &[ep]).unwrap_err();
            assert!(matches!(err, ExportError::Invalid { .. }), "{bad}: {err}");
        }
        let mut ep = episode("ep1");
        ep.files[0].initial.path = "../../etc/passwd".into();
        let tmp = tempfile::tempdir().unwrap();
        assert!(write(tmp.path(), &[ep]).is_err());
        assert!(!tmp.path().join("etc").exists());

        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), &[episode("ep1"), episode("ep1")]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");

        let mut ep = episode("ep1");
        ep.actions[1].seq = 1;
        let tmp = tempfile::tempdir().unwrap();
        assert!(write(tmp.path(), &[ep]).is_err());

        // A path that is also a directory of another path (its delete was
        // never captured): the newer file under it wins, the stale one is
        // left out of that state.
        let mut ep = episode("ep1");
        ep.files[0].initial.path = "src/new".into();
        ep.actions.retain(|a| a.seq < 4 && a.seq != 2);
        ep.files[0].final_ = ep.files[0].initial.clone();
        let tmp = tempfile::tempdir().unwrap();
        let files = write(tmp.path(), &[ep]).unwrap();
        assert!(
            files
                .iter()
                .any(|f| f.to_string_lossy().contains("src/new/")),
            "{files:?}"
        );
        // Never both in one state.
        for f in &files {
            let s = f.to_string_lossy();
            if s.ends_with("src/new") {
                let state = s.trim_end_matches("/src/new");
                assert!(
                    !files.iter().any(|g| g
                        .to_string_lossy()
                        .starts_with(&format!("{state}/src/new/"))),
                    "{files:?}"
                );
            }
        }
        check(tmp.path()).unwrap();
    }

    #[test]
    fn a_diff_that_does_not_replay_is_an_error() {
        let mut ep = episode("ep1");
        if let ActionBody::Edit { diff, .. } = &mut ep.actions[1].body {
            *diff = Some(unified("other\n", A1, "p", "p"));
        }
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            write(tmp.path(), &[ep]),
            Err(ExportError::Replay(_))
        ));
    }

    #[test]
    fn without_recorded_content_there_is_no_code_state() {
        let mut ep = episode("ep1");
        ep.files.retain(|f| f.file_id == "fc");
        ep.actions.retain(|a| {
            !matches!(
                a.body,
                ActionBody::Edit { ref file_id, .. }
                    | ActionBody::FileCreate { ref file_id, .. }
                    | ActionBody::FileSwitch { ref file_id, .. }
                    | ActionBody::FileDelete { ref file_id, .. }
                    | ActionBody::FileRename { ref file_id, .. } if file_id != "fc"
            )
        });
        let tmp = tempfile::tempdir().unwrap();
        let files = write(tmp.path(), &[ep]).unwrap();
        assert_eq!(files.len(), 2);
        assert!(rows(tmp.path()).iter().all(|r| r["CodeStateID"].is_empty()));
        assert_eq!(check(tmp.path()).unwrap().code_states, 0);
    }

    /// Rewrites the MainTable through `f` (header, rows).
    fn tamper(dir: &Path, f: impl FnOnce(&mut Vec<String>, &mut Vec<Vec<String>>)) {
        let path = dir.join(DIR).join(MAIN_TABLE_FILE);
        let mut rd = csv::Reader::from_path(&path).unwrap();
        let mut header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
        let mut rows: Vec<Vec<String>> = rd
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        f(&mut header, &mut rows);
        let mut w = csv::Writer::from_path(&path).unwrap();
        w.write_record(&header).unwrap();
        for r in rows {
            w.write_record(&r).unwrap();
        }
        w.flush().unwrap();
    }

    fn check_err(f: impl FnOnce(&mut Vec<String>, &mut Vec<Vec<String>>)) -> String {
        check_err_of(&episode("ep1"), f)
    }

    fn check_err_of(
        ep: &Episode,
        f: impl FnOnce(&mut Vec<String>, &mut Vec<Vec<String>>),
    ) -> String {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), std::slice::from_ref(ep)).unwrap();
        assert!(check(tmp.path()).is_ok());
        tamper(tmp.path(), f);
        let err = check(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("MainTable.csv") || err.contains("CodeStates"),
            "{err}"
        );
        err
    }

    #[test]
    fn check_rejects_a_tampered_main_table() {
        let col = |name: &str| columns().iter().position(|c| *c == name).unwrap();
        let err = check_err(|h, rows| {
            let i = col("X-Text");
            h.remove(i);
            for r in rows {
                r.remove(i);
            }
        });
        assert!(err.contains("X-Text"), "{err}");
        let err = check_err(|_, rows| rows[3][col("CodeStateID")] = "ab".repeat(32));
        assert!(err.contains("no directory"), "{err}");
        let err = check_err(|_, rows| rows[3][col("CodeStateID")] = "../../x".into());
        assert!(err.contains("not one of ours"), "{err}");
        let err = check_err(|_, rows| rows[2][col("EventType")] = "Teleport".into());
        assert!(err.contains("unknown EventType"), "{err}");
        let err = check_err(|_, rows| rows[2][col("EventID")] = rows[1][col("EventID")].clone());
        assert!(err.contains("repeats"), "{err}");
        let err = check_err(|_, rows| {
            rows.pop();
        });
        assert!(err.contains("never ends"), "{err}");
        let err = check_err(|_, rows| rows.swap(2, 3));
        assert!(err.contains("does not follow"), "{err}");
        // A state no row references any more.
        let err = check_err(|_, rows| {
            let s = rows[0][col("CodeStateID")].clone();
            for r in rows.iter_mut() {
                if r[col("CodeStateID")] == s {
                    r[col("CodeStateID")] = String::new();
                }
            }
        });
        assert!(
            err.contains("not a code state the MainTable references"),
            "{err}"
        );
    }

    #[test]
    fn check_rejects_tampered_code_states_and_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[episode("ep1")]).unwrap();
        let id = rows(tmp.path())[0]["CodeStateID"].clone();
        fs::write(
            tmp.path()
                .join(DIR)
                .join(CODE_STATES_DIR)
                .join(&id)
                .join("src/aaaa.rs"),
            "changed",
        )
        .unwrap();
        let err = check(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("hash to"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[]).unwrap();
        let meta = tmp.path().join(DIR).join(METADATA_FILE);
        let text = fs::read_to_string(&meta).unwrap();
        fs::write(&meta, text.replace("Version,6", "Version,5")).unwrap();
        let err = check(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("DatasetMetadata.csv") && err.contains("Version"),
            "{err}"
        );
    }

    #[test]
    fn edit_types_come_from_the_diff() {
        let d = |a: &str, b: &str| edit_type(Some(&unified(a, b, "p", "p")));
        assert_eq!(d("a\n", "a\nb\n"), "Insert");
        assert_eq!(d("a\n-- x\n", "a\n"), "Delete");
        assert_eq!(d("a\n", "b\n"), "Replace");
        assert_eq!(edit_type(None), "GenericEdit");
    }
}

#[cfg(test)]
mod conformance {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn edits_carry_their_text_at_a_character_offset() {
        assert_eq!(replacement("abc", "abXc"), (2, "".into(), "X".into()));
        assert_eq!(replacement("ünï", "üNï"), (1, "n".into(), "N".into()));
        assert_eq!(replacement("aaa", "aa"), (2, "a".into(), "".into()));
        assert_eq!(replacement("", "x\ny"), (0, "".into(), "x\ny".into()));
        // Rebuilding every edited file from the rows alone gives the
        // replayed contents.
        let tmp = tempfile::tempdir().unwrap();
        write_as(tmp.path(), &[episode_for_tests("ep1")], CodeStates::Table).unwrap();
        let rows = rows_of(tmp.path());
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        files.insert("src/aaaa.rs".into(), A0_FOR_TESTS.into());
        let mut checked = 0;
        for r in &rows {
            let path = r["CodeStateSection"].clone();
            match r["EventType"].as_str() {
                "File.Edit" | "File.Create" if !r["SourceLocation"].is_empty() => {
                    let at: usize = r["SourceLocation"][5..].parse().unwrap();
                    let old = files.get(&path).cloned().unwrap_or_default();
                    let start: String = old.chars().take(at).collect();
                    let rest: String = old.chars().skip(at).collect();
                    assert!(rest.starts_with(r["DeleteText"].as_str()));
                    let new = format!(
                        "{start}{}{}",
                        r["InsertText"],
                        &rest[r["DeleteText"].len()..]
                    );
                    files.insert(path, new);
                    checked += 1;
                }
                "File.Rename" => {
                    let c = files.remove(&path).unwrap();
                    files.insert(r["DestinationCodeStateSection"].clone(), c);
                }
                _ => {}
            }
        }
        assert_eq!(checked, 3);
        assert_eq!(files["src/cccc.rs"], A2_FOR_TESTS);
    }

    #[test]
    fn table_code_states_check_and_match_the_directory_ones() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let eps = [episode_for_tests("ep1"), episode_for_tests("ep2")];
        write_as(a.path(), &eps, CodeStates::Table).unwrap();
        write_as(b.path(), &eps, CodeStates::Directory).unwrap();
        let (sa, sb) = (check(a.path()).unwrap(), check(b.path()).unwrap());
        assert_eq!(sa, sb);
        let meta = fs::read_to_string(a.path().join(DIR).join(METADATA_FILE)).unwrap();
        assert!(meta.contains("CodeStateRepresentation,Table\n"), "{meta}");
        // The same ids in both; each id's rows rebuild its directory.
        let ids = |d: &Path| -> BTreeSet<String> {
            rows_of(d)
                .into_iter()
                .map(|r| r["CodeStateID"].clone())
                .filter(|s| !s.is_empty())
                .collect()
        };
        assert_eq!(ids(a.path()), ids(b.path()));
        let table = a
            .path()
            .join(DIR)
            .join(CODE_STATES_DIR)
            .join(CODE_STATES_FILE);
        let mut rd = csv::Reader::from_path(&table).unwrap();
        let mut n = 0;
        for rec in rd.records() {
            let rec = rec.unwrap();
            let on_disk = fs::read_to_string(
                b.path()
                    .join(DIR)
                    .join(CODE_STATES_DIR)
                    .join(&rec[0])
                    .join(&rec[1]),
            )
            .unwrap();
            assert_eq!(on_disk, &rec[2]);
            n += 1;
        }
        assert!(n >= sa.code_states);
        // A changed content no longer hashes to its id.
        let text = fs::read_to_string(&table).unwrap();
        fs::write(&table, text.replacen("fn a()", "fn z()", 1)).unwrap();
        let err = check(a.path()).unwrap_err().to_string();
        assert!(err.contains("hash to"), "{err}");
    }

    #[test]
    fn runs_and_compiles_carry_what_the_spec_requires() {
        let tmp = tempfile::tempdir().unwrap();
        write_as(tmp.path(), &[workflow_for_tests()], CodeStates::Table).unwrap();
        let rows = rows_of(tmp.path());
        let mut seen = BTreeSet::new();
        for r in &rows {
            let ty = r["EventType"].as_str();
            match ty {
                "Compile" => assert!(!r["CodeStateSection"].is_empty(), "{r:?}"),
                "Run.Test" => {
                    assert!(
                        !r["ExecutionID"].is_empty() && !r["TestID"].is_empty(),
                        "{r:?}"
                    );
                    assert_eq!(r["TestID"], test_id(&r["X-Command"]));
                }
                "Run.Program" => {
                    assert!(!r["ExecutionID"].is_empty(), "{r:?}");
                    assert!(!r["ExecutionResult"].is_empty(), "{r:?}");
                }
                _ => continue,
            }
            seen.insert(ty.to_string());
        }
        assert_eq!(seen.len(), 3);
        check(tmp.path()).unwrap();
    }

    #[test]
    fn line_breaks_stay_in_free_text_columns() {
        let mut ep = episode_for_tests("ep1");
        if let ActionBody::Focus { app, .. } = &mut ep.actions[7].body {
            *app = Some("fire\nfox".into());
        } else {
            panic!("fixture changed");
        }
        let tmp = tempfile::tempdir().unwrap();
        write_as(tmp.path(), &[ep], CodeStates::Table).unwrap();
        let rows = rows_of(tmp.path());
        assert_eq!(rows[8]["X-App"], "fire fox");
        assert!(rows[12]["X-Message"].contains('\n'));
        for r in &rows {
            for (k, v) in r {
                if v.contains('\n') {
                    assert!(multiline_columns().contains(&k.as_str()), "{k}");
                }
            }
        }
        check(tmp.path()).unwrap();
    }
}
