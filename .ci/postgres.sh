#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the registry tests.
#
#   eval "$(bash .ci/postgres.sh)"        # start (or reuse) the server, export MTREC_TEST_POSTGRES_URL
#   bash .ci/postgres.sh stop             # stop it and remove its folder
#   bash .ci/postgres.sh status           # say whether it runs (stderr) and print the export line if so
#
# stdout carries exactly one line, `export MTREC_TEST_POSTGRES_URL=postgresql+psycopg://...`,
# and only when the server accepts connections; everything else goes to stderr.  When no
# server can be started, stdout stays empty and the PostgreSQL tests skip with a message.
#
# Environment:
#   MTREC_PG_DIR       folder of the cluster (default: ${TMPDIR:-/tmp}/mtrec-ci-postgres-$UID)
#   MTREC_PG_BINDIR    folder with initdb, pg_ctl, postgres (default: pg_config --bindir, the newest
#                      /usr/lib/postgresql/*/bin, or PATH; apt-get installs `postgresql` if none)
#   MTREC_PG_NO_APT=1  never install PostgreSQL with apt-get
#
# The cluster is tuned for tests (fsync off): never point it at data you care about.
set -u

log() { echo "postgres.sh: $*" >&2; }
fail() { log "$*"; log "no PostgreSQL server: the PostgreSQL registry tests will be skipped"; exit 0; }

PGDIR="${MTREC_PG_DIR:-${TMPDIR:-/tmp}/mtrec-ci-postgres-$(id -u)}"
DATA="$PGDIR/data"
PGUSER_NAME=mtrec
PGPASS=mtrec
DBNAME=mtrec_test
ACTION="${1:-start}"

find_bindir() {
    local d
    if [ -n "${MTREC_PG_BINDIR:-}" ]; then
        if [ -x "$MTREC_PG_BINDIR/initdb" ] && [ -x "$MTREC_PG_BINDIR/pg_ctl" ]; then echo "$MTREC_PG_BINDIR"; return 0; fi
        return 1
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null)"
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    fi
    # Debian keeps the server programs out of PATH: take the newest major version.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    fi
    return 1
}

BIN="$(find_bindir)"
if [ -z "$BIN" ] && [ "$ACTION" = start ]; then
    if [ "${MTREC_PG_NO_APT:-0}" = 1 ]; then fail "initdb/pg_ctl not found and MTREC_PG_NO_APT=1"; fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        fail "initdb/pg_ctl not found (install the Debian package 'postgresql' or put its bin folder on PATH)"
    fi
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; } >&2 \
        || fail "apt-get install postgresql failed"
    BIN="$(find_bindir)" || fail "PostgreSQL installed but initdb/pg_ctl still not found"
fi

# initdb and postgres refuse to run as root: run them as an unprivileged system user.
AS=()
RUN_USER="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
    RUN_USER=postgres
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        RUN_USER=mtrecpg
        if ! id -u "$RUN_USER" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER" >&2 2>&1 \
                || fail "cannot create the system user $RUN_USER to run the server as"
        fi
    fi
    if command -v runuser >/dev/null 2>&1; then
        AS=(runuser -u "$RUN_USER" --)
    elif command -v setpriv >/dev/null 2>&1; then
        AS=(setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups --)
    else
        AS=(su -s /bin/sh "$RUN_USER" -c)  # last resort; quoting handled in as_user
    fi
fi

as_user() {
    if [ "${#AS[@]}" -gt 0 ] && [ "${AS[0]}" = su ]; then
        "${AS[@]}" "$(printf '%q ' "$@")"
    else
        "${AS[@]}" "$@"
    fi
}

print_url() {
    echo "export MTREC_TEST_POSTGRES_URL=postgresql+psycopg://$PGUSER_NAME:$PGPASS@127.0.0.1:$1/$DBNAME"
}

running_port() {
    # Port of a server of ours that accepts connections, or nothing.
    [ -n "$BIN" ] && [ -f "$PGDIR/port" ] && [ -f "$DATA/postmaster.pid" ] || return 1
    local port; port="$(cat "$PGDIR/port")"
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1 || return 1
    echo "$port"
}

case "$ACTION" in
    stop)
        if [ -n "$BIN" ] && [ -f "$DATA/postmaster.pid" ]; then
            as_user "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >&2 || true
        fi
        rm -rf "$PGDIR"
        log "stopped; removed $PGDIR"
        exit 0 ;;
    status)
        if port="$(running_port)"; then log "running on 127.0.0.1:$port ($PGDIR)"; print_url "$port"
        else log "not running"; fi
        exit 0 ;;
    start) ;;
    *) log "usage: bash .ci/postgres.sh [start|stop|status]"; exit 2 ;;
esac

[ -n "$BIN" ] || fail "initdb/pg_ctl not found"

# Already running (second call in the same CI job): reuse it.
if port="$(running_port)"; then
    log "reusing the server on 127.0.0.1:$port ($PGDIR)"
    print_url "$port"
    exit 0
fi

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $(( 20000 + RANDOM % 20000 ))
    fi
}

# A stale folder (server died, half-made cluster): start again from scratch.
if [ -d "$PGDIR" ]; then
    if [ -f "$DATA/postmaster.pid" ]; then as_user "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$PGDIR"
fi
mkdir -p "$PGDIR" || fail "cannot create $PGDIR"
chmod 700 "$PGDIR"
printf '%s\n' "$PGPASS" > "$PGDIR/pwfile"
if [ "$(id -u)" -eq 0 ]; then chown -R "$RUN_USER" "$PGDIR" || fail "cannot give $PGDIR to $RUN_USER"; fi

log "initdb in $DATA ($BIN, as $RUN_USER)"
as_user "$BIN/initdb" -D "$DATA" -U "$PGUSER_NAME" --pwfile="$PGDIR/pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; fail "initdb failed"; }

cat >> "$DATA/postgresql.conf" <<CONF
# mtrec CI: a throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
log_min_messages = warning
CONF

started=0
for attempt in 1 2 3; do
    port="$(free_port)"
    if as_user "$BIN/pg_ctl" -D "$DATA" -o "-p $port" -l "$PGDIR/server.log" -w -t 30 start >/dev/null 2>&1; then
        started=1; break
    fi
    log "start on port $port failed (attempt $attempt)"
done
if [ "$started" != 1 ]; then
    tail -n 20 "$PGDIR/server.log" >&2 2>/dev/null
    fail "pg_ctl start failed"
fi
echo "$port" > "$PGDIR/port"

if ! as_user "$BIN/createdb" -h "$PGDIR" -p "$port" -U "$PGUSER_NAME" "$DBNAME" >&2; then
    fail "createdb $DBNAME failed"
fi
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, database $DBNAME ($PGDIR)"
print_url "$port"
