//! Capture sources: they turn what happens on the desktop into registry
//! events and hand them, through the consent gate, to the store's sink.
//!
//! Every source shares one [`Control`]: the gate in force (swapped on an
//! amendment), the pause state, and the focused excluded application if
//! any. While paused or while an excluded application has focus, nothing is
//! delivered; instead one `capture.gap` records the span and its reason.
//! Events outside the consent are dropped by the gate (they were never
//! consented to, so they are not losses).

pub mod editor;
pub mod focus;
pub mod ingest;
pub mod input;
pub mod workspace;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crossbeam_channel::Sender;

use crate::consent::gate::Gate;
use crate::event::{Event, Stamp};
use crate::registry::Kind;
use crate::store::writer::{EventSink, Recorded};

/// A pause or resume the daemon must write to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseChange {
    pub paused: bool,
    pub wall_ns: i64,
    pub reason: String,
}

/// What a source is doing, for status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "why", rename_all = "lowercase")]
pub enum SourceState {
    Running,
    /// Could not start (no X display, no RECORD extension...).
    Unavailable(String),
    /// Not started: its scopes were not granted.
    Off(String),
}

/// Closed pauses remembered for judging late events by their own time.
const PAST_PAUSES_KEPT: usize = 256;

/// State shared by the daemon and every source.
pub struct Control {
    gate: RwLock<Gate>,
    sink: EventSink,
    paused: Mutex<Option<Stamp>>,
    /// Recent paused spans (wall ns, end exclusive): an event is judged by
    /// its own time, so one stamped inside a pause but handed over after
    /// the resume (a key still waiting for its focus verdict, a client's
    /// command that started while paused) is still refused.
    past_pauses: Mutex<std::collections::VecDeque<(i64, i64)>>,
    excluded: Mutex<Option<(String, Stamp)>>,
    stop: AtomicBool,
    /// Set when consent has ended: every offer is refused from then on.
    closed: AtomicBool,
    pauses: Sender<PauseChange>,
    states: Mutex<BTreeMap<&'static str, SourceState>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The focus source's verdicts on keys, read by the input source.
    keys: Arc<focus::KeyJudge>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn gap(reason: &str, since: Stamp, until: Stamp) -> Option<Event> {
    Event::new(Kind::CaptureGap, since)
        .with("reason", reason)
        .and_then(|e| e.with("duration_ns", (until.mono_ns - since.mono_ns).max(0)))
        .and_then(|e| e.with("count", 0))
        .ok()
}

impl Control {
    pub fn new(gate: Gate, sink: EventSink, pauses: Sender<PauseChange>) -> Arc<Control> {
        Arc::new(Control {
            gate: RwLock::new(gate),
            sink,
            paused: Mutex::new(None),
            past_pauses: Mutex::new(std::collections::VecDeque::new()),
            excluded: Mutex::new(None),
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            pauses,
            states: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(Vec::new()),
            keys: Arc::new(focus::KeyJudge::default()),
        })
    }

    pub fn gate(&self) -> Gate {
        self.gate.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new consent (an amendment) in force for every source.
    pub fn set_gate(&self, gate: Gate) {
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) = gate;
    }

