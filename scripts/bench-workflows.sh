#!/usr/bin/env bash
# Workflow executions per second (one gmail.send_email step, wait=false,
# queue drained by in-process workers) against the Google sandbox, release
# build, on SQLite and PostgreSQL.   scripts/bench-workflows.sh [RUNS] [CONCURRENCY] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2000}"; concurrency="${2:-32}"; workers="${3:-8}"
cargo build --release --quiet -p mailwright --example bench_workflows
env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn target/release/examples/bench_workflows "$runs" "$concurrency" "$workers"
MAILWRIGHT_TEST_POSTGRES_URL="${MAILWRIGHT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" RUST_LOG=warn \
    target/release/examples/bench_workflows "$runs" "$concurrency" "$workers"
