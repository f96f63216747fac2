#!/usr/bin/env bash
# Quick start: install what is needed, build Postern, and run the relay with
# the config at $POSTERN_CONFIG (or the platform default; a missing file
# means the defaults: devices on 127.0.0.1:2525, mail kept until a mailbox
# is configured).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cargo build --release --locked --bin postern
exec target/release/postern serve "$@"
