//! The capture daemon's core: pass the consent gate, open a writer session,
//! and keep watching the ledger so that a revocation, an expiry or a notice
//! change stops capture.
//!
//! Stopping the sources is the daemon's job; the boundary itself is the
//! writer's: its consent cut judges every event against the consent in
//! force at the event's time, inside the commit's transaction, so nothing
//! stamped after a revocation or an expiry is written, whenever the daemon
//! notices. `candor consent` tells a running daemon over the control socket
//! (`consent-changed`), so the sources stop at once; the poll remains for
//! expiry and for a ledger changed by other means.
//!
//! Sources start only after the gate passes, and only those whose scopes
//! are granted: keyboard and mouse (rdev), focus with exclusions (X11), and
//! file events with snapshots and commits (notify). Pauses go into the
//! ledger. The ingest socket takes events from local clients (shell hook,
//! editor plugins, `candor run`) through the same gate. The control socket
//! serves status, pause, resume and stop;
//! SIGINT and SIGTERM stop the daemon cleanly too.

pub mod control;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::capture::ingest::{self, IngestStats};
use crate::capture::workspace::Workspaces;
use crate::capture::{self, Control, SourceState};
use crate::event::SessionClock;
use crate::registry::Scope;

use crate::app::Context;
use crate::consent::gate::{Gate, Refusal};
use crate::consent::{self, ConsentError};
use crate::event::wall_now_ns;
use crate::store::writer::{self, SessionInfo, SinkStats};
use crate::store::{Store, StoreError};

/// How often the ledger is checked for a change of consent.
pub const CONSENT_POLL: Duration = Duration::from_millis(200);

/// Overrides [`CONSENT_POLL`] (in milliseconds, 50 to 60,000), so that a
/// test can show that `consent-changed` stops capture without the poll. A
/// slower poll weakens nothing: the writer's cut is the boundary.
pub const CONSENT_POLL_ENV: &str = "CANDOR_CONSENT_POLL_MS";

