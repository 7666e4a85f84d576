//! Watched workspaces as the sources see them: which root a path is in,
//! whether the deny list or git hides it, and its path relative to the root.
//!
//! The file watcher and the ingest socket (editor plugins, the shell hook)
//! both ask these questions, and must answer them the same way: a file the
//! watcher would never read must not reach the store through a plugin either.
//!
//! "Git ignores it" means what `git check-ignore` says, from the repository
//! the path is in (whose top may be above the root): every `.gitignore` from
//! the top down, `$GIT_DIR/info/exclude`, `core.excludesFile`, and nothing
//! under an ignored directory, whatever a `!` line says. A test compares the
//! two on generated trees. A path is placed as written, with no link
//! followed on the way; what a link points to is the caller's to leave
//! unread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

/// The deny list as matchers: file-name globs and directory names.
pub struct Deny {
    files: GlobSet,
    dirs: Vec<String>,
}

impl Deny {
    pub fn new(patterns: &[String]) -> Result<Deny, String> {
        let mut files = GlobSetBuilder::new();
        let mut dirs = Vec::new();
        for p in patterns {
            if let Some(d) = p.strip_suffix('/') {
                dirs.push(d.to_owned());
            } else {
                let glob = GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("deny pattern `{p}`: {e}"))?;
                files.add(glob);
            }
        }
        Ok(Deny {
            files: files.build().map_err(|e| e.to_string())?,
            dirs,
        })
    }

    /// Whether `rel` (relative to a root) is denied: its file name matches
    /// a pattern, or one of its directories is a denied directory.
    pub fn denies(&self, rel: &Path) -> bool {
        let comps: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some((name, dirs)) = comps.split_last() else {
            return false;
        };
        dirs.iter().any(|d| self.dirs.contains(d))
            || self.dirs.contains(name)
            || self.files.is_match(name)
    }
}

/// When an ignore file last changed (modified time, length, inode): a
/// cached matcher is rebuilt when this differs, so an edit counts at once.
type Stamp = (Option<std::time::SystemTime>, u64, u64);

/// Ignore files whose matchers are kept; beyond this the cache starts over.
const MAX_CACHED_FILES: usize = 4096;

/// Nested repositories looked through before giving up (and ignoring).
const MAX_NESTING: usize = 32;

/// A git repository: its top (the directory holding `.git`) and its git
/// directory (`.git` itself, or where a `.git` file points, as in
/// submodules and linked worktrees).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Repo {
    top: PathBuf,
    git_dir: PathBuf,
}

/// The repository `dir` is in, found as git finds it: the nearest
/// directory, `dir` or above, holding a `.git` that is a git directory or
/// a `gitdir:` file.
fn repo_of(dir: &Path) -> Option<Repo> {
    dir.ancestors().find_map(|a| {
        let dot = a.join(".git");
        let meta = std::fs::metadata(&dot).ok()?;
        let git_dir = if meta.is_dir() {
            dot
        } else if meta.is_file() && meta.len() < 4096 {
            let text = std::fs::read_to_string(&dot).ok()?;
            let target = text.strip_prefix("gitdir:")?.trim();
            a.join(target)
        } else {
            return None;
        };
        // Git skips a `.git` that is not a repository (no HEAD).
        git_dir.join("HEAD").is_file().then(|| Repo {
            top: a.to_owned(),
            git_dir,
        })
    })
}

/// Where `core.excludesFile` points for a repository (or, without one, for
/// the user): asked of git itself, so local config, includes and `~` count
/// as git counts them; without git, the global config as the `ignore` crate
/// reads it, and then git's default `$XDG_CONFIG_HOME/git/ignore`.
fn excludes_file(top: Option<&Path>) -> Option<PathBuf> {
    let mut cmd = std::process::Command::new("git");
    if let Some(top) = top {
        cmd.arg("-C").arg(top);
    } else {
        cmd.current_dir("/");
    }
    // The daemon's own environment must not point git at another repository.
    for v in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd
        .args(["config", "--path", "--get", "core.excludesFile"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let p = PathBuf::from(text.trim_end_matches('\n'));
            Some(match top {
                Some(top) if p.is_relative() => top.join(p),
                _ => p,
            })
        }
        // Exit status 1: not set, so git's default applies.
        Ok(o) if o.status.code() == Some(1) => default_excludes_file(),
        _ => ignore::gitignore::gitconfig_excludes_path(),
    }
}

