#!/usr/bin/env bash
# Runs the tray app's end-to-end test (tests/gui/test_tray.py) against the
# debug build: under Xvfb, in a private D-Bus session with gnome-keyring
# (scripts/with-keyring.sh). Prints the measurements for BENCHMARKS.md as
# the last line (JSON). Needs `scripts/deps.sh test` and tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/debug/postern ] && [ -x target/debug/postern-fakes ] || cargo build --workspace --locked
export NO_AT_BRIDGE=1
# Known flake, not yet understood: in about one run in three the app is
# told to quit from outside mid-test (WebKitWebDriver ends the session; the
# app logs no error of its own). Each failed attempt is reported with the
# driver's log; three failures in a row fail the run.
for attempt in 1 2 3; do
  if timeout 600 scripts/with-keyring.sh xvfb-run -a python3 tests/gui/test_tray.py; then
    exit 0
  fi
  echo "[gui] attempt $attempt FAILED; the app's log under WebDriver ends with:" >&2
  work=$(ls -dt /tmp/postern-gui-* 2>/dev/null | head -1)
  [ -n "$work" ] && tail -n 15 "$work/driver.log" >&2 || true
done
echo "[gui] the tray app test failed three times in a row" >&2
exit 1
