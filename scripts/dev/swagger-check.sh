#!/usr/bin/env bash
# Loads Swagger UI (/swagger-ui/) in headless Chromium against a real
# Drawbridge and checks that the rendered page lists the admin operations;
# leaves a screenshot in target/swagger-ui.png.
#
# Usage: scripts/dev/swagger-check.sh [--help]
# Installs Debian's chromium package when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,7p' "$0"; exit 0
fi
source scripts/dev/lib.sh
require_package chromium chromium "the Swagger UI check"

cargo build --quiet
work=$(mktemp -d)
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port=$(free_port)
(cd "$work" && exec env -i PATH="$PATH" MCP_PORT="$port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY \
    "$OLDPWD/target/debug/drawbridge") >"$work/drawbridge.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done

browser() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile" --virtual-time-budget=15000 --window-size=1280,2400 "$@" \
        "http://127.0.0.1:$port/swagger-ui/" 2>>"$work/chromium.log"
}
browser --dump-dom >"$work/dom.html"
mkdir -p target
browser --screenshot="$PWD/target/swagger-ui.png" >/dev/null || true

missing=0
for needle in "/admin/v1/clients" "/admin/v1/users/{email}" "/admin/v1/tokens/revoke" "/admin/v1/keys/rotate" "/oauth/register" "/oauth/token"; do
    grep -qF "$needle" "$work/dom.html" || { echo "Swagger UI does not show $needle" >&2; missing=1; }
done
if [[ $missing == 1 ]]; then
    echo "--- rendered DOM (first lines) ---" >&2; head -c 2000 "$work/dom.html" >&2; exit 1
fi
echo "swagger check: $(grep -o 'opblock-summary-path' "$work/dom.html" | wc -l) operations rendered by Swagger UI in headless Chromium"