fn default_excludes_file() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(xdg.join("git/ignore"))
}

/// The ignore files of one repository (or of a root outside any), beside
/// the `.gitignore` files of its directories.
struct Rules {
    top: PathBuf,
    /// `$GIT_DIR/info/exclude`, in a repository.
    exclude: Option<PathBuf>,
    /// `core.excludesFile`, or git's default for it.
    excludes_file: Option<PathBuf>,
}

/// One watched workspace root.
pub struct Workspace {
    pub path: PathBuf,
    /// The root's directory name: what events call the workspace.
    pub name: String,
    /// Matchers by ignore file and the directory its patterns are relative
    /// to (one excludes file serves many repositories), built when needed.
    matchers: HashMap<(PathBuf, PathBuf), (Stamp, Option<Gitignore>)>,
    /// `core.excludesFile` by repository top (`None`: no repository).
    excludes: HashMap<Option<PathBuf>, Option<PathBuf>>,
}

impl Workspace {
    pub fn new(path: PathBuf) -> Workspace {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".into());
        Workspace {
            path,
            name,
            matchers: HashMap::new(),
            excludes: HashMap::new(),
        }
    }

    /// Brings the matcher of one ignore file, with patterns relative to
    /// `base`, up to date with the file. A `.gitignore` in the working tree
    /// that is a symbolic link is not read, as git (2.32 and later) does not
    /// read it.
    fn refresh(&mut self, file: &Path, base: &Path, in_tree: bool) {
        use std::os::unix::fs::MetadataExt;
        let meta = if in_tree {
            std::fs::symlink_metadata(file)
        } else {
            std::fs::metadata(file)
        };
        let key = (file.to_owned(), base.to_owned());
        let meta = match meta {
            Ok(m) if m.is_file() => m,
            // No ignore file (or a link, or not a file): no matcher, and
            // nothing cached, so a made-up path cannot grow memory.
            _ => {
                self.matchers.remove(&key);
                return;
            }
        };
        let stamp: Stamp = (meta.modified().ok(), meta.len(), meta.ino());
        if self.matchers.get(&key).is_none_or(|(s, _)| *s != stamp) {
            if self.matchers.len() >= MAX_CACHED_FILES {
                self.matchers.clear();
            }
            let mut b = GitignoreBuilder::new(base);
            // A line that is not a valid pattern is skipped, as git skips
            // what it cannot match; the other lines still count.
            let _ = b.add(file);
            let built = b.build().ok().filter(|g| !g.is_empty());
            self.matchers.insert(key, (stamp, built));
        }
    }

    /// The matcher [`Workspace::refresh`] left for a file, if any.
    fn matcher(&self, file: &Path, base: &Path) -> Option<&Gitignore> {
        self.matchers
            .get(&(file.to_owned(), base.to_owned()))
            .and_then(|(_, g)| g.as_ref())
    }

    /// Where `core.excludesFile` is for a repository (`None`: no repository).
    fn excludes_of(&mut self, repo: Option<&Repo>) -> Option<PathBuf> {
        let key = repo.map(|r| r.top.clone());
        if !self.excludes.contains_key(&key) {
            if self.excludes.len() >= MAX_CACHED_FILES {
                self.excludes.clear();
            }
            let file = excludes_file(key.as_deref());
            self.excludes.insert(key.clone(), file);
        }
        self.excludes.get(&key).cloned().flatten()
    }

