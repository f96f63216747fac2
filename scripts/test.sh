#!/usr/bin/env bash
# Installs what the tests need and runs all of them: formatting, lints, unit
# tests and the end-to-end tests against the real `postern` binary, with the
# real OS keychain (gnome-keyring in a private D-Bus session).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The web UI the app embeds (ui/dist); without npm, build.rs puts a placeholder.
if [ -f ui/package.json ] && command -v npm >/dev/null; then
  npm --prefix ui ci --no-audit --no-fund >/dev/null
  npm --prefix ui run build >/dev/null
fi
# The web UI's own tests: Vitest (formatting, state, validation rules) and
# Playwright in Debian's Chromium against the built UI with the IPC mocked.
if [ -f ui/package.json ] && command -v npm >/dev/null; then
  npm --prefix ui test
  npm --prefix ui run test:e2e
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# Windows check: the whole workspace linted for Windows (clippy does all
# that `cargo check` does) with -D warnings: x86_64-pc-windows-gnu, Debian's
# mingw-w64 for the C in build scripts and the vendored OpenSSL, in its own
# target dir. Compiled only, never run: there is no Windows runner (README,
# "Windows"). From cold it takes about 16 min on 2 busy cores, most of it
# building OpenSSL, so it runs in the background at the lowest priority
# while the tests below mostly wait on sockets and windows; its result is
# checked before the summary.
windows_log="$(mktemp)"
(
  start=$SECONDS
  rc=0
  CARGO_TARGET_DIR=target/windows nice -n 19 cargo clippy --workspace --all-targets --locked \
    --target x86_64-pc-windows-gnu -- -D warnings >"$windows_log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - start))" >"$windows_log.done"
) &
windows_pid=$!
trap 'kill "$windows_pid" 2>/dev/null || true' EXIT
# The end-to-end tests use the real OS keychain: gnome-keyring in a private
# D-Bus session, with a private HOME so nothing touches the user's own.
export RUST_BACKTRACE=1
results="$(mktemp)"
scripts/with-keyring.sh cargo test --workspace --locked -- "$@" 2>&1 | tee "$results"
# A short run of each fuzz target (fuzz/; the 10-minute runs are in
# BENCHMARKS.md): cargo-fuzz on stable via RUSTC_BOOTSTRAP, see scripts/fuzz.sh.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
scripts/fuzz.sh "${FUZZ_SECS:-20}"
# The release binary, built once: the .deb's (the Tauri bundler builds it;
# scripts/package.sh), which the GUI tests then drive and test-package.sh
# installs (its own package.sh call finds nothing left to compile).
scripts/package.sh >/dev/null
# The tray app end to end, on that release binary: the real window through
# tauri-driver and WebKitWebDriver, clicked like a person (Account sign-in,
# Settings Save, from no config and from the README's), the tray over
# dbusmenu, notifications on the session bus.
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked
POSTERN_APP="$PWD/target/release/postern" scripts/test-gui.sh
# The .deb installed for real (root only).
scripts/test-package.sh
wait "$windows_pid" || true
read -r windows_rc windows_secs <"$windows_log.done"
if [ "$windows_rc" != 0 ]; then
  cat "$windows_log"
  echo "windows check (x86_64-pc-windows-gnu clippy -D warnings) failed" >&2
  exit 1
fi
tail -1 "$windows_log"
# Reached only when everything above passed (set -e, pipefail).
passed=$(awk '/^test result:/ {n += $4} END {print n + 0}' "$results")
echo "summary: $passed passed, 0 failed; windows check (x86_64-pc-windows-gnu clippy) clean in ${windows_secs}s"
