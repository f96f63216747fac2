#!/usr/bin/env bash
# Soak test: `postern serve` (release build) relays a steady stream of mail
# to the fake Exchange Online while the fake injects faults, for MINUTES
# minutes; memory and file descriptors are sampled throughout, and at the
# end every message sent must have been delivered exactly once or still be
# queued (none lost, none failed).
#
# Usage: scripts/soak.sh [minutes]      (default 30)
#   env: RATE=20 (messages/minute, inside Exchange's 30/min)
#        FAULT_SECS=40 (a fault every 40 s, rotating through FAULTS below)
#        KEEP_HISTORY=7d (spool.keep_history: sent messages stay in the
#        queue's history, and in memory, this long)
#        SAMPLE_SECS=30  DRAIN_SECS=600 (after sending stops, the time
#        allowed for deferred messages to go out)  PT_PORT=2531
#        SOAK_OUT=target/soak (CSV, logs, summary)  KEEP=1 keeps the work dir
#
# What runs: `postern-fakes` (fake Exchange, submission role, and a fake
# identity platform; faults are written to its standard input) and
# `postern serve` on 127.0.0.1:$PT_PORT signed in with the client
# credentials flow (secret in a private gnome-keyring: the script re-runs
# itself under scripts/with-keyring.sh), with retries after 10 s doubling
# to 60 s so deferred mail goes out within the run. One Python process sends
# RATE one-recipient messages a minute, each over a new smtplib connection,
# with Subject soak-NNNNN.
# Faults (all transient; a permanent one would fail a message on purpose):
# 421 at the banner, 451 and 452 at MAIL/RCPT, 432 and 451 after the
# content, and the connection dropped at the banner, at DATA, and after
# the content before the reply.
# Output: $SOAK_OUT/soak.csv (elapsed_s, rss_kib, fds, threads, sent,
# delivered, queued) and $SOAK_OUT/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${SOAK_IN_KEYRING:-}" ]; then
  export SOAK_IN_KEYRING=1
  exec scripts/with-keyring.sh "$ROOT/scripts/soak.sh" "$@"
fi

MINUTES=${1:-30}
RATE=${RATE:-20}
FAULT_SECS=${FAULT_SECS:-40}
SAMPLE_SECS=${SAMPLE_SECS:-30}
DRAIN_SECS=${DRAIN_SECS:-600}
PT_PORT=${PT_PORT:-2531}
KEEP_HISTORY=${KEEP_HISTORY:-7d}
SOAK_OUT=${SOAK_OUT:-$ROOT/target/soak}
FAULTS=(
  "fault connect 421 4.3.2 Service not available, closing transmission channel"
  "fault mail-from 451 4.7.500 Server busy. Please try again later"
  "fault data-end drop"
  "fault rcpt-to 452 4.3.1 Insufficient system resources"
  "fault connect drop"
  "fault data-end 432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
  "fault data drop"
  "fault data-end 451 4.4.0 Message failed to be made redundant"
)

log() { echo "== $*" >&2; }

log "building (release)"
cargo build --release --locked --workspace --bin postern --bin postern-fakes 2>&1 | tail -1
POSTERN=$ROOT/target/release/postern
FAKES=$ROOT/target/release/postern-fakes

if ss -ltn "sport = :$PT_PORT" | grep -q LISTEN; then
  echo "port $PT_PORT is in use (set PT_PORT)" >&2
  exit 1
