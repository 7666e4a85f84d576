//! A blocking client for the ingest socket: one connection, one JSON line
//! out, one reply line back.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon's answer to one message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub not_recorded: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("candor is not running (no ingest socket at {0})")]
    NotRunning(PathBuf),
    #[error("ingest socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon's answer was not understood: {0}")]
    BadReply(String),
}

pub struct Client {
    path: PathBuf,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the ingest socket of `data_dir`.
    pub fn connect(data_dir: &Path) -> Result<Client, ClientError> {
        let path = crate::capture::ingest::socket_path(data_dir);
        let io = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        let stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(path.clone())
            }
            _ => io(e),
        })?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        let reader = BufReader::new(stream.try_clone().map_err(io)?);
        Ok(Client {
            path,
            writer: stream,
            reader,
        })
    }

    /// Sends one message and reads its reply.
    pub fn send(&mut self, message: &serde_json::Value) -> Result<Reply, ClientError> {
        let mut line = message.to_string();
        line.push('\n');
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        // A daemon that refuses us (another user) may answer and close
        // before the message is written; its answer is still worth reading.
        let written = self.writer.write_all(line.as_bytes());
        let mut reply = String::new();
        let read = self.reader.read_line(&mut reply);
        match (written, read) {
            (_, Ok(n)) if n > 0 => {}
            (Err(e), _) | (Ok(()), Err(e)) => return Err(io(e)),
            (Ok(()), Ok(_)) => {
                return Err(ClientError::BadReply(
                    "the daemon closed the connection".into(),
                ))
            }
        }
        serde_json::from_str(reply.trim_end())
            .map_err(|e| ClientError::BadReply(format!("{e}: {}", reply.trim_end())))
    }
}

/// Milliseconds since the Unix epoch, as the protocol's `ts` wants.
pub fn now_ms() -> f64 {
    crate::event::wall_now_ns() as f64 / 1e6
}
