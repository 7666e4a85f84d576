//! Candor: a consent-first workflow-trace recorder.
//!
//! Data flows one way:
//!
//! ```text
//! sources ──► consent gate ──► store ──► exporter
//!                                        (redact → segment → anonymize → write)
//! ```
//!
//! Beside the flow sit the [`registry`] (every event kind and scope, declared
//! once) and the consent ledger ([`consent::ledger`]); every part reads them.
//!
//! - [`registry`], [`event`], [`keymap`]: what can be recorded, the event
//!   type, and what a key's class reveals.
//! - [`config`], [`paths`], [`app`]: settings, where files live with what
//!   rights, and what both binaries share at their edge.
//! - [`capture`]: the sources (input, focus and exclusions, editor, and the
//!   ingest socket for the shell hook, editor plugins and `candor run`).
//! - [`clients`]: the shell hook and `candor run`, which offer events to the
//!   daemon over the ingest socket.
//! - [`socket`]: owner-only Unix sockets (control and ingest).
//! - [`consent`]: notice, records, ledger, state, gate and consent screen.
//! - [`daemon`]: runs the sources under the gate; the control socket.
//! - [`store`]: the single-writer SQLite store with sealed fields and blobs.
//! - [`audit`]: checks for privacy reviewers.
//! - [`report`]: the offline HTML report (timeline, consent, gaps, ledger).
//! - [`units`]: counts, sizes and durations as people read them.
//! - [`redact`]: the redaction engine: secrets, personal data and identity,
//!   in text and typed key streams, with consistent placeholders.
//! - [`shell`]: the one reader of shell command lines (words with byte
//!   offsets, and programs found through wrappers), for the deny list and
//!   the typed-password dialogues.
//! - [`synthetic`]: realistic synthetic sessions for demos, tests and benchmarks.

pub mod app;
pub mod audit;
pub mod capture;
pub mod clients;
pub mod config;
pub mod consent;
pub mod daemon;
pub mod event;
pub mod export;
pub mod keymap;
pub mod paths;
pub mod redact;
pub mod registry;
pub mod report;
pub mod shell;
pub mod socket;
pub mod store;
pub mod synthetic;
pub mod units;
