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
//! - [`registry`], [`event`]: what can be recorded, and the event type.
//! - [`config`], [`paths`]: settings, and where files live with what rights.
//! - [`store`]: the single-writer SQLite store with sealed fields and blobs.
//! - [`consent`]: the ledger (and, later, records, screen and gate).
//! - [`redact`]: the redaction engine: secrets, personal data and identity,
//!   in text and typed key streams, with consistent placeholders.
//! - [`synthetic`]: realistic synthetic sessions for demos, tests and benchmarks.

pub mod app;
pub mod audit;
pub mod capture;
pub mod config;
pub mod consent;
pub mod daemon;
pub mod event;
pub mod keymap;
pub mod paths;
pub mod redact;
pub mod registry;
pub mod store;
pub mod synthetic;
