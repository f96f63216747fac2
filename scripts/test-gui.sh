#!/usr/bin/env bash
# Runs the tray app's end-to-end test (tests/gui/test_tray.py) against the
# debug build: under Xvfb, in a private D-Bus session with gnome-keyring
# (scripts/with-keyring.sh). Prints the measurements for BENCHMARKS.md as
# the last line (JSON). Needs `scripts/deps.sh test` and tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/debug/postern ] && [ -x target/debug/postern-fakes ] || cargo build --workspace --locked
export NO_AT_BRIDGE=1
timeout 900 scripts/with-keyring.sh xvfb-run -a python3 tests/gui/test_tray.py
