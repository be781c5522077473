#!/usr/bin/env bash
# Drawbridge behind Debian's nginx, configured with scripts/deploy/nginx.conf
# itself (rendered for test ports and a test certificate, nothing else
# changed) and rate_limit.trusted_proxies = 127.0.0.1. Clients connect from
# other loopback addresses (127.0.0.2, 127.0.0.3, ...) and the check proves:
#   - audit records and rate limits see the real client, not nginx;
#   - a forged X-Forwarded-For (to nginx, or straight to Drawbridge from an
#     untrusted address) never becomes the client's address;
#   - Server-Sent Events from an MCP server reach the client through the
#     gateway and nginx event by event;
#   - the demo sign-in (scripts/demo-flow.sh) works through nginx over https.
#
# Usage: scripts/dev/nginx-check.sh [--help]   prints `nginx: N passed, M failed`
# Installs Debian's nginx and openssl when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,14p' "$0"; exit 0
fi
export PATH="$PATH:/usr/sbin:/sbin"   # nginx lives in /usr/sbin
source scripts/dev/lib.sh
require_package nginx nginx "the nginx check"
require_package openssl openssl "the nginx check"
require_package curl curl "the nginx check"

cargo build --quiet
bin="$PWD/target/debug/drawbridge"
with_scratch
app_port=$(free_port); https_port=$(free_port); http_port=$(free_port); mcp_port=$(free_port)
public="https://127.0.0.1:$https_port"
direct="http://127.0.0.1:$app_port"
ca="$work/tls/cert.pem"
forged=203.0.113.9

passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
wait_for() { for _ in $(seq 1 150); do curl -s -o /dev/null --cacert "$ca" "$1" && return 0; sleep 0.1; done; echo "nginx check: $1 never came up" >&2; return 1; }

# A certificate for 127.0.0.1, trusted by the clients below.
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$work/tls/key.pem" -out "$ca" 2>"$work/openssl.log"

# The shipped config with the test's ports, certificate and paths. Anything
# left of the production values means the file changed shape: then fail
# rather than test something else.
mkdir -p "$work/nginx/conf.d" "$work/nginx/tmp" "$work/acme"
sed -e "s#/etc/letsencrypt/live/mcp.example.com/fullchain.pem#$ca#" \
    -e "s#/etc/letsencrypt/live/mcp.example.com/privkey.pem#$work/tls/key.pem#" \
    -e "s#root /var/www/letsencrypt;#root $work/acme;#" \
    -e "s/server_name mcp\.example\.com;/server_name 127.0.0.1;/" \
    -e "s/server 127\.0\.0\.1:8002;/server 127.0.0.1:$app_port;/" \
    -e "s/^\( *\)listen 80;/\1listen 127.0.0.1:$http_port;/" \
    -e "s/^\( *\)listen 443 ssl/\1listen 127.0.0.1:$https_port ssl/" \
    -e '/^ *listen \[::\]:/d' \
    scripts/deploy/nginx.conf >"$work/nginx/conf.d/drawbridge.conf"
if grep -vE '^ *#' "$work/nginx/conf.d/drawbridge.conf" | grep -nE 'example\.com|letsencrypt|:8002|listen (80|443)\b'; then
    echo "nginx check: scripts/deploy/nginx.conf no longer renders for the test (lines above); update the sed in $0" >&2
    exit 1
