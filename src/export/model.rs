//! The dataset's shape: coding episodes, their ordered actions and the code
//! states they start and end from. Every writer (JSONL, Parquet, ProgSnap2),
//! `preview` and `verify` speak these types, so the formats cannot drift
//! apart. Everything here is already redacted and anonymized: no type in
//! this file may hold a raw path, a name, an absolute time or raw text.
//!
//! `docs/dataset.md` documents the fields; bump [`SCHEMA_VERSION`] on any
//! change a reader could notice.

use serde::{Deserialize, Serialize};

/// The version of the episode schema (JSONL lines, Parquet columns,
/// ProgSnap2 columns).
pub const SCHEMA_VERSION: u32 = 3;

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// No activity for longer than the idle gap.
    Idle,
    /// A git commit closed it (the commit is its last action).
    Commit,
    /// Work moved to another workspace.
    Workspace,
    /// The exported data (or its time range) ended.
    End,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Commit => "commit",
            EndReason::Workspace => "workspace",
            EndReason::End => "end",
        }
    }
}

/// One span of work in one workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    pub schema: u32,
    /// HMAC-SHA256 pseudonym (hex, 32 chars) under the export's salt.
    pub episode_id: String,
    /// Pseudonym of the consenting engineer.
    pub subject_id: String,
    /// Pseudonym of the workspace; `None` when the episode touched no file.
    pub workspace_id: Option<String>,
    /// The ISO week the episode started in (`2026-W48`): the only absolute
    /// time in a dataset.
    pub week: String,
    pub duration_ms: i64,
    pub end_reason: EndReason,
    /// Every file the episode touches, with its initial and final state.
    pub files: Vec<FileStates>,
    pub actions: Vec<Action>,
}

/// A file's state at the start and at the end of an episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStates {
    /// Pseudonym of the file; it survives renames within an export.
    pub file_id: String,
    pub initial: CodeState,
    #[serde(rename = "final")]
    pub final_: CodeState,
}

/// A file's content at one point, redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeState {
    /// Anonymized path relative to the workspace root.
    pub path: String,
    pub exists: bool,
    /// `None` when the file does not exist, or its content was not
    /// recorded (`editor.content` not granted, or not text).
    pub content: Option<String>,
    /// SHA-256 (hex) of `content`; `None` with it.
    pub state_id: Option<String>,
}

/// One step of work, `t_ms` after the episode's start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub seq: u32,
    pub t_ms: i64,
    #[serde(flatten)]
    pub body: ActionBody,
}

/// One key in a typing burst: its offset from the burst's start (on the
/// re-synthesized clock: a population draw, never the typist's own
/// interval), and its class. A run of keys that typed a redacted value
/// shows as one key of class `redacted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTime {
    pub t: i64,
    pub class: String,
}

/// A test or build run through `candor run`, with what the runner's output
/// said (the counts are `None` where it said nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub command: String,
    pub cwd: String,
    /// `cargo`, `pytest`, `go`, `npm` or `other`.
    pub runner: String,
    pub exit: i64,
    pub duration_ms: i64,
    pub passed: Option<i64>,
    pub failed: Option<i64>,
    pub skipped: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionBody {
    /// Keys typed without a pause, in one application.
    Typing {
        app: Option<String>,
        /// The text the burst typed, redacted; `None` without `keys.text`.
        text: Option<String>,
        duration_ms: i64,
        keys: Vec<KeyTime>,
    },
    /// A save that changed a file: a unified diff from its previous state.
    Edit {
        file_id: String,
        path: String,
        /// `None` when content was not recorded.
        diff: Option<String>,
        /// The state after the edit.
        state_id: Option<String>,
    },
    /// Work moved to another file of the workspace (derived from saves).
    FileSwitch {
        file_id: String,
        path: String,
    },
    FileCreate {
        file_id: String,
        path: String,
        diff: Option<String>,
        state_id: Option<String>,
    },
    FileDelete {
        file_id: String,
        path: String,
    },
    FileRename {
        file_id: String,
        from: String,
        to: String,
    },
    /// Another application took focus.
    Focus {
        app: Option<String>,
        /// Redacted; only with `window.titles`.
        title: Option<String>,
    },
    /// Pointer activity between two other actions, summarized.
    Mouse {
        duration_ms: i64,
        moves: u32,
        distance_px: i64,
        clicks: u32,
        scroll: i64,
    },
    Commit {
        /// Redacted; only with `editor.content`.
        message: Option<String>,
    },
    /// A span in which capture lost, excluded or paused events.
    Gap {
        reason: String,
        duration_ms: i64,
        lost: i64,
    },
    /// A command line run in a shell (`shell.commands`), placed at its
    /// start.
    ShellCommand {
        /// Redacted, with paths, users and hosts anonymized.
        command: String,
        /// The working directory relative to the workspace, anonymized like
        /// file paths; `.` for the workspace root, `outside` outside every
        /// watched workspace.
        cwd: String,
        /// `None` when the shell or the daemon ended first.
        exit: Option<i64>,
        duration_ms: Option<i64>,
    },
    /// Tests run through `candor run`, with what the runner's output said.
    TestRun(RunResult),
    /// A build run through `candor run`.
    BuildRun(RunResult),
    /// The editor showed another file (an editor plugin's focus event).
    FileFocus {
        file_id: String,
        path: String,
        /// The editor's language id (`rust`, `python`), when it sent one.
        language: Option<String>,
    },
    /// Edits made in the editor to one file without a pause of 2 s or
    /// more, summarized: never their text, offsets or per-edit timing.
    EditorEdits {
        file_id: String,
        path: String,
        duration_ms: i64,
        edits: i64,
        inserted_bytes: i64,
        deleted_bytes: i64,
        /// The lines the edits started on (0-based), when the editor sent
        /// them.
        min_line: Option<i64>,
        max_line: Option<i64>,
    },
    /// Cursor moves and selections in one file without a pause of 2 s or
    /// more, summarized. Lines are 0-based.
    Navigation {
        file_id: String,
        path: String,
        duration_ms: i64,
        moves: u32,
        selections: u32,
        start_line: i64,
        end_line: i64,
        min_line: i64,
        max_line: i64,
    },
    /// An editor command, by its id (never its arguments).
    EditorCommand {
        command: String,
        file_id: Option<String>,
        path: Option<String>,
    },
    /// A file's diagnostics changed: their counts by severity.
    Diagnostics {
        file_id: String,
        path: String,
        errors: i64,
        warnings: i64,
        info: i64,
        hints: i64,
    },
}

