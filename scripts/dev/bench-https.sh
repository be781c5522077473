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

source scripts/dev/lib.sh
require_package wrk wrk "the benchmark"
cargo build --release --locked --bin drawbridge --example bench-upstream
exec python3 scripts/dev/bench_https.py