    /// Asks every source to stop and waits for their threads (rdev's own
    /// listener cannot be stopped; it is simply no longer read).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in workers {
            let _ = w.join();
        }
    }

    /// Where the focus source judges keys and the input source asks.
    pub fn key_judge(&self) -> Arc<focus::KeyJudge> {
        self.keys.clone()
    }

    fn adopt(&self, worker: std::thread::JoinHandle<()>) {
        lock(&self.workers).push(worker);
    }

    /// Consent has ended (revoked, expired, or the notice changed): from
    /// now on nothing is recorded, whatever a source still holds.
    pub fn close_gate(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn is_paused(&self) -> bool {
        lock(&self.paused).is_some()
    }

    /// Whether capture was (or is) paused at `wall_ns`.
    pub fn paused_at(&self, wall_ns: i64) -> bool {
        if lock(&self.paused).is_some_and(|since| wall_ns >= since.wall_ns) {
            return true;
        }
        lock(&self.past_pauses)
            .iter()
            .any(|&(from, to)| wall_ns >= from && wall_ns < to)
    }

    pub fn set_state(&self, source: &'static str, state: SourceState) {
        lock(&self.states).insert(source, state);
    }

    pub fn states(&self) -> BTreeMap<&'static str, SourceState> {
        lock(&self.states).clone()
    }

    /// Pauses or resumes capture; a resume writes the paused span as a gap.
    pub fn set_paused(&self, paused: bool, at: Stamp, reason: &str) {
        let mut p = lock(&self.paused);
        match (p.take(), paused) {
            (None, true) => *p = Some(at),
            (Some(since), false) => {
                let mut past = lock(&self.past_pauses);
                past.push_back((since.wall_ns, at.wall_ns));
                // Clients may stamp up to a minute off; keep two.
                let horizon = at.wall_ns.saturating_sub(120 * 1_000_000_000);
                while past.len() > PAST_PAUSES_KEPT || past.front().is_some_and(|p| p.1 < horizon) {
                    past.pop_front();
                }
                drop(past);
                if let Some(g) = gap("paused", since, at) {
                    let _ = self.sink.record(g);
                }
            }
            (already, _) => {
                *p = already;
                return;
            }
        }
        let _ = self.pauses.send(PauseChange {
            paused,
            wall_ns: at.wall_ns,
            reason: reason.to_owned(),
        });
    }

    pub fn toggle_pause(&self, at: Stamp, reason: &str) {
        let paused = self.is_paused();
        self.set_paused(!paused, at, reason);
    }

    /// Marks an excluded application as focused (`Some`) or gone (`None`);
    /// the end of an exclusion writes its span as a gap.
    pub fn set_excluded(&self, app: Option<String>, at: Stamp) {
        let mut ex = lock(&self.excluded);
        match (ex.take(), app) {
            (None, Some(app)) => *ex = Some((app, at)),
            (Some((_, since)), None) => {
                if let Some(g) = gap("excluded", since, at) {
                    let _ = self.sink.record(g);
                }
            }
            (Some(current), Some(_)) => *ex = Some(current),
            (None, None) => {}
        }
    }

    pub fn is_excluded(&self) -> bool {
        lock(&self.excluded).is_some()
    }

    /// What input is withheld for: the excluded application's class, or
    /// the focus source's state ("focus unknown", "wm disagrees", "window
    /// manager gone"); for status.
    pub fn excluded_for(&self) -> Option<String> {
        lock(&self.excluded).as_ref().map(|(app, _)| app.clone())
    }

    /// Closes open pause and exclusion spans at shutdown, so they are on
    /// record.
    pub fn close_spans(&self, at: Stamp) {
        if let Some(since) = lock(&self.paused).take() {
            if let Some(g) = gap("paused", since, at) {
                let _ = self.sink.record(g);
            }
        }
        self.set_excluded(None, at);
    }

    /// Records a gap: gaps are part of every consent and are written even
    /// while paused.
    pub fn deliver_gap(&self, gap: Event) {
        let _ = self.sink.record(gap);
    }

    /// Hands an event to the store if capture is running and the consent
    /// covers it.
    pub fn deliver(&self, event: Event) {
        let _ = self.offer(event);
    }

    /// [`Control::deliver`], saying why an event was not recorded: the
    /// ingest socket tells its clients.
    pub fn offer(&self, mut event: Event) -> Result<(), NotRecorded> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(NotRecorded::ConsentEnded);
        }
        if self.paused_at(event.wall_ns) {
            return Err(NotRecorded::Paused);
        }
        // An excluded app's focus hides input, not file saves.
        let input = matches!(
            event.kind.scope(),
            crate::registry::Scope::KeysTiming | crate::registry::Scope::Mouse
        );
        if input && self.is_excluded() {
            return Err(NotRecorded::Excluded);
        }
        let admitted = self
            .gate
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&mut event);
        if !admitted {
            return Err(NotRecorded::NotGranted(event.kind.scope()));
        }
        match self.sink.record(event) {
            Ok(Recorded::Dropped) => Err(NotRecorded::Dropped),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!("a source produced an invalid event: {e}");
                Err(NotRecorded::Invalid(e.to_string()))
            }
        }
    }
}

/// Why [`Control::offer`] did not record an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRecorded {
    ConsentEnded,
    Paused,
    Excluded,
    NotGranted(crate::registry::Scope),
    /// The store could not keep up; the loss is counted as a gap.
    Dropped,
    Invalid(String),
}

impl std::fmt::Display for NotRecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRecorded::ConsentEnded => f.write_str("consent has ended"),
            NotRecorded::Paused => f.write_str("capture is paused"),
            NotRecorded::Excluded => f.write_str("an excluded application has focus"),
            NotRecorded::NotGranted(s) => write!(f, "the consent does not grant {s}"),
            NotRecorded::Dropped => {
                f.write_str("the store is overloaded (the loss is recorded as a gap)")
            }
            NotRecorded::Invalid(why) => write!(f, "invalid event: {why}"),
        }
    }
}
