#!/usr/bin/env bash
# The whole test suite: formatting, lints, the no-OpenSSL rule, and every test.
# Usage: scripts/test.sh   (from anywhere; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "rustfmt"
cargo fmt --check

step "no OpenSSL anywhere in the dependency tree"
if cargo tree --target all -e normal,build,dev -i openssl-sys >/dev/null 2>&1; then
    echo "openssl-sys is in the dependency tree:" >&2
    cargo tree --target all -e normal,build,dev -i openssl-sys >&2
    exit 1
fi
echo "ok: openssl-sys is not a dependency"

step "clippy"
cargo clippy --all-targets --locked -- -D warnings

step "release build (the binary's tests, among them the kill -9 crash test, run against it)"
cargo build --release --locked
export DRAWBRIDGE_TEST_BIN="$PWD/target/release/drawbridge"

step "tests"
# The ACME test runs Debian's pebble (skipped without it on a developer's
# machine, required under CI=true).
(source scripts/dev/lib.sh && require_package pebble pebble "the ACME test (tests/api/acme.rs)")
# The HTTP/2 refusal test (tests/api/https.rs) drives curl, an HTTP/2 client
# that reports a reset stream as an error.
(source scripts/dev/lib.sh && require_package curl curl "the HTTP/2 refusal test (tests/api/https.rs)")
# The suite appends every log line and every secret it saw to these files;
# the scan below checks that no secret ever reached a log line.
tmp=target/tmp
mkdir -p "$tmp"
: >"$tmp/test-logs.jsonl"
: >"$tmp/secrets.txt"
# The PostgreSQL engine's tests run against a throwaway PostgreSQL 15
# (skipped with one line without it on a developer's machine; installed
# and required under CI=true). The tests that stop and restart PostgreSQL
# under a running Drawbridge (tests/api/postgres_faults.rs, crash.rs) start
# servers of their own with scripts/dev/postgres.sh private-start.
source scripts/dev/postgres.sh
start_postgres
trap stop_postgres EXIT
cargo test --locked --all-targets
# The login-flow, admin, registration and timeline tests once more with
# every app on PostgreSQL (each in a database of its own; see
# `postgres_backend` in tests/api/helpers.rs): one suite, both backends.
if [[ -n "${DRAWBRIDGE_TEST_DATABASE_URL:-}" ]]; then
    DRAWBRIDGE_TEST_BACKEND=postgres cargo test --locked --test api -- \
        login_flow:: admin:: registration:: timeline:: signin_binding:: refresh_check::
fi
# Doc tests too (--all-targets leaves them out): among them the proofs that
# writing another actor's tree, or writing through a reader, does not compile.
cargo test --locked --doc

step "no secret, code or token in any log line of the suite"
python3 - "$tmp/test-logs.jsonl" "$tmp/secrets.txt" <<'PY'
import sys
logs = open(sys.argv[1], encoding="utf-8", errors="replace").read()
secrets = {s.strip() for s in open(sys.argv[2]) if len(s.strip()) >= 12}
leaked = [s for s in secrets if s in logs or s[-16:] in logs]
print(f"scanned {len(logs.splitlines())} log lines for {len(secrets)} secrets")
if not secrets or not logs:
    sys.exit("the suite recorded no logs or no secrets: the scan would prove nothing")
if leaked:
    sys.exit(f"{len(leaked)} secrets appear in the logs, e.g. ...{leaked[0][-8:]}")
PY

step "documentation walk-throughs (README.md, docs/*.md) against the real binary"
# (On a developer's machine without curl and root it skips with one line
# on stderr; under CI=true it installs curl and is required.)
bash scripts/dev/readme-walkthrough.sh >/dev/null

step "README's two HTTPS commands, as written: certificate files, and ACME against Debian's pebble"
bash scripts/dev/https-walkthrough.sh
echo "ok: documentation walk-throughs (unless skipped above)"

step "Grafana dashboard against a real Prometheus"
bash scripts/dev/dashboard-check.sh

step "Prometheus alert rules: promtool check and unit tests, metric names against the binary"
bash scripts/dev/alerts-check.sh

step "Swagger UI in headless Chromium"
bash scripts/dev/swagger-check.sh

step "the pages people see in headless Chromium: phone and desktop, light and dark, nothing loaded from elsewhere"
bash scripts/dev/pages-check.sh

step "a browser client on another origin (CORS) in headless Chromium"
bash scripts/dev/cors-check.sh

step "behind Debian's nginx (scripts/deploy/nginx.conf): client addresses, rate limits, forged X-Forwarded-For, SSE"
bash scripts/dev/nginx-check.sh

step "three instances on one PostgreSQL database behind nginx (scripts/deploy/nginx-instances.conf): a sign-in spread over them, one killed"
bash scripts/dev/instances-check.sh

step "the systemd unit: systemd-analyze verify, its sandbox, the service started as the unit starts it"
bash scripts/dev/deploy-check.sh

step "schemathesis against /openapi.json (public and admin API)"
bash scripts/dev/schemathesis.sh

step "end-to-end: oidc-provider as Google, MCP SDK server and client"
bash scripts/dev/e2e.sh

step "fuzzing: redirect URIs, registration JSON, token forms, vault records"
bash scripts/dev/fuzz.sh