fi
mkdir -p "$SOAK_OUT"
WORK=$(mktemp -d /tmp/postern-soak.XXXXXX)
FAKES_PID="" PT_PID="" SENDER_PID="" FEED_PID=""
cleanup() {
  local rc=$?
  for pid in "$SENDER_PID" "$PT_PID" "$FAKES_PID" "$FEED_PID"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cp "$WORK"/postern.log "$WORK"/fakes.out "$SOAK_OUT"/ 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- fakes
mkfifo "$WORK/faults"
"$FAKES" --dir "$WORK/fakes" <"$WORK/faults" >"$WORK/fakes.out" 2>"$WORK/fakes.err" &
FAKES_PID=$!
exec 7>"$WORK/faults"   # held open for the whole run: the fake reads faults from it
for _ in $(seq 100); do [ -s "$WORK/fakes.out" ] && break; sleep 0.1; done
[ -s "$WORK/fakes.out" ] || { echo "postern-fakes did not start" >&2; cat "$WORK/fakes.err" >&2; exit 1; }
read -r SMTP_PORT AUTHORITY CA_FILE < <(head -1 "$WORK/fakes.out" |
  python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["smtp_port"], v["authority"], v["ca_file"])')

# ---------------------------------------------------------------- postern
cat >"$WORK/postern.toml" <<EOF
[listener]
listen = ["127.0.0.1:$PT_PORT"]

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

[delivery]
retry_first = "10s"
retry_max = "60s"

[spool]
dir = "$WORK/spool"
keep_history = "$KEEP_HISTORY"
EOF
PT=("$POSTERN" --config "$WORK/postern.toml")
printf 'test-secret' | "${PT[@]}" account set-secret >/dev/null
"${PT[@]}" serve >"$WORK/postern.log" 2>&1 &
PT_PID=$!
for _ in $(seq 100); do ss -ltn "sport = :$PT_PORT" | grep -q LISTEN && break; sleep 0.1; done
ss -ltn "sport = :$PT_PORT" | grep -q LISTEN || { echo "postern did not start:" >&2; cat "$WORK/postern.log" >&2; exit 1; }

# ---------------------------------------------------------------- sender
TOTAL=$(( MINUTES * RATE ))
log "sending $TOTAL messages at $RATE/min for $MINUTES min, a fault every ${FAULT_SECS}s"
python3 "$ROOT/scripts/soak/send.py" "$PT_PORT" "$TOTAL" "$RATE" "$WORK/sent.txt" &
SENDER_PID=$!

# ---------------------------------------------------------------- sample + faults
CSV=$SOAK_OUT/soak.csv
echo "elapsed_s,rss_kib,fds,threads,sent,delivered,queued" >"$CSV"
sample() {
  local rss fds threads sent delivered queued
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PT_PID/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$PT_PID/status")
  fds=$(ls "/proc/$PT_PID/fd" | wc -l)
  sent=$(grep -c ' ok$' "$WORK/sent.txt" 2>/dev/null || true)
  delivered=$(( $(wc -l <"$WORK/fakes.out") - 1 ))
  queued=$("${PT[@]}" queue --json | python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin) if m["state"] != "sent"))')
  echo "$1,$rss,$fds,$threads,${sent:-0},$delivered,$queued" >>"$CSV"
}
T0=$(date +%s)
END=$(( T0 + MINUTES * 60 ))
next_sample=$T0 next_fault=$(( T0 + FAULT_SECS )) fault_i=0 faults_sent=0
while kill -0 "$SENDER_PID" 2>/dev/null; do
  now=$(date +%s)
  kill -0 "$PT_PID" 2>/dev/null || { echo "postern exited:" >&2; tail -20 "$WORK/postern.log" >&2; exit 1; }
  if [ "$now" -ge "$next_sample" ]; then
    sample $(( now - T0 ))
    next_sample=$(( next_sample + SAMPLE_SECS ))
  fi
  if [ "$now" -ge "$next_fault" ] && [ "$now" -lt "$END" ]; then
    echo "${FAULTS[$fault_i]}" >&7
    fault_i=$(( (fault_i + 1) % ${#FAULTS[@]} ))
    faults_sent=$(( faults_sent + 1 ))
    next_fault=$(( next_fault + FAULT_SECS ))
  fi
  sleep 1
done
wait "$SENDER_PID" || true
SENDER_PID=""

# ---------------------------------------------------------------- drain
log "sending done; waiting up to ${DRAIN_SECS}s for deferred messages"
SENT_OK=$(grep -c ' ok$' "$WORK/sent.txt" || true)
DRAIN_END=$(( $(date +%s) + DRAIN_SECS ))
while [ "$(( $(wc -l <"$WORK/fakes.out") - 1 ))" -lt "$SENT_OK" ] && [ "$(date +%s)" -lt "$DRAIN_END" ]; do
  sleep 2
done
sample $(( $(date +%s) - T0 ))
"${PT[@]}" queue --json >"$WORK/queue.json"

# ---------------------------------------------------------------- verdict
rc=0
python3 "$ROOT/scripts/soak/verdict.py" "$WORK/sent.txt" "$WORK/fakes.out" "$WORK/queue.json" \
  "$CSV" "$faults_sent" "$MINUTES" "$RATE" >"$SOAK_OUT/summary.txt" || rc=$?
cat "$SOAK_OUT/summary.txt"
exit $rc
