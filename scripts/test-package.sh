#!/usr/bin/env bash
# Builds the .deb and tests it installed for real (tests/package/test_deb.py):
# install, files, validators, the service relaying with its own keychain,
# purge. Installs into this machine, so it needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "[package] skipped: installing the .deb needs root" >&2
  exit 0
fi
[ -x target/debug/postern-fakes ] || cargo build -p postern-testkit --locked
scripts/package.sh >/dev/null
python3 tests/package/test_deb.py
