//! The event registry: every consent scope and every event kind, declared once.
//!
//! The consent notice, the consent screen, the capture gate, the store's
//! codec, audit and export all read these tables. Nothing can be stored that is
//! not declared here, and nothing is declared here that CONSENT.md does not
//! describe (a test ties the two together).
//!
//! A kind has a *base scope*: without it the kind is not recorded at all.
//! A field may name its own, narrower scope (the typed character of a key
//! event needs `keys.text` on top of `keys.timing`); the gate strips such
//! fields when their scope is not granted.

use std::fmt;

/// How sensitive data is, after Mozilla Glean's data categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sensitivity {
    /// Facts about the tool itself: when it ran, what it lost.
    Technical,
    /// How the engineer interacts, without content: timing, pointer paths.
    Interaction,
    /// Names and structure of the engineer's work: app classes, file paths.
    StoredContent,
    /// Content that can spell secrets or personal matters: typed text,
    /// file contents, window titles, commit messages. Sealed at rest.
    HighlySensitive,
}

impl Sensitivity {
    pub fn name(self) -> &'static str {
        match self {
            Sensitivity::Technical => "technical",
            Sensitivity::Interaction => "interaction",
            Sensitivity::StoredContent => "stored-content",
            Sensitivity::HighlySensitive => "highly-sensitive",
        }
    }
}

impl fmt::Display for Sensitivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A consent scope: the unit an engineer grants or refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    CaptureMeta,
    KeysTiming,
    KeysText,
    Mouse,
    WindowApps,
    WindowTitles,
    EditorFiles,
    EditorContent,
    EditorActions,
    ShellCommands,
    KeysRhythm,
}

/// What the notice and the consent screen say about a scope.
#[derive(Debug)]
pub struct ScopeDecl {
    pub scope: Scope,
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub sensitivity: Sensitivity,
    /// False only for `capture.meta`, which is part of any consent: it holds
    /// no content, and a reviewer needs it to see what was *not* captured.
    pub toggleable: bool,
    /// Scopes this one needs beyond those its fields imply: editor actions
    /// name the file they happen in, which is `editor.files`' to allow.
    pub needs: &'static [Scope],
}

impl Scope {
    pub const ALL: [Scope; 11] = [
        Scope::CaptureMeta,
        Scope::KeysTiming,
        Scope::KeysText,
        Scope::Mouse,
        Scope::WindowApps,
        Scope::WindowTitles,
        Scope::EditorFiles,
        Scope::EditorContent,
        Scope::EditorActions,
        Scope::ShellCommands,
        Scope::KeysRhythm,
    ];

