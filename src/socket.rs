//! Unix sockets that only their owner can use: the control socket and the
//! ingest socket both live in the data directory, are bound 0600 (under a
//! restrictive umask, so they are never connectable by others even for an
//! instant), and check each peer's uid with SO_PEERCRED. Neither is ever a
//! network port.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another candor daemon is already listening on {0}")]
    InUse(PathBuf),
    #[error("socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds `path`, mode 0600. A stale socket left by a crash is replaced; a
/// live one means another daemon.
pub fn bind_private(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Whether the peer runs as the same user as we do.
pub fn peer_is_us(stream: &UnixStream) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == rustix::process::geteuid().as_raw(),
        Err(_) => false,
    }
}
