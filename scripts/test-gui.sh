#!/usr/bin/env bash
# Runs the real-app GUI tests under Xvfb, in a private D-Bus session with
# gnome-keyring (scripts/with-keyring.sh):
#   tests/gui/test_tray.py    the tray, relaying, notifications, the window's
#                             memory (its measurements for BENCHMARKS.md: the
#                             JSON line it prints last);
#   tests/gui/test_clicks.py  Account sign-in and Settings Save clicked like a
#                             person, from no config file and from the README's
#                             config; a screenshot of each step.
#   tests/gui/test_graph.py   Graph mode, app-only, against the fake Graph:
#                             Account shows the app, tenant, mailbox and the
#                             permissions from the token (a warning when
#                             Mail.ReadWrite is missing), Settings the Graph
#                             keys and the engine's error on an http endpoint;
#                             a message reaches the fake Graph.
#   tests/gui/test_setup.py   the setup assistant clicked from no config file
#                             to a delivered test message and the device card
#                             (the client secret typed in lies only in the
#                             keychain), and Cancel from the README's config
#                             leaving the file byte-identical; pictures light,
#                             and dark (POSTERN_THEME=dark: GTK's dark theme).
# The app under test: $POSTERN_APP, else target/release/postern (the .deb's
# binary, as scripts/test.sh builds it) when no source is newer than it, else
# the debug build. Screenshots go to $POSTERN_WALKTHROUGH, else
# target/walkthrough; `POSTERN_WALKTHROUGH=docs/walkthrough scripts/test-gui.sh`
# refreshes the checked-in ones. Needs `scripts/deps.sh test` and tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${POSTERN_APP:-}" ]; then
  release=target/release/postern
  if [ -x "$release" ] && [ -z "$(find src-tauri engine/src ui/dist Cargo.toml Cargo.lock tauri.conf.json \
      -newer "$release" -print -quit 2>/dev/null)" ]; then
    POSTERN_APP="$PWD/$release"
  else
    [ -x "$release" ] && echo "[gui] $release is older than the sources: testing the debug build" >&2
    [ -x target/debug/postern ] || cargo build -p postern --locked
    POSTERN_APP="$PWD/target/debug/postern"
  fi
fi
export POSTERN_APP
# The fakes come from the debug build (the release bundle has only the app).
[ -x target/debug/postern-fakes ] || cargo build -p postern-testkit --locked
export NO_AT_BRIDGE=1
echo "[gui] testing $POSTERN_APP" >&2
for test in test_tray test_clicks test_graph test_setup; do
  timeout 900 scripts/with-keyring.sh xvfb-run -a python3 "tests/gui/$test.py"
done
# The assistant's pictures in the dark theme too (the walk again, first run only).
POSTERN_THEME=dark timeout 900 scripts/with-keyring.sh xvfb-run -a python3 tests/gui/test_setup.py first