fn consent_poll() -> Duration {
    std::env::var(CONSENT_POLL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(CONSENT_POLL, |ms| {
            Duration::from_millis(ms.clamp(50, 60_000))
        })
}

/// The ledger as the daemon last read it: (head seq, history).
type Watched = (i64, consent::state::History);

/// Re-reads the ledger if it grew, and puts the consent now in force into
/// effect: an amendment swaps the gate and starts what it newly grants; an
/// end of consent closes the gate at once and is returned.
fn check_consent(
    ctx: &Context,
    ctl: &std::sync::Arc<Control>,
    clock: SessionClock,
    watch: &mut Store,
    watched: &mut Watched,
) -> Result<Option<Refusal>, DaemonError> {
    // Re-read and re-verify the ledger only when it grew; time alone
    // (expiry) is checked against the cached history.
    let head = consent::ledger::head(watch.conn())
        .map_err(ConsentError::from)?
        .0;
    if head != watched.0 {
        *watched = (head, consent::history(watch)?);
    }
    let status = watched
        .1
        .status(&consent::notice::notice_hash(), wall_now_ns());
    match Gate::check(&status) {
        // An amendment: the sources go on under the new scopes.
        Ok(now) => {
            if now.record().record_id != ctl.gate().record().record_id {
                ctl.set_gate(now);
                ensure_sources(ctx, ctl, clock);
            }
            Ok(None)
        }
        Err(refusal) => {
            ctl.close_gate();
            Ok(Some(refusal))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("capture refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
}

impl From<Refusal> for DaemonError {
    fn from(r: Refusal) -> DaemonError {
        DaemonError::Refused(r)
    }
}

/// Why a run ended.
#[derive(Debug)]
pub enum Ended {
    /// Asked to stop (a signal).
    Stopped,
    /// Consent no longer covers capture.
    ConsentEnded(Refusal),
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub ended: Ended,
    pub stats: SinkStats,
}

/// Checks the gate. Expiry and notice changes are written to the ledger on
/// the way, so the refusal is on record.
pub fn check_gate(store: &mut Store) -> Result<Gate, DaemonError> {
    let status = consent::refresh(store, wall_now_ns())?;
    Ok(Gate::check(&status)?)
}

/// Starts every source the consent allows that is not running yet, and
/// marks the others off with the reason; returns all states. Called at
/// start and again when an amendment grants more. (A source whose scope an
/// amendment withdraws keeps running, but the gate stores nothing of it.)
fn ensure_sources(
    ctx: &Context,
    ctl: &std::sync::Arc<Control>,
    clock: SessionClock,
) -> BTreeMap<&'static str, SourceState> {
    let gate = ctl.gate();
    let before = ctl.states();
    let startable = |name: &str| {
        before
            .get(name)
            .is_none_or(|s| matches!(s, SourceState::Off(_)))
    };
    if startable("input") {
        let input = if gate.grants(Scope::KeysTiming) || gate.grants(Scope::Mouse) {
            capture::input::spawn(ctl.clone(), clock, ctx.config.capture.mouse_rate_hz)
        } else {
            SourceState::Off("neither keys.timing nor mouse is granted".into())
        };
        ctl.set_state("input", input);
    }
    let input_running = ctl.states().get("input") == Some(&SourceState::Running);
    if startable("focus") {
        // Focus runs for window.apps, and also to enforce exclusions on input.
        let focus = if gate.grants(Scope::WindowApps) || input_running {
            capture::focus::spawn(ctl.clone(), clock, ctx.config.capture.exclude_apps.clone())
        } else {
            SourceState::Off("window.apps is not granted".into())
        };
        ctl.set_state("focus", focus);
    }
    if startable("editor") {
        let editor = if gate.grants(Scope::EditorFiles) {
            capture::editor::spawn(ctl.clone(), clock, &ctx.config.editor)
        } else {
            SourceState::Off("editor.files is not granted".into())
        };
        ctl.set_state("editor", editor);
    }
    let after = ctl.states();
    for (name, state) in &after {
        if before.get(name).is_some_and(|b| b != state) {
            tracing::info!(
                source = name,
                ?state,
                "source state changed after an amendment"
            );
        }
    }
    after
}

/// Binds the ingest socket and serves it on its own task. Capture goes on
/// without it if it cannot start (its state says why).
fn start_ingest(
    ctx: &Context,
    ctl: &std::sync::Arc<Control>,
    clock: SessionClock,
    stats: &std::sync::Arc<IngestStats>,
) -> (
    tokio::sync::watch::Sender<bool>,
    Option<tokio::task::JoinHandle<()>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let path = ingest::socket_path(&ctx.paths.data_dir);
    let workspaces =
        Workspaces::from_config(&ctx.config.editor.roots, &ctx.config.editor.deny).map(|w| w.0);
    let listener = workspaces.and_then(|w| {
        crate::socket::bind_private(&path)
            .map(|l| (l, w))
            .map_err(|e| e.to_string())
    });
    match listener {
        Ok((listener, workspaces)) => {
            ctl.set_state("ingest", SourceState::Running);
            let task = tokio::spawn(ingest::serve(
                listener,
                ctl.clone(),
                clock,
                workspaces,
                ctx.config.ingest.clone(),
                stats.clone(),
                stop_rx,
            ));
            (stop_tx, Some(task))
        }
        Err(why) => {
            ctl.set_state("ingest", SourceState::Unavailable(why));
            (stop_tx, None)
        }
    }
}

fn status_json(
    ctl: &Control,
    sink: &writer::EventSink,
    ingest: &IngestStats,
    up_since: Instant,
    paused_until: Option<i64>,
) -> serde_json::Value {
    let gate = ctl.gate();
    serde_json::json!({
        "uptime_s": up_since.elapsed().as_secs(),
        "consent": {
            "record_id": gate.record().record_id,
            "scopes": gate.record().scopes,
            "expires_at": gate.record().expires_at,
        },
        "paused": ctl.is_paused(),
        "paused_until": paused_until.map(crate::store::query::format_ns),
        "excluded_app_focused": ctl.is_excluded(),
        // Why input is withheld: an excluded app, or a focus that is unknown.
        "excluded_for": ctl.excluded_for(),
        "sources": ctl.states(),
        "writer": sink.stats(),
        "ingest": ingest.json(),
    })
}

/// Writes pauses and resumes the sources asked for into the ledger.
fn record_pauses(
    store: &mut Store,
    rx: &crossbeam_channel::Receiver<capture::PauseChange>,
) -> Result<(), DaemonError> {
    while let Ok(p) = rx.try_recv() {
        consent::record_pause(store, p.paused, &p.reason, p.wall_ns)?;
    }
    Ok(())
}

/// Runs until `stop` resolves or consent ends. `started` is called once
/// capture runs, with the gate it runs under and the sources' states.
pub async fn run(
    ctx: &Context,
    stop: impl std::future::Future<Output = ()>,
    started: impl FnOnce(&Gate, &BTreeMap<&'static str, SourceState>),
) -> Result<RunReport, DaemonError> {
    let open = || Store::open(&ctx.paths, ctx.config.store.key_store);
    let mut store = open()?;
    let gate = check_gate(&mut store)?;
    // A second connection watches the ledger; the writer owns the first.
    let mut watch = open()?;
    // A pause left open by a crash does not outlive the daemon that made it.
    if consent::history(&mut watch)?.paused_at(wall_now_ns()) {
        consent::record_pause(&mut watch, false, "capture restarted", wall_now_ns())?;
    }
    let clock = SessionClock::start();
    let (sink, handle) = writer::start_admitting(
        store,
        &ctx.config.writer,
        SessionInfo {
            source: "daemon".into(),
            synthetic: false,
        },
        Some(Box::new(consent::cut::ConsentCut::new())),
    )?;
    let (pause_tx, pause_rx) = crossbeam_channel::unbounded();
    let ctl = Control::new(gate.clone(), sink.clone(), pause_tx);
    let listener = control::bind(&ctx.paths.data_dir)?;
    // The sockets are bound (under a brief process-wide umask) before any
    // source thread runs and could create a file meanwhile.
    let ingest_stats = std::sync::Arc::new(IngestStats::default());
    let (ingest_stop, ingest_task) = start_ingest(ctx, &ctl, clock, &ingest_stats);
    ensure_sources(ctx, &ctl, clock);
    let states = ctl.states();
    started(&gate, &states);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(consent_poll());
    let up_since = Instant::now();
    let mut watched: Watched = (-1, consent::state::History::default());
    let mut resume_at: Option<(Instant, i64)> = None;
    let ended = loop {
        tokio::select! {
            () = &mut stop => break Ended::Stopped,
            accepted = listener.accept() => {
                let Ok((mut conn, _)) = accepted else { continue };
                // The request is read (bounded, with a timeout) before any
                // reply, so that a refused client reads the refusal rather
                // than a broken pipe.
                let request = tokio::time::timeout(Duration::from_secs(2), control::read_request(&mut conn)).await;
                if !control::peer_is_us(&conn) {
                    control::write_reply(&mut conn, &control::Reply::error("refused: not the same user")).await;
                    continue;
                }
                let request = match request {
                    Ok(Ok(r)) => r,
                    Ok(Err(why)) => {
                        control::write_reply(&mut conn, &control::Reply::error(why)).await;
                        continue;
                    }
                    Err(_) => continue,
                };
                let reply = match request {
                    control::Request::Status => {
                        let mut reply = control::Reply::ok();
                        reply.status = Some(status_json(&ctl, &sink, &ingest_stats, up_since, resume_at.map(|r| r.1)));
                        reply
                    }
                    control::Request::Pause { for_ns, reason } => {
                        ctl.set_paused(true, clock.stamp(), reason.as_deref().unwrap_or("cli"));
                        resume_at = for_ns.map(|ns| {
                            let d = Duration::from_nanos(ns);
                            (Instant::now() + d, wall_now_ns().saturating_add(i64::try_from(ns).unwrap_or(i64::MAX)))
                        });
                        control::Reply::ok()
                    }
                    control::Request::Resume { reason } => {
                        ctl.set_paused(false, clock.stamp(), reason.as_deref().unwrap_or("cli"));
                        resume_at = None;
                        control::Reply::ok()
                    }
                    control::Request::Stop => {
                        control::write_reply(&mut conn, &control::Reply::ok()).await;
                        break Ended::Stopped;
                    }
                    control::Request::ConsentChanged => {
                        // The gate is closed before the reply, so that the
                        // client hears back only once capture has stopped.
                        let ended = check_consent(ctx, &ctl, clock, &mut watch, &mut watched)?;
                        let mut reply = control::Reply::ok();
                        reply.status = Some(serde_json::json!({
                            "capturing": ended.is_none(),
                            "why": ended.as_ref().map(ToString::to_string),
                        }));
                        control::write_reply(&mut conn, &reply).await;
                        if let Some(refusal) = ended {
                            break Ended::ConsentEnded(refusal);
                        }
                        record_pauses(&mut watch, &pause_rx)?;
                        continue;
                    }
                };
                control::write_reply(&mut conn, &reply).await;
                record_pauses(&mut watch, &pause_rx)?;
            }
            _ = tick.tick() => {
                if resume_at.is_some_and(|(at, _)| Instant::now() >= at) {
                    resume_at = None;
                    ctl.set_paused(false, clock.stamp(), "pause timer ended");
                }
                record_pauses(&mut watch, &pause_rx)?;
                if let Some(refusal) = check_consent(ctx, &ctl, clock, &mut watch, &mut watched)? {
                    break Ended::ConsentEnded(refusal);
                }
            }
        }
    };
    // Once consent has ended nothing more may be recorded: not a file the
    // editor source is still settling, nor a client's open command. Gaps
    // (bookkeeping) still are.
    if matches!(ended, Ended::ConsentEnded(_)) {
        ctl.close_gate();
    }
    // Clients' open commands are recorded before the pause closes and the
    // writer drains.
    let _ = ingest_stop.send(true);
    if let Some(task) = ingest_task {
        let _ = task.await;
    }
    let _ = std::fs::remove_file(ingest::socket_path(&ctx.paths.data_dir));
    if ctl.is_paused() {
        ctl.set_paused(false, clock.stamp(), "capture stopped");
    }
    ctl.stop();
    ctl.close_spans(clock.stamp());
    record_pauses(&mut watch, &pause_rx)?;
    let _ = std::fs::remove_file(control::socket_path(&ctx.paths.data_dir));
    drop(sink);
    let stats = handle.shutdown()?;
    Ok(RunReport { ended, stats })
}
