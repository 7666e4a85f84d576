//! Realistic synthetic sessions, for demos, tests and benchmarks.
//!
//! The generator plays an engineer at work: pointer paths with minimum-jerk
//! velocity profiles sampled at 30 Hz, typing bursts with log-normal
//! inter-key intervals, key rollover, typos and corrections, saves with file
//! snapshots, switches to a terminal, scrolling, and commits; and what an
//! editor plugin and the shell hook would send: the file in focus, edits
//! and cursor moves, diagnostics after saves, and the commands run in the
//! terminal (tests and builds as `candor run` reports them). It is seeded,
//! so the same options give the same events. Sessions written from it are
//! marked synthetic in the store.
//!
//! With `with_text` off it produces only what `keys.timing`, `mouse`,
//! `window.apps` and `editor.files` would record: no typed text, titles,
//! contents, messages, commands or editor actions.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::event::{Event, Stamp};
use crate::keymap;
use crate::registry::Kind;

const MS: i64 = 1_000_000;
const SCREEN: (f64, f64) = (1920.0, 1080.0);

/// Lines the synthetic engineer types, written for this generator.
const CODE: &[&str] = &[
    "fn parse_header(line: &str) -> Option<(String, String)> {",
    "    let (name, value) = line.split_once(':')?;",
    "    Some((name.trim().to_lowercase(), value.trim().to_owned()))",
    "}",
    "let mut totals: HashMap<String, u64> = HashMap::new();",
    "for entry in entries.iter().filter(|e| e.size > 0) {",
    "    *totals.entry(entry.owner.clone()).or_default() += entry.size;",
    "if retries > MAX_RETRIES { return Err(Error::GaveUp(retries)); }",
    "def median(values):",
    "    ordered = sorted(values)",
    "    mid = len(ordered) // 2",
    "    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2",
    "assert_eq!(parse_header(\"Host: example.org\"), Some((\"host\".into(), \"example.org\".into())));",
    "// keep the cache bounded so long sessions do not grow without limit",
    "const CACHE_LIMIT: usize = 4_096;",
];
const COMMANDS: &[&str] = &[
    "cargo test",
    "cargo build --release",
    "git status",
    "pytest -q",
    "git diff",
];
const MESSAGES: &[&str] = &[
    "Parse headers case-insensitively",
    "Bound the cache and add a regression test",
    "Fix the median of even-length inputs",
];
/// Beyond this many lines, the synthetic engineer deletes a block.
const MAX_LINES: usize = 150;
const FILES: &[&str] = &["src/lib.rs", "src/parse.rs", "tests/parse.rs", "stats.py"];

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Wall-clock ns of the session's start.
    pub start_wall_ns: i64,
    /// Include typed text, titles, file contents and commit messages.
    pub with_text: bool,
    /// The workspace name file events carry.
    pub workspace: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            start_wall_ns: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            with_text: true,
            workspace: "demo".into(),
        }
    }
}

/// An endless, time-ordered stream of synthetic events.
pub struct Generator {
    opts: Options,
    rng: SmallRng,
    /// Monotonic ns since the session start.
    t: i64,
    pointer: (f64, f64),
    files: Vec<(String, String)>,
    /// Whether each file was saved yet: its first save creates it, and
    /// only that one is a `file_create` (a create of a file that exists
    /// would be a diff from a text the file no longer has).
    saved: Vec<bool>,
    current_file: usize,
    queue: VecDeque<Event>,
    phase: u64,
}

impl Generator {
    pub fn new(opts: Options) -> Generator {
        Generator {
            rng: SmallRng::seed_from_u64(opts.seed),
            opts,
            t: 0,
            pointer: (SCREEN.0 / 2.0, SCREEN.1 / 2.0),
            files: FILES
                .iter()
                .map(|f| ((*f).to_owned(), String::new()))
                .collect(),
            saved: vec![false; FILES.len()],
            current_file: 0,
            queue: VecDeque::new(),
            phase: 0,
        }
    }

    /// Monotonic ns elapsed in the synthetic session so far.
    pub fn elapsed_ns(&self) -> i64 {
        self.t
    }