    pub fn decl(self) -> &'static ScopeDecl {
        match self {
            Scope::CaptureMeta => &CAPTURE_META,
            Scope::KeysTiming => &KEYS_TIMING,
            Scope::KeysText => &KEYS_TEXT,
            Scope::Mouse => &MOUSE,
            Scope::WindowApps => &WINDOW_APPS,
            Scope::WindowTitles => &WINDOW_TITLES,
            Scope::EditorFiles => &EDITOR_FILES,
            Scope::EditorContent => &EDITOR_CONTENT,
            Scope::EditorActions => &EDITOR_ACTIONS,
            Scope::ShellCommands => &SHELL_COMMANDS,
            Scope::KeysRhythm => &KEYS_RHYTHM,
        }
    }

    pub fn name(self) -> &'static str {
        self.decl().name
    }

    pub fn sensitivity(self) -> Sensitivity {
        self.decl().sensitivity
    }

    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Scopes that must be granted for this one to mean anything: the base
    /// scopes of the kinds whose fields this scope covers (keys.text needs
    /// keys.timing, because typed text rides on key events).
    pub fn requires(self) -> Vec<Scope> {
        let mut out: Vec<Scope> = Kind::ALL
            .iter()
            .filter(|k| k.scope() != self && k.fields().iter().any(|f| f.scope == Some(self)))
            .map(|k| k.scope())
            .chain(self.decl().needs.iter().copied())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The longest retention of anything this scope covers, in days: what
    /// the consent screen promises for the scope as a whole. A scope that
    /// records nothing of its own (`keys.rhythm` only decides how
    /// `keys.timing`'s data may leave) lasts as long as what it governs.
    pub fn retention_days(self) -> u32 {
        Kind::ALL
            .iter()
            .filter(|k| k.covered_by(self))
            .map(|k| k.decl().retention_days)
            .max()
            .or_else(|| self.decl().needs.iter().map(|s| s.retention_days()).max())
            .unwrap_or(0)
    }

    /// Whether this scope records anything itself, rather than widening
    /// what an export may do with another scope's data.
    pub fn records(self) -> bool {
        Kind::ALL.iter().any(|k| k.covered_by(self))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const CAPTURE_META: ScopeDecl = ScopeDecl {
    scope: Scope::CaptureMeta,
    name: "capture.meta",
    title: "Capture bookkeeping (always on)",
    description: "When capture ran, when it was paused, and every span in which events were \
                  dropped, excluded or lost, with the reason and a count. Never any content.",
    sensitivity: Sensitivity::Technical,
    toggleable: false,
    needs: &[],
};
const KEYS_TIMING: ScopeDecl = ScopeDecl {
    scope: Scope::KeysTiming,
    name: "keys.timing",
    title: "Typing rhythm",
    description: "When each key goes down and up, with only its class (letter, digit, space, \
                  punctuation, modifier, navigation, edit, function). Never which key: a key \
                  code spells the text.",
    sensitivity: Sensitivity::Interaction,
    toggleable: true,
    needs: &[],
};
const KEYS_TEXT: ScopeDecl = ScopeDecl {
    scope: Scope::KeysText,
    name: "keys.text",
    title: "Typed keys and text",
    description: "The exact keys pressed, shortcuts such as Ctrl+C, and the characters typed. \
                  Needs keys.timing. Sealed on disk.",
    sensitivity: Sensitivity::HighlySensitive,
    toggleable: true,
    needs: &[],
};
const MOUSE: ScopeDecl = ScopeDecl {
    scope: Scope::Mouse,
    name: "mouse",
    title: "Mouse",
    description: "Mouse buttons, the wheel, and pointer moves (thinned to a fixed rate).",
    sensitivity: Sensitivity::Interaction,
    toggleable: true,
    needs: &[],
};
const WINDOW_APPS: ScopeDecl = ScopeDecl {
    scope: Scope::WindowApps,
    name: "window.apps",
    title: "Focused application",
    description: "The class of the application that has focus (for example \"code\" or \
                  \"firefox\"), and when focus changes.",
    sensitivity: Sensitivity::StoredContent,
    toggleable: true,
    needs: &[],
};
const WINDOW_TITLES: ScopeDecl = ScopeDecl {
    scope: Scope::WindowTitles,
    name: "window.titles",
    title: "Window titles",
    description: "The title of the focused window, which can name documents, pages and people. \
                  Needs window.apps. Sealed on disk.",
    sensitivity: Sensitivity::HighlySensitive,
    toggleable: true,
    needs: &[],
};
const EDITOR_FILES: ScopeDecl = ScopeDecl {
    scope: Scope::EditorFiles,
    name: "editor.files",
    title: "File events in watched workspaces",
    description: "Creates, modifies, deletes and renames in the workspaces you choose to watch, \
                  with paths relative to the workspace, and git commit hashes.",
    sensitivity: Sensitivity::StoredContent,
    toggleable: true,
    needs: &[],
};
const EDITOR_CONTENT: ScopeDecl = ScopeDecl {
    scope: Scope::EditorContent,
    name: "editor.content",
    title: "File contents and commit messages",
    description: "Snapshots of text files in watched workspaces when they change (secrets-like \
                  files are never read), and git commit messages. Needs editor.files. Sealed on \
                  disk.",
    sensitivity: Sensitivity::HighlySensitive,
    toggleable: true,
    needs: &[],
};

const EDITOR_ACTIONS: ScopeDecl = ScopeDecl {
    scope: Scope::EditorActions,
    name: "editor.actions",
    title: "Editor actions (from an editor plugin)",
    description: "Where the cursor is and what is selected (line and column, never the \
                  selected text), the editor commands you run (their names only, such as \
                  editor.action.formatDocument), and diagnostics as counts by severity, in \
                  files of watched workspaces. Needs editor.files.",
    sensitivity: Sensitivity::StoredContent,
    toggleable: true,
    needs: &[Scope::EditorFiles],
};
const SHELL_COMMANDS: ScopeDecl = ScopeDecl {
    scope: Scope::ShellCommands,
    name: "shell.commands",
    title: "Shell commands, tests and builds",
    description: "The command lines you run in a shell with Candor's hook installed, with the \
                  directory (relative to a watched workspace, or just \"outside\"), the exit \
                  status and the duration; and, for `candor run`, test and build results as \
                  pass/fail counts. Command lines can hold secrets. Sealed on disk.",
    sensitivity: Sensitivity::HighlySensitive,
    toggleable: true,
    needs: &[],
};
/// Records nothing more than `keys.timing`: it lets an export carry the
/// measured intervals between keys (`candor-export --timing raw`) instead
/// of re-synthesized ones. Off unless granted, and listed last, since a
/// typing rhythm is a biometric.
const KEYS_RHYTHM: ScopeDecl = ScopeDecl {
    scope: Scope::KeysRhythm,
    name: "keys.rhythm",
    title: "Raw typing rhythm in exports",
    description: "Your typing rhythm can identify you. With this, an export may carry the \
                  measured time between your keys, for typing research, instead of times \
                  drawn from a model of everyone. Records nothing more. Needs keys.timing.",
    sensitivity: Sensitivity::Interaction,
    toggleable: true,
    needs: &[Scope::KeysTiming],
};

/// The type of a field's value, as the codec stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A signed integer (coordinates, durations, counts).
    Int,
    Bool,
    Str,
    /// One of a fixed list of strings, stored as its index.
    Enum(&'static [&'static str]),
    /// Bytes kept once in the content-addressed `blobs` table.
    Blob,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::Str => "string",
            FieldType::Enum(_) => "enum",
            FieldType::Blob => "blob",
        }
    }
}