fi
# The http block of Debian's /etc/nginx/nginx.conf, with the scratch paths.
cat >"$work/nginx/nginx.conf" <<CONF
user $(id -un) $(id -gn);
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log info;
events { worker_connections 256; }
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_prefer_server_ciphers on;
    access_log $work/nginx/access.log;
    gzip on;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    include $work/nginx/conf.d/*.conf;
}
CONF
nginx_cmd=(nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log")
if "${nginx_cmd[@]}" -t >"$work/nginx-t.log" 2>&1; then
    ok "nginx -t accepts scripts/deploy/nginx.conf"
else
    bad "nginx -t accepts scripts/deploy/nginx.conf"; cat "$work/nginx-t.log"
    echo "nginx: $passed passed, $failed failed"; exit 1
fi
"${nginx_cmd[@]}" -g 'daemon off;' >"$work/nginx.out" 2>&1 &
pids+=($!)

# An MCP server whose every POST is answered with three Server-Sent Events,
# one second apart; it writes down the X-Forwarded-For it was sent.
cat >"$work/sse-server.py" <<'PY'
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with open(sys.argv[2], "a") as seen:
            seen.write(json.dumps({"x-forwarded-for": self.headers.get("x-forwarded-for")}) + "\n")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
        for n in range(1, 4):
            if n > 1:
                time.sleep(1)
            event = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": n}}
            self.wfile.write(f"event: message\nid: {n}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
python3 "$work/sse-server.py" "$mcp_port" "$work/mcp-seen.jsonl" >"$work/mcp.log" 2>&1 &
pids+=($!)

# Drawbridge on the embedded defaults (dev provider), behind nginx. The dev
# provider's token, userinfo and revocation endpoints are called by
# Drawbridge itself: straight, not through nginx's test certificate.
(cd "$work" && exec env -i PATH="$PATH" MCP_HOST=127.0.0.1 MCP_PORT="$app_port" \
    BASE_URL="$public" DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES=127.0.0.1 \
    MAX_REGISTRATIONS_PER_MINUTE=3 CREDENTIAL_STORAGE_MODE=MEMORY_ONLY UPSTREAM_PROVIDER=dev \
    DRAWBRIDGE_UPSTREAM__TOKEN_URI="$direct/dev/token" \
    DRAWBRIDGE_UPSTREAM__USERINFO_URI="$direct/dev/userinfo" \
    DRAWBRIDGE_UPSTREAM__REVOCATION_URI="$direct/dev/revoke" \
    GATEWAY_UPSTREAM_URL="http://127.0.0.1:$mcp_port/mcp" LOG_FORMAT=json \
    "$bin") >"$work/drawbridge.log" 2>&1 &
pids+=($!)
wait_for "$direct/health/ready"
wait_for "$public/health/ready"

# register FROM URL [curl options]: registers a client from source address
# FROM; prints the status, the body goes to $work/reg.json.
register() {
    local from=$1 url=$2; shift 2
    : >"$work/reg.json"
    curl -s --interface "$from" --cacert "$ca" -o "$work/reg.json" -w '%{http_code}' \
        -X POST "$url/oauth/register" -H 'content-type: application/json' \
        -d '{"client_name": "nginx check", "redirect_uris": ["http://127.0.0.1:9/callback"]}' "$@"
}
client_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("client_id", ""))' "$work/reg.json" 2>/dev/null; }
# audit_ip CLIENT_ID: the `ip` of the client_registered audit record of CLIENT_ID.
audit_ip() {
    for _ in $(seq 1 20); do
        ip=$(python3 - "$work/drawbridge.log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("target") == "audit" and r.get("event_type") == "client_registered" and r.get("client_id") == sys.argv[2]:
        print(r.get("ip")); break
PY
)
        [[ -n "$ip" ]] && { echo "$ip"; return; }
        sleep 0.1
    done
}
# expect WHAT GOT WANT
expect() { if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1 (got ${2:-nothing}, want $3)"; fi; }

echo "-- client addresses and rate limits through nginx (registrations: 3 a minute per address)"
status=$(register 127.0.0.2 "$public" -H "X-Forwarded-For: $forged" -H "Forwarded: for=$forged"); id=$(client_id)
expect "127.0.0.2 registers through nginx, forging X-Forwarded-For and Forwarded" "$status" 201
expect "its audit record carries 127.0.0.2, not nginx's 127.0.0.1 nor the forged $forged" "$(audit_ip "$id")" 127.0.0.2
status=$(register 127.0.0.2 "$public"); id=$(client_id)
expect "127.0.0.2 registers through nginx (2nd)" "$status" 201
expect "its audit record carries 127.0.0.2" "$(audit_ip "$id")" 127.0.0.2
status=$(register 127.0.0.2 "$public")
expect "127.0.0.2 registers through nginx (3rd)" "$status" 201
status=$(register 127.0.0.2 "$public")
expect "127.0.0.2's 4th registration through nginx is over its limit" "$status" 429
check "the 429 is Drawbridge's rate limit (temporarily_unavailable)" grep -q temporarily_unavailable "$work/reg.json"
status=$(register 127.0.0.2 "$public" -H "X-Forwarded-For: $forged")
expect "a forged X-Forwarded-For through nginx does not escape 127.0.0.2's limit" "$status" 429
status=$(register 127.0.0.3 "$public"); id=$(client_id)
expect "127.0.0.3 still registers through nginx (its own limit)" "$status" 201
expect "its audit record carries 127.0.0.3" "$(audit_ip "$id")" 127.0.0.3

echo "-- forged X-Forwarded-For straight to Drawbridge (from addresses it does not trust)"
status=$(register 127.0.0.2 "$direct" -H "X-Forwarded-For: $forged")
expect "127.0.0.2 straight to Drawbridge claiming to be $forged still counts as 127.0.0.2 (over its limit)" "$status" 429
status=$(register 127.0.0.4 "$direct" -H "X-Forwarded-For: $forged"); id=$(client_id)
expect "127.0.0.4 registers straight to Drawbridge, forging X-Forwarded-For" "$status" 201
expect "its audit record carries 127.0.0.4, not $forged" "$(audit_ip "$id")" 127.0.0.4
check "no audit record anywhere carries the forged $forged" python3 - "$work/drawbridge.log" "$forged" <<'PY'
import json, sys
records = []
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("target") == "audit":
        records.append(line)
sys.exit(not records or any(sys.argv[2] in line for line in records))
PY

echo "-- the demo sign-in through nginx (https, the test certificate trusted)"
if DRAWBRIDGE_URL="$public" CURL_CA_BUNDLE="$ca" bash scripts/demo-flow.sh >"$work/demo.out" 2>&1; then
    ok "scripts/demo-flow.sh signs in through nginx"
else
    bad "scripts/demo-flow.sh signs in through nginx"; tail -5 "$work/demo.out"
fi
token=$(sed -n 's/.*"access_token": "\([^"]*\)".*/\1/p' "$work/demo.out" | head -1)

