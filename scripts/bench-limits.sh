#!/usr/bin/env bash
# Benchmarks how well Postern uses Exchange Online's 30 messages/minute
# ceiling without going over it, and how honest its ETA is, and prints the
# table that BENCHMARKS.md ("Limits") reports.
#
# Usage: scripts/bench-limits.sh     (takes about 14 minutes by design)
#   env: MESSAGES=400  PER_MINUTE=30  MEASURE_SECS=600  PT_PORT=2529
#        BENCH_OUT=target/bench-limits.md   KEEP=1 keeps the work directory
#
# What runs (release builds):
#   - `postern-fakes --messages-per-minute PER_MINUTE`: the fake Exchange
#     (submission role, 3 concurrent sessions per mailbox) counting every
#     submission that makes more than PER_MINUTE in a rolling minute (like
#     Exchange, it does not refuse them), and a fake identity platform;
#   - `postern serve` on 127.0.0.1:$PT_PORT, signed in with the client
#     credentials flow (its secret in a private gnome-keyring: the script
#     re-runs itself under scripts/with-keyring.sh), limits at their
#     defaults (30/min, 10,000 recipients/24 h, 3 connections).
# Then MESSAGES one-recipient messages are queued at once over one smtplib
# connection, `postern status --json` is read right after, and every
# upstream arrival is timed by the fake until all are delivered.
# Measurements:
#   a. utilisation: messages submitted in the first MEASURE_SECS of the
#      backlog (from the start of queueing) / the ceiling for that time;
#   b. the busiest rolling 60 s upstream, and the fake's over-limit count
#      (target 0) and 432 4.3.2 throttle replies (target 0);
#   c. ETA error: Postern's eta_secs read right after queueing vs the time
#      until the last message was accepted upstream.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${BENCH_LIMITS_IN_KEYRING:-}" ]; then
  export BENCH_LIMITS_IN_KEYRING=1
  exec scripts/with-keyring.sh "$ROOT/scripts/bench-limits.sh" "$@"
fi

MESSAGES=${MESSAGES:-400}
PER_MINUTE=${PER_MINUTE:-30}
MEASURE_SECS=${MEASURE_SECS:-600}
PT_PORT=${PT_PORT:-2529}
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench-limits.md}

log() { echo "== $*" >&2; }

log "building (release)"
cargo build --release --locked --workspace --bin postern --bin postern-fakes 2>&1 | tail -1
POSTERN=$ROOT/target/release/postern
FAKES=$ROOT/target/release/postern-fakes

if ss -ltn "sport = :$PT_PORT" | grep -q LISTEN; then
  echo "port $PT_PORT is in use (set PT_PORT)" >&2
  exit 1
fi

WORK=$(mktemp -d /tmp/postern-bench-limits.XXXXXX)
FAKES_PID="" PT_PID=""
# Stops what this script started (by pid) and keeps the script's own exit
# status (not that of the killed children).
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

# ---------------------------------------------------------------- fakes
"$FAKES" --dir "$WORK/fakes" --messages-per-minute "$PER_MINUTE" >"$WORK/fakes.out" 2>"$WORK/fakes.err" &
FAKES_PID=$!
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

[limits]
messages_per_minute = $PER_MINUTE

[spool]
dir = "$WORK/spool"
EOF
PT=("$POSTERN" --config "$WORK/postern.toml")
printf 'test-secret' | "${PT[@]}" account set-secret >/dev/null
"${PT[@]}" serve >"$WORK/postern.log" 2>&1 &
PT_PID=$!
for _ in $(seq 100); do ss -ltn "sport = :$PT_PORT" | grep -q LISTEN && break; sleep 0.1; done
ss -ltn "sport = :$PT_PORT" | grep -q LISTEN || { echo "postern did not start:" >&2; cat "$WORK/postern.log" >&2; exit 1; }

