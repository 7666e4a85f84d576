//! The ingest socket: local clients (the shell hook, editor plugins,
//! `candor run`) send events as newline-delimited JSON (see [`protocol`]).
//!
//! - The socket is `ingest.sock` in the data directory, 0600, and each
//!   peer's uid is checked (SO_PEERCRED); it is never a network port.
//! - Every line is answered. A bad line gets an error naming the problem
//!   and is counted; the connection stays up. Lines over 64 KiB are refused
//!   (and skipped to their end).
//! - Each client process (by the peer pid SO_PEERCRED gives, so that
//!   reconnecting does not refill it) has a token bucket. Messages refused
//!   by it are counted and written as `rate-limited` capture gaps, at most
//!   one per client per second ([`GAP_WINDOW_NS`]) carrying the count: a
//!   flood at the sustained rate alternates refusals with admissions, and
//!   a gap per run of refusals wrote a row per admitted message.
//! - A valid message passes the same gate as every other source: while
//!   paused, or without its scope, the client reads `not recorded: …`.
//! - Open shell commands (sent at preexec, closed at precmd) live with
//!   their connection; a connection that ends, or a daemon that stops,
//!   records them without an exit status rather than losing them.

pub mod protocol;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::workspace::Workspaces;
use super::{Control, NotRecorded};
use crate::config::IngestConfig;
use crate::event::{wall_now_ns, Event, SessionClock};
use crate::registry::Kind;
use protocol::{Message, Refusal};

pub const SOCKET: &str = "ingest.sock";
/// Connections served at once (every shell's relay holds one); more are
/// told they are not recorded, counted, and closed.
const MAX_CONNECTIONS: u64 = 1024;
/// Open shell commands kept per connection; the oldest is recorded
/// without its outcome when more arrive.
const MAX_OPEN_COMMANDS: usize = 16;

pub fn socket_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join(SOCKET)
}

/// Counters for `candor status`.
#[derive(Default)]
pub struct IngestStats {
    connections: AtomicU64,
    open: AtomicU64,
    recorded: AtomicU64,
    invalid: AtomicU64,
    not_recorded: AtomicU64,
    rate_limited: AtomicU64,
    /// Connections turned away at the limit (what they would have sent is
    /// unknown, so no gap can count it).
    busy: AtomicU64,
}

impl IngestStats {
    pub fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connections": g(&self.connections),
            "connected": g(&self.open),
            "recorded": g(&self.recorded),
            "invalid": g(&self.invalid),
            "not_recorded": g(&self.not_recorded),
            "rate_limited": g(&self.rate_limited),
            "refused_connections": g(&self.busy),
        })
    }
}

/// A token bucket: `rate` per second, holding at most `burst`.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn new(cfg: &IngestConfig) -> Bucket {
        Bucket {
            tokens: f64::from(cfg.burst),
            rate: f64::from(cfg.rate),
            burst: f64::from(cfg.burst),
            at: Instant::now(),
        }
    }
    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the server shares with its connections.
struct Shared {
    ctl: Arc<Control>,
    clock: SessionClock,
    workspaces: Mutex<Workspaces>,
    limits: IngestConfig,
    stats: Arc<IngestStats>,
    clients: Mutex<HashMap<i32, Client>>,
}

/// The span of one `rate-limited` gap: refusals from one client within a
/// second of its first are counted in one row. A second keeps when the
/// loss happened as precise as a reviewer needs, and bounds a flood to one
/// row a second per client.
pub const GAP_WINDOW_NS: i64 = 1_000_000_000;

/// One client process: its token bucket and its open `rate-limited` gap.
struct Client {
    bucket: Bucket,
    limited: Option<Limited>,
}

/// Refused messages within one window, to be written as one gap.
struct Limited {
    since: crate::event::Stamp,
    last: crate::event::Stamp,
    count: i64,
    kind: Option<Kind>,
    mixed: bool,
}

struct OpenCommand {
    event: Event,
    started: Instant,
}

/// One client connection's state.
struct Conn {
    pid: Option<i32>,
    open: Vec<(String, OpenCommand)>,
}

fn not_recorded(reason: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal::NotRecorded {
        reason,
        detail: detail.into(),
    }
}

/// Buckets kept for client processes; beyond this the idle ones go.
const MAX_BUCKETS: usize = 1024;

