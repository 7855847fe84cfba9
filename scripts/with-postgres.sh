#!/usr/bin/env bash
# Runs CMD with a throwaway PostgreSQL server, then stops and deletes it.
#
#   scripts/with-postgres.sh CMD [ARGS...]
#   e.g. scripts/with-postgres.sh cargo test -p quantcore-service --locked
#
# Finds initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin (installs Debian's
# `postgresql` package when neither has them), creates a cluster in a temporary directory,
# listening on a free loopback port with its unix socket in that directory, exports
# DATABASE_URL and QUANTCORE_TEST_DATABASE_URL, runs CMD and exits with CMD's status. The
# server is stopped and the directory deleted on every exit path (trap). PostgreSQL refuses
# to run as root, so as root the server runs as the `postgres` user (or `nobody`).
#
# For tests that stop or restart the server (tests/faults.rs) it also exports:
#   QUANTCORE_TEST_PG_CTL    path of pg_ctl
#   QUANTCORE_TEST_PGDATA    the cluster's data directory
#   QUANTCORE_TEST_PGLOG     the server log file (pass it to `pg_ctl -l` on start/restart)
#   QUANTCORE_TEST_PG_USER   the user pg_ctl must run as (empty: the current user; set when
#                            running as root: run pg_ctl with `runuser -u USER --`)
# `pg_ctl restart` keeps the start options (port, socket directory, settings), also to
# start a stopped server again (`pg_ctl start` would not).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 64
fi

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if ! pg_bin=$(find_pg_bin); then
  echo "with-postgres: initdb/pg_ctl not found, installing postgresql" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(find_pg_bin) || { echo "with-postgres: no initdb after installing postgresql" >&2; exit 1; }
fi

# A free TCP port on loopback: ask the kernel for one (python3), else probe random ones.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local candidate
  for _ in $(seq 100); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "with-postgres: no free port found" >&2
  return 1
}
port=$(free_port)

workdir=$(mktemp -d "${TMPDIR:-/tmp}/quantcore-pg.XXXXXX")
datadir="$workdir/data"
sockdir="$workdir/socket"
logfile="$workdir/server.log"
mkdir -p "$sockdir"

# As root, run the server as an unprivileged user.
as_server_user=()
server_user=""
if [ "$(id -u)" -eq 0 ]; then
  server_user=postgres
  id "$server_user" >/dev/null 2>&1 || server_user=nobody
  chown -R "$server_user" "$workdir"
  chmod 755 "$workdir"
  if command -v runuser >/dev/null 2>&1; then
    as_server_user=(runuser -u "$server_user" --)
  else
    as_server_user=(su -s /bin/sh "$server_user" -c)
  fi
fi

run_as_server() {
  if [ ${#as_server_user[@]} -eq 0 ]; then
    "$@"
  elif [ "${as_server_user[0]}" = runuser ]; then
    "${as_server_user[@]}" "$@"
  else
    "${as_server_user[@]}" "$(printf '%q ' "$@")"
  fi
}

cleanup() {
  local status=$?
  if [ -f "$datadir/postmaster.pid" ]; then
    run_as_server "$pg_bin/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

password=quantcore
pwfile="$workdir/pwfile"
echo "$password" >"$pwfile"
[ ${#as_server_user[@]} -gt 0 ] && chown "$server_user" "$pwfile"

run_as_server "$pg_bin/initdb" -D "$datadir" -U quantcore --pwfile="$pwfile" \
  --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$workdir/initdb.log" 2>&1 \
  || run_as_server "$pg_bin/initdb" -D "$datadir" -U quantcore --pwfile="$pwfile" \
       --auth=scram-sha-256 --encoding=UTF8 --no-locale >"$workdir/initdb.log" 2>&1 \
  || { cat "$workdir/initdb.log" >&2; exit 1; }

# Tuned for throwaway test data: no fsync, enough connections for parallel tests.
run_as_server "$pg_bin/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -p $port -k $sockdir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  >/dev/null || { cat "$logfile" >&2; exit 1; }

url="postgres://quantcore:$password@127.0.0.1:$port/postgres"
export DATABASE_URL="$url"
export QUANTCORE_TEST_DATABASE_URL="$url"
export QUANTCORE_TEST_PG_CTL="$pg_bin/pg_ctl"
export QUANTCORE_TEST_PGDATA="$datadir"
export QUANTCORE_TEST_PGLOG="$logfile"
export QUANTCORE_TEST_PG_USER="$server_user"
echo "with-postgres: PostgreSQL $("$pg_bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port ($workdir)" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
