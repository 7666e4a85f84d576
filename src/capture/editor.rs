//! File events in watched workspaces (notify), with snapshots, and git
//! commits.
//!
//! - Paths are recorded relative to their workspace root, under the root's
//!   name; nothing outside the roots is watched.
//! - Files that git ignores, and files on the deny list (`.env*`, keys,
//!   `.ssh/`...), are never read and never recorded.
//! - Links are never followed. A symbolic link is recorded by its own name,
//!   without content, with its target only when that resolves to a path
//!   of the same workspace that may be recorded (else `hidden`); linked
//!   directories are neither watched nor walked. A regular file with other names (a hard
//!   link, perhaps to `~/.pgpass`) is recorded without content. A withheld
//!   snapshot is recorded as an `excluded` gap. A snapshot is read from the
//!   descriptor that was checked: opened without following links, and
//!   still the same file, with one name, at the path that was judged.
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

use super::workspace::{Workspace, Workspaces};
use super::{Control, SourceState};
use crate::config::EditorConfig;
use crate::event::{Event, SessionClock};
use crate::registry::{Kind, Scope};

/// Files scanned at start, per root, to learn what exists.
const SCAN_LIMIT: usize = 200_000;

/// What the watcher knows of one watched workspace (by the index of its
/// root in [`Workspaces`]).
struct Known {
    files: BTreeSet<PathBuf>,
    last_reflog_len: u64,
}

impl Known {
    fn new(ws: &Workspace) -> Known {
        let reflog = ws.path.join(".git/logs/HEAD");
        Known {
            last_reflog_len: std::fs::metadata(&reflog).map(|m| m.len()).unwrap_or(0),
            files: BTreeSet::new(),
        }
    }
}

/// What became of a snapshot.
#[derive(Debug, PartialEq, Eq)]
enum Snap {
    /// The text of the file.
    Text(Vec<u8>),
    /// Not a small text file (or gone): nothing to keep, nothing withheld.
    None,
    /// A link, or a file that changed under us: never read, and why.
    Withheld(&'static str),
}

/// Reads the text of the regular file `abs` (judged by the caller from
/// `seen`, its `lstat`), if it is small enough and no link is involved.
fn snapshot(abs: &Path, seen: &std::fs::Metadata, cap: u64) -> Snap {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    if seen.file_type().is_symlink() {
        return Snap::Withheld("symbolic link");
    }
    if !seen.is_file() {
        return Snap::None;
    }
    if seen.nlink() > 1 {
        return Snap::Withheld("hard link");
    }
    if seen.len() > cap {
        return Snap::None;
    }
    // No link is followed at the end of the path, and a FIFO swapped in
    // cannot block the watcher.
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::open(abs, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Snap::Withheld("symbolic link"),
        Err(_) => return Snap::None,
    };
    let file = std::fs::File::from(fd);
    let Ok(now) = file.metadata() else {
        return Snap::None;
    };
    // The descriptor must be the file that was judged, still with one name.
    if !now.is_file() || now.dev() != seen.dev() || now.ino() != seen.ino() {
        return Snap::Withheld("the file changed while it was read");
    }
    if now.nlink() > 1 {
        return Snap::Withheld("hard link");
    }
    // And it must be at the path judged: a directory on the way swapped
    // for a link would show here.
    let at = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    if at.as_deref().ok() != Some(abs) {
        return Snap::Withheld("the file's real path is not the path judged");
    }
    let mut bytes = Vec::new();
    if file
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .is_err()
        || bytes.len() as u64 > cap
    {
        return Snap::None;
    }
    if bytes.contains(&0) || std::str::from_utf8(&bytes).is_err() {
        return Snap::None;
    }
    Snap::Text(bytes)
}

struct Editor {
    ctl: Arc<Control>,
    clock: SessionClock,
    ws: Workspaces,
    known: Vec<Known>,
    cap: u64,
    debounce: Duration,
    pending: BTreeMap<PathBuf, Instant>,
}

impl Editor {
    /// Whether a path may be named in an event, and what is there now
    /// (`None`: nothing, or a directory, which has no events of its own).
    /// A link at the end of the path is judged by its own name.
    fn admissible(&mut self, abs: &Path) -> Option<(usize, PathBuf, Option<std::fs::Metadata>)> {
        let meta = std::fs::symlink_metadata(abs).ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return None;
        }
        let (i, rel) = self.ws.place(abs).ok()?;
        Some((i, rel, meta))
    }