impl Shared {
    /// Spends a token of `pid`'s bucket, or counts the refusal of a `kind`
    /// message in the client's open gap. Gaps whose window has passed are
    /// written (outside the lock), so none waits for the client to leave
    /// unless it goes quiet.
    fn take_token(&self, pid: Option<i32>, kind: Kind) -> bool {
        let mut due = Vec::new();
        let admitted = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let stamp = self.clock.stamp();
            if clients.len() >= MAX_BUCKETS {
                // A bucket refilled to its burst holds no state worth
                // keeping; its open gap, if any, is written, not dropped.
                let full = (f64::from(self.limits.burst) / f64::from(self.limits.rate)).ceil();
                let idle: Vec<i32> = clients
                    .iter()
                    .filter(|(_, c)| {
                        now.saturating_duration_since(c.bucket.at).as_secs_f64() >= full
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for k in idle {
                    if let Some(l) = clients.remove(&k).and_then(|c| c.limited) {
                        due.push(l);
                    }
                }
            }
            let c = clients.entry(pid.unwrap_or(0)).or_insert_with(|| Client {
                bucket: Bucket::new(&self.limits),
                limited: None,
            });
            if let Some(l) = c.limited.take() {
                if stamp.mono_ns - l.since.mono_ns >= GAP_WINDOW_NS {
                    due.push(l);
                } else {
                    c.limited = Some(l);
                }
            }
            let admitted = c.bucket.take(now);
            if !admitted {
                let l = c.limited.get_or_insert(Limited {
                    since: stamp,
                    last: stamp,
                    count: 0,
                    kind: Some(kind),
                    mixed: false,
                });
                l.count += 1;
                l.last = stamp;
                l.mixed |= l.kind != Some(kind);
            }
            admitted
        };
        for l in due {
            self.write_gap(l);
        }
        admitted
    }

    /// Writes `pid`'s open gap now (its connection ended).
    fn close_limited(&self, pid: Option<i32>) {
        let open = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            clients
                .get_mut(&pid.unwrap_or(0))
                .and_then(|c| c.limited.take())
        };
        if let Some(l) = open {
            self.write_gap(l);
        }
    }

    fn write_gap(&self, l: Limited) {
        let mut gap = Event::new(Kind::CaptureGap, l.since);
        let ok = gap.set("reason", "rate-limited").is_ok()
            && gap
                .set("duration_ns", (l.last.mono_ns - l.since.mono_ns).max(0))
                .is_ok()
            && gap.set("count", l.count).is_ok()
            && match (l.kind, l.mixed) {
                (Some(k), false) => gap.set("lost_kind", k.name()).is_ok(),
                _ => true,
            };
        if ok {
            self.ctl.deliver_gap(gap);
        }
    }

    fn offer(&self, event: Event) -> Result<(), Refusal> {
        match self.ctl.offer(event) {
            Ok(()) => Ok(()),
            Err(why) => {
                let reason = match &why {
                    NotRecorded::ConsentEnded => "consent-ended",
                    NotRecorded::Paused => "paused",
                    NotRecorded::Excluded => "excluded",
                    NotRecorded::NotGranted(_) => "not-granted",
                    NotRecorded::Dropped => "overloaded",
                    NotRecorded::Invalid(w) => return Err(Refusal::Invalid(w.clone())),
                };
                Err(not_recorded(reason, why.to_string()))
            }
        }
    }

