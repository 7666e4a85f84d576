#!/usr/bin/env bash
# Runs Candor's whole test suite after installing what it needs: formatting,
# lints, every unit and integration test (tests that need X or tmux run for
# real; under CI=true none may skip), the redaction evaluation against the
# gitleaks samples when ../shared has them (it fails below its targets), and
# short runs of the benchmarks so that they keep working (full runs:
# `cargo bench --bench ingest|capture|redact|export|shell_hook|report|timing_privacy`).
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
echo "== redaction evaluation"
cargo run --locked --release --example redaction_eval -- ../shared/eval/gitleaks-samples.jsonl
echo "== benchmarks (short)"
cargo bench --locked --bench ingest -- --events 200000 --rounds 1
cargo bench --locked --bench capture -- --seconds 5
cargo bench --locked --bench redact
cargo bench --locked --bench export -- --events 500000 --rounds 1
cargo bench --locked --bench shell_hook -- --commands 300 --rounds 3
cargo bench --locked --bench report -- --events 500000 --rounds 1
cargo bench --locked --bench timing_privacy -- --typists 5 --sessions 3 --lines 2 --exports 5
