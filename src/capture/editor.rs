//! File events in watched workspaces (notify), with snapshots, and git
//! commits.
//!
//! - Paths are recorded relative to their workspace root, under the root's
//!   name; nothing outside the roots is watched.
//! - Files that git ignores, and files on the deny list (`.env*`, keys,
//!   `.ssh/`...), are never read and never recorded.
//! - Changes are debounced per path: after a quiet period the path is
//!   classified as created, modified or deleted by comparing with what was
//!   known to exist, so an editor's save dance (temp file, rename, write)
//!   becomes one event. Renames notify reports as such stay renames.
//! - With `editor.content`, text files up to a size cap are snapshotted
//!   into the store's content-addressed, sealed blobs.
//! - A commit appends a line to `.git/logs/HEAD`; that line gives the new
//!   hash, and `git log` the message (under `editor.content`). The author's
//!   name and e-mail are never recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use super::workspace::{Deny, Workspace, Workspaces};
use super::{Control, SourceState};
use crate::config::EditorConfig;
use crate::event::{Event, SessionClock};
use crate::registry::{Kind, Scope};

/// Files scanned at start, per root, to learn what exists.
const SCAN_LIMIT: usize = 200_000;

/// One watched workspace, with what the watcher knows of it.
struct Root {
    ws: Workspace,
    known: BTreeSet<PathBuf>,
    last_reflog_len: u64,
}

impl Root {
    fn new(ws: Workspace) -> Root {
        let reflog = ws.path.join(".git/logs/HEAD");
        Root {
            last_reflog_len: std::fs::metadata(&reflog).map(|m| m.len()).unwrap_or(0),
            ws,
            known: BTreeSet::new(),
        }
    }
}

/// Is this a text file we may snapshot? Reads it only if it is small enough.
fn snapshot(abs: &Path, cap: u64) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(abs).ok()?;
    if !meta.is_file() || meta.len() > cap {
        return None;
    }
    let bytes = std::fs::read(abs).ok()?;
    (!bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok()).then_some(bytes)
}

struct Editor {
    ctl: Arc<Control>,
    clock: SessionClock,
    roots: Vec<Root>,
    deny: Deny,
    cap: u64,
    debounce: Duration,
    pending: BTreeMap<PathBuf, Instant>,
}

