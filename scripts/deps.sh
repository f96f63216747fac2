#!/usr/bin/env bash
# Installs what building and testing Postern needs on Debian 12 / Ubuntu.
# Usage: scripts/deps.sh [build|test]   (as root, or with sudo available)
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential pkg-config libdbus-1-dev)
test_pkgs=(swaks libnet-ssleay-perl libio-socket-ssl-perl curl python3 openssl dbus gnome-keyring libsecret-tools)
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
