//! The seam between the episode builder and the dataset formats: a writer
//! takes episodes one at a time (so memory stays bounded by one episode,
//! not by the export), and at the end names the files it wrote. Every
//! file and directory of an export is created here, private to its owner
//! (0600 and 0700 whatever the umask): an export is redacted, but it is
//! still someone's work.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::model::Episode;
use super::ExportError;

/// A file a writer wrote, relative to the export directory, with its
/// SHA-256 and size when the writer hashed it as it wrote (thousands of
/// small code-state files: reading them back would cost an open each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub digest: Option<(String, u64)>,
}

impl Written {
    /// A file to be hashed from disk.
    pub fn on_disk(path: PathBuf) -> Written {
        Written { path, digest: None }
    }

    /// A file hashed while it was written.
    pub fn hashed(path: PathBuf, bytes: &[u8]) -> Written {
        use sha2::{Digest, Sha256};
        Written {
            path,
            digest: Some((hex::encode(Sha256::digest(bytes)), bytes.len() as u64)),
        }
    }
}

/// A dataset format's writer, rooted in the export's temporary directory.
pub trait DatasetWriter {
    /// The format's name, as given to `--format`.
    fn format(&self) -> &'static str;
    fn write_episode(&mut self, episode: &Episode) -> Result<(), ExportError>;
    /// Flushes and closes everything, and returns every file written.
    fn finish(self: Box<Self>) -> Result<Vec<Written>, ExportError>;
}

/// An I/O error with the path it happened on.
pub fn io_err(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Mode of every file of an export.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory of an export.
pub const DIR_MODE: u32 = 0o700;

/// Creates (or truncates) a file of the export, readable by its owner only.
pub fn create_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Opens a file of the export for appending, creating it private.
pub fn append_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates one directory of the export, private.
pub fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(DIR_MODE).create(path)
}

/// Creates a directory of the export and any missing parents, private.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Sets every entry under `root` (and `root`) to exactly [`DIR_MODE`] or
/// [`FILE_MODE`] before the export is moved into place: the modes given at
/// creation are narrowed by the umask, and a narrower one (0400 under a
/// 0277 umask) would make an export its owner cannot manage. Anything but
/// a file or directory (a symlink no writer makes) stops the export.
pub fn set_private_modes(root: &Path) -> Result<(), super::ExportError> {
    let meta = fs::symlink_metadata(root).map_err(|e| io_err(root, e))?;
    let ty = meta.file_type();
    let mode = if ty.is_dir() {
        DIR_MODE
    } else if ty.is_file() {
        FILE_MODE
    } else {
        return Err(super::ExportError::Option(format!(
            "{} is neither a file nor a directory; the export was not moved into place",
            root.display()
        )));
    };
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(root, fs::Permissions::from_mode(mode)).map_err(|e| io_err(root, e))?;
    }
    if ty.is_dir() {
        for entry in fs::read_dir(root).map_err(|e| io_err(root, e))? {
            let entry = entry.map_err(|e| io_err(root, e))?;
            set_private_modes(&entry.path())?;
        }
    }
    Ok(())
}

/// The directory an export (or combined dataset) is written beside:
/// `out`'s parent, or `.` for a bare name.
pub fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Moves a finished temporary directory to `out` in one rename, with exact
/// modes. NOREPLACE: a directory made at `out` meanwhile is never replaced.
/// The parent is synced after, so a crash leaves either nothing at `out` or
/// the whole dataset, never a half.
pub fn publish_dir(tmp: tempfile::TempDir, out: &Path) -> Result<(), ExportError> {
    set_private_modes(tmp.path())?;
    let kept = tmp.keep();
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &kept,
        rustix::fs::CWD,
        out,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| {
        let _ = fs::remove_dir_all(&kept);
        io_err(out, e.into())
    })?;
    let parent = parent_of(out);
    fs::File::open(&parent)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(&parent, e))
}
