#!/usr/bin/env bash
# Walks a complete MCP-client sign-in against a running Drawbridge (the demo:
# `cargo run`, dev provider on 127.0.0.1:8002) with curl, the way a browser
# and an MCP client would, and prints the tokens it got.
#
# Usage: scripts/demo-flow.sh [--help]
# Environment: DRAWBRIDGE_URL (default http://127.0.0.1:8002). Needs curl, python3.
set -euo pipefail

if [[ "${1:-}" == "--help" ]]; then
    sed -n '2,7p' "$0"; exit 0
fi
BASE=${DRAWBRIDGE_URL:-http://127.0.0.1:8002}
REDIRECT=http://127.0.0.1:9/callback
jar=$(mktemp); trap 'rm -f "$jar"' EXIT

json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
location() { curl -s -o /dev/null -w '%{redirect_url}' -b "$jar" -c "$jar" "$@"; }
hidden() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -1; }
query() { python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)[sys.argv[2]][0])' "$1" "$2"; }

echo "1. register an MCP client"
REG=$(curl -sf -X POST "$BASE/oauth/register" -H 'Content-Type: application/json' \
  -d "{\"client_name\": \"Demo MCP client\", \"redirect_uris\": [\"$REDIRECT\"],
       \"grant_types\": [\"authorization_code\", \"refresh_token\"]}")
CLIENT_ID=$(echo "$REG" | json client_id)
CLIENT_SECRET=$(echo "$REG" | json client_secret)
echo "   client_id: $CLIENT_ID"

echo "2. authorize with PKCE: Drawbridge shows its consent page"
VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
CHALLENGE=$(python3 -c 'import base64, hashlib, sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$VERIFIER")
PAGE=$(curl -sf -b "$jar" -c "$jar" -G "$BASE/oauth/authorize" \
  --data-urlencode response_type=code --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode state=demo-state \
  --data-urlencode "code_challenge=$CHALLENGE" --data-urlencode code_challenge_method=S256)
STATE=$(echo "$PAGE" | hidden state)
CSRF=$(echo "$PAGE" | hidden csrf)

echo "3. approve: Drawbridge sends the browser to the identity provider"
IDP=$(location -X POST "$BASE/oauth/consent" --data-urlencode "state=$STATE" --data-urlencode "csrf=$CSRF" -d decision=approve)
echo "   -> ${IDP%%\?*}"

echo "4. sign in at the (development) identity provider, which returns to Drawbridge"
CALLBACK=$(location -X POST "${IDP%%\?*}" --data "${IDP#*\?}")
echo "   -> ${CALLBACK%%\?*}"

echo "5. Drawbridge exchanges the upstream code and redirects to the client with its own code"
BACK=$(location "$CALLBACK")
CODE=$(query "$BACK" code)
echo "   -> $REDIRECT?code=…&state=$(query "$BACK" state)&iss=$(query "$BACK" iss)"

echo "6. the client exchanges the code (client_secret_post + code_verifier)"
TOKENS=$(curl -sf -X POST "$BASE/oauth/token" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "code_verifier=$VERIFIER" --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET")
echo "$TOKENS" | python3 -m json.tool
ACCESS=$(echo "$TOKENS" | json access_token)
REFRESH=$(echo "$TOKENS" | json refresh_token)

echo "7. introspect the access token"
curl -sf -X POST "$BASE/oauth/introspect" --data-urlencode "token=$ACCESS" \
  --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" | python3 -m json.tool

echo "8. refresh (the refresh token rotates)"
curl -sf -X POST "$BASE/oauth/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH" \
  --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" | python3 -m json.tool
