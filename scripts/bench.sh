#!/usr/bin/env bash
# Benchmarks Postern's durable accept path against Postfix, side by side on
# this machine, and prints the table that BENCHMARKS.md reports.
#
# Usage: scripts/bench.sh            (as root, or with sudo for apt-get; Debian 12)
#   env: MESSAGES=5000 (per run)  ROUNDS=3 (runs per server; medians reported)
#        CLIENTS=20  SIZE=4096  BIG_SIZE=26214400 (the peak-RSS run)
#        PF_PORT=2526  PT_PORT=2527  PT_MEM_PORT=2528
#        BENCH_OUT=target/bench-results.md   KEEP=1 keeps the work directory
#
# What runs:
#   - a private Postfix instance (its own config and queue under a temporary
#     directory; /etc/postfix is not touched) listening on 127.0.0.1:$PF_PORT,
#     accepting mail for relay and deferring it (defer_transports = smtp,
#     relayhost a closed port): every message is written and fsynced to its
#     queue and never delivered;
#   - `postern serve` on 127.0.0.1:$PT_PORT with no mailbox configured: mail is
#     accepted (content and directory fsynced before 250) and kept, delivery
#     held. Both spools are in the same temporary directory (same disk).
# Measurements:
#   a. smtp-source -s CLIENTS -l SIZE -m MESSAGES: messages/s for each server;
#   b. postern-load (testkit): p50/p90/p99 of "." -> 250 for the same load;
#   c. peak RSS (VmHWM) of a fresh `postern serve` receiving CLIENTS messages
#      of BIG_SIZE bytes at once;
#   d. its idle RSS (VmRSS) right after start;
#   e. fsync/fdatasync counts under strace -f -c for one extra smtp-source run
#      per server (strace slows both down, so that run's rate is not reported);
#   then a. and b. again (and e. for Postfix) with Postfix putting every
#   message on hold instead of deferring it: no queue-manager or defer-log
#   work, the closest match to Postern keeping mail it cannot deliver yet.
# Postfix and Postern are stopped and the work directory removed at the end,
# also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MESSAGES=${MESSAGES:-5000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-20}
SIZE=${SIZE:-4096}
BIG_SIZE=${BIG_SIZE:-26214400}
PF_PORT=${PF_PORT:-2526}
PT_PORT=${PT_PORT:-2527}
PT_MEM_PORT=${PT_MEM_PORT:-2528}
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench-results.md}

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- install
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
scripts/deps.sh build
need=()
for p in postfix strace jq; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  # The system Postfix instance (port 25, local only) is not used; if
  # installing the package starts it, it is stopped again below.
  pf_installed=yes
  dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "install ok installed" || pf_installed=no
  echo "postfix postfix/main_mailer_type select Local only" | $sudo debconf-set-selections
  echo "postfix postfix/mailname string $(hostname -f 2>/dev/null || hostname)" | $sudo debconf-set-selections
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ "$pf_installed" = no ] && $sudo postfix status >/dev/null 2>&1; then
    $sudo postfix stop >/dev/null 2>&1 || true
  fi
