#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests (Debian's packages).
# Source it, then:
#   start_postgres   starts one in a temporary directory on 127.0.0.1 and a
#                    free port, as an unprivileged user (as root: the
#                    `postgres` system user), and exports
#                    DRAWBRIDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   stop_postgres    stops it and removes the directory
# Without the package on a developer's machine (and not root) it prints one
# `skipped:` line and exports nothing; under CI=true it installs the package
# and a server that does not start is an error.

postgres_bin=/usr/lib/postgresql/15/bin
postgres_dir=""
postgres_run=()

start_postgres() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    # require_package exits when it skips: keep that inside a subshell.
    (source "$here/lib.sh" && require_package "$postgres_bin/initdb" postgresql \
        "the PostgreSQL engine tests (src/storage/postgres)") || return 1
    [[ -x $postgres_bin/initdb ]] || return 0
    # shellcheck source=scripts/dev/lib.sh
    source "$here/lib.sh"
    postgres_dir=$(mktemp -d "${TMPDIR:-/tmp}/drawbridge-pg.XXXXXX")
    postgres_run=()
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$postgres_dir"
        postgres_run=(runuser -u postgres --)
    fi
    local port
    port=$(free_port)
    if ! "${postgres_run[@]}" "$postgres_bin/initdb" -D "$postgres_dir/data" -U postgres \
        --auth=trust -E UTF8 --no-sync >"$postgres_dir/initdb.log" 2>&1; then
        cat "$postgres_dir/initdb.log" >&2
        echo "postgres: initdb failed" >&2
        return 1
    fi
    # Durability is not what these tests check: fsync off keeps them quick
    # (POSTGRES_FSYNC=on for benchmarks; POSTGRES_OPTIONS adds server options).
    if ! "${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" \
        -l "$postgres_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $postgres_dir -c fsync=${POSTGRES_FSYNC:-off} -c max_connections=300 ${POSTGRES_OPTIONS:-}" \
        start >/dev/null; then
        cat "$postgres_dir/server.log" >&2
        echo "postgres: the server did not start" >&2
        return 1
    fi
    export DRAWBRIDGE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL 15 on 127.0.0.1:$port (data in $postgres_dir)" >&2
}

stop_postgres() {
    [[ -n $postgres_dir && -d $postgres_dir ]] || return 0
    "${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    rm -rf "$postgres_dir"
    postgres_dir=""
    unset DRAWBRIDGE_TEST_DATABASE_URL
}