    /// Git's verdict on one path from the rules of one repository, not
    /// looking at its parent directories: the `.gitignore` nearest the path
    /// first (the last matching line of a file wins), up to the top, then
    /// `$GIT_DIR/info/exclude`, then `core.excludesFile`. The matchers must
    /// have been refreshed.
    fn excluded_here(&self, rules: &Rules, q: &Path, is_dir: bool) -> bool {
        for d in q.ancestors().skip(1) {
            if !d.starts_with(&rules.top) {
                break;
            }
            if let Some(gi) = self.matcher(&d.join(".gitignore"), d) {
                match gi.matched(q, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
        }
        for file in [&rules.exclude, &rules.excludes_file].into_iter().flatten() {
            if let Some(gi) = self.matcher(file, &rules.top) {
                match gi.matched(q, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
        }
        false
    }

    /// Whether git would ignore `abs`, with git's own semantics: the rules
    /// of the repository the path is in, from that repository's top (which
    /// may be above the root), and a path under an ignored directory is
    /// ignored whatever a later `!` line says, since git never looks inside.
    /// Anything inside a `.git` directory is ignored. A repository nested
    /// inside the root is governed by its own rules, and is also ignored
    /// when the repository around it ignores its directory. Outside any
    /// repository, the `.gitignore` files from the root down still count.
    pub fn ignored(&mut self, abs: &Path, is_dir: bool) -> bool {
        if !abs.starts_with(&self.path) {
            return true;
        }
        if abs == self.path {
            return false;
        }
        let mut at = abs.to_owned();
        let mut at_is_dir = is_dir;
        for _ in 0..MAX_NESTING {
            let Some(parent) = at.parent() else {
                return true;
            };
            let repo = repo_of(parent);
            let top = match &repo {
                Some(r) => r.top.clone(),
                None => self.path.clone(),
            };
            let Ok(rel) = at.strip_prefix(&top) else {
                return true;
            };
            if rel.components().any(|c| c.as_os_str() == ".git") {
                return true;
            }
            let mut dirs: Vec<&Path> = at
                .ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(&top))
                .collect();
            dirs.reverse();
            // Each ignore file is looked at once per question.
            for d in &dirs {
                self.refresh(&d.join(".gitignore"), d, true);
            }
            let exclude = repo.as_ref().map(|r| r.git_dir.join("info/exclude"));
            if let Some(f) = &exclude {
                self.refresh(f, &top, false);
            }
            let excludes_file = self.excludes_of(repo.as_ref());
            if let Some(f) = &excludes_file {
                self.refresh(f, &top, false);
            }
            let rules = Rules {
                top: top.clone(),
                exclude,
                excludes_file,
            };
            // Every directory between the top and the path, top down: once
            // one is ignored, git never looks inside it.
            for d in dirs.iter().skip(1) {
                if self.excluded_here(&rules, d, true) {
                    return true;
                }
            }
            if self.excluded_here(&rules, &at, at_is_dir) {
                return true;
            }
            // A repository nested inside the root: its directory as the
            // repository around it sees it. (Repositories around the root,
            // such as a home directory kept in git, are not asked: the
            // workspace is inside them by the engineer's choice.)
            if top != self.path && top.starts_with(&self.path) {
                at = top;
                at_is_dir = true;
            } else {
                return false;
            }
        }
        true
    }
}

/// Why a path may not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hidden {
    Outside,
    Denied,
    Ignored,
    /// A regular file with more than one name: another name may be outside
    /// the workspace (`ln ~/.pgpass notes.md`), and nothing on disk says
    /// where, so its content is never taken.
    HardLink,
}

impl Hidden {
    pub fn reason(self) -> &'static str {
        match self {
            Hidden::Outside => "the file is outside the watched workspaces",
            Hidden::Denied => "the file is on the deny list",
            Hidden::Ignored => "git ignores the file",
            Hidden::HardLink => {
                "the file is a hard link (it has other names, maybe outside the workspaces)"
            }
        }
    }

    /// The short word clients are told.
    pub fn code(self) -> &'static str {
        match self {
            Hidden::Outside => "outside",
            Hidden::Denied => "denied",
            Hidden::Ignored => "ignored",
            Hidden::HardLink => "hard-link",
        }
    }
}

/// Whether a regular file at `abs` (not following a link at its end) has
/// other names. A file that is not there, or not a regular file, has none.
pub fn is_hard_link(abs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(abs).is_ok_and(|m| m.is_file() && m.nlink() > 1)
}

