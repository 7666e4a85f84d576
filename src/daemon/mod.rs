//! The capture daemon's core: pass the consent gate, open a writer session,
//! and keep watching the ledger so that a revocation, an expiry or a notice
//! change stops capture within a second.
//!
//! Capture sources (keyboard, mouse, focus, editor) are not part of this
//! build yet: the daemon says so when it starts, and records nothing but its
//! session. The control socket (status, pause, resume, stop) is not built
//! yet either; SIGINT and SIGTERM stop it cleanly.

use std::time::Duration;

use crate::app::Context;
use crate::consent::gate::{Gate, Refusal};
use crate::consent::{self, ConsentError};
use crate::event::wall_now_ns;
use crate::store::writer::{self, SessionInfo, SinkStats};
use crate::store::{Store, StoreError};

/// How often the ledger is checked for a change of consent.
pub const CONSENT_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("capture refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Runs until `stop` resolves or consent ends. `started` is called once
/// capture runs, with the gate it runs under.
pub async fn run(
    ctx: &Context,
    stop: impl std::future::Future<Output = ()>,
    started: impl FnOnce(&Gate),
) -> Result<RunReport, DaemonError> {
    let open = || Store::open(&ctx.paths, ctx.config.store.key_store);
    let mut store = open()?;
    let gate = check_gate(&mut store)?;
    // A second connection watches the ledger; the writer owns the first.
    let mut watch = open()?;
    let (sink, handle) = writer::start(
        store,
        &ctx.config.writer,
        SessionInfo {
            source: "daemon".into(),
            synthetic: false,
        },
    )?;
    started(&gate);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(CONSENT_POLL);
    let ended = loop {
        tokio::select! {
            () = &mut stop => break Ended::Stopped,
            _ = tick.tick() => {
                let status = consent::current(&mut watch, wall_now_ns())?;
                // An amendment keeps capture running (under the new scopes,
                // once there are sources to rescope); anything else stops it.
                if let Err(refusal) = Gate::check(&status) {
                    break Ended::ConsentEnded(refusal);
                }
            }
        }
    };
    drop(sink);
    let stats = handle.shutdown()?;
    Ok(RunReport { ended, stats })
}
