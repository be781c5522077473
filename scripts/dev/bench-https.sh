#!/usr/bin/env bash
# HTTPS next to plain HTTP: the register and gateway rows of the load
# benchmark on kept-alive connections and with a new connection (a TLS
# handshake) per request, in one run on the release build.
#
# Usage: scripts/dev/bench-https.sh
# Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_CONNECTIONS
# (default 50). Takes about 2 minutes at the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --release --locked --bin drawbridge --example bench-upstream
exec python3 scripts/dev/bench_https.py
