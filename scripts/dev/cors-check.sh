#!/usr/bin/env bash
# A browser-based MCP client on another origin: headless Chromium loads a
# page from a second local server whose script calls Drawbridge with fetch —
# discovery, registration, a token exchange (its RFC 6749 error must be
# readable), the gateway's 401 challenge — and checks that the admin API is
# not readable cross-origin.
#
# Usage: scripts/dev/cors-check.sh [--help]
# Installs Debian's chromium package when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,9p' "$0"; exit 0
fi
source scripts/dev/lib.sh
require_package chromium chromium "the browser CORS check"

cargo build --quiet
with_scratch
port=$(free_port)
page_port=$(free_port)
(cd "$work" && exec env -i PATH="$PATH" MCP_PORT="$port" CREDENTIAL_STORAGE_MODE=MEMORY_ONLY \
    UPSTREAM_PROVIDER=dev DRAWBRIDGE_ADMIN_TOKEN=cors-check-admin-token-0123456789 \
    "$OLDPWD/target/debug/drawbridge") >"$work/drawbridge.log" 2>&1 &
pids+=($!)
mkdir -p "$work/site"
cat >"$work/site/index.html" <<HTML
<!doctype html><meta charset="utf-8"><title>cors check</title><pre id="out">running</pre>
<script>
const base = "http://127.0.0.1:$port";
const redirect = "http://127.0.0.1:$page_port/callback";
const out = [];
(async () => {
  try {
    const as = await (await fetch(base + "/.well-known/oauth-authorization-server")).json();
    out.push("discovery:" + (as.issuer === base));
    const reg = await fetch(as.registration_endpoint, {method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({client_name: "browser", redirect_uris: [redirect], token_endpoint_auth_method: "none"})});
    const client = await reg.json();
    out.push("registration:" + reg.status + ":" + String(client.client_id).startsWith("mcp_"));
    const tok = await fetch(as.token_endpoint, {method: "POST",
      headers: {"content-type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams({grant_type: "authorization_code", code: "mcp_code_never_issued",
        client_id: client.client_id, redirect_uri: redirect, code_verifier: "x".repeat(43)})});
    out.push("token:" + tok.status + ":" + (await tok.json()).error);
    const mcp = await fetch(base + "/mcp", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "initialize"})});
    out.push("mcp:" + mcp.status + ":" + String(mcp.headers.get("www-authenticate")).startsWith("Bearer resource_metadata="));
    try {
      await fetch(base + "/admin/v1/clients", {headers: {authorization: "Bearer cors-check-admin-token-0123456789"}});
      out.push("admin:readable");
    } catch (e) { out.push("admin:blocked"); }
  } catch (e) { out.push("error:" + e); }
  document.getElementById("out").textContent = out.join(" ");
})();
</script>
HTML
(cd "$work/site" && exec python3 -m http.server "$page_port" --bind 127.0.0.1) >"$work/site.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 \
        && curl -sf "http://127.0.0.1:$page_port/index.html" >/dev/null 2>&1 && break
    sleep 0.1
done

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --virtual-time-budget=10000 --dump-dom \
    "http://127.0.0.1:$page_port/index.html" >"$work/dom.html" 2>>"$work/chromium.log"
result=$(sed -n 's:.*<pre id="out">\(.*\)</pre>.*:\1:p' "$work/dom.html")
expected="discovery:true registration:201:true token:400:invalid_grant mcp:401:true admin:blocked"
if [[ "$result" != "$expected" ]]; then
    echo "cors check: the page saw: ${result:-nothing}" >&2
    echo "expected:                 $expected" >&2
    exit 1
fi
echo "cors check: a page on another origin ran discovery, registration, a token exchange and the gateway challenge with fetch; the admin API stayed unreadable"