    /// Records an open command without its outcome (the shell or the
    /// daemon went away first).
    fn flush_open(&self, cmd: OpenCommand) {
        let mut e = cmd.event;
        let stamp = self.clock.stamp();
        (e.wall_ns, e.mono_ns) = (stamp.wall_ns, stamp.mono_ns);
        let ms = i64::try_from(cmd.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let _ = e.set("duration_ms", ms);
        let _ = self.offer(e);
    }

    fn handle(&self, conn: &mut Conn, line: &[u8]) -> Result<(), Refusal> {
        let now_ms = wall_now_ns() as f64 / 1e6;
        let mut msg = protocol::parse(line, now_ms).map_err(Refusal::Invalid)?;
        // Consent and pause first: a message that may not be recorded is
        // not looked at further (not even its file's workspace), and is not
        // a loss, so it neither spends the rate nor becomes a gap.
        let gate = self.ctl.gate();
        if !gate.grants(msg.kind.scope()) {
            return Err(not_recorded(
                "not-granted",
                NotRecorded::NotGranted(msg.kind.scope()).to_string(),
            ));
        }
        if self.ctl.is_paused() {
            return Err(not_recorded("paused", NotRecorded::Paused.to_string()));
        }
        if !self.take_token(conn.pid, msg.kind) {
            return Err(not_recorded(
                "rate-limited",
                format!(
                    "more than {} messages a second (a burst of {}); counted as a gap",
                    self.limits.rate, self.limits.burst
                ),
            ));
        }
        self.place(&mut msg)?;
        let stamp = self.clock.stamp();
        (msg.event.wall_ns, msg.event.mono_ns) = (stamp.wall_ns, stamp.mono_ns);
        if msg.kind == Kind::ShellCommand {
            if let Some(id) = msg.id.take() {
                return self.shell_command(conn, id, msg);
            }
        }
        self.offer(msg.event)
    }

    /// Fills in workspace, path and cwd from the absolute paths sent.
    fn place(&self, msg: &mut Message) -> Result<(), Refusal> {
        let mut ws = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = &msg.file {
            let (i, rel) = ws
                .file(&real_path(file))
                .map_err(|h| not_recorded(h.code(), h.reason()))?;
            let name = ws.roots[i].name.clone();
            let set = msg
                .event
                .set("workspace", name)
                .and_then(|()| msg.event.set("path", rel.to_string_lossy().into_owned()));
            set.map_err(|e| Refusal::Invalid(e.to_string()))?;
        }
        if let Some(cwd) = &msg.cwd {
            let r = match ws.dir(&real_path(cwd)) {
                Some((name, rel)) => msg
                    .event
                    .set("workspace", name)
                    .and_then(|()| msg.event.set("cwd", rel)),
                None => msg.event.set("cwd", "outside"),
            };
            r.map_err(|e| Refusal::Invalid(e.to_string()))?;
        }
        Ok(())
    }

    /// A `shell.command` with an `id`: opens a command (kept until its
    /// outcome arrives) or closes one (recorded as one event, stamped when
    /// it ended).
    fn shell_command(&self, conn: &mut Conn, id: String, msg: Message) -> Result<(), Refusal> {
        let closing = msg.event.get("command").is_none();
        let pos = conn.open.iter().position(|(i, _)| *i == id);
        if !closing {
            if let Some(pos) = pos {
                let (_, old) = conn.open.remove(pos);
                self.flush_open(old);
            }
            if msg.event.get("exit").is_some() {
                return self.offer(msg.event);
            }
            if conn.open.len() >= MAX_OPEN_COMMANDS {
                let (_, old) = conn.open.remove(0);
                self.flush_open(old);
            }
            conn.open.push((
                id,
                OpenCommand {
                    event: msg.event,
                    started: Instant::now(),
                },
            ));
            return Ok(());
        }
        let Some(pos) = pos else {
            return Err(Refusal::Invalid(format!(
                "no open shell.command with id `{id}` on this connection"
            )));
        };
        let (_, open) = conn.open.remove(pos);
        let mut e = open.event;
        (e.wall_ns, e.mono_ns) = (msg.event.wall_ns, msg.event.mono_ns);
        for f in ["exit", "duration_ms", "shell"] {
            if let Some(v) = msg.event.get(f) {
                e.set(f, v.clone())
                    .map_err(|err| Refusal::Invalid(err.to_string()))?;
            }
        }
        if e.get("duration_ms").is_none() {
            let ms = i64::try_from(open.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let _ = e.set("duration_ms", ms);
        }
        self.offer(e)
    }
}

/// The path with symbolic links resolved, so that a link inside a
/// workspace to a file outside it (or to a denied one) is judged by its
/// target. A file not yet saved is resolved through its directory.
fn real_path(p: &Path) -> PathBuf {
    // The deepest ancestor that exists is resolved, and the rest (which
    // cannot hold a link, since it does not exist) joined back on.
    let mut rest = Vec::new();
    let mut at = p;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => return p.to_owned(),
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line into `line` (newline dropped), refusing lines longer than
/// [`protocol::MAX_LINE`]: their bytes are skipped up to their newline, so
/// the next line is read cleanly. A last line without a newline counts.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = rd.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => LineRead::TooLong,
                (false, true) => LineRead::Eof,
                (false, false) => LineRead::Line,
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > protocol::MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        rd.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

async fn write_reply(wr: &mut tokio::net::unix::OwnedWriteHalf, text: &str) -> bool {
    // A client that never reads its replies is cut off rather than holding
    // a task forever.
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            wr.write_all(text.as_bytes())
        )
        .await,
        Ok(Ok(()))
    )
}

async fn serve_conn(shared: Arc<Shared>, stream: UnixStream, mut stop: watch::Receiver<bool>) {
    let stats = shared.stats.clone();
    let pid = stream.peer_cred().ok().and_then(|c| c.pid());
    let (rd, mut wr) = stream.into_split();
    // Small to start with: most clients sit idle; long lines grow `line`.
    let mut rd = BufReader::with_capacity(8 * 1024, rd);
    let mut conn = Conn {
        pid,
        open: Vec::new(),
    };
    let mut line = Vec::with_capacity(1024);
    loop {
        let read = tokio::select! {
            _ = stop.changed() => break,
            r = read_line_bounded(&mut rd, &mut line) => r,
        };
        let result = match read {
            Ok(LineRead::Eof) | Err(_) => break,
            Ok(LineRead::TooLong) => Err(Refusal::Invalid(format!(
                "the line is longer than {} bytes and was skipped",
                protocol::MAX_LINE
            ))),
            Ok(LineRead::Line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(LineRead::Line) => shared.handle(&mut conn, &line),
        };
        let counter = match &result {
            Ok(()) => &stats.recorded,
            Err(Refusal::Invalid(_)) => &stats.invalid,
            Err(Refusal::NotRecorded {
                reason: "rate-limited",
                ..
            }) => &stats.rate_limited,
            Err(Refusal::NotRecorded { .. }) => &stats.not_recorded,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if !write_reply(&mut wr, &protocol::reply(&result)).await {
            break;
        }
    }
    for (_, cmd) in conn.open.drain(..) {
        shared.flush_open(cmd);
    }
    shared.close_limited(conn.pid);
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

/// Turns away a peer of another user. Its first line is read (briefly, and
/// bounded) before the refusal is written, so that it reads the refusal
/// rather than a broken pipe.
async fn refuse(mut stream: UnixStream) {
    let mut line = Vec::new();
    {
        let mut rd = BufReader::with_capacity(4096, &mut stream);
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            read_line_bounded(&mut rd, &mut line),
        )
        .await;
    }
    let refusal = Refusal::Invalid("refused: not the same user".into());
    let _ = stream
        .write_all(protocol::reply(&Err(refusal)).as_bytes())
        .await;
}

/// Serves the ingest socket until `stop` turns true; then waits for every
/// connection to record what it holds.
pub async fn serve(
    listener: UnixListener,
    ctl: Arc<Control>,
    clock: SessionClock,
    workspaces: Workspaces,
    limits: IngestConfig,
    stats: Arc<IngestStats>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        ctl,
        clock,
        workspaces: Mutex::new(workspaces),
        limits,
        stats: stats.clone(),
        clients: Mutex::new(HashMap::new()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                if !crate::socket::peer_is_us(&stream) {
                    tasks.spawn(refuse(stream));
                    continue;
                }
                if stats.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    stats.busy.fetch_add(1, Ordering::Relaxed);
                    let busy = Refusal::NotRecorded {
                        reason: "busy",
                        detail: format!("{MAX_CONNECTIONS} clients are connected already"),
                    };
                    let _ = stream.write_all(protocol::reply(&Err(busy)).as_bytes()).await;
                    continue;
                }
                stats.connections.fetch_add(1, Ordering::Relaxed);
                stats.open.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(serve_conn(shared.clone(), stream, stop.clone()));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut b = Bucket::new(&IngestConfig { rate: 10, burst: 5 });
        let t0 = b.at;
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        assert!(b.take(t0 + std::time::Duration::from_millis(100)));
        assert!(!b.take(t0 + std::time::Duration::from_millis(100)));
    }

    #[tokio::test]
    async fn long_lines_are_skipped_to_their_end() {
        let mut data = vec![b'x'; protocol::MAX_LINE + 10];
        data.extend_from_slice(b"\nok\nlast");
        let mut rd = BufReader::with_capacity(1000, &data[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line_bounded(&mut rd, &mut line).await.unwrap(),
            LineRead::TooLong
        ));
        assert!(matches!(
            read_line_bounded(&mut rd, &mut line).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(line, b"ok");
        assert!(matches!(
            read_line_bounded(&mut rd, &mut line).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(line, b"last");
        assert!(matches!(
            read_line_bounded(&mut rd, &mut line).await.unwrap(),
            LineRead::Eof
        ));
    }
}
