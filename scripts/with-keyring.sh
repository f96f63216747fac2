#!/usr/bin/env bash
# Runs a command in a private D-Bus session with an unlocked gnome-keyring,
# a private HOME and XDG dirs: the real OS keychain, without touching the
# user's own. Usage: scripts/with-keyring.sh cargo test --test e2e_clients
set -euo pipefail
export HOME="$(mktemp -d)"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_RUNTIME_DIR="$HOME/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# cargo and rustup live under the real HOME; keep them findable.
export CARGO_HOME="${CARGO_HOME:-$(dirname "$(dirname "$(command -v cargo)")")}"
export RUSTUP_HOME="${RUSTUP_HOME:-$(dirname "$CARGO_HOME")/.rustup}"
exec dbus-run-session -- bash -c '
  echo "" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  gnome-keyring-daemon --start --components=secrets >/dev/null
  exec "$@"
' with-keyring "$@"
