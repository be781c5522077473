#!/usr/bin/env bash
# Runs README's two HTTPS commands (production quick start, step 4) as
# written, with only what a test machine must change: the release binary for
# `cargo run --release`, free ports for 443 and 80, loopback for 0.0.0.0,
# the test certificate for /etc/drawbridge/*.pem, a test name for
# mcp.example.com, and, for ACME, Debian's pebble as the CA (with
# pebble-challtestsrv as its DNS). Checks that each serves HTTPS clients
# trust, that port 80 redirects, and that ACME's certificate is issued.
#
# Usage: scripts/dev/https-walkthrough.sh [--help]
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,10p' "$0"; exit 0
fi

source scripts/dev/lib.sh
require_package curl curl "the HTTPS walk-through"
require_package pebble pebble "the HTTPS walk-through (ACME)"
cargo build --release --quiet
with_scratch
root=$PWD
tls="$root/tests/fixtures/tls"
passed=0
failed=0
check() { if eval "$2"; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }

# README's block NAME, with the test machine's substitutions.
readme_block() {
    sed -n "/<!-- $1:start -->/,/<!-- $1:end -->/p" README.md | sed '1,2d;$d' | sed '$d' |
        sed -e "s|cargo run --release|$root/target/release/drawbridge|" \
            -e "s|MCP_PORT=443|MCP_PORT=$2|" -e "s|REDIRECT_PORT=80|REDIRECT_PORT=$3|" \
            -e "s|MCP_HOST=0.0.0.0|MCP_HOST=127.0.0.1|" \
            -e "s|/etc/drawbridge/fullchain.pem|$tls/localhost.pem|" \
            -e "s|/etc/drawbridge/privkey.pem|$tls/localhost.key|" \
            -e "s|https://mcp.example.com|https://$4:$2|" -e "s|=mcp.example.com|=$4|"
}

# run NAME DIR PORT REDIRECT HOST [VAR=VALUE…]: the block in a clean
# environment plus the given variables, in the background.
run() {
    local name=$1 dir="$work/$2" port=$3 redirect=$4 host=$5; shift 5
    mkdir -p "$dir"
    readme_block "$name" "$port" "$redirect" "$host" >"$dir/command.sh"
    grep -q "mcp.example.com\|:443\|=80 \|0.0.0.0\|cargo run" "$dir/command.sh" &&
        { echo "https-walkthrough: README's $name block changed shape:" >&2; cat "$dir/command.sh" >&2; exit 1; }
    (cd "$dir" && exec env -i PATH="$PATH" "$@" bash -e "$dir/command.sh") >"$dir/drawbridge.log" 2>&1 &
    pids+=($!)
}

ready() { # URL [curl options…]: waits up to $2 seconds for a 200
    local url=$1 seconds=$2; shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$@" "$url") == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

# 1. Certificate files.
port=$(free_port); redirect=$(free_port)
run https-files files "$port" "$redirect" localhost
check "certificate files: HTTPS answers, trusted through the test CA" \
    "ready https://localhost:$port/health/ready 30 --cacert '$tls/ca.pem'"
location=$(curl -s -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$redirect/mcp?x=1")
check "certificate files: port 80 redirects to https ($location)" \
    "[[ '$location' == 'https://localhost:$port/mcp?x=1' ]]"
check "certificate files: HSTS on HTTPS answers" \
    "curl -sI --cacert '$tls/ca.pem' https://localhost:$port/health/live | grep -qi '^strict-transport-security: max-age='"

# 2. ACME, against pebble (its DNS answers 127.0.0.1 for every name).
acme_port=$(free_port); http01=$(free_port); pebble_port=$(free_port); mgmt=$(free_port); dns=$(free_port)
cat >"$work/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$pebble_port", "managementListenAddress": "127.0.0.1:$mgmt",
 "certificate": "$tls/localhost.pem", "privateKey": "$tls/localhost.key",
 "httpPort": $http01, "tlsPort": $(free_port), "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$dns" \
    -http01 "" -https01 "" -tlsalpn01 "" -management "127.0.0.1:$(free_port)" >"$work/dns.log" 2>&1 &
pids+=($!)
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$work/pebble.json" -dnsserver "127.0.0.1:$dns" \
    >"$work/pebble.log" 2>&1 &
pids+=($!)
ready "https://127.0.0.1:$pebble_port/dir" 20 --cacert "$tls/ca.pem" || { echo "pebble never came up" >&2; cat "$work/pebble.log" >&2; exit 1; }
curl -sf --cacert "$tls/ca.pem" "https://127.0.0.1:$mgmt/roots/0" >"$work/pebble-root.pem"
run https-acme acme "$acme_port" "$http01" drawbridge.test \
    DRAWBRIDGE_TLS__ACME__DIRECTORY_URL="https://127.0.0.1:$pebble_port/dir" \
    DRAWBRIDGE_TLS__ACME__CA_FILE="$tls/ca.pem"
resolve=(--resolve "drawbridge.test:$acme_port:127.0.0.1" --cacert "$work/pebble-root.pem")
check "ACME: a certificate is issued and HTTPS is ready, trusted through the CA's root" \
    "ready https://drawbridge.test:$acme_port/health/ready 60 ${resolve[*]}"
check "ACME: readiness reports the certificate valid" \
    "curl -s ${resolve[*]} https://drawbridge.test:$acme_port/health/ready | grep -q '\"state\":\"valid\"'"
check "ACME: the issuance is audited" "grep -q '\"event_type\":\"certificate_issued\"' '$work/acme/drawbridge.log'"

if [[ $failed != 0 ]]; then
    for d in files acme; do echo "--- $d ---"; tail -20 "$work/$d/drawbridge.log"; done
    tail -20 "$work/pebble.log"
fi
echo "https-walkthrough: $passed passed, $failed failed"
[[ $failed == 0 ]]
