#!/usr/bin/env bash
# Installs what building and testing Postern needs on Debian 12 / Ubuntu.
# Usage: scripts/deps.sh [build|test]   (as root, or with sudo available)
set -euo pipefail
what=${1:-build}
# The tray app: WebKitGTK (pulls gtk-3, soup-3), and the tray library it
# loads at start-up. Never dbus-x11 (it launches stray session buses).
# libssl-dev: OpenSSL for legacy TLS on the device side (listener.legacy_tls).
build_pkgs=(build-essential pkg-config libdbus-1-dev libssl-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev)
test_pkgs=(chromium swaks libnet-ssleay-perl libio-socket-ssl-perl curl python3 openssl dbus gnome-keyring libsecret-tools
  xvfb xauth webkit2gtk-driver libnotify-bin x11-utils xdotool imagemagick python3-dbus python3-gi
  desktop-file-utils systemd adduser mingw-w64)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "Rust is needed: install it from your distribution (apt install cargo) or rustup, then run this again." >&2
  exit 1
fi
# The Windows check (scripts/test.sh) compiles for x86_64-pc-windows-gnu with
# mingw-w64 (above: gcc for OpenSSL and other C in build scripts, windres for
# tauri-build's resource file): it needs that target's standard library from
# rustup.
if [ "$what" = test ]; then
  if ! command -v rustup >/dev/null; then
    echo "The Windows check needs rustup (rustup target add x86_64-pc-windows-gnu)." >&2
    exit 1
  fi
  rustup target add x86_64-pc-windows-gnu >/dev/null
fi