    fn scan(&mut self) {
        for i in 0..self.ws.roots.len() {
            let root = self.ws.roots[i].path.clone();
            // Links are listed, never followed (the walker's default).
            let mut walker = ignore::WalkBuilder::new(&root);
            walker
                .hidden(false)
                .follow_links(false)
                .git_ignore(true)
                .git_exclude(true)
                .require_git(false);
            let mut n = 0;
            for entry in walker.build().flatten() {
                if n >= SCAN_LIMIT {
                    break;
                }
                let p = entry.path().to_owned();
                if entry
                    .file_type()
                    .is_some_and(|t| t.is_file() || t.is_symlink())
                {
                    if let Ok(rel) = p.strip_prefix(&root) {
                        if !rel.starts_with(".git") && !self.ws.deny.denies(rel) {
                            self.known[i].files.insert(rel.to_owned());
                            n += 1;
                        }
                    }
                }
            }
        }
    }

    /// Offers a file event; a snapshot withheld from an event that was
    /// recorded is recorded as an `excluded` gap, so the absence is seen.
    fn file_event(&self, kind: Kind, root: usize, rel: &Path, link: Option<String>, snap: Snap) {
        let mut e = Event::new(kind, self.clock.stamp());
        let mut ok = e
            .set("workspace", self.ws.roots[root].name.as_str())
            .is_ok()
            && e.set("path", rel.to_string_lossy().as_ref()).is_ok()
            && link.is_none_or(|l| e.set("link", l).is_ok());
        let withheld = match snap {
            Snap::Text(c) => {
                ok &= e.set("content", c).is_ok();
                None
            }
            Snap::None => None,
            Snap::Withheld(why) => Some(why),
        };
        if !ok {
            return;
        }
        let kind_name = kind.to_string();
        if self.ctl.offer(e).is_ok() {
            if let Some(why) = withheld {
                tracing::debug!("no snapshot of a {kind_name} event: {why}");
                let stamp = self.clock.stamp();
                let gap = Event::new(Kind::CaptureGap, stamp)
                    .with("reason", "excluded")
                    .and_then(|g| g.with("duration_ns", 0))
                    .and_then(|g| g.with("count", 1))
                    .and_then(|g| g.with("lost_kind", format!("{kind_name}.content")));
                if let Ok(gap) = gap {
                    self.ctl.deliver_gap(gap);
                }
            }
        }
    }

