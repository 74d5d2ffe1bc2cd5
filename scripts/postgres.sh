#!/usr/bin/env bash
# scripts/postgres.sh -- a throwaway PostgreSQL 15 on a free loopback port, for tests and benchmarks.
#
# Source it and call the functions:
#   . scripts/postgres.sh
#   start_postgres            # exports SIGIL_TEST_POSTGRES_URL, SIGIL_TEST_POSTGRES_DATA, SIGIL_TEST_POSTGRES_PGCTL
#   trap stop_postgres EXIT
# POSTGRES_DURABLE=1 keeps fsync and synchronous commits on (benchmarks); tests run without them.
# or run it:  scripts/postgres.sh start   (prints the export lines)   /   scripts/postgres.sh stop DIR
#
# Runs as root (initdb and the server run as the `postgres` user through runuser); the data lives
# under /tmp and is removed by stop_postgres. The role may create databases, so each test makes its own.
# All settings are in the cluster's postgresql.conf, so `pg_ctl stop` / `pg_ctl start` (the restart
# tests) need no options: use "$SIGIL_TEST_POSTGRES_PGCTL stop|start".

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)}"

postgres_available() {
  [ "$(id -u)" = 0 ] && [ -x "$PG_BIN/initdb" ] && command -v runuser >/dev/null 2>&1 && command -v psql >/dev/null 2>&1
}

# Below the kernel's ephemeral range (ip_local_port_range), so no outgoing connection is given
# the port while the server is down for a restart (test_postgres.py stops and starts it), and
# free of any socket in any state (a TIME_WAIT one would refuse the bind too).
free_loopback_port() {
  local port low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 21024 ] 2>/dev/null || low=32768
  for _ in $(seq 1 50); do
    port=$(( 20000 + RANDOM % (low - 20000) ))
    if [ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then echo "$port"; return 0; fi
  done
  return 1
}

start_postgres() {  # start_postgres [PORT] -> exports the SIGIL_TEST_POSTGRES_* variables
  local port=${1:-$(free_loopback_port)} user=sigil db=sigil pass
  pass="pw$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  postgres_available || { echo "postgres.sh: needs root and PostgreSQL ($PG_BIN) with runuser and psql" >&2; return 1; }
  PGTMP=$(mktemp -d /tmp/pgci.XXXXXX) && chown postgres:postgres "$PGTMP" && chmod 755 "$PGTMP"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PGTMP/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 || { cat "$PGTMP/initdb.log" >&2; return 1; }
  cat >>"$PGTMP/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PGTMP'
max_connections = 400
CONF
  # Tests need no durability; benchmarks set POSTGRES_DURABLE=1 to compare with SQLite's fsync.
  if [ "${POSTGRES_DURABLE:-0}" != 1 ]; then
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$PGTMP/data/postgresql.conf"
  fi
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 30 start >/dev/null \
    || { cat "$PGTMP/server.log" >&2; return 1; }
  psql -X -q -v ON_ERROR_STOP=1 -h "$PGTMP" -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE \"$user\" LOGIN CREATEDB PASSWORD '$pass'" -c "CREATE DATABASE \"$db\" OWNER \"$user\"" || return 1
  export PGTMP
  export SIGIL_TEST_POSTGRES_URL="postgres://$user:$pass@127.0.0.1:$port/$db?sslmode=disable"
  export SIGIL_TEST_POSTGRES_DATA="$PGTMP/data"
  export SIGIL_TEST_POSTGRES_PGCTL="runuser -u postgres -- $PG_BIN/pg_ctl -D $PGTMP/data -l $PGTMP/server.log -w -t 30 -m fast"
}

stop_postgres() {  # stop_postgres [DIR]
  local dir=${1:-${PGTMP:-}}
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  if [ "$dir" = "${PGTMP:-}" ]; then unset PGTMP SIGIL_TEST_POSTGRES_URL SIGIL_TEST_POSTGRES_DATA SIGIL_TEST_POSTGRES_PGCTL; fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start) start_postgres "${2:-}"; printf 'export PGTMP=%q SIGIL_TEST_POSTGRES_URL=%q SIGIL_TEST_POSTGRES_DATA=%q SIGIL_TEST_POSTGRES_PGCTL=%q\n' \
             "$PGTMP" "$SIGIL_TEST_POSTGRES_URL" "$SIGIL_TEST_POSTGRES_DATA" "$SIGIL_TEST_POSTGRES_PGCTL" ;;
    stop) stop_postgres "${2:?stop needs the directory start printed as PGTMP}" ;;
    *) echo "usage: $0 start [PORT] | stop DIR" >&2; exit 2 ;;
  esac
fi