impl Editor {
    fn root_of(&self, abs: &Path) -> Option<usize> {
        // The deepest root containing the path.
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| abs.starts_with(&r.ws.path))
            .max_by_key(|(_, r)| r.ws.path.components().count())
            .map(|(i, _)| i)
    }

    /// Whether a path may be looked at at all.
    fn admissible(&mut self, abs: &Path) -> Option<(usize, PathBuf)> {
        let i = self.root_of(abs)?;
        let rel = abs.strip_prefix(&self.roots[i].ws.path).ok()?.to_owned();
        if rel.as_os_str().is_empty() || self.deny.denies(&rel) {
            return None;
        }
        let is_dir = abs.is_dir();
        if is_dir || self.roots[i].ws.ignored(abs, is_dir) {
            return None;
        }
        Some((i, rel))
    }

    fn scan(&mut self) {
        for i in 0..self.roots.len() {
            let mut walker = ignore::WalkBuilder::new(&self.roots[i].ws.path);
            walker
                .hidden(false)
                .git_ignore(true)
                .git_exclude(true)
                .require_git(false);
            let mut n = 0;
            for entry in walker.build().flatten() {
                if n >= SCAN_LIMIT {
                    break;
                }
                let p = entry.path().to_owned();
                if entry.file_type().is_some_and(|t| t.is_file()) {
                    if let Ok(rel) = p.strip_prefix(&self.roots[i].ws.path) {
                        if !rel.starts_with(".git") && !self.deny.denies(rel) {
                            self.roots[i].known.insert(rel.to_owned());
                            n += 1;
                        }
                    }
                }
            }
        }
    }

    fn file_event(&self, kind: Kind, root: usize, rel: &Path, content: Option<Vec<u8>>) {
        let mut e = Event::new(kind, self.clock.stamp());
        let ok = e
            .set("workspace", self.roots[root].ws.name.as_str())
            .is_ok()
            && e.set("path", rel.to_string_lossy().as_ref()).is_ok()
            && content.is_none_or(|c| e.set("content", c).is_ok());
        if ok {
            self.ctl.deliver(e);
        }
    }

    fn on_notify(&mut self, ev: notify::Event) {
        // Commits show as writes under .git (the reflog may be created
        // before its new directory is watched, so any .git event counts).
        for p in &ev.paths {
            if p.components().any(|c| c.as_os_str() == ".git") {
                if let Some(i) = self.root_of(p) {
                    self.check_commit(i);
                }
            }
        }
        if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = ev.kind {
            if let [from, to] = ev.paths.as_slice() {
                let from_ok = self.admissible_path(from);
                let to_ok = self.admissible(to);
                match (from_ok, to_ok) {
                    (Some((i, a)), Some((j, b))) if i == j => {
                        self.pending.remove(from);
                        self.roots[i].known.remove(&a);
                        let replaced = !self.roots[i].known.insert(b.clone());
                        let mut e = Event::new(Kind::FileRename, self.clock.stamp());
                        let ok = e.set("workspace", self.roots[i].ws.name.as_str()).is_ok()
                            && e.set("from", a.to_string_lossy().as_ref()).is_ok()
                            && e.set("to", b.to_string_lossy().as_ref()).is_ok();
                        if ok {
                            self.ctl.deliver(e);
                        }
                        // A rename onto an existing file is a new version of it.
                        if replaced {
                            self.pending.insert(to.clone(), Instant::now());
                        }
                        return;
                    }
                    _ => {}
                }
            }
        }
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        for p in ev.paths {
            self.pending.insert(p, Instant::now());
        }
    }

    /// Like `admissible`, for a path that may no longer exist.
    fn admissible_path(&mut self, abs: &Path) -> Option<(usize, PathBuf)> {
        let i = self.root_of(abs)?;
        let rel = abs.strip_prefix(&self.roots[i].ws.path).ok()?.to_owned();
        if rel.as_os_str().is_empty()
            || self.deny.denies(&rel)
            || self.roots[i].ws.ignored(abs, false)
        {
            return None;
        }
        Some((i, rel))
    }

    /// Settles paths that have been quiet for the debounce time.
    fn settle(&mut self, now: Instant) {
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= self.debounce)
            .map(|(p, _)| p.clone())
            .collect();
        let content = self.ctl.gate().grants(Scope::EditorContent);
        for abs in due {
            self.pending.remove(&abs);
            let exists = abs.is_file();
            let Some((i, rel)) = (if exists {
                self.admissible(&abs)
            } else {
                self.admissible_path(&abs)
            }) else {
                continue;
            };
            let known = self.roots[i].known.contains(&rel);
            let kind = match (exists, known) {
                (true, false) => Kind::FileCreate,
                (true, true) => Kind::FileModify,
                (false, true) => Kind::FileDelete,
                (false, false) => continue,
            };
            if exists {
                self.roots[i].known.insert(rel.clone());
            } else {
                self.roots[i].known.remove(&rel);
            }
            let snap = (content && exists)
                .then(|| snapshot(&abs, self.cap))
                .flatten();
            self.file_event(kind, i, &rel, snap);
        }
    }

    fn check_commit(&mut self, i: usize) {
        use std::io::{Read, Seek, SeekFrom};
        let root = self.roots[i].ws.path.clone();
        let Ok(mut file) = std::fs::File::open(root.join(".git/logs/HEAD")) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let from = self.roots[i].last_reflog_len;
        if len == from {
            return;
        }
        // A shorter reflog was rewritten (gc, expire): start over from it.
        let from = if len < from { 0 } else { from };
        let mut text = String::new();
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_string(&mut text).is_err() {
            return;
        }
        // Only whole lines; a partial last line is read next time.
        let complete = text.rfind('\n').map_or(0, |n| n + 1);
        self.roots[i].last_reflog_len = from + complete as u64;
        for line in text[..complete].lines() {
            // "<old> <new> <name> <<email>> <time> <tz>\t<action>: <subject>"
            let Some((head, action)) = line.split_once('\t') else {
                continue;
            };
            if !action.starts_with("commit") {
                continue;
            }
            let Some(hash) = head.split_whitespace().nth(1) else {
                continue;
            };
            let mut e = Event::new(Kind::GitCommit, self.clock.stamp());
            if e.set("workspace", self.roots[i].ws.name.as_str()).is_err()
                || e.set("hash", hash).is_err()
            {
                continue;
            }
            if self.ctl.gate().grants(Scope::EditorContent) {
                let message = std::process::Command::new("git")
                    .arg("-C")
                    .arg(&root)
                    .args(["log", "-1", "--format=%B", hash])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
                    .or_else(|| action.split_once(": ").map(|(_, s)| s.to_owned()));
                if let Some(m) = message {
                    let _ = e.set("message", m);
                }
            }
            self.ctl.deliver(e);
        }
    }
}