    fn stamp(&self, mono: i64) -> Stamp {
        Stamp {
            wall_ns: self.opts.start_wall_ns + mono,
            mono_ns: mono,
        }
    }

    fn ev(&self, kind: Kind, mono: i64) -> Event {
        Event::new(kind, self.stamp(mono))
    }

    /// A log-normal duration in ms with the given median and spread.
    fn lognormal_ms(&mut self, median: f64, sigma: f64) -> i64 {
        // Box–Muller for one standard normal draw.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        ((median * (sigma * z).exp()).round() as i64).max(1) * MS
    }

    fn focus(&mut self, out: &mut Vec<Event>, app: &str, title: &str) {
        let mut e = self.ev(Kind::WindowFocus, self.t);
        set(&mut e, "app", app);
        if self.opts.with_text {
            set(&mut e, "title", title);
        }
        out.push(e);
    }

    /// A pointer movement to (x, y) with a minimum-jerk profile, a slight
    /// arc and hand tremor, sampled at 30 Hz.
    fn move_to(&mut self, out: &mut Vec<Event>, x: f64, y: f64) {
        let (x0, y0) = self.pointer;
        let dist = ((x - x0).powi(2) + (y - y0).powi(2)).sqrt();
        let dur = (250.0 + 120.0 * (dist / 40.0 + 1.0).log2()) * self.rng.random_range(0.8..1.25);
        let steps = ((dur / 33.3).ceil() as usize).max(2);
        let bend = self.rng.random_range(-0.12..0.12) * dist;
        let (nx, ny) = if dist > 0.0 {
            (-(y - y0) / dist, (x - x0) / dist)
        } else {
            (0.0, 0.0)
        };
        for i in 1..=steps {
            let tau = i as f64 / steps as f64;
            let s = 10.0 * tau.powi(3) - 15.0 * tau.powi(4) + 6.0 * tau.powi(5);
            let arc = bend * (std::f64::consts::PI * tau).sin();
            let px = x0 + (x - x0) * s + nx * arc + self.rng.random_range(-1.0..1.0);
            let py = y0 + (y - y0) * s + ny * arc + self.rng.random_range(-1.0..1.0);
            self.t += (dur / steps as f64) as i64 * MS;
            let mut e = self.ev(Kind::MouseMove, self.t);
            set(&mut e, "x", px.clamp(0.0, SCREEN.0 - 1.0).round() as i64);
            set(&mut e, "y", py.clamp(0.0, SCREEN.1 - 1.0).round() as i64);
            out.push(e);
        }
        self.pointer = (x, y);
    }

    fn click(&mut self, out: &mut Vec<Event>) {
        let (x, y) = (self.pointer.0.round() as i64, self.pointer.1.round() as i64);
        for (kind, gap) in [
            (Kind::MouseDown, 0),
            (Kind::MouseUp, self.lognormal_ms(95.0, 0.3)),
        ] {
            self.t += gap;
            let mut e = self.ev(kind, self.t);
            set(&mut e, "button", "left");
            set(&mut e, "x", x);
            set(&mut e, "y", y);
            out.push(e);
        }
    }

    fn key(
        &mut self,
        out: &mut Vec<Event>,
        down_at: i64,
        key: &str,
        text: Option<&str>,
        mods: i64,
    ) {
        let hold = self.lognormal_ms(85.0, 0.25);
        for (kind, at) in [(Kind::KeyDown, down_at), (Kind::KeyUp, down_at + hold)] {
            let mut e = self.ev(kind, at);
            set(&mut e, "class", keymap::class_of(key));
            set(&mut e, "mods", mods);
            if self.opts.with_text {
                set(&mut e, "key", key);
                if let (Kind::KeyDown, Some(t)) = (kind, text) {
                    set(&mut e, "text", t);
                }
            }
            out.push(e);
        }
    }

    /// Types `text` with human timing; returns when the last key is up.
    fn type_text(&mut self, out: &mut Vec<Event>, text: &str) {
        for c in text.chars() {
            if self.rng.random_bool(0.03) && c.is_ascii_lowercase() {
                // A typo, noticed and corrected.
                let wrong = char::from(b'a' + self.rng.random_range(0..26u8));
                self.type_char(out, wrong);
                self.t += self.lognormal_ms(320.0, 0.4);
                self.key(out, self.t, "Backspace", Some("\u{8}"), 0);
                self.t += self.lognormal_ms(140.0, 0.4);
            }
            self.type_char(out, c);
        }
        self.t += 120 * MS;
    }

