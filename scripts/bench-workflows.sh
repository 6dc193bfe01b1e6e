#!/usr/bin/env bash
# Workflow executions per second (one gmail.send_email step, wait=false,
# queue drained by in-process workers) against the Google sandbox, release
# build, on SQLite and PostgreSQL: first as fast as the clients are answered
# (throughput), then offered at RATE executions per second (the latency of a
# run at that load, not behind a backlog).
#   scripts/bench-workflows.sh [RUNS] [CONCURRENCY] [WORKERS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2000}"; concurrency="${2:-32}"; workers="${3:-8}"; rate="${4:-500}"
cargo build --release --quiet -p mailwright --example bench_workflows
bench=target/release/examples/bench_workflows
postgres="${MAILWRIGHT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Unquoted $pace on purpose: the first round passes no rate at all.
for pace in "" "$rate"; do
    env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn "$bench" "$runs" "$concurrency" "$workers" $pace
    MAILWRIGHT_TEST_POSTGRES_URL="$postgres" RUST_LOG=warn "$bench" "$runs" "$concurrency" "$workers" $pace
done