/// Starts watching `config.roots`. Roots that do not exist are reported;
/// the source runs on the others.
pub fn spawn(ctl: Arc<Control>, clock: SessionClock, config: &EditorConfig) -> SourceState {
    if config.roots.is_empty() {
        return SourceState::Off("no workspace roots are watched (`candor watch add PATH`)".into());
    }
    let (found, missing) = match Workspaces::from_config(&config.roots, &config.deny) {
        Ok(w) => w,
        Err(why) => return SourceState::Unavailable(why),
    };
    let Workspaces { roots, deny } = found;
    let roots: Vec<Root> = roots.into_iter().map(Root::new).collect();
    if roots.is_empty() {
        return SourceState::Unavailable(format!("no watched root exists: {}", missing.join(", ")));
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut watcher = match notify::recommended_watcher(move |res| {
        let _ = tx.send(res);
    }) {
        Ok(w) => w,
        Err(e) => return SourceState::Unavailable(format!("cannot watch files: {e}")),
    };
    for r in &roots {
        if let Err(e) = watcher.watch(&r.ws.path, RecursiveMode::Recursive) {
            return SourceState::Unavailable(format!("cannot watch {}: {e}", r.ws.path.display()));
        }
    }
    let mut editor = Editor {
        ctl: ctl.clone(),
        clock,
        roots,
        deny,
        cap: config.snapshot_max_bytes,
        debounce: config.debounce,
        pending: BTreeMap::new(),
    };
    let ctl_for_join = ctl.clone();
    let worker = std::thread::Builder::new()
        .name("candor-editor".into())
        .spawn(move || {
            let _watcher = watcher;
            editor.scan();
            let tick = Duration::from_millis(50);
            let mut last_git_poll = Instant::now();
            while !editor.ctl.stopping() {
                match rx.recv_timeout(tick) {
                    Ok(Ok(ev)) => editor.on_notify(ev),
                    Ok(Err(e)) => tracing::warn!("file watch error: {e}"),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                editor.settle(Instant::now());
                if last_git_poll.elapsed() >= Duration::from_secs(1) {
                    last_git_poll = Instant::now();
                    for i in 0..editor.roots.len() {
                        editor.check_commit(i);
                    }
                }
                let gone: Vec<String> = editor
                    .roots
                    .iter()
                    .filter(|r| !r.ws.path.is_dir())
                    .map(|r| r.ws.path.display().to_string())
                    .collect();
                if !gone.is_empty() {
                    editor.ctl.set_state(
                        "editor",
                        SourceState::Unavailable(format!(
                            "watched root disappeared: {}",
                            gone.join(", ")
                        )),
                    );
                }
            }
            // Settle what is left, so a stop right after a save or a commit
            // still records it.
            editor.settle(Instant::now() + Duration::from_secs(3600));
            for i in 0..editor.roots.len() {
                editor.check_commit(i);
            }
        });
    match worker {
        Ok(w) => {
            ctl_for_join.adopt(w);
            if missing.is_empty() {
                SourceState::Running
            } else {
                SourceState::Unavailable(format!(
                    "running, but these roots do not exist: {}",
                    missing.join(", ")
                ))
            }
        }
        Err(e) => SourceState::Unavailable(format!("cannot start the editor thread: {e}")),
    }
}