impl ActionBody {
    /// The `type` tag, as written in every format.
    pub fn type_name(&self) -> &'static str {
        match self {
            ActionBody::Typing { .. } => "typing",
            ActionBody::Edit { .. } => "edit",
            ActionBody::FileSwitch { .. } => "file_switch",
            ActionBody::FileCreate { .. } => "file_create",
            ActionBody::FileDelete { .. } => "file_delete",
            ActionBody::FileRename { .. } => "file_rename",
            ActionBody::Focus { .. } => "focus",
            ActionBody::Mouse { .. } => "mouse",
            ActionBody::Commit { .. } => "commit",
            ActionBody::Gap { .. } => "gap",
            ActionBody::ShellCommand { .. } => "shell_command",
            ActionBody::TestRun(_) => "test_run",
            ActionBody::BuildRun(_) => "build_run",
            ActionBody::FileFocus { .. } => "file_focus",
            ActionBody::EditorEdits { .. } => "editor_edits",
            ActionBody::Navigation { .. } => "navigation",
            ActionBody::EditorCommand { .. } => "editor_command",
            ActionBody::Diagnostics { .. } => "diagnostics",
        }
    }

    /// Every `type` tag, in declaration order.
    pub const TYPE_NAMES: [&'static str; 18] = [
        "typing",
        "edit",
        "file_switch",
        "file_create",
        "file_delete",
        "file_rename",
        "focus",
        "mouse",
        "commit",
        "gap",
        "shell_command",
        "test_run",
        "build_run",
        "file_focus",
        "editor_edits",
        "navigation",
        "editor_command",
        "diagnostics",
    ];

    /// The text fields a redaction scan must find clean: every string but
    /// the pseudonyms and state hashes.
    pub fn texts(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match self {
            ActionBody::Typing {
                app, text, keys, ..
            } => {
                out.extend([app, text].into_iter().flatten());
                out.extend(keys.iter().map(|k| &k.class));
            }
            ActionBody::Edit { path, diff, .. } | ActionBody::FileCreate { path, diff, .. } => {
                out.push(path);
                out.extend(diff);
            }
            ActionBody::FileSwitch { path, .. }
            | ActionBody::FileDelete { path, .. }
            | ActionBody::EditorEdits { path, .. }
            | ActionBody::Navigation { path, .. }
            | ActionBody::Diagnostics { path, .. } => out.push(path),
            ActionBody::FileRename { from, to, .. } => out.extend([from, to]),
            ActionBody::Focus { app, title } => out.extend([app, title].into_iter().flatten()),
            ActionBody::Commit { message } => out.extend(message),
            ActionBody::Gap { reason, .. } => out.push(reason),
            ActionBody::ShellCommand { command, cwd, .. } => out.extend([command, cwd]),
            ActionBody::TestRun(RunResult {
                command,
                cwd,
                runner,
                ..
            })
            | ActionBody::BuildRun(RunResult {
                command,
                cwd,
                runner,
                ..
            }) => out.extend([command, cwd, runner]),
            ActionBody::FileFocus { path, language, .. } => {
                out.push(path);
                out.extend(language);
            }
            ActionBody::EditorCommand { command, path, .. } => {
                out.push(command);
                out.extend(path);
            }
            ActionBody::Mouse { .. } => {}
        }
        out.into_iter().map(String::as_str).collect()
    }

    /// The command lines, which a redaction scan must also find free of
    /// the secrets only a command line's shape gives away
    /// ([`super::command::secrets`]: `mysql -pHunter2`).
    pub fn command_line(&self) -> Option<&str> {
        match self {
            ActionBody::ShellCommand { command, .. }
            | ActionBody::TestRun(RunResult { command, .. })
            | ActionBody::BuildRun(RunResult { command, .. }) => Some(command),
            _ => None,
        }
    }
}

impl Episode {
    pub fn key_count(&self) -> usize {
        self.actions
            .iter()
            .map(|a| match &a.body {
                ActionBody::Typing { keys, .. } => keys.len(),
                _ => 0,
            })
            .sum()
    }
}
