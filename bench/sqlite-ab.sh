#!/usr/bin/env bash
# SQLite echo chat at 64 clients, the current build against the baseline, alternating: A B A B ...
# then B A B A ..., each on a fresh SQLite file with a fresh process, so that neither build is always
# the one measured first or last. Within one run of bench/run.sh the two builds measured one after
# the other differed by up to 20% either way on the same code; the means of alternating rounds are
# steadier. Uses the Release builds bench/run.sh left in BENCH_BUILD_DIR (its "silo" and "baseline"
# folders: run `bench/run.sh gateway` once first) and wrk.
#
#   bench/sqlite-ab.sh                 # 3 + 2 rounds of 12 s after a 12 s warm-up each
#   AB_ROUNDS=5 AB_SECONDS=15 bench/sqlite-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BENCH_BUILD_DIR:-/tmp/luluclaw-bench-build}
ROUNDS=${AB_ROUNDS:-3}
SECONDS_EACH=${AB_SECONDS:-12}
ADMIN=ab-admin-$RANDOM$RANDOM
for build in silo baseline; do
  [ -f "$BUILD/$build/LuluClaw.Silo.dll" ] || { echo "sqlite-ab.sh: no $BUILD/$build: run bench/run.sh gateway first" >&2; exit 2; }
done
command -v wrk > /dev/null || { echo "sqlite-ab.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() { # measure BUILD: prints the turns/s of one fresh process of BUILD
  local build=$1 port dir pid ws key i
  port=$(free_port)
  dir=$(mktemp -d /tmp/luluclaw-ab.XXXXXX)
  env ASPNETCORE_ENVIRONMENT=Production "Admin__Token=$ADMIN" Demo__Seed=false Logging__LogLevel__Default=Warning \
    Plans__Key__bench__RequestsPerMinute= Plans__Key__bench__RequestsPerHour= Plans__Key__bench__RequestsPerDay= \
    Cluster__SiloPort="$(free_port)" Cluster__GatewayPort="$(free_port)" \
    Storage__Provider=sqlite "ConnectionStrings__LuluClaw=Data Source=$dir/ab.db" \
    dotnet "$BUILD/$build/LuluClaw.Silo.dll" --urls "http://127.0.0.1:$port" > "$dir/log" 2>&1 &
  pid=$!
  for i in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.5; done
  ws=$(curl -sf "http://127.0.0.1:$port/api/admin/workspaces" -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
    -d '{"name":"ab","plan":"byok","credits":1000000000}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  key=$(curl -sf "http://127.0.0.1:$port/api/admin/workspaces/$ws/keys" -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
    -d '{"scopes":["chat"],"plan":"bench"}' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  wrk -t2 -c64 -d"${SECONDS_EACH}s" -s bench/wrk/chat.lua "http://127.0.0.1:$port" -- "$key" "warm$RANDOM" 128 10 > /dev/null
  wrk -t2 -c64 -d"${SECONDS_EACH}s" -s bench/wrk/chat.lua "http://127.0.0.1:$port" -- "$key" "ab$RANDOM" 128 10 | awk '/^Requests\/sec/ { print $2 }'
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
}

declare -a current=() baseline=()
for round in $(seq 1 "$ROUNDS"); do current+=("$(measure silo)"); baseline+=("$(measure baseline)"); echo "round $round: current ${current[-1]}, baseline ${baseline[-1]}"; done
for round in $(seq 1 $(( ROUNDS > 1 ? ROUNDS - 1 : 1 ))); do baseline+=("$(measure baseline)"); current+=("$(measure silo)"); echo "round $((ROUNDS + round)) (baseline first): current ${current[-1]}, baseline ${baseline[-1]}"; done
awk -v c="${current[*]}" -v b="${baseline[*]}" 'BEGIN {
  n = split(c, cs, " "); split(b, bs, " ")
  for (i = 1; i <= n; i++) { sc += cs[i]; sb += bs[i] }
  printf "SQLite echo, 64 clients, means of %d alternating rounds: current %.0f, baseline %.0f turns/s: %.1f%% of the baseline\n", n, sc / n, sb / n, 100 * sc / sb
}'
