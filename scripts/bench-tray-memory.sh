#!/usr/bin/env bash
# Measures the tray app's memory (BENCHMARKS.md, "Tray app: memory"): the
# whole process tree (the app and its WebKit web and network processes),
# with the tray only, with the window open after its page loaded, and after
# the window was closed (twice round, by default), on the release build.
#
# Usage: scripts/bench-tray-memory.sh [--detail] [--settle SECS] [--cycles N]
#   env: POSTERN_APP=path/to/postern   measure that binary instead of
#                                       target/release/postern (built if missing)
#        SETTLE=5                       seconds given to memory to be returned
#                                       before each measurement (a setting of
#                                       the measurement, not a wait for a state)
#        BENCH_ENV="K=V ..."            extra environment for the app (to try
#                                       WebKit/glibc variables by hand)
# Runs under Xvfb (1280x800x24, no window manager, no tray host: the icon is
# exported over StatusNotifierItem/dbusmenu) in a private D-Bus session with
# an unlocked gnome-keyring (scripts/with-keyring.sh) and a private HOME.
# Prints one table per phase (MB; RSS split into anon / file / shmem as in
# /proc/PID/status, PSS from smaps_rollup) and the result as JSON last.
set -euo pipefail
cd "$(dirname "$0")/.."
app="${POSTERN_APP:-target/release/postern}"
if [ ! -x "$app" ]; then
  [ -z "${POSTERN_APP:-}" ] || { echo "no binary at $app" >&2; exit 1; }
  cargo build --release --locked -p postern
fi
export NO_AT_BRIDGE=1
exec timeout 900 scripts/with-keyring.sh \
  xvfb-run -a -s "-screen 0 1280x800x24" python3 scripts/bench_tray_memory.py "$app" "$@"
