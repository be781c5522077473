#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests (Debian's packages).
# Source it, then:
#   start_postgres   starts one in a temporary directory on 127.0.0.1 and a
#                    free port, as an unprivileged user (as root: the
#                    `postgres` system user), and exports
#                    DRAWBRIDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   stop_postgres    stops it and removes the directory
# A test that stops and restarts PostgreSQL needs a server of its own (the
# shared one serves the tests running beside it). Run this file directly:
#   bash scripts/dev/postgres.sh private-start        starts one; prints
#                                                     "URL DIRECTORY" on stdout
#   bash scripts/dev/postgres.sh private-stop DIR     stops it at once, as a
#                                                     crash would (immediate)
#   bash scripts/dev/postgres.sh private-resume DIR   starts it again (same port)
#   bash scripts/dev/postgres.sh private-remove DIR   stops it, removes DIR
# Without the package on a developer's machine (and not root) it prints one
# `skipped:` line and exports nothing; under CI=true it installs the package
# and a server that does not start is an error.

postgres_bin=/usr/lib/postgresql/15/bin
postgres_dir=""
postgres_run=()

start_postgres() {
    postgres_create || return $?
    [[ -n $postgres_dir ]] || return 0
    export DRAWBRIDGE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$postgres_port/postgres"
    echo "PostgreSQL 15 on 127.0.0.1:$postgres_port (data in $postgres_dir)" >&2
}

# Initialises and starts a server in a new $postgres_dir on $postgres_port;
# leaves $postgres_dir empty when it skips.
postgres_create() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    postgres_dir=""
    # require_package exits when it skips: keep that inside a subshell.
    (source "$here/lib.sh" && require_package "$postgres_bin/initdb" postgresql \
        "the PostgreSQL engine tests (src/storage/postgres)") || return 1
    [[ -x $postgres_bin/initdb ]] || return 0
    # shellcheck source=scripts/dev/lib.sh
    source "$here/lib.sh"
    postgres_dir=$(mktemp -d "${TMPDIR:-/tmp}/drawbridge-pg.XXXXXX")
    postgres_user
    [[ $(id -u) -ne 0 ]] || chown postgres: "$postgres_dir"
    postgres_port=$(free_port)
    if ! "${postgres_run[@]}" "$postgres_bin/initdb" -D "$postgres_dir/data" -U postgres \
        --auth=trust -E UTF8 --no-sync >"$postgres_dir/initdb.log" 2>&1; then
        cat "$postgres_dir/initdb.log" >&2
        echo "postgres: initdb failed" >&2
        return 1
    fi
    # In the configuration file, so a restart needs no options.
    # Durability is not what these tests check: fsync off keeps them quick
    # (a server process killed at once still loses nothing it committed);
    # POSTGRES_FSYNC=on for benchmarks, POSTGRES_SETTINGS adds lines.
    "${postgres_run[@]}" tee -a "$postgres_dir/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $postgres_port
unix_socket_directories = '$postgres_dir'
fsync = ${POSTGRES_FSYNC:-off}
max_connections = 300
${POSTGRES_SETTINGS:-}
EOF
    postgres_start
}

# As root, the server runs as the `postgres` system user.
postgres_user() {
    postgres_run=()
    [[ $(id -u) -ne 0 ]] || postgres_run=(runuser -u postgres --)
}

postgres_start() {
    if ! "${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" \
        -l "$postgres_dir/server.log" -w -t 60 start >/dev/null; then
        cat "$postgres_dir/server.log" >&2
        echo "postgres: the server did not start" >&2
        return 1
    fi
}

postgres_stop() {
    "${postgres_run[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
}

stop_postgres() {
    [[ -n $postgres_dir && -d $postgres_dir ]] || return 0
    postgres_stop
    rm -rf "$postgres_dir"
    postgres_dir=""
    unset DRAWBRIDGE_TEST_DATABASE_URL
}

# Run directly: the private server's commands (see the top of this file).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    command=${1:-}
    postgres_user
    case $command in
    private-start)
        postgres_create
        [[ -n $postgres_dir ]] || exit 0
        echo "postgres://postgres@127.0.0.1:$postgres_port/postgres $postgres_dir"
        ;;
    private-stop | private-resume | private-remove)
        postgres_dir=${2:?"usage: $0 $command DIRECTORY"}
        [[ -f $postgres_dir/data/PG_VERSION ]] || {
            echo "postgres: $postgres_dir is no server of this script" >&2
            exit 2
        }
        case $command in
        private-stop) postgres_stop ;;
        private-resume) postgres_start ;;
        private-remove) postgres_stop && rm -rf "$postgres_dir" ;;
        esac
        ;;
    *)
        echo "usage: $0 private-start | private-stop DIR | private-resume DIR | private-remove DIR" >&2
        exit 2
        ;;
    esac
fi
