#!/usr/bin/env bash
# Benchmarks Postern under abuse and prints the table that BENCHMARKS.md
# ("Abuse") reports: Postern's RSS and descriptors, and how long a
# well-behaved device waits for its 250, during 1,000 idle connections,
# 1,000 connections from one host, 200 slowloris clients, 4 endless lines
# and 10,000 pipelined RCPTs. The pass/fail checks live in
# tests/e2e_abuse.rs; this only measures.
#
# Usage: scripts/bench-abuse.sh    (about a minute after the build)
#   env: PT_PORT=2532  BENCH_OUT=target/bench-abuse.md  KEEP=1
#
# Runs release builds of `postern-fakes` and `postern serve` (client
# credentials in a private gnome-keyring, via scripts/with-keyring.sh) with
# listener.max_connections = 1100 so 1,000 idle connections can be held;
# the abusers are scripts/bench-abuse.py (Python asyncio) from other
# loopback addresses than the device (smtplib from 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${BENCH_ABUSE_IN_KEYRING:-}" ]; then
  export BENCH_ABUSE_IN_KEYRING=1
  exec scripts/with-keyring.sh "$ROOT/scripts/bench-abuse.sh" "$@"
fi
PT_PORT=${PT_PORT:-2532}
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench-abuse.md}
log() { echo "== $*" >&2; }
# 1,000 client sockets here, as many in Postern (which raises its own limit).
ulimit -n "$(ulimit -Hn)"

log "building (release)"
cargo build --release --locked --workspace --bin postern --bin postern-fakes 2>&1 | tail -1
POSTERN=$ROOT/target/release/postern
FAKES=$ROOT/target/release/postern-fakes
if ss -ltn "sport = :$PT_PORT" | grep -q LISTEN; then
  echo "port $PT_PORT is in use (set PT_PORT)" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/postern-bench-abuse.XXXXXX)
FAKES_PID="" PT_PID=""
cleanup() {
  local rc=$?
  for pid in "$PT_PID" "$FAKES_PID"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$FAKES" --dir "$WORK/fakes" >"$WORK/fakes.out" 2>"$WORK/fakes.err" </dev/null &
FAKES_PID=$!
for _ in $(seq 100); do [ -s "$WORK/fakes.out" ] && break; sleep 0.1; done
[ -s "$WORK/fakes.out" ] || { echo "postern-fakes did not start" >&2; cat "$WORK/fakes.err" >&2; exit 1; }
read -r SMTP_PORT AUTHORITY CA_FILE < <(head -1 "$WORK/fakes.out" |
  python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["smtp_port"], v["authority"], v["ca_file"])')

cat >"$WORK/postern.toml" <<EOF
[listener]
listen = ["127.0.0.1:$PT_PORT"]
max_connections = 1100

[upstream]
host = "localhost"
port = $SMTP_PORT
mailbox = "scanner@contoso.com"
ca_file = "$CA_FILE"

[oauth]
authority = "$AUTHORITY"
tenant = "contoso.com"
client_id = "postern-test"
flow = "client-credentials"

[spool]
dir = "$WORK/spool"
EOF
PT=("$POSTERN" --config "$WORK/postern.toml")
printf 'test-secret' | "${PT[@]}" account set-secret >/dev/null
# Started with the common soft default of 1024 open files: Postern raises
# its own soft limit to the hard one, or 1,000 connections would not fit.
(ulimit -Sn 1024 && exec "${PT[@]}" serve) >"$WORK/postern.log" 2>&1 &
PT_PID=$!
for _ in $(seq 100); do ss -ltn "sport = :$PT_PORT" | grep -q LISTEN && break; sleep 0.1; done
ss -ltn "sport = :$PT_PORT" | grep -q LISTEN || { echo "postern did not start:" >&2; cat "$WORK/postern.log" >&2; exit 1; }

log "abusing"
python3 "$ROOT/scripts/bench-abuse.py" "$PT_PORT" "$PT_PID" >"$BENCH_OUT" 2>"$WORK/driver.err" ||
  { cat "$WORK/driver.err" >&2; exit 1; }
SENT=$(sed -n 's/^SENT_BY_DEVICE=//p' "$WORK/driver.err")
log "waiting for the device's $SENT messages upstream"
for _ in $(seq 600); do
  [ "$(( $(wc -l <"$WORK/fakes.out") - 1 ))" -ge "$SENT" ] && break
  sleep 0.5
done
DELIVERED=$(( $(wc -l <"$WORK/fakes.out") - 1 ))
echo "" >>"$BENCH_OUT"
echo "device messages delivered upstream: $DELIVERED of $SENT; Postern started with a soft NOFILE of 1024, now $(awk '/Max open files/ {print $4}' /proc/$PT_PID/limits)" >>"$BENCH_OUT"
cat "$BENCH_OUT"
[ "$DELIVERED" -ge "$SENT" ]
