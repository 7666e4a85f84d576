#!/usr/bin/env bash
# Installs what building and testing Candor needs on Debian/Ubuntu, skipping
# whatever is already there: the X11 libraries rdev links against, the
# virtual X server, window manager and tools the capture tests drive, tmux
# for the consent-screen and shell-hook tests, zsh, Neovim and Node.js for the
# workflow clients, Chromium and man for the report and manual page tests,
# and a Rust toolchain if none is found.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libx11-dev libxtst-dev libxi-dev       # rdev (keyboard/mouse capture on X11)
  xvfb xdotool openbox x11-utils         # capture tests: a real X server, input, focus
  tmux procps                            # consent-screen and shell-hook tests
  dbus gnome-keyring                     # store-key tests against a real Secret Service
  git ca-certificates curl
  python3 python3-pip                    # DuckDB reads exported Parquet in the tests
  zsh                                    # the shell hook is tested in bash and zsh
  neovim                                 # the Neovim plugin is tested headless
  python3-pytest                         # `candor run` reads a real pytest's summary
  chromium fonts-dejavu-core             # the HTML report is checked in headless Chromium
  man-db                                 # `candor man` is rendered with `man -l`
  default-jre-headless                   # Apache Spark (pyspark) reads a combined dataset in the tests
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The VS Code extension is built with tsc and tested with node; `candor run`
# reads a real `npm test`. A Node.js from elsewhere (nodesource) is kept:
# Debian's npm would conflict with it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: cargo is in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)"
  else
    echo "setup: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  fi
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done
# DuckDB, a second real reader of the exported Parquet (the README's query
# is run by the tests). Debian's own python3 refuses plain pip installs.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import duckdb' 2>/dev/null; then
  echo "setup: installing duckdb for python3"
  python3 -m pip install --quiet duckdb 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages duckdb \
    || echo "setup: could not install duckdb; its test skips (and fails under CI)"
fi
# Apache Spark in local mode, the engine data teams run over many exports:
# the combine test checks that it counts a combined dataset as DuckDB does.
# Measured: about 1m45s and 490 MB to install, about 1-2 min per run.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import pyspark' 2>/dev/null; then
  echo "setup: installing pyspark for python3"
  python3 -m pip install --quiet pyspark 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages pyspark \
    || echo "setup: could not install pyspark; the combine test fails under CI"
fi
# pandas, the way community ProgSnap2 readers load a dataset (the export
# tests read the MainTable and code states with it).
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import pandas' 2>/dev/null; then
  echo "setup: installing pandas for python3"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pandas 2>/dev/null \
    || python3 -m pip install --quiet pandas 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages pandas \
    || echo "setup: could not install pandas; its test skips (and fails under CI)"
fi
echo "setup: ready ($(cargo --version))"
