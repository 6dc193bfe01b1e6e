#!/usr/bin/env bash
# Authenticated GET /api/me, release build, with an API key and with a JWT
# (RS256, verified against a local JWKS), on SQLite and on PostgreSQL:
# requests per second and latency percentiles from wrk on this machine.
#   scripts/bench-me.sh [SECONDS] [CONNECTIONS]
# BENCH_SERVER=path runs that build of bench_server instead of building one
# (to compare two commits' binaries in the same minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
server="${BENCH_SERVER:-target/release/examples/bench_server}"
[ -n "${BENCH_SERVER:-}" ] || cargo build --release --quiet -p mailwright --example bench_server
pg_url="${MAILWRIGHT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

run() { # backend
    local backend="$1" handshake pid
    handshake=$(mktemp)
    rm -f "$handshake"
    if [ "$backend" = postgres ]; then
        MAILWRIGHT_TEST_POSTGRES_URL="$pg_url" "$server" "$handshake" >/dev/null &
    else
        env -u MAILWRIGHT_TEST_POSTGRES_URL "$server" "$handshake" >/dev/null &
    fi
    pid=$!
    for _ in $(seq 1 300); do [ -s "$handshake" ] && break; sleep 0.1; done
    read -r address key jwt < "$handshake"
    for credential in api_key jwt; do
        token=$key; [ "$credential" = jwt ] && token=$jwt
        # Warm up (JWKS fetch, first-sight user creation, connection pools).
        wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "http://$address/api/me" >/dev/null
        out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $token" "http://$address/api/me")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p50=$(awk '$1=="50%" {print $2}' <<<"$out")
        p99=$(awk '$1=="99%" {print $2}' <<<"$out")
        errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
        printf '%-9s %-8s %10s req/s   p50 %8s   p99 %8s   %s\n' "$backend" "$credential" "$rps" "$p50" "$p99" "$errors"
    done
    kill -INT "$pid"; wait "$pid" || true
    rm -f "$handshake"
}

echo "GET /api/me, wrk -t2 -c$connections -d${seconds}s, release build"
run sqlite
run postgres
