//! Consent: the notice, consent records, the hash-chained ledger, and the
//! gate that keeps capture inside what was granted.
//!
//! Only the ledger exists so far; records, the screen and the gate follow.

pub mod ledger;
