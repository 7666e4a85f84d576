//! The control socket: a Unix socket in the data directory, mode 0600,
//! that serves `candor status`, `pause`, `resume` and `stop`, and hears
//! from `candor consent` that the ledger changed, to the same user only (the peer's uid is checked with SO_PEERCRED). It is never a
//! network port.
//!
//! The protocol is one JSON request line and one JSON reply line:
//! `{"cmd":"status"}`, `{"cmd":"pause","for_ns":N,"reason":"…"}`,
//! `{"cmd":"resume","reason":"…"}`, `{"cmd":"stop"}`,
//! `{"cmd":"consent-changed"}`. The last carries nothing: the daemon re-reads
//! the ledger itself, so a client cannot tell it what consent says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub const SOCKET: &str = "control.sock";
/// Requests longer than this are refused.
const MAX_REQUEST: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("candor is not running (no control socket at {0})")]
    NotRunning(PathBuf),
    #[error("another candor daemon is already listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon answered: {0}")]
    Refused(String),
    #[error("the daemon's answer was not understood: {0}")]
    BadReply(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Pause {
        #[serde(default)]
        for_ns: Option<u64>,
        #[serde(default)]
        reason: Option<String>,
    },
    Resume {
        #[serde(default)]
        reason: Option<String>,
    },
    Stop,
    /// The ledger changed (a revocation, an amendment): check it now rather
    /// than at the next poll. The reply's status says whether capture goes on.
    #[serde(rename = "consent-changed")]
    ConsentChanged,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            ok: true,
            error: None,
            status: None,
        }
    }
    pub fn error(why: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(why.into()),
            status: None,
        }
    }
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Binds the control socket (see [`crate::socket::bind_private`]).
pub fn bind(data_dir: &Path) -> Result<UnixListener, ControlError> {
    let path = socket_path(data_dir);
    crate::socket::bind_private(&path).map_err(|e| match e {
        crate::socket::SocketError::InUse(p) => ControlError::AlreadyRunning(p),
        crate::socket::SocketError::Io { path, source } => ControlError::Io { path, source },
    })
}

pub use crate::socket::peer_is_us;

/// Reads one request line from a connection (bounded).
pub async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream).take(MAX_REQUEST as u64 + 1);
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() > MAX_REQUEST {
        return Err("request too long".into());
    }
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))
}

pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) {
    let mut text = serde_json::to_string(reply).unwrap_or_else(|_| "{\"ok\":false}".into());
    text.push('\n');
    let _ = stream.write_all(text.as_bytes()).await;
}

/// Sends one request to the daemon of `data_dir` and waits for its reply.
pub fn send(data_dir: &Path, request: &Request) -> Result<Reply, ControlError> {
    use std::io::{BufRead, Write};
    let path = socket_path(data_dir);
    let mut stream =
        std::os::unix::net::UnixStream::connect(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ControlError::NotRunning(path.clone())
            }
            _ => ControlError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut line =
        serde_json::to_string(request).map_err(|e| ControlError::BadReply(e.to_string()))?;
    line.push('\n');
    // A daemon that refuses us may answer and close before our request is
    // written; its answer is still worth reading.
    let written = stream.write_all(line.as_bytes());
    let mut reply = String::new();
    let read = std::io::BufReader::new(&stream).read_line(&mut reply);
    match (written, read) {
        (_, Ok(n)) if n > 0 => {}
        (Err(e), _) | (Ok(()), Err(e)) => return Err(io(e)),
        (Ok(()), Ok(_)) => {
            return Err(ControlError::BadReply(
                "the daemon closed the connection".into(),
            ))
        }
    }
    let reply: Reply = serde_json::from_str(reply.trim())
        .map_err(|e| ControlError::BadReply(format!("{e}: {reply}")))?;
    if !reply.ok {
        return Err(ControlError::Refused(
            reply.error.clone().unwrap_or_default(),
        ));
    }
    Ok(reply)
}
