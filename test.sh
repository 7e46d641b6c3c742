#!/usr/bin/env bash
# Runs the whole test suite. The PostgreSQL half needs a server: if LULUCLAW_TEST_POSTGRES is not
# set and PostgreSQL's binaries are installed (Debian: apt-get install postgresql), this starts a
# throwaway server on a free local port for the run and stops it afterwards. Without either, the
# PostgreSQL tests are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")"

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

run_pg() {
  # PostgreSQL refuses to run as root: use the postgres user then.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${LULUCLAW_TEST_POSTGRES:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    pg_dir=$(mktemp -d /tmp/luluclaw-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
    run_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c max_connections=300 -c fsync=off" start >/dev/null
    export LULUCLAW_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
    echo "test.sh: PostgreSQL started for this run on 127.0.0.1:$port"
  else
    echo "test.sh: no PostgreSQL found (LULUCLAW_TEST_POSTGRES unset, no initdb): PostgreSQL tests will be skipped"
  fi
fi

# The OpenAPI linter the suite runs (npm registry), installed once from the lockfile.
if [ ! -x tests/openapi/node_modules/.bin/redocly ]; then
  npm ci --prefix tests/openapi --silent --no-audit --no-fund >/dev/null || echo "test.sh: could not install the OpenAPI linter (npm ci in tests/openapi): its test will fail"
fi

dotnet test LuluClaw.sln "$@"
