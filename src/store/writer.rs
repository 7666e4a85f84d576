//! The single writer: one thread owns the store's connection and commits
//! events in batches, bounded by count and by time.
//!
//! Sources hand events to an [`EventSink`] over a bounded channel. The live
//! path ([`EventSink::record`]) never blocks a source: when the channel is
//! full, mouse moves are coalesced into one pending move (latest wins) and
//! anything else is counted as dropped, by kind and time span. The writer
//! turns those counts into `capture.gap` rows at its next commit, so a drop
//! is never silent. Every event handed to a sink ends up written, coalesced
//! or counted in a gap: `received = written + coalesced + dropped`.
//!
//! An [`Admission`] (the daemon passes the consent cut) judges every event
//! inside the commit's own transaction, against the consent in force at the
//! event's time: what it cuts is counted in `cut`, so that
//! `received = written + coalesced + dropped + cut`. A cut is not a loss and
//! is not written as a gap: a gap dated after a revocation would itself say
//! what the person did after withdrawing.
//!
//! A commit that fails for a reason that can pass (a busy database, a full
//! disk) keeps its batch and is retried with backoff; meanwhile the channel
//! fills and drops are counted. A clean shutdown drains the channel, writes
//! the pending move and the drop gaps, and closes the session.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::codec::{self, Group};
use super::purge;
use super::seal::{self, Sealer};
use super::{Store, StoreError, WriterLock};
use crate::config::WriterConfig;
use crate::event::{wall_now_ns, Event, EventError, Value};
use crate::registry::Kind;

/// How often the writer wakes when idle, to write pending gaps and moves.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// How often retention runs while the writer is up.
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long a shutdown keeps retrying a commit that cannot pass.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);
/// How often the session row's counters are brought up to date.
const SESSION_SAVE_EVERY: Duration = Duration::from_secs(2);
/// zstd level for blobs: fast, and text compresses well at any level.
const ZSTD_LEVEL: i32 = 3;

/// What a writer session is, for the `sessions` table.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Who writes: `daemon`, `synthetic`, `bench`...
    pub source: String,
    /// Synthetic data is marked so that nobody mistakes it for a person's.
    pub synthetic: bool,
}

enum Msg {
    Event(Event),
    Flush(Sender<()>),
    Shutdown,
}

#[derive(Default)]
struct DropLog {
    /// kind → (count, first wall ns, last wall ns)
    by_kind: BTreeMap<Kind, (u64, i64, i64)>,
}

impl DropLog {
    fn add(&mut self, kind: Kind, wall_ns: i64) {
        let e = self.by_kind.entry(kind).or_insert((0, wall_ns, wall_ns));
        e.0 += 1;
        e.1 = e.1.min(wall_ns);
        e.2 = e.2.max(wall_ns);
    }

    fn merge(&mut self, other: DropLog) {
        for (k, (n, a, b)) in other.by_kind {
            let e = self.by_kind.entry(k).or_insert((0, a, b));
            e.0 += n;
            e.1 = e.1.min(a);
            e.2 = e.2.max(b);
        }
    }

    fn total(&self) -> u64 {
        self.by_kind.values().map(|v| v.0).sum()
    }
}

#[derive(Default)]
struct Shared {
    pending_move: Mutex<Option<Event>>,
    drops: Mutex<DropLog>,
    /// Gap events that found the channel full; the writer collects them.
    pending_gaps: Mutex<Vec<Event>>,
    stalled: Mutex<Option<String>>,
    /// Set by `shutdown`, which must not wait on a channel that a stalled
    /// writer cannot drain.
    stop: AtomicBool,
    received: AtomicU64,
    written: AtomicU64,
    coalesced: AtomicU64,
    dropped: AtomicU64,
    gaps: AtomicU64,
    batches: AtomicU64,
    cut: AtomicU64,
    narrowed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop accounting; the data is plain counts.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counters a status display can show at any time.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub received: u64,
    pub written: u64,
    pub coalesced: u64,
    pub dropped: u64,
    pub gaps: u64,
    pub batches: u64,
    /// Events the admission refused at commit time (outside the consent in
    /// force at their own time); never written, and not a loss.
    pub cut: u64,
    /// Events written with fields stripped that the consent in force at
    /// their time no longer granted (an amendment withdrew the scope).
    pub narrowed: u64,
    /// Why commits are failing right now, if they are.
    pub stalled: Option<String>,
}