fi
[ -x /usr/sbin/smtp-source ] || { echo "smtp-source missing (postfix package)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "run as root: the private Postfix instance needs it" >&2; exit 1; }

log "building (release)"
cargo build --release --locked --workspace --bin postern --bin postern-fakes --bin postern-load 2>&1 | tail -1
POSTERN=$ROOT/target/release/postern
LOAD=$ROOT/target/release/postern-load

for port in "$PF_PORT" "$PT_PORT" "$PT_MEM_PORT"; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    echo "port $port is in use; set PF_PORT/PT_PORT/PT_MEM_PORT" >&2
    exit 1
  fi
done

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- work dir, cleanup
WORK=$(mktemp -d /var/tmp/postern-bench.XXXXXX)
chmod 755 "$WORK" # Postfix's daemons (user postfix) must reach their queue
PFC=$WORK/postfix-conf
PT_PID="" PTM_PID="" STRACE_PID=""
cleanup() {
  set +e
  [ -n "$STRACE_PID" ] && kill -INT "$STRACE_PID" 2>/dev/null
  for pid in $PT_PID $PTM_PID; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  if [ -f "$PFC/main.cf" ]; then
    postfix -c "$PFC" stop >/dev/null 2>&1
    for _ in $(seq 50); do postfix -c "$PFC" status >/dev/null 2>&1 || break; sleep 0.2; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Postfix
log "starting a private Postfix on 127.0.0.1:$PF_PORT (queue $WORK/postfix-queue)"
mkdir -p "$PFC" "$WORK/postfix-queue" "$WORK/postfix-data"
chown postfix "$WORK/postfix-data"
cp /etc/postfix/master.cf.proto "$PFC/master.cf" # the package's pristine master.cf
cat >"$PFC/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/postfix-queue
data_directory = $WORK/postfix-data
maillog_file = $WORK/postfix.log
myhostname = bench.localdomain
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
# Accept and queue, never deliver: relay mail is deferred without an attempt
# (and the relay host is a closed port anyway).
relayhost = [127.0.0.1]:9
defer_transports = smtp
EOF
postconf -c "$PFC" -F '*/*/chroot = n'
sed -i -E "s/^smtp( +)inet /127.0.0.1:$PF_PORT\1inet /" "$PFC/master.cf"
grep -q "^127.0.0.1:$PF_PORT " "$PFC/master.cf" || { echo "could not set the Postfix port" >&2; exit 1; }
postfix -c "$PFC" check
postfix -c "$PFC" start 2>/dev/null
for _ in $(seq 50); do ss -ltn "sport = :$PF_PORT" | grep -q LISTEN && break; sleep 0.2; done
PF_MASTER=$(head -1 "$WORK/postfix-queue/pid/master.pid" | tr -d ' ')

# ---------------------------------------------------------------- Postern
start_postern() { # name port -> pid in $STARTED
  local name=$1 port=$2
  mkdir -p "$WORK/$name"
  cat >"$WORK/$name.toml" <<EOF
[listener]
listen = ["127.0.0.1:$port"]
[spool]
dir = "$WORK/$name/spool"
EOF
  "$POSTERN" --config "$WORK/$name.toml" serve >"$WORK/$name.log" 2>&1 &
  STARTED=$!
  for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q LISTEN && return 0; sleep 0.1; done
  echo "postern did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
log "starting postern serve on 127.0.0.1:$PT_PORT"
start_postern postern "$PT_PORT"
PT_PID=$STARTED

# ---------------------------------------------------------------- helpers
smtp_source() { # port messages -> msgs/s on stdout
  local port=$1 n=$2 t0 t1 count
  t0=$(date +%s.%N)
  /usr/sbin/smtp-source -c -s "$CLIENTS" -l "$SIZE" -m "$n" -f load@example.com \
    -t scanner@contoso.com "127.0.0.1:$port" >"$WORK/smtp-source.out"
  t1=$(date +%s.%N)
  count=$(tr '\r' '\n' <"$WORK/smtp-source.out" | grep -E '^[0-9]+$' | tail -1)
  [ "$count" = "$n" ] || { echo "smtp-source: $count of $n messages completed" >&2; exit 1; }
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", n / (b - a) }'
}
# Waits (up to 60 s) until Postfix's queue manager has moved every message
# out of incoming/ and active/, so its background work does not spill into
# the next measurement.
settle() {
  for _ in $(seq 300); do
    [ -z "$(find "$WORK/postfix-queue/incoming" "$WORK/postfix-queue/active" -type f -print -quit)" ] && return 0
    sleep 0.2
  done
  log "warning: Postfix's queue manager did not catch up within 60 s"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------- warm-up
log "warm-up (500 messages each: Postfix starts its smtpd/cleanup processes)"
smtp_source "$PF_PORT" 500 >/dev/null
smtp_source "$PT_PORT" 500 >/dev/null
settle

# ---------------------------------------------------------------- a, b: one phase
# phase TAG: ROUNDS smtp-source runs (a) and ROUNDS postern-load runs (b)
# against each server, alternating who goes first so neither always runs on
# a fresher disk; sets RATE_{PT,PF}_TAG (median msgs/s) and the files
# lat.{pt,pf}.TAG (one postern-load JSON line per run).
phase() {
  local tag=$1 r s order port rate
  : >"$WORK/rate.pf.$tag"; : >"$WORK/rate.pt.$tag"; : >"$WORK/lat.pf.$tag"; : >"$WORK/lat.pt.$tag"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="pt pf"; else order="pf pt"; fi
    for s in $order; do
      port=$PT_PORT; [ "$s" = pf ] && port=$PF_PORT
      rate=$(smtp_source "$port" "$MESSAGES")
      settle
      echo "$rate" >>"$WORK/rate.$s.$tag"
      log "a. [$tag] round $r $s: smtp-source $MESSAGES x $SIZE B, $CLIENTS sessions: $rate msgs/s"
    done
  done
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="pf pt"; else order="pt pf"; fi
    for s in $order; do
      port=$PT_PORT; [ "$s" = pf ] && port=$PF_PORT
      "$LOAD" --server "127.0.0.1:$port" --clients "$CLIENTS" --messages "$MESSAGES" --size "$SIZE" --json >>"$WORK/lat.$s.$tag"
      settle
      log "b. [$tag] round $r $s: $(tail -1 "$WORK/lat.$s.$tag" | jq -c '{msgs_per_s, accept}')"
    done
  done
}
# lat SERVER TAG JQ-PATH [DECIMALS]: the median over the rounds of phase TAG
lat() { jq -r "$3" "$WORK/lat.$1.$2" | median | xargs printf "%.${4:-1}f"; }
rate() { median <"$WORK/rate.$1.$2"; }

log "phase 1: Postfix defers the mail (defer_transports = smtp)"
phase defer
PT_RATE=$(rate pt defer)
PF_RATE=$(rate pf defer)
RATIO=$(awk -v a="$PT_RATE" -v b="$PF_RATE" 'BEGIN { printf "%.2f", a / b }')
for s in pf pt; do
  for k in p50 p90 p99 max; do
    eval "${s^^}_${k^^}=\$(lat $s defer .accept.${k}_ms)"
  done
  eval "${s^^}_SP50=\$(lat $s defer .session.p50_ms)"
  eval "${s^^}_SP99=\$(lat $s defer .session.p99_ms)"
  eval "${s^^}_LRATE=\$(lat $s defer .msgs_per_s 0)"
done
PT_HWM_4K=$(rss_kb "$PT_PID" VmHWM)

# ---------------------------------------------------------------- e. fsyncs
fsyncs() { # port pids... ; runs one smtp-source round under strace
  local port=$1 pid attach=()
  shift
  for pid in "$@"; do attach+=(-p "$pid"); done
  strace -f -c -o "$WORK/strace.out" -e trace=fsync,fdatasync "${attach[@]}" 2>/dev/null &
  STRACE_PID=$!
  sleep 1
  smtp_source "$port" "$MESSAGES" >/dev/null
  settle
  sleep 1
  kill -INT "$STRACE_PID"; wait "$STRACE_PID" 2>/dev/null || true
  STRACE_PID=""
  awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$WORK/strace.out"
}
if command -v strace >/dev/null && strace -f -c -o /dev/null true 2>/dev/null; then
  log "e. counting fsyncs (one extra run per server under strace)"
  PT_FSYNC=$(fsyncs "$PT_PORT" "$PT_PID")
  # Postfix: the master and every daemon it runs now (-f follows new ones).
  mapfile -t pf_pids < <(ps -o pid= --ppid "$PF_MASTER" | tr -d " ")
  PF_FSYNC=$(fsyncs "$PF_PORT" "$PF_MASTER" "${pf_pids[@]}")
else
  PT_FSYNC="n/a" PF_FSYNC="n/a"
fi

# ---------------------------------------------------------------- a, b again: Postfix holds
# Deferring costs Postfix background work Postern does not do for held mail
# (qmgr moves each message incoming -> active -> deferred, and the bounce
# daemon writes and fsyncs a defer log per message). For the closest match
# to Postern's "accept and keep", Postfix now puts every message straight
# on its hold queue (cleanup renames it there; no qmgr or bounce work).
log "phase 2: Postfix puts the mail on hold (HOLD at end of data)"
postconf -c "$PFC" -e 'smtpd_end_of_data_restrictions = check_client_access static:HOLD'
postfix -c "$PFC" reload 2>/dev/null
sleep 1
smtp_source "$PF_PORT" 500 >/dev/null
[ -n "$(find "$WORK/postfix-queue/hold" -type f -print -quit)" ] || { echo "Postfix did not hold mail" >&2; exit 1; }
phase hold
H_PT_RATE=$(rate pt hold)
H_PF_RATE=$(rate pf hold)
H_RATIO=$(awk -v a="$H_PT_RATE" -v b="$H_PF_RATE" 'BEGIN { printf "%.2f", a / b }')
for s in pf pt; do
  for k in p50 p99; do
    eval "H_${s^^}_${k^^}=\$(lat $s hold .accept.${k}_ms)"
  done
  eval "H_${s^^}_LRATE=\$(lat $s hold .msgs_per_s 0)"
done
if [ "$PT_FSYNC" != n/a ]; then
  mapfile -t pf_pids < <(ps -o pid= --ppid "$PF_MASTER" | tr -d " ")
  PF_FSYNC_HOLD=$(fsyncs "$PF_PORT" "$PF_MASTER" "${pf_pids[@]}")
else
  PF_FSYNC_HOLD="n/a"
fi

# ---------------------------------------------------------------- c, d. memory
log "d. idle RSS of a fresh postern serve on 127.0.0.1:$PT_MEM_PORT"
start_postern postern-mem "$PT_MEM_PORT"
PTM_PID=$STARTED
sleep 2
IDLE_RSS=$(rss_kb "$PTM_PID" VmRSS)
log "c. $CLIENTS concurrent messages of $BIG_SIZE bytes"
"$LOAD" --server "127.0.0.1:$PT_MEM_PORT" --clients "$CLIENTS" --messages "$CLIENTS" --size "$BIG_SIZE" --json >"$WORK/big.json"
BIG_HWM=$(rss_kb "$PTM_PID" VmHWM)
BIG_P50=$(jq -r '.accept.p50_ms' "$WORK/big.json" | xargs printf %.0f)
BIG_SECS=$(jq -r '.seconds' "$WORK/big.json" | xargs printf %.1f)

# ---------------------------------------------------------------- disk
DSYNC=$(dd if=/dev/zero of="$WORK/dsync.probe" bs=4k count=1000 oflag=dsync 2>&1 | awk '/copied/ { printf "%.2f", $(NF-3) * 1000 / 1000 }')
rm -f "$WORK/dsync.probe"

# ---------------------------------------------------------------- report
met() { awk -v a="$1" -v b="$2" "BEGIN { exit !(a $3 b) }" && echo met || echo "NOT met"; }
{
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "Disk: $(df --output=source,fstype "$WORK" | tail -1 | xargs), 4 KB O_DSYNC write: ${DSYNC} ms each (dd, 1000 writes)"
  echo "Other load: load average $LOADAVG_BEFORE before the run, $(cut -d' ' -f1-3 /proc/loadavg) after (1/5/15 min; anything else running shares the 2 cores and the disk)"
  echo "Load: $CLIENTS parallel clients, $MESSAGES messages of $SIZE B per run, median of $ROUNDS runs; Postfix $(postconf -d -h mail_version)"
  echo
  echo "| measurement | Postern | Postfix | target | result |"
  echo "|---|---|---|---|---|"
  echo "| a. smtp-source msgs/s | $PT_RATE | $PF_RATE | Postern ≥ Postfix (aim 1.5×) | ${RATIO}× — $(met "$PT_RATE" "$PF_RATE" '>=') |"
  echo "| b. postern-load msgs/s | $PT_LRATE | $PF_LRATE | | |"
  echo "| b. accept latency \".\"→250 p50 / p90 / p99 / max (ms) | $PT_P50 / $PT_P90 / $PT_P99 / $PT_MAX | $PF_P50 / $PF_P90 / $PF_P99 / $PF_MAX | Postern p99 < Postfix p99 | $(met "$PT_P99" "$PF_P99" '<') |"
  echo "| b. session connect→221 p50 / p99 (ms) | $PT_SP50 / $PT_SP99 | $PF_SP50 / $PF_SP99 | | |"
  echo "| c. peak RSS, $CLIENTS × $((BIG_SIZE / 1048576)) MB at once (VmHWM) | $(mb "$BIG_HWM") MB | | < 64 MB | $(met "$BIG_HWM" 65536 '<') |"
  echo "| d. idle RSS after start (VmRSS) | $(mb "$IDLE_RSS") MB | | < 20 MB | $(met "$IDLE_RSS" 20480 '<') |"
  echo "| e. fsync+fdatasync calls for $MESSAGES messages | $PT_FSYNC | $PF_FSYNC | | |"
  echo "| a. with Postfix holding mail: smtp-source msgs/s | $H_PT_RATE | $H_PF_RATE | Postern ≥ Postfix | ${H_RATIO}× — $(met "$H_PT_RATE" "$H_PF_RATE" '>=') |"
  echo "| b. with Postfix holding mail: postern-load msgs/s | $H_PT_LRATE | $H_PF_LRATE | | |"
  echo "| b. with Postfix holding mail: accept p50 / p99 (ms) | $H_PT_P50 / $H_PT_P99 | $H_PF_P50 / $H_PF_P99 | Postern p99 < Postfix p99 | $(met "$H_PT_P99" "$H_PF_P99" '<') |"
  echo "| e. with Postfix holding mail: fsync+fdatasync calls | (as above) | $PF_FSYNC_HOLD | | |"
  echo
  echo "Also: Postern's VmHWM after all 4 KB runs: $(mb "$PT_HWM_4K") MB; the $CLIENTS × $((BIG_SIZE / 1048576)) MB run took ${BIG_SECS} s (accept p50 ${BIG_P50} ms)."
  if [ "$PT_FSYNC" != n/a ]; then
    echo "Postern's fsyncs = $MESSAGES content-file fsyncs + $((PT_FSYNC - MESSAGES)) directory fsyncs (group commit: $(awk -v m="$MESSAGES" -v f="$PT_FSYNC" 'BEGIN { d = f - m; printf "%.1f", (d > 0 ? m / d : 0) }') messages per directory fsync)."
  fi
} | tee "$BENCH_OUT"
log "written to $BENCH_OUT"
