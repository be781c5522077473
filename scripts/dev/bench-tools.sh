#!/usr/bin/env bash
# The gateway row of the load benchmark with a 50-entry tool table
# (gateway.tool_scopes) next to none, alternating, in one run on the
# release build (docs/performance.md has the figures).
#
# Usage: scripts/dev/bench-tools.sh
# Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_CONNECTIONS
# (default 50), BENCH_ROUNDS (default 2). About 3 minutes at the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

source scripts/dev/lib.sh
require_package wrk wrk "the benchmark"
cargo build --release --locked --bin drawbridge --example bench-upstream
exec python3 scripts/dev/bench_tools.py