/// What happened to an event handed to [`EventSink::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    Queued,
    /// A mouse move held back (the channel is full); a later one may replace it.
    Coalesced,
    /// Counted, and written as a `capture.gap` at the next commit.
    Dropped,
}

enum Offer {
    Queued,
    Full(Event),
    Closed(Event),
}

/// Where sources hand their events. Cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl EventSink {
    /// The live path: never blocks. See the module docs for what happens
    /// when the channel is full.
    pub fn record(&self, event: Event) -> Result<Recorded, EventError> {
        event.validate()?;
        let s = &self.shared;
        if event.kind == Kind::CaptureGap {
            self.gap_inner(event);
            return Ok(Recorded::Queued);
        }
        s.received.fetch_add(1, Ordering::Relaxed);
        // Sinks hold this lock while sending so that the writer, which takes
        // the pending move under it, never writes it after a newer event.
        let mut pending = lock(&s.pending_move);
        if let Some(p) = pending.take() {
            match self.offer(p) {
                Offer::Queued => {}
                Offer::Full(p) => *pending = Some(p),
                Offer::Closed(p) => self.count_drop(&p),
            }
        }
        match self.offer(event) {
            Offer::Queued => {
                if pending.take().is_some() {
                    // Room appeared after the pending move failed: it is now
                    // older than a queued event, so it is superseded.
                    s.coalesced.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Recorded::Queued)
            }
            Offer::Full(ev) if ev.kind == Kind::MouseMove => {
                if pending.replace(ev).is_some() {
                    s.coalesced.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Recorded::Coalesced)
            }
            Offer::Full(ev) | Offer::Closed(ev) => {
                self.count_drop(&ev);
                Ok(Recorded::Dropped)
            }
        }
    }

    /// Tries to queue an event without waiting; on failure gives it back.
    fn offer(&self, event: Event) -> Offer {
        match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => Offer::Queued,
            Err(e) => {
                let full = e.is_full();
                match (e.into_inner(), full) {
                    (Msg::Event(ev), true) => Offer::Full(ev),
                    (Msg::Event(ev), false) => Offer::Closed(ev),
                    _ => unreachable!("offer sends only events"),
                }
            }
        }
    }

    fn count_drop(&self, event: &Event) {
        lock(&self.shared.drops).add(event.kind, event.wall_ns);
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The patient path, for producers that can wait (imports, synthetic
    /// sessions, benchmarks): blocks while the channel is full.
    pub fn send(&self, event: Event) -> Result<(), StoreError> {
        event
            .validate()
            .map_err(|e| StoreError::WriterGone(format!("invalid event: {e}")))?;
        if event.kind != Kind::CaptureGap {
            self.shared.received.fetch_add(1, Ordering::Relaxed);
        }
        self.tx.send(Msg::Event(event)).map_err(|e| {
            if let Msg::Event(ev) = e.0 {
                self.count_drop(&ev);
            }
            StoreError::WriterGone("the writer thread has exited".into())
        })
    }

    fn gap_inner(&self, gap: Event) {
        if let Offer::Full(g) | Offer::Closed(g) = self.offer(gap) {
            lock(&self.shared.pending_gaps).push(g)
        }
    }

    /// Waits until everything handed over so far is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| StoreError::WriterGone("the writer thread has exited".into()))?;
        rx.recv()
            .map_err(|_| StoreError::WriterGone("the writer exited before flushing".into()))
    }

    pub fn stats(&self) -> SinkStats {
        self.shared.snapshot()
    }
}

impl Shared {
    fn snapshot(&self) -> SinkStats {
        let s = self;
        SinkStats {
            received: s.received.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            coalesced: s.coalesced.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            gaps: s.gaps.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            cut: s.cut.load(Ordering::Relaxed),
            narrowed: s.narrowed.load(Ordering::Relaxed),
            stalled: lock(&s.stalled).clone(),
        }
    }
}