    fn type_char(&mut self, out: &mut Vec<Event>, c: char) {
        let Some((key, shift)) = keymap::us_key_for_char(c) else {
            return;
        };
        let s = c.to_string();
        if shift {
            self.key(out, self.t, "ShiftLeft", None, 0);
            self.t += self.lognormal_ms(60.0, 0.3);
            self.key(out, self.t, &key, Some(&s), 1);
        } else {
            self.key(out, self.t, &key, Some(&s), 0);
        }
        self.t += self.lognormal_ms(150.0, 0.45);
    }

    fn chord(&mut self, out: &mut Vec<Event>, key: &str, chord: &str) {
        self.key(out, self.t, "ControlLeft", None, 0);
        self.t += self.lognormal_ms(90.0, 0.3);
        self.key(out, self.t, key, Some(chord), 2);
        self.t += self.lognormal_ms(200.0, 0.3);
    }

    /// An editor plugin's event about the current file.
    fn editor_event(&self, kind: Kind) -> Event {
        let mut e = self.ev(kind, self.t);
        set(&mut e, "workspace", self.opts.workspace.as_str());
        set(&mut e, "path", self.files[self.current_file].0.as_str());
        e
    }

    /// What the shell hook (or `candor run`) reports of `cmd`, run for
    /// `ms` milliseconds and ended now.
    fn command_event(&mut self, cmd: &str, ms: i64) -> Event {
        let kind = match cmd {
            "cargo test" | "pytest -q" => Kind::RunTest,
            "cargo build --release" => Kind::RunBuild,
            _ => Kind::ShellCommand,
        };
        let mut e = self.ev(kind, self.t);
        set(&mut e, "command", cmd);
        set(&mut e, "cwd", ".");
        set(&mut e, "workspace", self.opts.workspace.as_str());
        set(&mut e, "duration_ms", ms);
        let failed = i64::from(self.rng.random_bool(0.3));
        set(&mut e, "exit", if failed == 1 { 101 } else { 0 });
        if kind == Kind::ShellCommand {
            set(&mut e, "shell", "bash");
        } else {
            set(
                &mut e,
                "runner",
                if cmd.starts_with("cargo") {
                    "cargo"
                } else {
                    "pytest"
                },
            );
            if kind == Kind::RunTest {
                set(&mut e, "passed", self.rng.random_range(5..60i64));
                set(&mut e, "failed", failed);
                set(&mut e, "skipped", self.rng.random_range(0..3i64));
            }
        }
        e
    }

    fn file_event(&mut self, out: &mut Vec<Event>, kind: Kind, idx: usize) {
        let mut e = self.ev(kind, self.t);
        set(&mut e, "workspace", self.opts.workspace.as_str());
        set(&mut e, "path", self.files[idx].0.as_str());
        if self.opts.with_text && kind != Kind::FileDelete {
            set(&mut e, "content", self.files[idx].1.as_bytes().to_vec());
        }
        out.push(e);
    }