# ---------------------------------------------------------------- the backlog
log "queueing $MESSAGES messages"
now_ms() { date +%s%3N; }
T_START=$(now_ms)
python3 - "$PT_PORT" "$MESSAGES" <<'EOF'
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    for i in range(n):
        msg = (f"From: scanner@contoso.com\r\nTo: bob@contoso.com\r\n"
               f"Subject: limits-{i:05}\r\n\r\nscan {i}\r\n")
        s.sendmail("scanner@contoso.com", ["bob@contoso.com"], msg)
EOF
T_QUEUED=$(now_ms)
# The first status that shows the whole backlog and an ETA.
for _ in $(seq 200); do
  T_ASK=$(now_ms)
  "${PT[@]}" status --json >"$WORK/status.json"
  T_ANSWER=$(now_ms)
  python3 - "$WORK/status.json" "$MESSAGES" <<'EOF' && break
import json, sys
v = json.load(open(sys.argv[1]))
total = sum(x for x in v["queue"].values() if isinstance(x, int))
t = v.get("throttle") or {}
sys.exit(0 if total == int(sys.argv[2]) and isinstance(t.get("eta_secs"), (int, float)) else 1)
EOF
  sleep 0.05
done
T_READ=$(( (T_ASK + T_ANSWER) / 2 ))
ETA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throttle"]["eta_secs"])' "$WORK/status.json")
log "queued in $(( T_QUEUED - T_START )) ms; ETA ${ETA} s; waiting for the drain"

# Waits until the fake reported every message (one JSON line each after the first).
while [ "$(( $(wc -l <"$WORK/fakes.out") - 1 ))" -lt "$MESSAGES" ]; do
  kill -0 "$PT_PID" 2>/dev/null || { echo "postern exited:" >&2; tail -20 "$WORK/postern.log" >&2; exit 1; }
  sleep 1
done
"${PT[@]}" status --json >"$WORK/status-end.json"

# ---------------------------------------------------------------- report
python3 - "$WORK/fakes.out" "$T_START" "$T_READ" "$ETA" "$MESSAGES" "$PER_MINUTE" "$MEASURE_SECS" \
  "$(( T_QUEUED - T_START ))" "$WORK/status-end.json" >"$BENCH_OUT" <<'EOF'
import json, sys
out, t_start, t_read, eta, n, per_min, measure, queue_ms, end = sys.argv[1:10]
t_start, t_read, eta, n, per_min, measure = int(t_start), int(t_read), float(eta), int(n), int(per_min), int(measure)
lines = [json.loads(l) for l in open(out).read().splitlines()[1:]]
times = sorted(l["at_unix_ms"] for l in lines)
last = lines[-1]
busiest, start = 0, 0
for i, t in enumerate(times):
    while t - times[start] >= 60_000:
        start += 1
    busiest = max(busiest, i + 1 - start)
in_window = sum(1 for t in times if t - t_start < measure * 1000)
ceiling = per_min * measure / 60
drained = (times[-1] - t_read) / 1000
err = drained - eta
end_eta = json.load(open(end))["throttle"].get("eta_secs")
print(f"| measure | result | target |")
print(f"|---|---|---|")
print(f"| messages queued at once | {n} (in {int(queue_ms)/1000:.1f} s, one connection) | |")
print(f"| submitted in the first {measure} s of backlog | {in_window} | {ceiling:.0f} |")
print(f"| utilisation of the {per_min}/min ceiling | {100 * in_window / ceiling:.1f} % | ~100 % |")
print(f"| busiest rolling 60 s upstream | {busiest} | ≤ {per_min} |")
print(f"| over-limit submissions (fake) | {last['over_limit_submissions']} | 0 |")
print(f"| 432 4.3.2 throttle replies | {last['throttle_replies']} | 0 |")
print(f"| ETA right after queueing | {eta:.1f} s | |")
print(f"| actual drain (status read → last accepted upstream) | {drained:.1f} s | |")
print(f"| ETA error | {err:+.1f} s ({100 * err / max(eta, 1e-9):+.2f} %) | within 5 % + 2 s |")
print(f"| delivered | {len(lines)} of {n} | {n} |")
print(f"| ETA once drained | {end_eta} | 0 |")
EOF
cat "$BENCH_OUT"