/// Owns the writer thread; `shutdown` drains it.
pub struct WriterHandle {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<SinkStats, StoreError>>>,
    session_id: i64,
}

impl WriterHandle {
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Asks the writer to drain and stop, and waits for it. Returns the
    /// final counts; an error if anything could not be written.
    pub fn shutdown(mut self) -> Result<SinkStats, StoreError> {
        self.request_stop();
        self.join()
    }

    fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes an idle writer; a busy or stalled one sees the flag.
        let _ = self.tx.try_send(Msg::Shutdown);
    }

    fn join(&mut self) -> Result<SinkStats, StoreError> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| StoreError::WriterGone("the writer thread panicked".into()))?,
            None => Err(StoreError::WriterGone("already shut down".into())),
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.request_stop();
            if let Err(e) = self.join() {
                tracing::error!("writer stopped with an error: {e}");
            }
        }
    }
}

/// What an [`Admission`] decides for one event.
#[derive(Debug)]
pub enum Verdict {
    /// Write it as it is.
    Write,
    /// Write this copy instead: fields outside the consent were stripped.
    Narrowed(Event),
    /// Do not write it: no consent in force at its time covers it.
    Cut,
}

/// Judges events at commit time, inside the commit's write transaction, so
/// that a change committed to the database (a revocation) is seen by every
/// commit after it. The store knows nothing of consent; the daemon passes
/// the consent cut.
pub trait Admission: Send {
    /// Called at the start of each commit's transaction, once the write
    /// lock is held: reload whatever changed since the last commit. An
    /// error fails the commit (and is retried if transient).
    fn refresh(&mut self, conn: &rusqlite::Connection, sealer: &Sealer) -> Result<(), StoreError>;
    /// Judges one event (never a `capture.gap`, which is bookkeeping).
    fn judge(&self, event: &Event) -> Verdict;
    /// Judges one `capture.gap`. Bookkeeping is written by default; a cut
    /// may refuse a gap that would describe a time no consent covered.
    fn judge_gap(&self, _gap: &Event) -> Verdict {
        Verdict::Write
    }
}

/// Starts the writer for `store`: takes the writer lock, loads (or creates)
/// the key, closes sessions left open by a crash, applies retention, and
/// opens a new session. Every event is written; see [`start_admitting`].
pub fn start(
    store: Store,
    config: &WriterConfig,
    info: SessionInfo,
) -> Result<(EventSink, WriterHandle), StoreError> {
    start_admitting(store, config, info, None)
}

/// [`start`], judging every event at commit time with `admission`.
pub fn start_admitting(
    mut store: Store,
    config: &WriterConfig,
    info: SessionInfo,
    admission: Option<Box<dyn Admission>>,
) -> Result<(EventSink, WriterHandle), StoreError> {
    let lock = store.lock_writer()?;
    store.sealer(true)?;
    if let Some(location) = store.key_location() {
        tracing::info!(key = %location, "sealing with the store key");
    }
    if let Some(max) = config.max_store_size {
        let page: i64 = store
            .conn()
            .query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = i64::try_from(max).unwrap_or(i64::MAX) / page.max(1);
        store
            .conn()
            .pragma_update(None, "max_page_count", pages.max(1))?;
    }
    let now = wall_now_ns();
    close_crashed_sessions(&store, now)?;
    let removed = purge::apply_retention(store.conn_mut(), now)?;
    if removed.total() > 0 {
        tracing::info!(
            removed = removed.total(),
            "retention removed expired events"
        );
    }
    store.conn().execute(
        "INSERT INTO sessions(started_ns, source, synthetic, tool_version) VALUES (?1, ?2, ?3, ?4)",
        params![now, info.source, info.synthetic, env!("CARGO_PKG_VERSION")],
    )?;
    let session_id = store.conn().last_insert_rowid();
    let (tx, rx) = crossbeam_channel::bounded(config.channel_capacity);
    let shared = Arc::new(Shared::default());
    let worker = Worker {
        store,
        _lock: lock,
        rx,
        shared: shared.clone(),
        session_id,
        batch_max: config.batch_max,
        batch_interval: config.batch_interval,
        next_retention: Instant::now() + RETENTION_EVERY,
        public: Vec::with_capacity(64),
        secret: Vec::with_capacity(64),
        unsaved_events: 0,
        unsaved_last_ns: None,
        session_saved_at: Instant::now(),
        admission,
    };
    let thread = std::thread::Builder::new()
        .name("candor-writer".into())
        .spawn(move || worker.run())
        .map_err(|e| StoreError::WriterGone(format!("cannot start the writer thread: {e}")))?;
    Ok((
        EventSink {
            tx: tx.clone(),
            shared: shared.clone(),
        },
        WriterHandle {
            tx,
            shared: shared.clone(),
            thread: Some(thread),
            session_id,
        },
    ))
}