    /// One stretch of work; events may overlap (key rollover), so the
    /// caller sorts them.
    fn next_phase(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.phase += 1;
        let editor_title = format!("{} - demo - Code", self.files[self.current_file].0);
        // Back to the editor: focus, point, click.
        self.focus(&mut out, "code", &editor_title);
        let mut e = self.editor_event(Kind::EditorFocus);
        set(&mut e, "editor", "vscode");
        out.push(e);
        let (x, y) = (
            self.rng.random_range(300.0..1800.0),
            self.rng.random_range(120.0..1000.0),
        );
        self.move_to(&mut out, x, y);
        self.click(&mut out);
        if self.rng.random_bool(0.3) {
            for _ in 0..self.rng.random_range(1..8) {
                self.t += self.lognormal_ms(60.0, 0.5);
                let mut e = self.ev(Kind::MouseWheel, self.t);
                set(&mut e, "dx", 0);
                set(&mut e, "dy", if self.rng.random_bool(0.7) { -1 } else { 1 });
                out.push(e);
            }
        }
        // A burst of lines typed in one place, then a save.
        let lines = self.files[self.current_file].1.lines().count();
        let at = if lines == 0 {
            0
        } else {
            self.rng.random_range(0..=lines)
        };
        if self.opts.with_text {
            let mut e = self.editor_event(Kind::EditorCursor);
            set(&mut e, "line", at as i64);
            set(&mut e, "col", 0);
            out.push(e);
        }
        for k in 0..self.rng.random_range(1..4) {
            let line = CODE[self.rng.random_range(0..CODE.len())];
            self.t += self.lognormal_ms(900.0, 0.6);
            let started = self.t;
            self.type_text(&mut out, line);
            self.type_char(&mut out, '\n');
            if self.opts.with_text {
                // The plugin reports the line as one edit once it is in.
                let offset = self.files[self.current_file]
                    .1
                    .lines()
                    .take(at + k)
                    .map(|l| l.len() as i64 + 1)
                    .sum::<i64>();
                let mut e = self.ev(Kind::EditorEdit, self.t.max(started));
                set(&mut e, "workspace", self.opts.workspace.as_str());
                set(&mut e, "path", self.files[self.current_file].0.as_str());
                set(&mut e, "offset", offset);
                set(&mut e, "deleted", 0);
                set(&mut e, "text", format!("{line}\n"));
                set(&mut e, "line", (at + k) as i64);
                set(&mut e, "col", 0);
                set(&mut e, "editor", "vscode");
                out.push(e);
            }
            insert_line(&mut self.files[self.current_file].1, at + k, line);
        }
        // Files do not grow forever: now and then a block is cut out.
        if lines > MAX_LINES {
            let n = self.rng.random_range(5..30);
            let from = self.rng.random_range(0..lines - n);
            remove_lines(&mut self.files[self.current_file].1, from, n);
        }
        self.chord(&mut out, "KeyS", "ctrl+s");
        let kind = if std::mem::replace(&mut self.saved[self.current_file], true) {
            Kind::FileModify
        } else {
            Kind::FileCreate
        };
        self.file_event(&mut out, kind, self.current_file);
        if self.opts.with_text {
            self.t += self.lognormal_ms(300.0, 0.4);
            let mut e = self.editor_event(Kind::EditorDiagnostics);
            set(&mut e, "errors", i64::from(self.rng.random_bool(0.2)));
            set(&mut e, "warnings", self.rng.random_range(0..3i64));
            set(&mut e, "info", 0);
            set(&mut e, "hints", self.rng.random_range(0..2i64));
            out.push(e);
        }
        // Sometimes run something in the terminal.
        if self.rng.random_bool(0.4) {
            let (x, y) = (
                self.rng.random_range(100.0..900.0),
                self.rng.random_range(700.0..1050.0),
            );
            self.move_to(&mut out, x, y);
            self.click(&mut out);
            self.focus(&mut out, "Alacritty", "~/src/demo");
            let cmd = COMMANDS[self.rng.random_range(0..COMMANDS.len())];
            self.type_text(&mut out, cmd);
            self.type_char(&mut out, '\n');
            let ran = self.lognormal_ms(2500.0, 0.7);
            self.t += ran;
            if self.opts.with_text {
                let e = self.command_event(cmd, ran / MS);
                out.push(e);
            }
        }
        // Every few phases, commit; now and then switch or rename a file.
        if self.phase % 6 == 0 {
            self.focus(&mut out, "Alacritty", "~/src/demo");
            let msg = MESSAGES[self.rng.random_range(0..MESSAGES.len())];
            let hash: String = (0..40)
                .map(|_| char::from_digit(self.rng.random_range(0..16), 16).unwrap_or('0'))
                .collect();
            let mut e = self.ev(Kind::GitCommit, self.t);
            set(&mut e, "workspace", self.opts.workspace.as_str());
            set(&mut e, "hash", hash);
            if self.opts.with_text {
                set(&mut e, "message", msg);
            }
            out.push(e);
            self.t += 500 * MS;
        }
        if self.rng.random_bool(0.15) {
            self.current_file = self.rng.random_range(0..self.files.len());
        }
        if self.phase % 40 == 0 {
            let from = self.files[self.current_file].0.clone();
            let to = from.replace(".rs", "_v2.rs").replace(".py", "_v2.py");
            let mut e = self.ev(Kind::FileRename, self.t);
            set(&mut e, "workspace", self.opts.workspace.as_str());
            set(&mut e, "from", from);
            set(&mut e, "to", to.as_str());
            out.push(e);
            self.files[self.current_file].0 = to;
        }
        // Think before the next stretch.
        self.t += self.lognormal_ms(4000.0, 0.8);
        out.sort_by_key(|e| e.mono_ns);
        out
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        while self.queue.is_empty() {
            let phase = self.next_phase();
            self.queue.extend(phase);
        }
        self.queue.pop_front()
    }
}

