#!/usr/bin/env bash
# Runs schemathesis (pinned, from PyPI, in a virtualenv under target/)
# against /openapi.json of a real Drawbridge: the public endpoints and the
# admin API (with the admin token), checking that nothing answers 5xx and
# every response matches the documented schema.
#
# Usage: scripts/dev/schemathesis.sh [--help]   (SCHEMATHESIS_EXAMPLES sets examples per operation, default 25)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,7p' "$0"; exit 0
fi
venv=target/schemathesis-venv
if [[ ! -x "$venv/bin/schemathesis" ]] || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q 4.32.5; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis==4.32.5
fi

cargo build --quiet
work=$(mktemp -d)
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source scripts/dev/lib.sh
port=$(free_port)
token="schemathesis-admin-token-0123456789"
(cd "$work" && exec env -i PATH="$PATH" MCP_PORT="$port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY RATE_LIMIT_ENABLED=false \
    MAX_PROXY_CLIENTS=100000 DRAWBRIDGE_ADMIN_TOKEN="$token" "$OLDPWD/target/debug/drawbridge") >"$work/drawbridge.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done

"$venv/bin/schemathesis" run "$base/openapi.json" --url "$base" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" --generation-deterministic \
    -H "Authorization: Bearer $token" --request-timeout 10 --no-color
