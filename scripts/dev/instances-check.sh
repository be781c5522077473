#!/usr/bin/env bash
# Three Drawbridge instances on one PostgreSQL database behind Debian's
# nginx, configured with scripts/deploy/nginx-instances.conf itself
# (rendered for test ports and a test certificate, nothing else changed).
# The instances share one fresh database, one key (AUTH_ENCRYPTION_KEY) and
# one BASE_URL (nginx's), with the dev identity provider; the check proves:
#   - the demo sign-in (scripts/demo-flow.sh) works through nginx, requests
#     reach all three instances, and the dev provider's code issued by one
#     instance is redeemed at another;
#   - the gateway and introspection answer on every instance;
#   - with one instance killed (SIGKILL, the janitor's lease holder), of
#     requests in flight there the GET is passed on to another instance and
#     the POST fails with 502 (nginx does not resend it); afterwards every
#     request, sign-in included, is served by the other two, and another
#     instance takes the janitor's lease within storage.lease_seconds;
#   - with PostgreSQL stopped, answers are 503 temporarily_unavailable with
#     Retry-After, passed on by nginx; started again, the instances answer
#     again without a restart.
#
# Usage: scripts/dev/instances-check.sh [--help]   prints `instances: N passed, M failed`
# Installs Debian's nginx, openssl and PostgreSQL 15 when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,21p' "$0"; exit 0
fi
export PATH="$PATH:/usr/sbin:/sbin"   # nginx lives in /usr/sbin
source scripts/dev/lib.sh
require_package nginx nginx "the multi-instance check"
require_package openssl openssl "the multi-instance check"
require_package curl curl "the multi-instance check"
source scripts/dev/postgres.sh
start_postgres
if [[ -z "${DRAWBRIDGE_TEST_DATABASE_URL:-}" ]]; then
    exit 0   # start_postgres said why (skipped)
fi

with_scratch
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; stop_postgres; rm -rf "$work"' EXIT
cargo build --quiet
bin="$PWD/target/debug/drawbridge"
ports=("$(free_port)" "$(free_port)" "$(free_port)")
https_port=$(free_port); http_port=$(free_port); inner_port=$(free_port); mcp_port=$(free_port)
public="https://127.0.0.1:$https_port"
inner="http://127.0.0.1:$inner_port"
ca="$work/tls/cert.pem"
key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
introspection_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
database="${DRAWBRIDGE_TEST_DATABASE_URL%/*}/drawbridge_instances"
"$postgres_bin/psql" -q "$DRAWBRIDGE_TEST_DATABASE_URL" -c "CREATE DATABASE drawbridge_instances"

passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
expect() { if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1 (got ${2:-nothing}, want $3)"; fi; }
wait_for() { for _ in $(seq 1 200); do curl -s -o /dev/null --cacert "$ca" "$1" && return 0; sleep 0.1; done; echo "instances check: $1 never came up" >&2; return 1; }

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
    -e "s/server 127\.0\.0\.1:8002 /server 127.0.0.1:${ports[0]} /" \
    -e "s/server 127\.0\.0\.1:8012 /server 127.0.0.1:${ports[1]} /" \
    -e "s/server 127\.0\.0\.1:8022 /server 127.0.0.1:${ports[2]} /" \
    -e "s/^\( *\)listen 80;/\1listen 127.0.0.1:$http_port;/" \
    -e "s/^\( *\)listen 443 ssl/\1listen 127.0.0.1:$https_port ssl/" \
    -e '/^ *listen \[::\]:/d' \
    scripts/deploy/nginx-instances.conf >"$work/nginx/conf.d/drawbridge.conf"
if grep -vE '^ *#' "$work/nginx/conf.d/drawbridge.conf" | grep -nE 'example\.com|letsencrypt|:80[012]2\b|listen (80|443)\b'; then
    echo "instances check: scripts/deploy/nginx-instances.conf no longer renders for the test (lines above); update the sed in $0" >&2
    exit 1
fi
# The http block of Debian's /etc/nginx/nginx.conf, with the scratch paths,
# an access log naming the instance that answered each request, and a
# plain-HTTP listener on loopback through which the instances call the dev
# provider's token, userinfo and revocation endpoints (in production these
# are Google's; here they go through nginx too, to any instance).
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
    log_format instances '\$request_method \$uri \$status \$upstream_addr';
    access_log $work/nginx/access.log instances;
    gzip on;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    include $work/nginx/conf.d/*.conf;
    server {
        listen 127.0.0.1:$inner_port;
        location / {
            proxy_pass http://drawbridge;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
CONF
nginx_cmd=(nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log")
if "${nginx_cmd[@]}" -t >"$work/nginx-t.log" 2>&1; then
    ok "nginx -t accepts scripts/deploy/nginx-instances.conf"
else
    bad "nginx -t accepts scripts/deploy/nginx-instances.conf"; cat "$work/nginx-t.log"
    echo "instances: $passed passed, $failed failed"; exit 1
fi
"${nginx_cmd[@]}" -g 'daemon off;' >"$work/nginx.out" 2>&1 &
pids+=($!)

# An MCP server that answers every request after DELAY seconds (a file,
# read at each request): a POST with a JSON-RPC result, a GET with one
# Server-Sent Event. It writes down each request's method.
echo 0 >"$work/mcp-delay"
cat >"$work/mcp-server.py" <<'PY'
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, ctype, body):
        time.sleep(float(open(sys.argv[2]).read()))
        with open(sys.argv[3], "a") as seen:
            seen.write(self.command + "\n")
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.answer("application/json", json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode())

    def do_GET(self):
        self.answer("text/event-stream", b"event: message\ndata: {}\n\n")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
python3 "$work/mcp-server.py" "$mcp_port" "$work/mcp-delay" "$work/mcp-seen" >"$work/mcp.log" 2>&1 &
pids+=($!)

# The three instances: one database, one key, one public URL (nginx's).
# The schema first, as an operator does before starting new instances.
if (cd "$work" && env -i PATH="$PATH" DRAWBRIDGE_STORAGE__BACKEND=postgres DATABASE_URL="$database" \
    "$bin" migrate-db) >"$work/migrate-db.log" 2>&1; then
    ok "drawbridge migrate-db prepares the fresh database ($(tail -1 "$work/migrate-db.log"))"
else
    bad "drawbridge migrate-db prepares the fresh database"; cat "$work/migrate-db.log"
fi
instance_pids=()
for i in 0 1 2; do
    mkdir -p "$work/i$i"
    (cd "$work/i$i" && exec env -i PATH="$PATH" MCP_HOST=127.0.0.1 MCP_PORT="${ports[$i]}" \
        BASE_URL="$public" DRAWBRIDGE_STORAGE__BACKEND=postgres DATABASE_URL="$database" \
        AUTH_ENCRYPTION_KEY="$key" DRAWBRIDGE_STORAGE__LEASE_SECONDS=3 \
        DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET="$introspection_secret" \
        DRAWBRIDGE_RATE_LIMIT__TRUSTED_PROXIES=127.0.0.1 UPSTREAM_PROVIDER=dev \
        DRAWBRIDGE_UPSTREAM__TOKEN_URI="$inner/dev/token" \
        DRAWBRIDGE_UPSTREAM__USERINFO_URI="$inner/dev/userinfo" \
        DRAWBRIDGE_UPSTREAM__REVOCATION_URI="$inner/dev/revoke" \
        GATEWAY_UPSTREAM_URL="http://127.0.0.1:$mcp_port/mcp" LOG_FORMAT=json \
        "$bin") >"$work/drawbridge-$i.log" 2>&1 &
    pids+=($!); instance_pids+=($!)
done
for i in 0 1 2; do wait_for "http://127.0.0.1:${ports[$i]}/health/ready"; done
wait_for "$public/health/ready"

# requests I: drawbridge_http_requests_total of instance I, all routes.
requests() {
    curl -s "http://127.0.0.1:${ports[$1]}/metrics" | awk '/^drawbridge_http_requests_total\{/ { n += $NF } END { print n + 0 }'
}
metric() { curl -s "http://127.0.0.1:${ports[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# upstream_of METHOD PATH: the instance (port) of the last such request in nginx's log.
upstream_of() { awk -v m="$1" -v p="$2" '$1 == m && $2 == p { u = $4 } END { print u }' "$work/nginx/access.log"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1" 2>/dev/null; }
demo() { DRAWBRIDGE_URL="$public" CURL_CA_BUNDLE="$ca" bash scripts/demo-flow.sh >"$work/$1" 2>&1; }

echo "-- the demo sign-in through nginx, spread over three instances"
before=("$(requests 0)" "$(requests 1)" "$(requests 2)")
: >"$work/nginx/access.log"
if demo demo.out; then
    ok "scripts/demo-flow.sh signs in through nginx"
else
    bad "scripts/demo-flow.sh signs in through nginx"; tail -5 "$work/demo.out"
fi
for i in 0 1 2; do
    after=$(requests "$i")
    check "instance $((i + 1)) served some of it (requests $(( ${before[$i]} )) -> $after)" \
        test "$after" -gt "${before[$i]}"
done
issued=$(upstream_of POST /dev/authorize); redeemed=$(upstream_of POST /dev/token)
check "the dev provider's code issued by one instance ($issued) was redeemed at another ($redeemed)" \
    test -n "$issued" -a -n "$redeemed" -a "$issued" != "$redeemed"
token=$(sed -n 's/.*"access_token": "\(mcp_at_[^"]*\)".*/\1/p' "$work/demo.out" | tail -1)
client_id=$(sed -n 's/^ *client_id: //p' "$work/demo.out")

echo "-- the gateway and introspection (as a resource server) on every instance"
# introspect_status: the status of an introspection of the demo's token;
# the answer goes to $work/introspected.json.
introspect_status() {
    curl -s -m 20 -o "$work/introspected.json" -w '%{http_code}' --cacert "$ca" -X POST "$public/oauth/introspect" \
        -H "authorization: Bearer $introspection_secret" --data-urlencode "token=$token" "$@"
}
introspect() { introspect_status >/dev/null; json_field active <"$work/introspected.json"; }
mcp_post() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -X POST "$public/mcp" \
        -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -H 'accept: application/json, text/event-stream' \
        -d '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
}
mcp_get() {
    curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "$public/mcp" \
        -H "authorization: Bearer $token" -H 'accept: text/event-stream'
}
[[ -n "$token" && -n "$client_id" ]] || bad "the demo printed an access token and a client id"
: >"$work/nginx/access.log"
for n in 1 2 3; do
    expect "introspection through nginx ($n of 3): the token is active" "$(introspect)" True
    expect "an MCP request through the gateway ($n of 3) is forwarded" "$(mcp_post)" 200
