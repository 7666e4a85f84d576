//! Watched workspaces as the sources see them: which root a path is in,
//! whether the deny list or git hides it, and its path relative to the root.
//!
//! The file watcher and the ingest socket (editor plugins, the shell hook)
//! both ask these questions, and must answer them the same way: a file the
//! watcher would never read must not reach the store through a plugin either.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

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

/// When a directory's ignore files last changed: a cached matcher is
/// rebuilt when this differs, so an edited `.gitignore` counts at once.
type Stamp = [Option<std::time::SystemTime>; 2];

/// Directories whose matchers are kept; beyond this the cache starts over.
const MAX_CACHED_DIRS: usize = 4096;

/// One watched workspace root.
pub struct Workspace {
    pub path: PathBuf,
    /// The root's directory name: what events call the workspace.
    pub name: String,
    /// .gitignore matchers by directory, built when first needed.
    ignores: HashMap<PathBuf, (Stamp, Option<Gitignore>)>,
    /// The user's global excludes (`core.excludesFile`), read at start.
    global: Gitignore,
}

impl Workspace {
    pub fn new(path: PathBuf) -> Workspace {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".into());
        let (global, _) = GitignoreBuilder::new(&path).build_global();
        Workspace {
            path,
            name,
            ignores: HashMap::new(),
            global,
        }
    }

    fn gitignore_of(&mut self, dir: &Path) -> Option<&Gitignore> {
        let files = [dir.join(".gitignore"), dir.join(".git/info/exclude")];
        let stamp: Stamp =
            [0, 1].map(|i| std::fs::metadata(&files[i]).and_then(|m| m.modified()).ok());
        // A directory without ignore files (or that does not exist) needs
        // no matcher, and is not cached: a made-up path cannot grow memory.
        if stamp == [None, None] {
            self.ignores.remove(dir);
            return None;
        }
        if self.ignores.get(dir).is_none_or(|(s, _)| *s != stamp) {
            if self.ignores.len() >= MAX_CACHED_DIRS {
                self.ignores.clear();
            }
            let mut b = GitignoreBuilder::new(dir);
            let mut any = false;
            for f in &files {
                if f.is_file() && b.add(f).is_none() {
                    any = true;
                }
            }
            let built = any.then(|| b.build().ok()).flatten();
            self.ignores.insert(dir.to_owned(), (stamp, built));
        }
        self.ignores.get(dir).and_then(|(_, g)| g.as_ref())
    }

    /// Whether git would ignore `abs` (checking .gitignore files from the
    /// root down to the file's directory). `.git` itself is always ignored.
    pub fn ignored(&mut self, abs: &Path, is_dir: bool) -> bool {
        let Ok(rel) = abs.strip_prefix(&self.path) else {
            return true;
        };
        if rel
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git")
        {
            return true;
        }
        if self
            .global
            .matched_path_or_any_parents(abs, is_dir)
            .is_ignore()
        {
            return true;
        }
        let mut dir = self.path.clone();
        let mut dirs = vec![dir.clone()];
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                dir.push(c);
                dirs.push(dir.clone());
            }
        }
        for d in dirs {
            if let Some(gi) = self.gitignore_of(&d) {
                if gi.matched_path_or_any_parents(abs, is_dir).is_ignore() {
                    return true;
                }
            }
        }
        false
    }
}

/// Why a path may not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hidden {
    Outside,
    Denied,
    Ignored,
}

impl Hidden {
    pub fn reason(self) -> &'static str {
        match self {
            Hidden::Outside => "the file is outside the watched workspaces",
            Hidden::Denied => "the file is on the deny list",
            Hidden::Ignored => "git ignores the file",
        }
    }
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

    /// Where a file is, if it may be recorded: its root and relative path.
    /// The file need not exist (a new buffer, a deleted file).
    pub fn file(&mut self, abs: &Path) -> Result<(usize, PathBuf), Hidden> {
        let i = self.root_of(abs).ok_or(Hidden::Outside)?;
        let rel = abs
            .strip_prefix(&self.roots[i].path)
            .map_err(|_| Hidden::Outside)?
            .to_owned();
        if rel.as_os_str().is_empty() {
            return Err(Hidden::Outside);
        }
        if self.deny.denies(&rel) {
            return Err(Hidden::Denied);
        }
        if self.roots[i].ignored(abs, false) {
            return Err(Hidden::Ignored);
        }
        Ok((i, rel))
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
}