    fn on_notify(&mut self, ev: notify::Event) {
        // Commits show as writes under .git (the reflog may be created
        // before its new directory is watched, so any .git event counts).
        for p in &ev.paths {
            if p.components().any(|c| c.as_os_str() == ".git") {
                if let Some(i) = self.ws.root_of(p) {
                    self.check_commit(i);
                }
            }
        }
        if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = ev.kind {
            if let [from, to] = ev.paths.as_slice() {
                let from_ok = self.ws.place(from).ok();
                let to_ok = self.admissible(to);
                match (from_ok, to_ok) {
                    (Some((i, a)), Some((j, b, _))) if i == j => {
                        self.pending.remove(from);
                        self.known[i].files.remove(&a);
                        let replaced = !self.known[i].files.insert(b.clone());
                        let mut e = Event::new(Kind::FileRename, self.clock.stamp());
                        let ok = e.set("workspace", self.ws.roots[i].name.as_str()).is_ok()
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

    /// What a symbolic link in root `i` points to, as an event may name it:
    /// the fully resolved target (through any chain of links), relative to
    /// the same root, when that target is placed there on its own (not
    /// denied, not ignored); otherwise `hidden`. Nothing is read.
    fn link_target(&mut self, i: usize, abs: &Path) -> String {
        let Ok(real) = std::fs::canonicalize(abs) else {
            return "hidden".into();
        };
        match self.ws.place(&real) {
            Ok((j, rel)) if j == i => rel.to_string_lossy().into_owned(),
            _ => "hidden".into(),
        }
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
            let Some((i, rel, meta)) = self.admissible(&abs) else {
                continue;
            };
            let exists = meta.is_some();
            let known = self.known[i].files.contains(&rel);
            let kind = match (exists, known) {
                (true, false) => Kind::FileCreate,
                (true, true) => Kind::FileModify,
                (false, true) => Kind::FileDelete,
                (false, false) => continue,
            };
            if exists {
                self.known[i].files.insert(rel.clone());
            } else {
                self.known[i].files.remove(&rel);
            }
            let link = meta
                .as_ref()
                .filter(|m| m.file_type().is_symlink())
                .map(|_| self.link_target(i, &abs));
            let snap = match (&meta, content) {
                (Some(m), true) => snapshot(&abs, m, self.cap),
                _ => Snap::None,
            };
            self.file_event(kind, i, &rel, link, snap);
        }
    }

    fn check_commit(&mut self, i: usize) {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        let root = self.ws.roots[i].path.clone();
        // The reflog is read without following a link planted in its place.
        let Ok(mut file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(root.join(".git/logs/HEAD"))
        else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let from = self.known[i].last_reflog_len;
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
        self.known[i].last_reflog_len = from + complete as u64;
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
            if e.set("workspace", self.ws.roots[i].name.as_str()).is_err()
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
    if found.roots.is_empty() {
        return SourceState::Unavailable(format!("no watched root exists: {}", missing.join(", ")));
    }
    let known: Vec<Known> = found.roots.iter().map(Known::new).collect();
    let (tx, rx) = crossbeam_channel::unbounded();
    // A linked directory is not watched: its events would name paths whose
    // files are elsewhere.
    let watch_config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = match notify::RecommendedWatcher::new(
        move |res| {
            let _ = tx.send(res);
        },
        watch_config,
    ) {
        Ok(w) => w,
        Err(e) => return SourceState::Unavailable(format!("cannot watch files: {e}")),
    };
    for r in &found.roots {
        if let Err(e) = watcher.watch(&r.path, RecursiveMode::Recursive) {
            return SourceState::Unavailable(format!("cannot watch {}: {e}", r.path.display()));
        }
    }
    let mut editor = Editor {
        ctl: ctl.clone(),
        clock,
        ws: found,
        known,
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
                    for i in 0..editor.ws.roots.len() {
                        editor.check_commit(i);
                    }
                }
                let gone: Vec<String> = editor
                    .ws
                    .roots
                    .iter()
                    .filter(|r| !r.path.is_dir())
                    .map(|r| r.path.display().to_string())
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
            for i in 0..editor.ws.roots.len() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn lstat(p: &Path) -> std::fs::Metadata {
        std::fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn only_a_regular_file_with_one_name_at_the_judged_path_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let f = root.join("a.txt");
        std::fs::write(&f, "hello\n").unwrap();
        assert_eq!(
            snapshot(&f, &lstat(&f), 100),
            Snap::Text(b"hello\n".to_vec())
        );
        // Too big, binary, or not a file: nothing, and nothing withheld.
        assert_eq!(snapshot(&f, &lstat(&f), 3), Snap::None);
        std::fs::write(root.join("bin"), b"a\0b").unwrap();
        assert_eq!(
            snapshot(&root.join("bin"), &lstat(&root.join("bin")), 100),
            Snap::None
        );
        let fifo = root.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(snapshot(&fifo, &lstat(&fifo), 100), Snap::None);

        let secret = root.join("outside.txt");
        std::fs::write(&secret, "pgpass\n").unwrap();
        let link = root.join("link.txt");
        symlink(&secret, &link).unwrap();
        assert_eq!(
            snapshot(&link, &lstat(&link), 100),
            Snap::Withheld("symbolic link")
        );
        let hard = root.join("hard.txt");
        std::fs::hard_link(&secret, &hard).unwrap();
        assert_eq!(
            snapshot(&hard, &lstat(&hard), 100),
            Snap::Withheld("hard link")
        );
    }

    #[test]
    fn a_file_swapped_after_it_was_judged_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let secret = root.join("secret.txt");
        std::fs::write(&secret, "pgpass\n").unwrap();
        let f = root.join("notes.md");

        // Judged a plain file, then replaced by a link to the secret.
        std::fs::write(&f, "notes\n").unwrap();
        let judged = lstat(&f);
        symlink(&secret, root.join("tmp")).unwrap();
        std::fs::rename(root.join("tmp"), &f).unwrap();
        assert_eq!(snapshot(&f, &judged, 100), Snap::Withheld("symbolic link"));

        // Judged a plain file, then replaced by another file.
        std::fs::remove_file(&f).unwrap();
        std::fs::write(&f, "notes\n").unwrap();
        let judged = lstat(&f);
        std::fs::write(root.join("tmp"), "other\n").unwrap();
        std::fs::rename(root.join("tmp"), &f).unwrap();
        assert!(matches!(snapshot(&f, &judged, 100), Snap::Withheld(_)));

        // Judged with one name, given a second one before it is read.
        let judged = lstat(&f);
        std::fs::hard_link(&f, root.join("second")).unwrap();
        assert_eq!(snapshot(&f, &judged, 100), Snap::Withheld("hard link"));

        // The same file, reached through a directory swapped for a link:
        // its real path is not the path judged.
        std::fs::create_dir(root.join("d")).unwrap();
        let inner = root.join("d/f.txt");
        std::fs::write(&inner, "inner\n").unwrap();
        let judged = lstat(&inner);
        std::fs::rename(root.join("d"), root.join("d-real")).unwrap();
        symlink(root.join("d-real"), root.join("d")).unwrap();
        assert!(matches!(snapshot(&inner, &judged, 100), Snap::Withheld(_)));
    }
}
