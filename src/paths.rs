//! Where Candor keeps its files, and the ownership and permission rules for them.
//!
//! The data directory holds the store; the config directory holds the config
//! file and, when no OS keyring is available, the store key, so that a copy of
//! the data directory alone cannot be unsealed. Both are private to the user:
//! directories 0700, files 0600. A directory owned by someone else, or
//! writable by group or world, is refused rather than repaired, because
//! someone else may already have planted or read something there.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "candor.db";
pub const LOCK_FILE: &str = "candor.lock";
pub const KEY_FILE: &str = "store.key";
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{path} is owned by uid {owner}, not by you (uid {me}), mode {mode:04o}; refusing to use it")]
    ForeignOwner {
        path: PathBuf,
        owner: u32,
        me: u32,
        mode: u32,
    },
    #[error(
        "{path} is writable by group or others (owner uid {owner}, mode {mode:04o}); refusing to use it. \
         Fix it with `chmod go-w {path}` after checking nothing was planted there"
    )]
    WritableByOthers {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
    #[error("{path} is not a regular file; refusing to use it")]
    NotAFile { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("no Candor store at {path}: run `candor` first, or pass --data-dir")]
    NoStore { path: PathBuf },
    #[error("cannot find a home directory to place Candor's files; pass --data-dir and set CANDOR_CONFIG_DIR")]
    NoHome,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
    move |source| PathError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The resolved locations of Candor's files.
#[derive(Clone, Debug)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
}

impl Paths {
    /// XDG defaults, overridden by the explicit values (from flags or env).
    pub fn resolve(
        data_dir: Option<PathBuf>,
        config_dir: Option<PathBuf>,
    ) -> Result<Paths, PathError> {
        let data_dir = match data_dir {
            Some(d) => d,
            None => project_dirs()?.data_dir().to_owned(),
        };
        Ok(Paths {
            data_dir,
            config_dir: resolve_config_dir(config_dir)?,
        })
    }

    pub fn db_file(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join(LOCK_FILE)
    }

    pub fn key_file(&self) -> PathBuf {
        self.config_dir.join(KEY_FILE)
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE)
    }
}

fn project_dirs() -> Result<directories::ProjectDirs, PathError> {
    directories::ProjectDirs::from("", "", "candor").ok_or(PathError::NoHome)
}

/// The config directory: `explicit` if given, else the XDG one.
pub fn resolve_config_dir(explicit: Option<PathBuf>) -> Result<PathBuf, PathError> {
    match explicit {
        Some(d) => Ok(d),
        None => Ok(project_dirs()?.config_dir().to_owned()),
    }
}

fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The one rule for a file or directory Candor trusts: owned by the user
/// running it and writable by nobody else. `meta` is taken from an open
/// descriptor where possible, so the file judged is the file read.
pub fn check_owned_and_closed(path: &Path, meta: &fs::Metadata) -> Result<(), PathError> {
    let me = my_uid();
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me {
        return Err(PathError::ForeignOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
            mode,
        });
    }
    if mode & 0o022 != 0 {
        return Err(PathError::WritableByOthers {
            path: path.to_owned(),
            owner: meta.uid(),
            mode,
        });
    }
    Ok(())
}

/// Checks the directory that holds a trusted file: whoever may rename
/// entries in it may swap the file. It must be ours or root's, and not
/// writable by others unless sticky (as /tmp is: there, only a file's
/// owner may rename or remove it).
pub fn check_trusted_parent(dir: &Path) -> Result<(), PathError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    let me = my_uid();
    let mode = meta.mode() & 0o7777;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(PathError::ForeignOwner {
            path: dir.to_owned(),
            owner: meta.uid(),
            me,
            mode,
        });
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(PathError::WritableByOthers {
            path: dir.to_owned(),
            owner: meta.uid(),
            mode,
        });
    }
    Ok(())
}

/// Checks a file Candor takes settings from, already opened as `file`: a
/// regular file, ours and writable by nobody else, in a directory nobody
/// else may rename entries in (checked for the name given and, when that
/// is a symlink, for the file it resolves to).
pub fn check_trusted_file(path: &Path, file: &fs::File) -> Result<(), PathError> {
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(PathError::NotAFile {
            path: path.to_owned(),
        });
    }
    check_owned_and_closed(path, &meta)?;
    let parent = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    check_trusted_parent(&parent(path))?;
    let resolved = fs::canonicalize(path).map_err(io_err(path))?;
    if resolved != path {
        check_trusted_parent(&parent(&resolved))?;
    }
    Ok(())
}

/// Creates `dir` as 0700 if missing; otherwise checks it is ours and not
/// writable by others, and takes away group/world read access if present.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Lost a race with another process creating it: check theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(dir)(e)),
            }
            // The umask may have narrowed the mode further; that is fine.
            check_private_dir(dir)
        }
        Err(e) => Err(io_err(dir)(e)),
        Ok(_) => {
            check_private_dir(dir)?;
            let meta = fs::metadata(dir).map_err(io_err(dir))?;
            if meta.mode() & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), "tightening permissions to 0700");
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            }
            Ok(())
        }
    }
}

/// Checks, without changing anything, that `dir` exists, is a directory, is
/// ours and is not writable by others.
pub fn check_private_dir(dir: &Path) -> Result<(), PathError> {
    let meta = fs::metadata(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            PathError::NoStore {
                path: dir.to_owned(),
            }
        } else {
            io_err(dir)(e)
        }
    })?;
    if !meta.is_dir() {
        return Err(PathError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    check_owned_and_closed(dir, &meta)
}

/// Makes sure `file` exists with mode 0600 and is ours. A looser existing
/// mode is tightened; a foreign owner is refused.
pub fn ensure_private_file(file: &Path) -> Result<(), PathError> {
    let opened = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file);
    match opened {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_private_file(file, true),
        Err(e) => Err(io_err(file)(e)),
    }
}

/// Checks an existing file is ours and not writable by others; with
/// `tighten`, removes any group/world access.
pub fn check_private_file(file: &Path, tighten: bool) -> Result<(), PathError> {
    let meta = fs::metadata(file).map_err(io_err(file))?;
    check_owned_and_closed(file, &meta)?;
    if tighten && meta.mode() & 0o077 != 0 {
        tracing::warn!(file = %file.display(), "tightening permissions to 0600");
        fs::set_permissions(file, fs::Permissions::from_mode(0o600)).map_err(io_err(file))?;
    }
    Ok(())
}

/// Writes `bytes` to `file` as 0600 through a temporary file, fsync and
/// rename, so a crash never leaves it half-written.
pub fn write_private_atomic(file: &Path, bytes: &[u8]) -> Result<(), PathError> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".candor-tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(file))?;
    tmp.as_file().sync_all().map_err(io_err(file))?;
    tmp.persist(file).map_err(|e| io_err(file)(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
