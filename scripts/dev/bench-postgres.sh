#!/usr/bin/env bash
# Load benchmark of the PostgreSQL backend: the register, refresh,
# introspection and gateway rows with one instance on sled, one instance on
# PostgreSQL and two instances on one PostgreSQL, all in one run, with the
# database statements each request costs (pg_stat_statements). PostgreSQL
# 15 from Debian runs with fsync on, on loopback, on the same machine.
#
# Usage: scripts/dev/bench-postgres.sh
# Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_CONNECTIONS
# (default 50). Takes about 3 minutes on 2 cores at the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

source scripts/dev/lib.sh
require_package wrk wrk "the benchmark"
cargo build --release --locked --bin drawbridge --example bench-upstream
source scripts/dev/postgres.sh
POSTGRES_FSYNC=on POSTGRES_SETTINGS="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_utility = on" start_postgres
trap stop_postgres EXIT
[[ -n "${DRAWBRIDGE_TEST_DATABASE_URL:-}" ]] || { echo "the PostgreSQL benchmark needs PostgreSQL" >&2; exit 1; }
python3 scripts/dev/bench_postgres.py