/// One field of an event kind.
#[derive(Debug)]
pub struct FieldDecl {
    pub name: &'static str,
    pub ty: FieldType,
    /// A scope needed on top of the kind's own; `None` means the kind's scope.
    pub scope: Option<Scope>,
    pub optional: bool,
    pub doc: &'static str,
}

impl FieldDecl {
    const fn new(name: &'static str, ty: FieldType, doc: &'static str) -> FieldDecl {
        FieldDecl {
            name,
            ty,
            scope: None,
            optional: false,
            doc,
        }
    }
    const fn optional(mut self) -> FieldDecl {
        self.optional = true;
        self
    }
    const fn needs(mut self, scope: Scope) -> FieldDecl {
        self.scope = Some(scope);
        self.optional = true;
        self
    }

    /// Highly sensitive fields are sealed (AEAD) at rest.
    pub fn sealed(&self, kind: Kind) -> bool {
        self.scope.unwrap_or(kind.scope()).sensitivity() == Sensitivity::HighlySensitive
    }
}

/// An event kind's declaration.
#[derive(Debug)]
pub struct KindDecl {
    pub kind: Kind,
    /// Stable numeric code stored in the database; never reused.
    pub code: u16,
    pub name: &'static str,
    pub scope: Scope,
    pub purpose: &'static str,
    pub retention_days: u32,
    pub fields: &'static [FieldDecl],
    /// Whether local clients (the shell hook, editor plugins, `candor run`)
    /// may send this kind over the ingest socket. Kinds the daemon observes
    /// itself (keys, focus, file saves, gaps) can never be sent.
    pub ingest: bool,
}

/// Every event kind Candor can record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    KeyDown,
    KeyUp,
    MouseMove,
    MouseDown,
    MouseUp,
    MouseWheel,
    WindowFocus,
    FileCreate,
    FileModify,
    FileDelete,
    FileRename,
    GitCommit,
    CaptureGap,
    ShellCommand,
    RunTest,
    RunBuild,
    EditorFocus,
    EditorEdit,
    EditorCursor,
    EditorSelection,
    EditorCommand,
    EditorDiagnostics,
}

