#!/usr/bin/env bash
# Runs the documentation's tested blocks (README.md and docs/*.md), verbatim,
# against a fresh server built from this tree, and checks what they printed.
# Usage: scripts/dev/readme-walkthrough.sh   (needs curl and python3)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,4p' "$0"; exit 0
fi

source scripts/dev/lib.sh
require_package curl curl "the documentation walk-through"
cargo build --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# The walk-through expects the default port; use it unless it is taken.
(cd "$work" && exec env -i PATH="$PATH" "$OLDPWD/target/debug/drawbridge") >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:8002/health/ready >/dev/null 2>&1 && break
    sleep 0.1
done

# The shell block between <!-- NAME:start --> and <!-- NAME:end -->, in
# whichever of README.md and docs/*.md holds it (exactly one must).
block() {
    local files
    mapfile -t files < <(grep -l -- "<!-- $1:start -->" README.md docs/*.md)
    if [[ ${#files[@]} -ne 1 ]]; then
        echo "the tested block '$1' must be in exactly one of README.md, docs/*.md (found: ${files[*]:-none})" >&2
        return 1
    fi
    sed -n "/<!-- $1:start -->/,/<!-- $1:end -->/p" "${files[0]}" | sed '1,2d;$d' | sed '$d'
}

block walkthrough >"$work/walkthrough.sh"
out=$(bash -e "$work/walkthrough.sh")
echo "$out"

expect() { grep -q -- "$1" <<<"$out" || { echo "walk-through output lacks: $1" >&2; exit 1; }; }
expect '"registration_endpoint":"http://127.0.0.1:8002/oauth/register"'
expect '"client_id":"mcp_'
expect 'MCP Inspector (renamed)'
expect '^204$'
expect '"error":"invalid_token"'
expect '^401$'
expect '"status":"healthy"'

# The demo sign-in, verbatim, against the same server.
demo=$(bash scripts/demo-flow.sh)
grep -q '"active": true' <<<"$demo" || { echo "demo-flow.sh did not show an active token:" >&2; echo "$demo" >&2; exit 1; }
grep -q '"access_token": "mcp_at_' <<<"$demo" || { echo "demo-flow.sh printed no access token" >&2; exit 1; }
echo "demo-flow.sh: ok"

# The admin walk-through, verbatim, from the server's directory (where the
# admin token file is), with this repository's scripts.
block admin | sed "s|scripts/|$PWD/scripts/|g" >"$work/admin.sh"
admin=$(cd "$work" && bash -e "$work/admin.sh")
echo "$admin"
grep -q '^revoked mcp_' <<<"$admin" || { echo "the admin walk-through revoked no client" >&2; exit 1; }
grep -q '^revoked demo@drawbridge.invalid' <<<"$admin" || { echo "the admin walk-through revoked no user" >&2; exit 1; }
grep -q '"storage_mode":"FILE_ENCRYPTED"' <<<"$admin" || { echo "no stats from the admin walk-through" >&2; exit 1; }
grep -qE '^[0-9-]+ [0-9:]+  registered +ok' <<<"$admin" || { echo "the admin walk-through printed no client timeline" >&2; exit 1; }
echo "admin walk-through: ok"

# Then the storage commands, with the service stopped, on the same data.
curl -sf -X POST http://127.0.0.1:8002/oauth/register -H 'Content-Type: application/json' \
    -d '{"redirect_uris": ["https://app.example/cb"]}' >/dev/null
kill "$pid"; wait "$pid" || true
block storage | sed "s|cargo run -q --|$PWD/target/debug/drawbridge|" >"$work/storage.sh"
storage=$(cd "$work" && env -i PATH="$PATH" bash -e "$work/storage.sh")
echo "$storage"
grep -q "retired keys: " <<<"$storage" || { echo "rotate-key printed no report" >&2; exit 1; }
[[ $(grep -c "total: .* 0 unreadable" <<<"$storage") == 3 ]] || { echo "migrations did not all report" >&2; exit 1; }
grep -qE "total: 0 migrated, [1-9][0-9]* skipped" <<<"$storage" || { echo "the second migration was not idempotent" >&2; exit 1; }
echo "documentation walk-throughs: ok"