fn close_crashed_sessions(store: &Store, now: i64) -> Result<(), StoreError> {
    let conn = store.conn();
    let open: Vec<(i64, i64)> = conn
        .prepare("SELECT id, coalesce(last_ns, started_ns) FROM sessions WHERE ended_ns IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, saved_last) in open {
        // The session row is saved every few seconds; its newest event says
        // more exactly when it died. Scanning back from the end is quick
        // when, as usual, the dead session was the latest.
        let newest: Option<i64> = conn
            .query_row(
                "SELECT ts_ns FROM events WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let last = newest.map_or(saved_last, |n| n.max(saved_last));
        // We hold the writer lock, so no live writer owns this session.
        tracing::warn!(
            session = id,
            "the previous session ended without a clean shutdown"
        );
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO gaps(session_id, start_ns, end_ns, reason, count) VALUES (?1, ?2, ?3, 'crashed', 0)",
            params![id, last, now.max(last)],
        )?;
        tx.execute(
            "UPDATE sessions SET ended_ns = ?2, clean_exit = 0 WHERE id = ?1",
            params![id, last],
        )?;
        tx.commit()?;
    }
    Ok(())
}

struct Worker {
    store: Store,
    _lock: WriterLock,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    session_id: i64,
    batch_max: usize,
    batch_interval: Duration,
    next_retention: Instant,
    public: Vec<u8>,
    secret: Vec<u8>,
    unsaved_events: i64,
    unsaved_last_ns: Option<i64>,
    session_saved_at: Instant,
    admission: Option<Box<dyn Admission>>,
}

/// What one commit carries besides the batch, taken from the shared state
/// and given back if the commit fails.
#[derive(Default)]
struct Extras {
    pending_move: Option<Event>,
    gaps: Vec<Event>,
    drops: DropLog,
}

impl Worker {
    fn run(mut self) -> Result<SinkStats, StoreError> {
        let mut batch: Vec<Event> = Vec::with_capacity(self.batch_max);
        let mut waiters: Vec<Sender<()>> = Vec::new();
        let mut stopping = false;
        // Start as if under load, so that a fast producer is never held up.
        let mut busy = true;
        while !stopping {
            match self.rx.recv_timeout(IDLE_TICK) {
                Ok(msg) => stopping = self.take(msg, &mut batch, &mut waiters),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            stopping |= self.stop_requested();
            let deadline = Instant::now() + self.batch_interval;
            // At a live source's pace, waking for every event costs more than
            // the event: sleep out the batch window and take what came. Under
            // load (the last batch was at least a quarter full) events are
            // taken as they come, so a fast producer is never held up.
            if !busy && !stopping && waiters.is_empty() && !batch.is_empty() {
                std::thread::sleep(self.batch_interval);
                stopping |= self.stop_requested();
            }
            while !stopping && waiters.is_empty() && batch.len() < self.batch_max {
                let msg = match self.rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                    Err(TryRecvError::Empty) if batch.is_empty() => break,
                    Err(TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        match self.rx.recv_timeout(deadline - now) {
                            Ok(m) => m,
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => {
                                stopping = true;
                                break;
                            }
                        }
                    }
                };
                stopping = self.take(msg, &mut batch, &mut waiters);
            }
            if stopping {
                // Drain what sources queued before the stop.
                while let Ok(msg) = self.rx.try_recv() {
                    self.take(msg, &mut batch, &mut waiters);
                }
            }
            busy = batch.len() >= (self.batch_max / 4).max(1);
            self.commit(&mut batch, stopping)?;
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if !stopping && Instant::now() >= self.next_retention {
                self.next_retention = Instant::now() + RETENTION_EVERY;
                if let Err(e) = purge::apply_retention(self.store.conn_mut(), wall_now_ns()) {
                    tracing::error!("retention failed, retrying in a minute: {e}");
                    self.next_retention = Instant::now() + Duration::from_secs(60);
                }
            }
        }
        self.close_session()?;
        Ok(self.stats())
    }

    fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Files one message; returns true on a shutdown request.
    fn take(&mut self, msg: Msg, batch: &mut Vec<Event>, waiters: &mut Vec<Sender<()>>) -> bool {
        match msg {
            Msg::Event(e) => batch.push(e),
            Msg::Flush(w) => waiters.push(w),
            Msg::Shutdown => return true,
        }
        false
    }

    fn stats(&self) -> SinkStats {
        self.shared.snapshot()
    }

    fn take_extras(&self) -> Extras {
        let s = &self.shared;
        let pending_move = {
            let mut g = lock(&s.pending_move);
            // Under the lock, an empty channel means no newer event is queued.
            if self.rx.is_empty() {
                g.take()
            } else {
                None
            }
        };
        Extras {
            pending_move,
            gaps: std::mem::take(&mut *lock(&s.pending_gaps)),
            drops: std::mem::take(&mut *lock(&s.drops)),
        }
    }

    fn give_back(&self, extras: Extras) {
        let s = &self.shared;
        if let Some(m) = extras.pending_move {
            let mut g = lock(&s.pending_move);
            if g.is_none() {
                *g = Some(m);
            } else {
                s.coalesced.fetch_add(1, Ordering::Relaxed);
            }
        }
        lock(&s.pending_gaps).extend(extras.gaps);
        lock(&s.drops).merge(extras.drops);
    }