pub const KEY_CLASSES: &[&str] = &[
    "letter",
    "digit",
    "space",
    "punctuation",
    "modifier",
    "navigation",
    "edit",
    "function",
    "other",
];
pub const MOUSE_BUTTONS: &[&str] = &["left", "right", "middle", "other"];
pub const GAP_REASONS: &[&str] = &["dropped", "paused", "excluded", "crashed", "rate-limited"];

const TYPING: &str = "Learn how engineers type and correct code: rhythm, bursts and pauses.";
const POINTING: &str = "Learn how engineers navigate: pointer paths, clicks and scrolling.";
const KEY_FIELDS: &[FieldDecl] = &[
    FieldDecl::new(
        "class",
        FieldType::Enum(KEY_CLASSES),
        "the key's class, never its identity",
    ),
    FieldDecl::new(
        "mods",
        FieldType::Int,
        "held modifiers as bits: 1 shift, 2 ctrl, 4 alt, 8 meta",
    ),
    FieldDecl::new("key", FieldType::Str, "the key's name, for example KeyH")
        .needs(Scope::KeysText),
    FieldDecl::new(
        "text",
        FieldType::Str,
        "the character typed, or a chord such as ctrl+c",
    )
    .needs(Scope::KeysText),
];
const X: FieldDecl = FieldDecl::new("x", FieldType::Int, "pointer x in screen pixels");
const Y: FieldDecl = FieldDecl::new("y", FieldType::Int, "pointer y in screen pixels");
const BUTTON_FIELDS: &[FieldDecl] = &[
    FieldDecl::new("button", FieldType::Enum(MOUSE_BUTTONS), "which button"),
    X,
    Y,
];
const FILE_FIELDS: &[FieldDecl] = &[
    FieldDecl::new(
        "workspace",
        FieldType::Str,
        "the watched workspace root's name",
    ),
    FieldDecl::new(
        "path",
        FieldType::Str,
        "the path relative to the workspace root",
    ),
    FieldDecl::new("content", FieldType::Blob, "a snapshot of the file's text")
        .needs(Scope::EditorContent),
    FieldDecl::new(
        "link",
        FieldType::Str,
        "for a symbolic link (never read through): its target relative to the workspace root \
         when that is a path that may be recorded, otherwise `hidden`",
    )
    .optional(),
];
const EDITING: &str = "Learn how code evolves while an engineer works on it.";

