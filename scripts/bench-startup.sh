#!/usr/bin/env bash
# Startup-to-ready time of `mailwright serve` on SQLite, release build: from
# exec until GET /api/ready answers 200. Prints each run and the median.
#   scripts/bench-startup.sh [RUNS]
# "first start" = empty data dir (creates the database, applies migrations);
# "restart" = the same data dir again.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
cargo build --release --quiet -p mailwright
bin=target/release/mailwright
port=18089

measure() { # data_dir -> milliseconds to ready
    local dir="$1" start end
    start=$(date +%s%N)
    MAILWRIGHT_DATA_DIR="$dir" MAILWRIGHT_LISTEN="127.0.0.1:$port" MAILWRIGHT_LOG_FORMAT=json \
        RUST_LOG=warn "$bin" serve >/dev/null 2>&1 &
    local pid=$!
    local deadline=$(( start + 10000000000 ))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/api/ready" 2>/dev/null; do
        if (( $(date +%s%N) > deadline )); then echo "not ready within 10 s" >&2; kill "$pid"; exit 1; fi
    done
    end=$(date +%s%N)
    kill -TERM "$pid"; wait "$pid" || true
    echo $(( (end - start) / 1000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

first=(); again=()
for _ in $(seq 1 "$runs"); do
    dir=$(mktemp -d)
    first+=("$(measure "$dir")")
    again+=("$(measure "$dir")")
    rm -rf "$dir"
done
echo "first start (µs): ${first[*]}"
echo "restart     (µs): ${again[*]}"
echo "median first start: $(printf '%s\n' "${first[@]}" | median) ms"
echo "median restart:     $(printf '%s\n' "${again[@]}" | median) ms"