/// The configured roots that exist, with the deny list.
pub struct Workspaces {
    pub roots: Vec<Workspace>,
    pub deny: Deny,
}

impl Workspaces {
    /// Canonical roots from the config; also returns the roots that do not
    /// exist, for the caller to report.
    pub fn from_config(
        roots: &[PathBuf],
        deny: &[String],
    ) -> Result<(Workspaces, Vec<String>), String> {
        let deny = Deny::new(deny)?;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for r in roots {
            match std::fs::canonicalize(r) {
                Ok(p) if p.is_dir() => found.push(Workspace::new(p)),
                _ => missing.push(r.display().to_string()),
            }
        }
        Ok((Workspaces { roots: found, deny }, missing))
    }

    /// The deepest root containing the path.
    pub fn root_of(&self, abs: &Path) -> Option<usize> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| abs.starts_with(&r.path))
            .max_by_key(|(_, r)| r.path.components().count())
            .map(|(i, _)| i)
    }

    /// Where a path is, if it may be named in an event: its root and
    /// relative path. The path is judged as written, its last component not
    /// followed (a symbolic link is judged by its own name, and the caller
    /// must not read through it); a directory on the way that resolves
    /// elsewhere (a linked directory) puts the path outside. The file need
    /// not exist (a new buffer, a deleted file).
    pub fn place(&mut self, abs: &Path) -> Result<(usize, PathBuf), Hidden> {
        let i = self.root_of(abs).ok_or(Hidden::Outside)?;
        let rel = abs
            .strip_prefix(&self.roots[i].path)
            .map_err(|_| Hidden::Outside)?
            .to_owned();
        if rel.as_os_str().is_empty()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Hidden::Outside);
        }
        if let Some(parent) = abs.parent() {
            // A parent that is gone cannot be read through; one that exists
            // must be where it says it is.
            if let Ok(real) = std::fs::canonicalize(parent) {
                if real != parent {
                    return Err(Hidden::Outside);
                }
            }
        }
        if self.deny.denies(&rel) {
            return Err(Hidden::Denied);
        }
        if self.roots[i].ignored(abs, false) {
            return Err(Hidden::Ignored);
        }
        Ok((i, rel))
    }

    /// Where a file is, if what is in it may be recorded (an editor
    /// plugin's buffer): [`Workspaces::place`], and not a hard link.
    pub fn file(&mut self, abs: &Path) -> Result<(usize, PathBuf), Hidden> {
        let placed = self.place(abs)?;
        if is_hard_link(abs) {
            return Err(Hidden::HardLink);
        }
        Ok(placed)
    }

    /// Where a working directory is: its root's name and the relative path
    /// (`.` for the root itself), or `None` when it is outside every root,
    /// denied or ignored (a command run there is recorded as `outside`).
    pub fn dir(&mut self, abs: &Path) -> Option<(String, String)> {
        let i = self.root_of(abs)?;
        let rel = abs.strip_prefix(&self.roots[i].path).ok()?.to_owned();
        if rel.as_os_str().is_empty() {
            return Some((self.roots[i].name.clone(), ".".into()));
        }
        if self.deny.denies(&rel) || self.roots[i].ignored(abs, true) {
            return None;
        }
        Some((
            self.roots[i].name.clone(),
            rel.to_string_lossy().into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_deny_list_catches_secret_files() {
        let d = Deny::new(
            &crate::config::DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for p in [
            ".env",
            ".env.local",
            "deploy/server.pem",
            "tls.key",
            "id_ed25519",
            "home/.ssh/config",
            ".aws/credentials",
            ".netrc",
            "vault.kdbx",
            "credentials.json",
            "config/secrets.yaml",
        ] {
            assert!(d.denies(Path::new(p)), "{p} is not denied");
        }
        for p in [
            "src/main.rs",
            "keyboard.rs",
            "docs/env.md",
            "identity.rs",
            "README.md",
        ] {
            assert!(!d.denies(Path::new(p)), "{p} is denied");
        }
    }

    #[test]
    fn files_and_dirs_are_placed_in_the_deepest_root() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().canonicalize().unwrap();
        let inner = outer.join("inner");
        std::fs::create_dir_all(inner.join("src")).unwrap();
        std::fs::write(inner.join(".gitignore"), "target/\n").unwrap();
        let (mut ws, missing) = Workspaces::from_config(
            &[outer.clone(), inner.clone(), outer.join("gone")],
            &[".env*".into()],
        )
        .unwrap();
        assert_eq!(missing.len(), 1);
        let (i, rel) = ws.file(&inner.join("src/lib.rs")).unwrap();
        assert_eq!(
            (ws.roots[i].name.as_str(), rel),
            ("inner", "src/lib.rs".into())
        );
        assert_eq!(ws.file(&inner.join(".env")), Err(Hidden::Denied));
        assert_eq!(ws.file(&inner.join("target/x.rs")), Err(Hidden::Ignored));
        assert_eq!(ws.file(Path::new("/etc/passwd")), Err(Hidden::Outside));
        assert_eq!(ws.dir(&inner), Some(("inner".into(), ".".into())));
        assert_eq!(
            ws.dir(&inner.join("src")),
            Some(("inner".into(), "src".into()))
        );
        assert_eq!(ws.dir(&inner.join("target")), None);
        assert_eq!(ws.dir(Path::new("/tmp")), None);
        // A .gitignore written or changed later counts at once.
        assert!(ws.file(&inner.join("src/notes.txt")).is_ok());
        std::fs::write(inner.join("src/.gitignore"), "notes.txt\n").unwrap();
        assert_eq!(ws.file(&inner.join("src/notes.txt")), Err(Hidden::Ignored));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(inner.join(".gitignore"), "target/\nsecret.txt\n").unwrap();
        assert_eq!(ws.file(&inner.join("secret.txt")), Err(Hidden::Ignored));
    }

    #[test]
    fn rules_above_the_root_count_and_links_are_placed_by_their_own_names() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let repo = base.join("repo");
        let root = repo.join("svc");
        std::fs::create_dir_all(root.join("conf")).unwrap();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(&repo)
            .status()
            .unwrap();
        assert!(git.success());
        // The repository's rules, above the watched root, count.
        std::fs::write(repo.join(".gitignore"), "*.local.yml\n").unwrap();
        let (mut ws, _) = Workspaces::from_config(std::slice::from_ref(&root), &[]).unwrap();
        assert_eq!(
            ws.file(&root.join("conf/db.local.yml")),
            Err(Hidden::Ignored)
        );
        assert!(ws.file(&root.join("conf/db.yml")).is_ok());
        // A .gitignore that is a link is not read, as git does not read it.
        std::fs::write(base.join("rules"), "*.yml\n").unwrap();
        symlink(base.join("rules"), root.join(".gitignore")).unwrap();
        assert!(ws.file(&root.join("conf/db.yml")).is_ok());

        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "pgpass\n").unwrap();
        // Through a linked directory: outside, existing or not.
        symlink(&outside, root.join("linked")).unwrap();
        for p in ["linked/secret", "linked/new.txt"] {
            assert_eq!(ws.place(&root.join(p)), Err(Hidden::Outside), "{p}");
        }
        // A link is placed by its own name (its target is never read).
        symlink(outside.join("secret"), root.join("notes.md")).unwrap();
        assert_eq!(
            ws.place(&root.join("notes.md")).unwrap().1,
            Path::new("notes.md")
        );
        // A second name of a file outside: placed, but its content is not
        // taken from a plugin either.
        std::fs::hard_link(outside.join("secret"), root.join("hard.md")).unwrap();
        assert!(ws.place(&root.join("hard.md")).is_ok());
        assert_eq!(ws.file(&root.join("hard.md")), Err(Hidden::HardLink));
        // `..` cannot climb out of a root.
        assert_eq!(
            ws.place(&root.join("conf/../../outside/secret")),
            Err(Hidden::Outside)
        );
    }
}