const KEY_DOWN: KindDecl = KindDecl {
    kind: Kind::KeyDown,
    code: 1,
    name: "key.down",
    scope: Scope::KeysTiming,
    purpose: TYPING,
    retention_days: 90,
    fields: KEY_FIELDS,
    ingest: false,
};
const KEY_UP: KindDecl = KindDecl {
    kind: Kind::KeyUp,
    code: 2,
    name: "key.up",
    ..KEY_DOWN
};
const MOUSE_MOVE: KindDecl = KindDecl {
    kind: Kind::MouseMove,
    code: 10,
    name: "mouse.move",
    scope: Scope::Mouse,
    purpose: POINTING,
    retention_days: 30,
    fields: &[X, Y],
    ingest: false,
};
const MOUSE_DOWN: KindDecl = KindDecl {
    kind: Kind::MouseDown,
    code: 11,
    name: "mouse.down",
    scope: Scope::Mouse,
    purpose: POINTING,
    retention_days: 90,
    fields: BUTTON_FIELDS,
    ingest: false,
};
const MOUSE_UP: KindDecl = KindDecl {
    kind: Kind::MouseUp,
    code: 12,
    name: "mouse.up",
    ..MOUSE_DOWN
};
const MOUSE_WHEEL: KindDecl = KindDecl {
    kind: Kind::MouseWheel,
    code: 13,
    name: "mouse.wheel",
    scope: Scope::Mouse,
    purpose: POINTING,
    retention_days: 90,
    fields: &[
        FieldDecl::new("dx", FieldType::Int, "horizontal wheel steps"),
        FieldDecl::new("dy", FieldType::Int, "vertical wheel steps; positive is up"),
    ],
    ingest: false,
};
const WINDOW_FOCUS: KindDecl = KindDecl {
    kind: Kind::WindowFocus,
    code: 20,
    name: "window.focus",
    scope: Scope::WindowApps,
    purpose: "Learn how engineers move between editor, terminal, browser and docs.",
    retention_days: 90,
    fields: &[
        FieldDecl::new(
            "app",
            FieldType::Str,
            "the focused window's class; absent when unknown",
        )
        .optional(),
        FieldDecl::new("title", FieldType::Str, "the focused window's title")
            .needs(Scope::WindowTitles),
    ],
    ingest: false,
};
const FILE_CREATE: KindDecl = KindDecl {
    kind: Kind::FileCreate,
    code: 30,
    name: "file.create",
    scope: Scope::EditorFiles,
    purpose: EDITING,
    retention_days: 180,
    fields: FILE_FIELDS,
    ingest: false,
};
const FILE_MODIFY: KindDecl = KindDecl {
    kind: Kind::FileModify,
    code: 31,
    name: "file.modify",
    ..FILE_CREATE
};
const FILE_DELETE: KindDecl = KindDecl {
    kind: Kind::FileDelete,
    code: 32,
    name: "file.delete",
    fields: &[
        FieldDecl::new(
            "workspace",
            FieldType::Str,
            "the watched workspace root's name",
        ),
        FieldDecl::new(
            "path",
            FieldType::Str,
            "the path relative to the workspace root",
        ),
    ],
    ..FILE_CREATE
};
const FILE_RENAME: KindDecl = KindDecl {
    kind: Kind::FileRename,
    code: 33,
    name: "file.rename",
    fields: &[
        FieldDecl::new(
            "workspace",
            FieldType::Str,
            "the watched workspace root's name",
        ),
        FieldDecl::new(
            "from",
            FieldType::Str,
            "the old path relative to the workspace root",
        ),
        FieldDecl::new(
            "to",
            FieldType::Str,
            "the new path relative to the workspace root",
        ),
    ],
    ..FILE_CREATE
};
const GIT_COMMIT: KindDecl = KindDecl {
    kind: Kind::GitCommit,
    code: 40,
    name: "git.commit",
    scope: Scope::EditorFiles,
    purpose: "Cut work into episodes at the points the engineer chose to commit.",
    retention_days: 180,
    fields: &[
        FieldDecl::new(
            "workspace",
            FieldType::Str,
            "the watched workspace root's name",
        ),
        FieldDecl::new("hash", FieldType::Str, "the commit hash"),
        FieldDecl::new("message", FieldType::Str, "the commit message").needs(Scope::EditorContent),
    ],
    ingest: false,
};
const CAPTURE_GAP: KindDecl = KindDecl {
    kind: Kind::CaptureGap,
    code: 90,
    name: "capture.gap",
    scope: Scope::CaptureMeta,
    purpose: "Show reviewers and the engineer what was not captured, and why.",
    retention_days: 365,
    fields: &[
        FieldDecl::new(
            "reason",
            FieldType::Enum(GAP_REASONS),
            "why nothing was captured",
        ),
        FieldDecl::new(
            "duration_ns",
            FieldType::Int,
            "how long the gap lasted, from the event's time",
        ),
        FieldDecl::new(
            "count",
            FieldType::Int,
            "how many events were lost, where known",
        ),
        FieldDecl::new("lost_kind", FieldType::Str, "the kind of the lost events").optional(),
    ],
    ingest: false,
};

/// Test runners whose output `candor run` can count passes and failures in.
pub const RUNNERS: &[&str] = &["cargo", "pytest", "go", "npm", "other"];

const WORKFLOW: &str =
    "Learn how engineers work between edits: the commands they run, and tests that fail, then pass.";
