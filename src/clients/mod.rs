//! The local clients of the ingest socket that ship inside `candor`: the
//! shell hook (a snippet for bash and zsh, and the relay it feeds) and
//! `candor run`. The editor plugins, in `examples/nvim` and
//! `examples/vscode`, speak the same protocol.
//!
//! They sit before the gate in the flow: they only *offer* events. The
//! daemon checks every message against the registry and the consent in
//! force, and says `not recorded: …` when it may not keep one.

pub mod client;
pub mod runners;
pub mod shell;
pub mod testrun;
