#!/usr/bin/env bash
# Builds the Debian package with the Tauri bundler (the npm @tauri-apps/cli):
# the release binary, the desktop entry, the icon set, the systemd unit and
# the service helpers (packaging/linux/). Prints the .deb's path.
# Install it with: sudo apt install ./target/release/bundle/deb/Postern_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
# The Tauri CLI from npm, pinned, in a folder of its own: it is not in
# ui/package-lock.json because the registry this is built from may lack its
# other platforms' optional packages, and `npm ci` refuses a lock without them.
cli_version=2.12.5
cli=target/tauri-cli
if [ "$(node -p "try{require('./$cli/node_modules/@tauri-apps/cli/package.json').version}catch(e){''}")" != "$cli_version" ]; then
  mkdir -p "$cli"
  npm install --prefix "$cli" --no-save --no-package-lock --no-audit --no-fund "@tauri-apps/cli@$cli_version" >&2
fi
[ -d ui/node_modules ] || npm --prefix ui ci --no-audit --no-fund >&2
npm --prefix ui run build >&2
rm -rf target/release/bundle/deb
"$cli/node_modules/.bin/tauri" build --bundles deb >&2
ls target/release/bundle/deb/*.deb