const WORKSPACE_OPT: FieldDecl = FieldDecl::new(
    "workspace",
    FieldType::Str,
    "the watched workspace the directory is in; absent when outside all of them",
)
.optional();
const CWD: FieldDecl = FieldDecl::new(
    "cwd",
    FieldType::Str,
    "the working directory relative to its watched workspace, or `outside`",
);
const DURATION_MS: FieldDecl = FieldDecl::new(
    "duration_ms",
    FieldType::Int,
    "how long the command ran, in milliseconds",
);
const SHELL_COMMAND: KindDecl = KindDecl {
    kind: Kind::ShellCommand,
    code: 50,
    name: "shell.command",
    scope: Scope::ShellCommands,
    purpose: WORKFLOW,
    retention_days: 90,
    fields: &[
        FieldDecl::new("command", FieldType::Str, "the command line as typed"),
        CWD,
        WORKSPACE_OPT,
        FieldDecl::new(
            "exit",
            FieldType::Int,
            "the exit status; absent when the shell or the daemon ended first",
        )
        .optional(),
        DURATION_MS.optional(),
        FieldDecl::new("shell", FieldType::Str, "the shell: bash or zsh").optional(),
    ],
    ingest: true,
};
const RUN_FIELDS: &[FieldDecl] = &[
    FieldDecl::new("command", FieldType::Str, "the command run"),
    CWD,
    WORKSPACE_OPT,
    FieldDecl::new(
        "exit",
        FieldType::Int,
        "the exit status (128 + N for signal N)",
    ),
    DURATION_MS,
    FieldDecl::new(
        "runner",
        FieldType::Enum(RUNNERS),
        "the runner whose output was read",
    ),
    FieldDecl::new(
        "passed",
        FieldType::Int,
        "tests passed, where the output says",
    )
    .optional(),
    FieldDecl::new(
        "failed",
        FieldType::Int,
        "tests failed, where the output says",
    )
    .optional(),
    FieldDecl::new(
        "skipped",
        FieldType::Int,
        "tests skipped or ignored, where the output says",
    )
    .optional(),
];
const RUN_TEST: KindDecl = KindDecl {
    kind: Kind::RunTest,
    code: 51,
    name: "run.test",
    scope: Scope::ShellCommands,
    purpose: WORKFLOW,
    retention_days: 90,
    fields: RUN_FIELDS,
    ingest: true,
};
const RUN_BUILD: KindDecl = KindDecl {
    kind: Kind::RunBuild,
    code: 52,
    name: "run.build",
    ..RUN_TEST
};
const EDITOR_WORKSPACE: FieldDecl = FieldDecl::new(
    "workspace",
    FieldType::Str,
    "the watched workspace root's name",
);
const EDITOR_PATH: FieldDecl = FieldDecl::new(
    "path",
    FieldType::Str,
    "the file's path relative to the workspace root",
);
const EDITOR_NAME: FieldDecl =
    FieldDecl::new("editor", FieldType::Str, "the editor: nvim or vscode").optional();
const LINE: FieldDecl = FieldDecl::new("line", FieldType::Int, "0-based line");
const COL: FieldDecl = FieldDecl::new("col", FieldType::Int, "0-based byte column in the line");
const NAVIGATING: &str = "Learn how engineers move through code: where they look, select and jump.";
const EDITOR_FOCUS: KindDecl = KindDecl {
    kind: Kind::EditorFocus,
    code: 60,
    name: "editor.focus",
    scope: Scope::EditorFiles,
    purpose: NAVIGATING,
    retention_days: 180,
    fields: &[
        EDITOR_WORKSPACE,
        EDITOR_PATH,
        EDITOR_NAME,
        FieldDecl::new("language", FieldType::Str, "the editor's language id").optional(),
    ],
    ingest: true,
};
const EDITOR_EDIT: KindDecl = KindDecl {
    kind: Kind::EditorEdit,
    code: 61,
    name: "editor.edit",
    scope: Scope::EditorContent,
    purpose: EDITING,
    retention_days: 180,
    fields: &[
        EDITOR_WORKSPACE,
        EDITOR_PATH,
        FieldDecl::new(
            "offset",
            FieldType::Int,
            "where the change starts: a byte offset in the buffer before it",
        ),
        FieldDecl::new("deleted", FieldType::Int, "how many bytes it removed"),
        FieldDecl::new("text", FieldType::Str, "the text it inserted"),
        LINE.optional(),
        COL.optional(),
        EDITOR_NAME,
    ],
    ingest: true,
};
const EDITOR_CURSOR: KindDecl = KindDecl {
    kind: Kind::EditorCursor,
    code: 62,
    name: "editor.cursor",
    scope: Scope::EditorActions,
    purpose: NAVIGATING,
    retention_days: 90,
    fields: &[EDITOR_WORKSPACE, EDITOR_PATH, LINE, COL, EDITOR_NAME],
    ingest: true,
};
const EDITOR_SELECTION: KindDecl = KindDecl {
    kind: Kind::EditorSelection,
    code: 63,
    name: "editor.selection",
    fields: &[
        EDITOR_WORKSPACE,
        EDITOR_PATH,
        LINE,
        COL,
        FieldDecl::new("end_line", FieldType::Int, "0-based line where it ends"),
        FieldDecl::new(
            "end_col",
            FieldType::Int,
            "0-based byte column where it ends",
        ),
        EDITOR_NAME,
    ],
    ..EDITOR_CURSOR
};
const EDITOR_COMMAND: KindDecl = KindDecl {
    kind: Kind::EditorCommand,
    code: 64,
    name: "editor.command",
    fields: &[
        FieldDecl::new(
            "command",
            FieldType::Str,
            "the command's id or name, never its arguments",
        ),
        FieldDecl::new(
            "workspace",
            FieldType::Str,
            "the workspace of the file it ran in",
        )
        .optional(),
        FieldDecl::new("path", FieldType::Str, "the file it ran in").optional(),
        EDITOR_NAME,
    ],
    ..EDITOR_CURSOR
};
const EDITOR_DIAGNOSTICS: KindDecl = KindDecl {
    kind: Kind::EditorDiagnostics,
    code: 65,
    name: "editor.diagnostics",
    fields: &[
        EDITOR_WORKSPACE,
        EDITOR_PATH,
        FieldDecl::new("errors", FieldType::Int, "diagnostics of severity error"),
        FieldDecl::new(
            "warnings",
            FieldType::Int,
            "diagnostics of severity warning",
        ),
        FieldDecl::new(
            "info",
            FieldType::Int,
            "diagnostics of severity information",
        ),
        FieldDecl::new("hints", FieldType::Int, "diagnostics of severity hint"),
        EDITOR_NAME,
    ],
    ..EDITOR_CURSOR
};

