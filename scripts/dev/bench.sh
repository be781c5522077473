#!/usr/bin/env bash
# Load benchmark: builds the release binary and the bench helpers, installs
# wrk (Debian) when missing, and prints one table — every row next to a bare
# actix-web "hello" handler measured in the same run — then the same rows
# with a million clients and a million live tokens, restart time, memory,
# disk, and a janitor purge of a million expired clients under load.
#
# Usage: scripts/dev/bench.sh
# Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_CONNECTIONS
# (default 50), BENCH_SCALE (default 1000000), BENCH_KEEP=1 keeps the
# scratch directory. Takes about 6 minutes on 2 cores at the defaults.
# Micro-benchmarks (criterion): cargo bench --bench micro
set -euo pipefail
cd "$(dirname "$0")/../.."

source scripts/dev/lib.sh
require_package wrk wrk "the benchmark"
cargo build --release --locked --bin drawbridge --example bench-upstream --example bench-seed
exec python3 scripts/dev/bench.py
