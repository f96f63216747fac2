#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for N seconds, one after the
# other (default 600 s = 10 min each; CI uses a short run).
#
#   scripts/fuzz.sh [seconds] [target...]
#
# The committed seed corpus (fuzz/corpus/<target>) is read, never written:
# new inputs go to target/fuzz-work/<target>. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script fail. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); the toolchain is stable, so
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z sanitizer flags.
# To shrink the committed corpus after a long run:
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz cmin <target> corpus/<target>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(session data)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cd fuzz
cargo fuzz build >/dev/null
status=0
for t in "${targets[@]}"; do
    work="$root/target/fuzz-work/$t"
    log="$root/target/fuzz-work/$t.log"
    mkdir -p "$work"
    echo "== fuzz $t for ${secs}s (log: $log)"
    # -rss_limit_mb: the session target runs a whole SMTP session per input.
    if cargo fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
        -timeout=30 >"$log" 2>&1; then
        verdict="no findings"
    else
        verdict="FAILED (see $log and fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' || true)
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' || true)
    corp=$(echo "$last" | grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' || true)
    echo "   $t: $verdict; ${execs} execs (${rate}/s); ${cov:-cov ?}, ${ft:-ft ?}, ${corp:-corp ?}"
done
exit $status
