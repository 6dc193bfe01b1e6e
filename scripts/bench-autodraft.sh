#!/usr/bin/env bash
# Auto-draft with the built-in drafter against the Google sandbox, release
# build: drafts per second, delivery-to-draft latency p50/p99, Gmail quota
# units per drafted message and resident memory per enabled mailbox. Push
# mode on SQLite and PostgreSQL, then poll mode (MAILWRIGHT_AUTODRAFT_POLL_SECONDS,
# default 60) on SQLite and PostgreSQL.
#   scripts/bench-autodraft.sh [MAILBOXES] [MESSAGES] [BURST] [WORKERS] [POLL_MESSAGES]
# Set SKIP_POLL=1 to run push mode only.
set -euo pipefail
cd "$(dirname "$0")/.."
mailboxes="${1:-1000}"; messages="${2:-20000}"; burst="${3:-1000}"; workers="${4:-4}"
poll_messages="${5:-5000}"
postgres="${MAILWRIGHT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release --quiet -p mailwright --example bench_autodraft
bench=target/release/examples/bench_autodraft
env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn "$bench" "$mailboxes" "$messages" "$burst" "$workers" push
MAILWRIGHT_TEST_POSTGRES_URL="$postgres" RUST_LOG=warn "$bench" "$mailboxes" "$messages" "$burst" "$workers" push
if [ "${SKIP_POLL:-0}" != 1 ]; then
    env -u MAILWRIGHT_TEST_POSTGRES_URL RUST_LOG=warn "$bench" "$mailboxes" "$poll_messages" "$burst" "$workers" poll
    MAILWRIGHT_TEST_POSTGRES_URL="$postgres" RUST_LOG=warn "$bench" "$mailboxes" "$poll_messages" "$burst" "$workers" poll
fi
