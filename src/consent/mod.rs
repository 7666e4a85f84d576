//! Consent: the notice, consent records, the hash-chained ledger, and the
//! gate that keeps capture inside what was granted.
//!
//! So far: the notice (compiled in, with its hash) and the ledger. Consent
//! records, the screen, the gate and audit are not built yet.

pub mod ledger;
pub mod notice;
