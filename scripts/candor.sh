#!/usr/bin/env bash
# Installs what Candor needs, builds it, and runs it. With no arguments the
# consent screen comes first (when no consent is in force), then capture;
# arguments go to `candor`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked --quiet
exec target/release/candor "$@"