/// Inserts `line` (and a newline) before line `at` of `text`.
fn insert_line(text: &mut String, at: usize, line: &str) {
    let offset = text
        .match_indices('\n')
        .nth(at.wrapping_sub(1))
        .map_or(if at == 0 { 0 } else { text.len() }, |(i, _)| i + 1);
    text.insert_str(offset, &format!("{line}\n"));
}

/// Removes `n` lines from line `from` of `text`.
fn remove_lines(text: &mut String, from: usize, n: usize) {
    let kept: Vec<&str> = text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i < from || *i >= from + n)
        .map(|(_, l)| l)
        .collect();
    *text = kept.concat();
}

/// Sets a field the generator knows is declared; a mismatch is a bug in
/// this file, caught by its tests.
fn set(e: &mut Event, field: &str, v: impl Into<crate::event::Value>) {
    if let Err(err) = e.set(field, v) {
        debug_assert!(false, "synthetic generator: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::registry::Scope;

    #[test]
    fn lines_go_in_and_out_where_asked() {
        let mut t = String::new();
        insert_line(&mut t, 0, "b");
        insert_line(&mut t, 0, "a");
        insert_line(&mut t, 2, "d");
        insert_line(&mut t, 2, "c");
        assert_eq!(t, "a\nb\nc\nd\n");
        remove_lines(&mut t, 1, 2);
        assert_eq!(t, "a\nd\n");
    }

    #[test]
    fn events_are_valid_ordered_and_deterministic() {
        let a: Vec<Event> = Generator::new(Options::default()).take(20_000).collect();
        let b: Vec<Event> = Generator::new(Options::default()).take(20_000).collect();
        assert_eq!(a, b);
        for w in a.windows(2) {
            assert!(w[0].mono_ns <= w[1].mono_ns);
        }
        for e in &a {
            e.validate().unwrap();
        }
        for kind in [
            Kind::KeyDown,
            Kind::MouseMove,
            Kind::MouseDown,
            Kind::WindowFocus,
            Kind::FileModify,
            Kind::EditorFocus,
            Kind::EditorEdit,
            Kind::EditorCursor,
            Kind::EditorDiagnostics,
            Kind::ShellCommand,
            Kind::RunTest,
            Kind::RunBuild,
        ] {
            assert!(a.iter().any(|e| e.kind == kind), "no {kind}");
        }
    }

    #[test]
    fn without_text_no_content_fields_appear() {
        let opts = Options {
            with_text: false,
            ..Options::default()
        };
        for e in Generator::new(opts).take(20_000) {
            for f in ["key", "text", "title", "content", "message"] {
                assert!(e.get(f).is_none(), "{} carries {f}", e.kind);
            }
            assert!(
                matches!(
                    e.kind.scope(),
                    Scope::KeysTiming | Scope::Mouse | Scope::WindowApps | Scope::EditorFiles
                ),
                "{}",
                e.kind
            );
        }
    }

    #[test]
    fn typing_has_human_timing() {
        let downs: Vec<i64> = Generator::new(Options::default())
            .take(20_000)
            .filter(|e| e.kind == Kind::KeyDown && e.get("class") == Some(&Value::from("letter")))
            .map(|e| e.mono_ns)
            .collect();
        let mut gaps: Vec<i64> = downs
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|g| *g < 2_000 * MS)
            .collect();
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        assert!(
            (80 * MS..400 * MS).contains(&median),
            "median inter-key {median} ns"
        );
    }
}