impl Kind {
    pub const ALL: [Kind; 22] = [
        Kind::KeyDown,
        Kind::KeyUp,
        Kind::MouseMove,
        Kind::MouseDown,
        Kind::MouseUp,
        Kind::MouseWheel,
        Kind::WindowFocus,
        Kind::FileCreate,
        Kind::FileModify,
        Kind::FileDelete,
        Kind::FileRename,
        Kind::GitCommit,
        Kind::CaptureGap,
        Kind::ShellCommand,
        Kind::RunTest,
        Kind::RunBuild,
        Kind::EditorFocus,
        Kind::EditorEdit,
        Kind::EditorCursor,
        Kind::EditorSelection,
        Kind::EditorCommand,
        Kind::EditorDiagnostics,
    ];

    pub fn decl(self) -> &'static KindDecl {
        match self {
            Kind::KeyDown => &KEY_DOWN,
            Kind::KeyUp => &KEY_UP,
            Kind::MouseMove => &MOUSE_MOVE,
            Kind::MouseDown => &MOUSE_DOWN,
            Kind::MouseUp => &MOUSE_UP,
            Kind::MouseWheel => &MOUSE_WHEEL,
            Kind::WindowFocus => &WINDOW_FOCUS,
            Kind::FileCreate => &FILE_CREATE,
            Kind::FileModify => &FILE_MODIFY,
            Kind::FileDelete => &FILE_DELETE,
            Kind::FileRename => &FILE_RENAME,
            Kind::GitCommit => &GIT_COMMIT,
            Kind::CaptureGap => &CAPTURE_GAP,
            Kind::ShellCommand => &SHELL_COMMAND,
            Kind::RunTest => &RUN_TEST,
            Kind::RunBuild => &RUN_BUILD,
            Kind::EditorFocus => &EDITOR_FOCUS,
            Kind::EditorEdit => &EDITOR_EDIT,
            Kind::EditorCursor => &EDITOR_CURSOR,
            Kind::EditorSelection => &EDITOR_SELECTION,
            Kind::EditorCommand => &EDITOR_COMMAND,
            Kind::EditorDiagnostics => &EDITOR_DIAGNOSTICS,
        }
    }

    pub fn name(self) -> &'static str {
        self.decl().name
    }

    /// The kind's position in [`Kind::ALL`], for per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn code(self) -> u16 {
        self.decl().code
    }

    pub fn scope(self) -> Scope {
        self.decl().scope
    }

    pub fn fields(self) -> &'static [FieldDecl] {
        self.decl().fields
    }

    pub fn sensitivity(self) -> Sensitivity {
        self.scope().sensitivity()
    }

    pub fn from_code(code: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| i64::from(k.code()) == code)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name == name)
    }

    /// The scopes of the kind's sealed fields and of its blob field: what a
    /// stored row needs granted, beyond the kind's own scope, when its
    /// sealed column or blob reference is set.
    pub fn sealed_scopes(self) -> (Vec<Scope>, Option<Scope>) {
        let mut sealed = Vec::new();
        let mut blob = None;
        for f in self.fields() {
            let scope = f.scope.unwrap_or(self.scope());
            if f.ty == FieldType::Blob {
                blob = Some(scope);
            } else if f.sealed(self) && !sealed.contains(&scope) {
                sealed.push(scope);
            }
        }
        (sealed, blob)
    }

    /// Whether anything of this kind is recorded under `scope`.
    pub fn covered_by(self, scope: Scope) -> bool {
        self.scope() == scope || self.fields().iter().any(|f| f.scope == Some(scope))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i, "Kind::ALL is not in declaration order");
            assert_eq!(k.decl().kind, k, "{k} declares another kind");
            assert!(codes.insert(k.code()), "duplicate code {}", k.code());
            assert!(names.insert(k.name()), "duplicate name {}", k.name());
            assert_eq!(Kind::from_code(k.code().into()), Some(k));
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        for s in Scope::ALL {
            assert_eq!(s.decl().scope, s);
            assert_eq!(Scope::from_name(s.name()), Some(s));
        }
    }

    #[test]
    fn every_scope_covers_something_and_field_scopes_are_narrower() {
        for s in Scope::ALL {
            // A scope either records something, or governs how another
            // scope's data leaves (and then needs that scope).
            assert!(
                s.records() || s.decl().needs.iter().any(|n| n.records()),
                "{s} covers nothing"
            );
            assert!(s.retention_days() > 0);
        }
        assert!(!Scope::KeysRhythm.records());
        assert_eq!(
            Scope::KeysRhythm.retention_days(),
            Scope::KeysTiming.retention_days()
        );
        for k in Kind::ALL {
            let mut names = HashSet::new();
            for f in k.fields() {
                assert!(names.insert(f.name), "{k} repeats field {}", f.name);
                if let Some(s) = f.scope {
                    assert_ne!(s, k.scope(), "{k}.{} names its kind's own scope", f.name);
                    assert!(
                        f.optional,
                        "{k}.{} needs a scope so must be optional",
                        f.name
                    );
                }
            }
            let blobs = k
                .fields()
                .iter()
                .filter(|f| f.ty == FieldType::Blob)
                .count();
            assert!(blobs <= 1, "{k} has more than one blob field");
        }
    }

    #[test]
    fn narrower_scopes_require_their_base() {
        assert_eq!(Scope::KeysText.requires(), vec![Scope::KeysTiming]);
        assert_eq!(Scope::WindowTitles.requires(), vec![Scope::WindowApps]);
        assert_eq!(Scope::EditorContent.requires(), vec![Scope::EditorFiles]);
        assert_eq!(Scope::EditorActions.requires(), vec![Scope::EditorFiles]);
        assert_eq!(Scope::KeysRhythm.requires(), vec![Scope::KeysTiming]);
        assert!(Scope::Mouse.requires().is_empty());
        assert!(Scope::ShellCommands.requires().is_empty());
    }

    #[test]
    fn highly_sensitive_fields_are_sealed() {
        let sealed: Vec<String> = Kind::ALL
            .iter()
            .flat_map(|k| {
                k.fields()
                    .iter()
                    .filter(|f| f.sealed(*k))
                    .map(move |f| format!("{k}.{}", f.name))
            })
            .collect();
        for must in [
            "key.down.text",
            "window.focus.title",
            "git.commit.message",
            "file.modify.content",
        ] {
            assert!(
                sealed.iter().any(|s| s == must),
                "{must} is not sealed: {sealed:?}"
            );
        }
        assert!(!sealed.iter().any(|s| s == "key.down.class"));
    }
}
