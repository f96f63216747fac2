#!/usr/bin/env bash
# Builds the Debian package with the Tauri bundler (the npm @tauri-apps/cli):
# the release binary, the desktop entry, the icon set, the systemd unit and
# the service helpers (packaging/linux/). Prints the .deb's path.
# Install it with: sudo apt install ./target/release/bundle/deb/Postern_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x ui/node_modules/.bin/tauri ] || npm --prefix ui ci --no-audit --no-fund >/dev/null
[ -f ui/dist/index.html ] || npm --prefix ui run build >/dev/null
rm -rf target/release/bundle/deb
ui/node_modules/.bin/tauri build --bundles deb >&2
ls target/release/bundle/deb/*.deb