    /// Commits the batch plus whatever the sinks left in the shared state,
    /// retrying transient failures. The batch is cleared on success.
    fn commit(&mut self, batch: &mut Vec<Event>, stopping: bool) -> Result<(), StoreError> {
        let mut backoff = Duration::from_millis(50);
        // Patience runs from when the stop was first seen, not from when the
        // stall began.
        let mut stop_seen = stopping.then(Instant::now);
        loop {
            let extras = self.take_extras();
            let empty = batch.is_empty()
                && extras.pending_move.is_none()
                && extras.gaps.is_empty()
                && extras.drops.by_kind.is_empty();
            if empty {
                return Ok(());
            }
            match self.try_commit(batch, &extras) {
                Ok(Committed {
                    written,
                    gaps,
                    cut,
                    narrowed,
                }) => {
                    let s = &self.shared;
                    s.written.fetch_add(written, Ordering::Relaxed);
                    s.cut.fetch_add(cut, Ordering::Relaxed);
                    s.narrowed.fetch_add(narrowed, Ordering::Relaxed);
                    s.gaps.fetch_add(gaps, Ordering::Relaxed);
                    s.batches.fetch_add(1, Ordering::Relaxed);
                    *lock(&s.stalled) = None;
                    batch.clear();
                    return Ok(());
                }
                Err(e) if e.is_transient() => {
                    self.give_back(extras);
                    if stop_seen.is_none() && self.stop_requested() {
                        stop_seen = Some(Instant::now());
                    }
                    if stop_seen.is_some_and(|t| t.elapsed() > SHUTDOWN_PATIENCE) {
                        let s = &self.shared;
                        let lost = batch.len() as u64
                            + self.rx.len() as u64
                            + lock(&s.drops).total()
                            + u64::from(lock(&s.pending_move).is_some());
                        return Err(StoreError::WriterGone(format!(
                            "{lost} events could not be written before shutdown: {e}"
                        )));
                    }
                    tracing::warn!("commit failed, keeping the batch and retrying: {e}");
                    *lock(&self.shared.stalled) = Some(e.to_string());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    self.give_back(extras);
                    *lock(&self.shared.stalled) = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }

    /// One transaction.
    fn try_commit(&mut self, batch: &[Event], extras: &Extras) -> Result<Committed, StoreError> {
        let Worker {
            store,
            public,
            secret,
            session_id,
            admission,
            ..
        } = self;
        let session_id = *session_id;
        store.sealer(true)?;
        let (conn, sealer) = split(store);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Under the write lock: a consent change committed before this point
        // is seen here, and one committed after it is dated after it (see
        // `consent::append`), so after every event this batch holds.
        if let Some(a) = admission.as_mut() {
            a.refresh(&tx, sealer)?;
        }
        let mut written = 0u64;
        let mut gaps = 0u64;
        let (mut cut, mut narrowed) = (0u64, 0u64);
        let mut last_ns = None::<i64>;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events(session_id, kind, ts_ns, mono_ns, data, sealed, blob_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut gap_insert = tx.prepare_cached(
                "INSERT INTO gaps(session_id, start_ns, end_ns, reason, count, lost_kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let events = batch.iter().chain(extras.pending_move.as_ref());
            for ev in events.chain(extras.gaps.iter()) {
                let kept;
                let ev = match admission.as_ref() {
                    // Gaps are not events received: a cut one is not counted.
                    Some(a) if ev.kind == Kind::CaptureGap => match a.judge_gap(ev) {
                        Verdict::Write => ev,
                        Verdict::Narrowed(copy) => {
                            kept = copy;
                            &kept
                        }
                        Verdict::Cut => continue,
                    },
                    Some(a) => match a.judge(ev) {
                        Verdict::Write => ev,
                        Verdict::Narrowed(copy) => {
                            narrowed += 1;
                            kept = copy;
                            &kept
                        }
                        Verdict::Cut => {
                            cut += 1;
                            continue;
                        }
                    },
                    None => ev,
                };
                last_ns = Some(last_ns.map_or(ev.wall_ns, |l: i64| l.max(ev.wall_ns)));
                if ev.kind == Kind::CaptureGap {
                    let int = |f| match ev.get(f) {
                        Some(Value::Int(n)) => *n,
                        _ => 0,
                    };
                    let text = |f| match ev.get(f) {
                        Some(Value::Str(s)) => Some(s.as_ref()),
                        _ => None,
                    };
                    gap_insert.execute(params![
                        session_id,
                        ev.wall_ns,
                        ev.wall_ns.saturating_add(int("duration_ns").max(0)),
                        text("reason").unwrap_or("dropped"),
                        int("count"),
                        text("lost_kind"),
                    ])?;
                    gaps += 1;
                    continue;
                }
                let has_public = codec::encode_group(ev.kind, ev.values(), Group::Public, public)?;
                let has_secret = codec::encode_group(ev.kind, ev.values(), Group::Sealed, secret)?;
                let sealed = if has_secret {
                    Some(sealer.seal(secret, &seal::event_aad(ev.kind.code(), ev.wall_ns))?)
                } else {
                    None
                };
                let blob_id = match codec::blob_field(ev.kind).and_then(|i| ev.values()[i].as_ref())
                {
                    Some(Value::Blob(content)) => Some(store_blob(&tx, sealer, content)?),
                    Some(Value::BlobRef { id, .. }) => Some(*id),
                    _ => None,
                };
                insert.execute(params![
                    session_id,
                    ev.kind.code(),
                    ev.wall_ns,
                    ev.mono_ns,
                    has_public.then_some(public.as_slice()),
                    sealed,
                    blob_id,
                ])?;
                written += 1;
            }
            for (kind, (count, first, last)) in &extras.drops.by_kind {
                gap_insert.execute(params![
                    session_id,
                    first,
                    last,
                    "dropped",
                    *count as i64,
                    kind.name()
                ])?;
                gaps += 1;
            }
        }
        // The session row is rewritten every few seconds, not every batch:
        // it would cost a page per commit. A crash is dated from the events.
        let unsaved = self.unsaved_events + written as i64;
        let last_ns = match (self.unsaved_last_ns, last_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let save = gaps > 0 || self.session_saved_at.elapsed() >= SESSION_SAVE_EVERY;
        if save {
            let coalesced = self.shared.coalesced.load(Ordering::Relaxed) as i64;
            let dropped = self.shared.dropped.load(Ordering::Relaxed) as i64;
            tx.execute(
                "UPDATE sessions SET events = events + ?2, coalesced = ?3, dropped = ?4, \
                 last_ns = max(coalesce(last_ns, 0), coalesce(?5, 0)) WHERE id = ?1",
                params![session_id, unsaved, coalesced, dropped, last_ns],
            )?;
        }
        tx.commit()?;
        if save {
            self.unsaved_events = 0;
            self.unsaved_last_ns = None;
            self.session_saved_at = Instant::now();
        } else {
            self.unsaved_events = unsaved;
            self.unsaved_last_ns = last_ns;
        }
        Ok(Committed {
            written,
            gaps,
            cut,
            narrowed,
        })
    }

    fn close_session(&mut self) -> Result<(), StoreError> {
        let now = wall_now_ns();
        let (cut, narrowed) = (
            self.shared.cut.load(Ordering::Relaxed),
            self.shared.narrowed.load(Ordering::Relaxed),
        );
        if cut + narrowed > 0 {
            tracing::info!(
                cut,
                narrowed,
                "events outside the consent in force at their time were not written"
            );
        }
        let coalesced = self.shared.coalesced.load(Ordering::Relaxed) as i64;
        let dropped = self.shared.dropped.load(Ordering::Relaxed) as i64;
        self.store.conn().execute(
            "UPDATE sessions SET ended_ns = ?2, clean_exit = 1, coalesced = ?3, dropped = ?4, \
             events = events + ?5, last_ns = max(coalesce(last_ns, 0), coalesce(?6, 0)) WHERE id = ?1",
            params![
                self.session_id,
                now,
                coalesced,
                dropped,
                self.unsaved_events,
                self.unsaved_last_ns
            ],
        )?;
        if let Err(e) = self.store.checkpoint() {
            tracing::warn!("final checkpoint failed (the WAL stays consistent): {e}");
        }
        Ok(())
    }
}

/// What one transaction did.
struct Committed {
    written: u64,
    gaps: u64,
    cut: u64,
    narrowed: u64,
}

fn split(store: &mut Store) -> (&mut rusqlite::Connection, &Sealer) {
    let sealer = &store.sealer.as_ref().expect("loaded by the caller").0;
    (&mut store.conn, sealer)
}

/// Stores `content` once (compressed, then sealed) and returns its row id.
fn store_blob(
    tx: &rusqlite::Transaction<'_>,
    sealer: &Sealer,
    content: &[u8],
) -> Result<i64, StoreError> {
    let hash = sealer.blob_hash(content);
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")?
        .query_row([&hash[..]], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let compressed = zstd::bulk::compress(content, ZSTD_LEVEL)
        .map_err(|e| StoreError::Corrupt(format!("zstd failed to compress a blob: {e}")))?;
    let sealed = sealer.seal(&compressed, &seal::blob_aad(&hash))?;
    tx.prepare_cached("INSERT INTO blobs(hash, size, data) VALUES (?1, ?2, ?3)")?
        .execute(params![&hash[..], content.len() as i64, sealed])?;
    Ok(tx.last_insert_rowid())
}

/// Reads a blob back: unseals and decompresses it.
pub fn load_blob(store: &mut Store, id: i64) -> Result<Vec<u8>, StoreError> {
    let (hash, size, data): (Vec<u8>, i64, Vec<u8>) = store.conn().query_row(
        "SELECT hash, size, data FROM blobs WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("blob {id} has a malformed hash")))?;
    let sealer = store.sealer(false)?;
    let compressed = sealer.open(&data, &seal::blob_aad(&hash))?;
    let limit = usize::try_from(size).unwrap_or(0);
    zstd::bulk::decompress(&compressed, limit)
        .map_err(|e| StoreError::Corrupt(format!("blob {id} does not decompress: {e}")))
}
