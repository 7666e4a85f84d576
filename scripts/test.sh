#!/usr/bin/env bash
# Runs Candor's whole test suite after installing what it needs: formatting,
# lints, every unit and integration test (tests that need X or tmux run for
# real; under CI=true none may skip), and a short run of the ingest benchmark
# so that it keeps working (the full one is `cargo bench --bench ingest`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== ingest benchmark (short)"
cargo bench --locked --bench ingest -- --events 200000 --rounds 1