done
expect "those six requests were answered by three instances" \
    "$(awk '$2 == "/mcp" || $2 == "/oauth/introspect" { print $4 }' "$work/nginx/access.log" | sort -u | wc -l)" 3

echo "-- one instance killed (SIGKILL) with requests in flight on every instance"
leader=""
for _ in $(seq 1 50); do
    for i in 0 1 2; do [[ "$(metric "$i" drawbridge_janitor_leader)" == 1 ]] && leader=$i; done
    [[ -n "$leader" ]] && break; sleep 0.2
done
check "one instance holds the janitor's lease (instance $((${leader:-9} + 1)))" test -n "$leader"
leader=${leader:-2}
echo 3 >"$work/mcp-delay"
# Three POSTs then three GETs, one after the other: round robin hands each
# instance one of each.
: >"$work/nginx/access.log"; mkdir -p "$work/flight"
for n in 1 2 3; do (mcp_post >"$work/flight/post$n") & sleep 0.2; done
for n in 1 2 3; do (mcp_get >"$work/flight/get$n") & sleep 0.2; done
sleep 0.5
kill -9 "${instance_pids[$leader]}"; wait "${instance_pids[$leader]}" 2>/dev/null || true
survivors=""
for i in 0 1 2; do if [[ $i != "$leader" ]]; then survivors+="$i "; fi; done
# Meanwhile, watch for the instance that takes the janitor's lease over.
(
    start=$(date +%s.%N)
    for _ in $(seq 1 100); do
        for i in $survivors; do
            if [[ "$(metric "$i" drawbridge_janitor_leader)" == 1 ]]; then
                python3 -c 'import sys, time; print(sys.argv[1], round(time.time() - float(sys.argv[2]), 1))' "$i" "$start" >"$work/successor"
                exit 0
            fi
        done
        sleep 0.2
    done
) &
pids+=($!)
wait_in_flight() { for _ in $(seq 1 100); do [[ $(cat "$work"/flight/* 2>/dev/null | wc -w) == 6 ]] && return; sleep 0.1; done; }
wait_in_flight
echo 0 >"$work/mcp-delay"
posts=$(for f in "$work"/flight/post*; do cat "$f"; echo; done | sort | tr '\n' ' ')
gets=$(for f in "$work"/flight/get*; do cat "$f"; echo; done | sort | tr '\n' ' ')
expect "of three POSTs in flight, the one on the killed instance failed with 502 (not resent)" "$posts" "200 200 502 "
expect "three GETs in flight all succeeded (the killed instance's passed on to another)" "$gets" "200 200 200 "
check "nginx's log shows a GET answered by a second instance after the first failed" \
    grep -qE '^GET /mcp 200 [0-9.:]+, [0-9.:]+$' "$work/nginx/access.log"

echo "-- the two others serve everything"
statuses=""
for n in 1 2 3 4 5 6; do statuses+="$(introspect_status) "; done
expect "six introspections (POST) after the kill all answered" "$statuses" "200 200 200 200 200 200 "
statuses=""
for n in 1 2 3 4; do statuses+="$(mcp_post) "; done
expect "four MCP requests after the kill all forwarded" "$statuses" "200 200 200 200 "
if demo demo-after.out; then
    ok "a new demo sign-in through nginx works with one instance down"
else
    bad "a new demo sign-in through nginx works with one instance down"; tail -5 "$work/demo-after.out"
fi
for _ in $(seq 1 100); do [[ -s "$work/successor" ]] && break; sleep 0.2; done
read -r successor took <"$work/successor" || true
check "another instance took the janitor's lease within twice its 3 s (instance $((${successor:-9} + 1)), after ${took:-?} s)" \
    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 6)' "${took:-99}"

echo "-- PostgreSQL stopped: the instances say so, and nginx passes it on"
"${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m immediate -w stop >/dev/null 2>&1
expect "an introspection answers 503 (not 502 from nginx)" "$(introspect_status -D "$work/down.headers")" 503
expect "with error temporarily_unavailable" "$(json_field error <"$work/introspected.json")" temporarily_unavailable
check "and Retry-After" grep -qi '^retry-after: [0-9]' "$work/down.headers"
expect "/health/ready through nginx says not ready" \
    "$(curl -s -m 20 -o /dev/null -w '%{http_code}' --cacert "$ca" "$public/health/ready")" 503
pg_port=${DRAWBRIDGE_TEST_DATABASE_URL##*:}; pg_port=${pg_port%%/*}
"${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -l "$postgres_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $postgres_dir -c fsync=off -c max_connections=300" \
    start >/dev/null
statuses=""
for n in 1 2 3 4; do
    for _ in $(seq 1 50); do
        status=$(introspect_status)
        [[ $status == 200 ]] && break; sleep 0.2
    done
    statuses+="$status $(json_field active <"$work/introspected.json") "
done
expect "PostgreSQL back: the instances answer again without a restart" "$statuses" "200 True 200 True 200 True 200 True "

if [[ $failed != 0 ]]; then
    for i in 0 1 2; do
        echo "--- instance $((i + 1)) log (warnings and errors) ---"
        grep -E '"level":(40|50)' "$work/drawbridge-$i.log" | tail -10 || true
    done
    echo "--- nginx error log ---"; grep -vE '\[(info|notice)\]' "$work/nginx/error.log" | tail -20 || true
fi
echo "instances: $passed passed, $failed failed"
[[ $failed == 0 ]]