# sse FROM URL: posts an MCP request with the demo user's token from FROM;
# prints the status, the content type and the seconds at which each event
# arrived, counted from the request.
sse() {
    python3 - "$1" "$2" "$ca" "$token" "$forged" <<'PY'
import http.client, json, ssl, sys, time, urllib.parse
source, url, ca, token, forged = sys.argv[1:]
u = urllib.parse.urlsplit(url)
if u.scheme == "https":
    conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=10, source_address=(source, 0),
                                       context=ssl.create_default_context(cafile=ca))
else:
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10, source_address=(source, 0))
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}})
start = time.monotonic()
conn.request("POST", u.path, body, {"authorization": "Bearer " + token, "content-type": "application/json",
                                    "accept": "application/json, text/event-stream", "x-forwarded-for": forged})
answer = conn.getresponse()
times = []
while True:
    line = answer.readline()
    if not line:
        break
    if line.startswith(b"data:"):
        times.append(round(time.monotonic() - start, 2))
print(answer.status, answer.getheader("content-type", "").split(";")[0], *times)
PY
}
# sse_h2 FROM: the same through nginx with curl over HTTP/2 (as browsers
# connect); the HTTP version curl used goes to $work/h2-version.
sse_h2() {
    local start
    start=$(date +%s.%N)
    curl -sN --http2 --interface "$1" --cacert "$ca" -X POST "$public/mcp" \
        -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -H 'accept: application/json, text/event-stream' \
        -d '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow"}}' \
        -w '\n%{http_code} %{content_type} %{http_version}\n' | python3 -c '
import sys, time
start = float(sys.argv[2])
times, last = [], []
for line in sys.stdin:
    if line.startswith("data:"):
        times.append(round(time.time() - start, 2))
    elif line.strip():
        last = line.split()
status, ctype, version = (last + ["", "", ""])[:3]
open(sys.argv[1], "w").write(version)
print(status, ctype.split(";")[0], *times)
' "$work/h2-version" "$start"
}
# streams WHAT RESULT: three events, the first within 0.8 s, the last after 1.8 s.
streams() {
    local what=$1 status type first second third
    read -r status type first second third <<<"$2"
    if [[ "$status" == 200 && "$type" == text/event-stream && -n "$third" ]] \
        && python3 -c 'import sys; f, l = map(float, sys.argv[1:]); sys.exit(not (f < 0.8 and l >= 1.8))' "$first" "$third"; then
        ok "$what (events at $first s, $second s, $third s)"
    else
        bad "$what (got: $2; want 200 text/event-stream, 3 events, the first < 0.8 s, the last >= 1.8 s)"
    fi
}

echo "-- Server-Sent Events through the gateway (an MCP server sends 3 events 1 s apart)"
if [[ -z "$token" ]]; then
    bad "SSE checks: no access token from the demo sign-in"
else
    streams "straight from Drawbridge, event by event" "$(sse 127.0.0.2 "$direct/mcp")"
    : >"$work/mcp-seen.jsonl"
    streams "through nginx, event by event" "$(sse 127.0.0.2 "$public/mcp")"
    streams "through nginx over HTTP/2, event by event" "$(sse_h2 127.0.0.3)"
    expect "that client spoke HTTP/2 to nginx" "$(cat "$work/h2-version" 2>/dev/null)" 2
    expect "the MCP server is told X-Forwarded-For: the client, then nginx (the forged one dropped)" \
        "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["x-forwarded-for"])' "$work/mcp-seen.jsonl" 2>/dev/null)" \
        "127.0.0.2, 127.0.0.1"
fi

echo "-- the rest of the shipped config"
expect "plain HTTP redirects to https" \
    "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$http_port/.well-known/oauth-authorization-server" | cut -c1-12)" \
    "301 https://"
check "https answers carry Strict-Transport-Security" \
    bash -c "curl -s -D - -o /dev/null --cacert '$ca' '$public/health/ready' | grep -qi '^strict-transport-security: max-age='"
expect "/metrics is not published on the public name" \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "$public/metrics")" 403
expect "an OAuth request body over 64 KiB is refused by nginx" \
    "$(head -c 70000 /dev/zero | tr '\0' a | curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -X POST "$public/oauth/register" -H 'content-type: application/json' --data-binary @-)" 413

if [[ $failed != 0 ]]; then
    echo "--- drawbridge log (warnings and errors) ---"; grep -E '"level":(40|50)' "$work/drawbridge.log" | tail -20 || true
    echo "--- nginx error log ---"; grep -vE '\[(info|notice)\]' "$work/nginx/error.log" | tail -20 || true
fi
echo "nginx: $passed passed, $failed failed"
[[ $failed == 0 ]]
