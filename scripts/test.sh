#!/usr/bin/env bash
# Installs what the tests need and runs all of them: formatting, lints, unit
# tests and the end-to-end tests against the real `postern` binary, with the
# real OS keychain (gnome-keyring in a private D-Bus session).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# A private session bus with an unlocked keyring, and a private HOME, so the
# tests neither see nor touch the user's own keychain and config.
export HOME="$(mktemp -d)"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_RUNTIME_DIR="$HOME/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export RUST_BACKTRACE=1
exec dbus-run-session -- bash -c '
  echo "" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  gnome-keyring-daemon --start --components=secrets >/dev/null
  cargo test --workspace --locked -- "$@"
' test "$@"
