#!/usr/bin/env bash
# Fuzz the HTTP API from its own OpenAPI document with schemathesis (pinned in
# scripts/install-test-tools.sh): a real `mailwright serve` on a fresh SQLite
# data dir, an API key made by `mailwright admin`, and a bounded number of
# generated requests per operation. Fails on any 5xx, and on any answer whose
# status, content type, headers or body the document does not describe.
#
#   scripts/schemathesis.sh                 # what .ci/run does
#   SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_SEED=$RANDOM scripts/schemathesis.sh
#
# Extra arguments go to `schemathesis run` (e.g. --include-path /api/me).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
# A fixed seed: CI runs the same cases every time; change it to explore.
SEED="${SCHEMATHESIS_SEED:-20240611}"
BIN="${MAILWRIGHT_BIN:-target/debug/mailwright}"

if ! python3 -c 'import schemathesis' 2>/dev/null; then
    echo "schemathesis is not installed: run scripts/install-test-tools.sh" >&2
    exit 1
fi
if [ -z "${MAILWRIGHT_BIN:-}" ]; then
    cargo build --quiet -p mailwright --bin mailwright
fi

started=$SECONDS
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

push_token="push-$RANDOM$RANDOM$RANDOM$RANDOM"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# Only these settings, whatever the caller's environment holds. A Google
# client and a Microsoft app are configured (never contacted: no test gets as
# far as Google or Microsoft), so that connecting answers with a consent URL
# rather than 503 "not configured".
mw() {
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        MAILWRIGHT_DATA_DIR="$work/data" \
        MAILWRIGHT_LISTEN="127.0.0.1:$port" \
        MAILWRIGHT_LOG_FORMAT=json \
        RUST_LOG=warn \
        MAILWRIGHT_GOOGLE_CLIENT_ID=schemathesis-client-id \
        MAILWRIGHT_GOOGLE_CLIENT_SECRET=schemathesis-client-secret \
        MAILWRIGHT_GOOGLE_AUTH_URL=http://127.0.0.1:9/o/oauth2/v2/auth \
        MAILWRIGHT_GOOGLE_TOKEN_URL=http://127.0.0.1:9/token \
        MAILWRIGHT_GOOGLE_REVOKE_URL=http://127.0.0.1:9/revoke \
        MAILWRIGHT_GOOGLE_USERINFO_URL=http://127.0.0.1:9/v1/userinfo \
        MAILWRIGHT_GMAIL_API_URL=http://127.0.0.1:9 \
        MAILWRIGHT_MICROSOFT_CLIENT_ID=schemathesis-microsoft-app \
        MAILWRIGHT_MICROSOFT_CLIENT_SECRET=schemathesis-microsoft-secret \
        MAILWRIGHT_MICROSOFT_AUTH_URL=http://127.0.0.1:9/common/oauth2/v2.0/authorize \
        MAILWRIGHT_MICROSOFT_TOKEN_URL=http://127.0.0.1:9/common/oauth2/v2.0/token \
        MAILWRIGHT_GRAPH_API_URL=http://127.0.0.1:9 \
        MAILWRIGHT_PUSH_TOKEN="$push_token" \
        "$BIN" "$@"
}

mw migrate >/dev/null
printf 'schemathesis-password-%s\n' "$RANDOM$RANDOM" |
    mw admin create-user --email fuzz@example.com --password-stdin --workspace fuzz >/dev/null
key="$(mw admin create-api-key --workspace fuzz --name schemathesis)"

mw serve >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/api/ready" >/dev/null 2>&1 && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "mailwright serve exited:" >&2
        cat "$work/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/api/ready" >/dev/null

# Something to list, so list answers are checked with real items in them;
# a webhook workflow, whose id and token the fuzzer is given (it cannot guess
# them), as it is given the push token.
webhook_url="$(curl -fsS -X POST "$base/api/workflows" \
    -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"name":"Fuzz","trigger":{"type":"webhook"},"steps":[{"action":"email.send_system","to":["ops@example.com"],"subject":"Hi {{ input.name }}","body":"b"}]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["webhook_url"])')"
webhook_id="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).path.rsplit("/", 1)[1])' "$webhook_url")"
webhook_token="$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["token"][0])' "$webhook_url")"
cat >"$work/schemathesis.toml" <<TOML
# Nothing kept between runs (and nothing written into the work tree).
cache = { enabled = false }

[dictionaries]
push-token = { values = ["$push_token"] }
webhook-id = { values = ["$webhook_id"] }
webhook-token = { values = ["$webhook_token"] }

[[operations]]
include-path = "/api/push/gmail"
parameters = { "query.token" = { dictionary = "push-token", probability = 0.9 } }

[[operations]]
include-path = "/api/hooks/{workflow_id}"
parameters = { "path.workflow_id" = { dictionary = "webhook-id", probability = 0.9 }, "query.token" = { dictionary = "webhook-token", probability = 0.9 } }
TOML

status=0
python3 -m schemathesis.cli --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 40 \
    --generation-with-security-parameters false \
    --generation-database none \
    --no-color \
    "$@" || status=$?

if grep -q '"level":"ERROR"' "$work/serve.log"; then
    echo "mailwright logged errors during the run:" >&2
    grep '"level":"ERROR"' "$work/serve.log" | head -n 20 >&2
    status=1
fi
echo "schemathesis.sh: $((SECONDS - started)) s (max examples $MAX_EXAMPLES, seed $SEED), exit $status"
exit "$status"
