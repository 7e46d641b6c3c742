#!/usr/bin/env bash
# LuluClaw benchmarks, run by hand (not part of ./test.sh). Servers and load generators run as
# separate processes on 127.0.0.1 only. Prints a table and appends it, with the machine and the
# commit, to docs/benchmarks.md. What each number means: bench/README.md.
#
#   bench/run.sh [all|gateway|cluster|pgbench|failover|provider|sse|memory ...]     (default: all)
#
#   gateway   echo chat turns/s and p50/p99 at 1, 64, 512 clients: bare ASP.NET Core endpoint,
#             SQLite one node, the same on BENCH_BASELINE (built beside it), PostgreSQL one node
#             (one workspace, and 64 workspaces at 64 clients), and BENCH_BASELINE's PostgreSQL one
#             node at 64 clients (one workspace and 64)
#   cluster   echo chat on PostgreSQL with 1, 2 and 3 nodes (one wrk per node, summed), one workspace,
#             and 64 workspaces at 64 clients
#   pgbench   PostgreSQL's own ceiling for a turn's writes: each bench/pgbench/*.sql with pgbench at
#             64 clients, on LuluClaw's real schema, one workspace and 64
#   failover  three silos on PostgreSQL: kill -9 the one a session lives on, time until that
#             session's next turn is answered through a survivor (BENCH_FAILOVER_TRIALS, default 3)
#   provider  through the OpenAI provider to a loopback stub vs the stub directly (1 and 64 connections)
#   sse       concurrent idle SSE streams one LuluClaw process holds (1000, 5000, 10000)
#   memory    managed memory per idle session activation (10,000 sessions, in process)
#   knowledge (not in all: about 15 minutes per provider on 2 cores) ingestion of a generated
#             1,000-page local website, pages/s; what retrieval over 100,000 chunks adds to a chat
#             turn at p95, SQLite and PostgreSQL (bench/Knowledge, in process)
#
# Quick mode: BENCH_SECONDS=5 BENCH_WARMUP=5 bench/run.sh all (default 15 s per measurement, 15 s warm-up). Other settings
# (all in bench/README.md): BENCH_CLIENTS="1 64 512", BENCH_NODES="1 2 3",
# BENCH_STREAMS="1000 5000 10000", BENCH_SSE_MODE=auto|stub|echo, BENCH_SESSIONS=10000,
# BENCH_WORKSPACES=1, BENCH_MANY_WORKSPACES=64 (the spread-out rows; 0 skips them), BENCH_TURNS_PER_SESSION=10, BENCH_WRK_THREADS=2,
# BENCH_WARMUP=15 (seconds of warm-up per server), BENCH_BASELINE=<commit> (built beside this one, its
# SQLite and PostgreSQL one-node rows measured in the same run; default d2e79b2, before the storage
# rework; empty skips it), BENCH_PGBENCH_SCRIPTS="a.sql b.sql" (default: every bench/pgbench/*.sql),
# BENCH_FAILOVER_TRIALS=3, BENCH_SOURCE=worktree|head (head: build the committed HEAD from git archive, with this bench/),
# LULUCLAW_BENCH_POSTGRES=<connection string> (use that server instead of a throwaway one),
# BENCH_SILO_ENV="Var=value ..." and BENCH_PG_CONN_EXTRA="..." (experiments: extra LuluClaw
# settings, extra connection string options), BENCH_QUIET_WAIT=<seconds> (on a shared machine, wait
# up to that long before each measurement for the machine to go quiet), BENCH_NO_REPORT=1 (leave
# docs/benchmarks.md alone), BENCH_KEEP=1 (keep logs), BENCH_BUILD_DIR (/tmp/luluclaw-bench-build).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
ROOT=$(pwd)

# :: Settings

S=${BENCH_SECONDS:-15}
# Warm-up per server before its first measurement: .NET's tiered JIT goes on recompiling the hot
# methods (instrumented, then optimised) for about 10 s under load; a shorter warm-up measures the JIT.
WARMUP=${BENCH_WARMUP:-15}
CLIENTS=${BENCH_CLIENTS:-1 64 512}
NODES=${BENCH_NODES:-1 2 3}
STREAMS=${BENCH_STREAMS:-1000 5000 10000}
SSE_MODE=${BENCH_SSE_MODE:-auto}
SESSIONS=${BENCH_SESSIONS:-10000}
WORKSPACES=${BENCH_WORKSPACES:-1}
# The spread-out rows: PostgreSQL at 64 clients over this many workspaces (one key each), and
# pgbench's second run of each script. 0 skips the LuluClaw ones (pgbench then runs on one workspace only).
MANY_WORKSPACES=${BENCH_MANY_WORKSPACES:-64}
TURNS_PER_SESSION=${BENCH_TURNS_PER_SESSION:-10}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
BUILD=${BENCH_BUILD_DIR:-/tmp/luluclaw-bench-build}
SOURCE=${BENCH_SOURCE:-worktree}
# Built beside the current source and measured in the same run (SQLite and PostgreSQL one node):
# main before the storage rework. Its rows' configurations end in BASELINE_LABEL.
BASELINE=${BENCH_BASELINE-d2e79b2}
BASELINE_LABEL="before the storage rework ($BASELINE)"
FAILOVER_TRIALS=${BENCH_FAILOVER_TRIALS:-3}
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
ADMIN=bench-admin-$RANDOM$RANDOM
CLK=$(getconf CLK_TCK)
NPROC=$(nproc)

SECTIONS=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) SECTIONS=(gateway cluster pgbench failover provider sse memory) ;;
    gateway|cluster|pgbench|failover|provider|sse|memory|knowledge) SECTIONS+=("$arg") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
    *) echo "run.sh: unknown section '$arg' (all, gateway, cluster, pgbench, failover, provider, sse, memory, knowledge)" >&2; exit 2 ;;
  esac
done
has() { [[ " ${SECTIONS[*]} " == *" $1 "* ]]; }

# The pgbench section's scripts: every bench/pgbench/*.sql, or the ones named (a bare name is
# looked up in bench/pgbench/).
PGBENCH_SCRIPTS=()
if has pgbench; then
  if [ -n "${BENCH_PGBENCH_SCRIPTS:-}" ]; then
    for f in $BENCH_PGBENCH_SCRIPTS; do
      [ -f "$f" ] || f=$ROOT/bench/pgbench/$f
      [ -f "$f" ] || { echo "run.sh: no pgbench script $f" >&2; exit 2; }
      PGBENCH_SCRIPTS+=("$(realpath "$f")")
    done
  else
    for f in "$ROOT"/bench/pgbench/*.sql; do [ -f "$f" ] && PGBENCH_SCRIPTS+=("$f"); done
  fi
  [ "${#PGBENCH_SCRIPTS[@]}" -gt 0 ] || { echo "run.sh: no bench/pgbench/*.sql" >&2; exit 2; }
fi

# Streams need descriptors: LuluClaw holds one socket per stream, two when the model call is a real
# HTTP request. Raise the soft limit to the hard one (raising the hard limit needs privileges).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
[ "$FD_LIMIT" != unlimited ] || FD_LIMIT=1048576

for tool in wrk dotnet curl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (Debian: apt-get install wrk curl)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/luluclaw-bench.XXXXXX)
RESULTS=$WORK/results.tsv
: > "$RESULTS"

# :: Processes: everything started here is remembered by pid and stopped on exit.

PIDS=()
PG_DIR=""
PG_BIN=""
cleanup() {
  local code=$?
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$PG_DIR" ]; then
    run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ "$code" != 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    echo "run.sh: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop PID...: stops processes this script started
  local pid
  for pid in "$@"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

run_pg() {
  # PostgreSQL refuses to run as root: use the postgres user then.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

free_port() {
  local port
  while true; do
    port=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

wait_http() { # wait_http URL PID NAME: until URL answers (any status), or PID died, or 90 s
  local url=$1 pid=$2 name=$3 i
  for i in $(seq 1 450); do
    if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: $name exited; its log:" >&2
      tail -n 30 "$WORK/$name.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "run.sh: $name did not answer on $url within 90 s" >&2
  exit 1
}

# :: Build (Release, outside the source tree's bin/ so as not to collide with other builds)

SRC=$ROOT
build() { # build PROJECT NAME
  log "building $1"
  if ! dotnet build -c Release "$SRC/$1" -o "$BUILD/$2" -nologo -v q > "$WORK/build-$2.log" 2>&1; then
    cat "$WORK/build-$2.log" >&2
    exit 1
  fi
}

# :: CPU accounting (ticks of user + system time, from /proc)

# snapshot "SERVER_PID..." "DEP_PID..." USE_PG: the clock and the CPU counters read at nearly one
# instant (builtins only, no process started between the reads), as
# "uptime_seconds machine_ticks steal_ticks server_ticks dep_ticks". Machine: user, nice, system,
# irq and softirq of all cores; steal apart (time the hypervisor gave to others). With USE_PG 1 the
# dependency includes the throwaway PostgreSQL: the postmaster with its reaped children, and its
# live children.
snapshot() {
  local lines="" line p pm="" children=""
  if [ "$3" = 1 ] && [ -n "$PG_DIR" ] && [ -r "$PG_DIR/data/postmaster.pid" ]; then
    read -r pm < "$PG_DIR/data/postmaster.pid"
    children=$(pgrep -P "$pm" || true)
  fi
  read -r line < /proc/uptime && lines+="U $line"$'\n'
  read -r line < /proc/stat && lines+="M $line"$'\n'
  for p in $1; do read -r line 2>/dev/null < "/proc/$p/stat" && lines+="S $line"$'\n'; done
  for p in $2 $children; do read -r line 2>/dev/null < "/proc/$p/stat" && lines+="D $line"$'\n'; done
  if [ -n "$pm" ]; then read -r line 2>/dev/null < "/proc/$pm/stat" && lines+="P $line"$'\n'; fi
  awk '
    $1 == "U" { up = $2; next }
    $1 == "M" { mach = $3 + $4 + $5 + $8 + $9; steal = $10; next }
    {
      kind = $1
      sub(/^.*\) /, "")  # after "pid (comm) ", field 1 is the state: utime is 12, stime 13, cutime 14, cstime 15
      t = $12 + $13 + (kind == "P" ? $14 + $15 : 0)
      if (kind == "S") srv += t; else dep += t
    }
    END { printf "%s %d %d %d %d\n", up, mach, steal, srv, dep }' <<< "$lines"
}

busy_cores() { # busy_cores SECONDS: how many cores the whole machine keeps busy over SECONDS
  local before after
  before=$(snapshot "" "" 0)
  sleep "$1"
  after=$(snapshot "" "" 0)
  awk -v b="$before" -v a="$after" -v c="$CLK" 'BEGIN { split(b, x, " "); split(a, y, " "); printf "%.2f", (y[2] - x[2]) / c / (y[1] - x[1]) }'
}

wait_quiet() { # with BENCH_QUIET_WAIT: wait until the machine (our idle servers included) keeps under 0.25 cores busy
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  local waited=0 busy
  while busy=$(busy_cores 2); awk -v b="$busy" 'BEGIN { exit !(b >= 0.25) }'; do
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "the machine is still busy ($busy cores) after ${waited}s; measuring anyway"
      return 0
    fi
    [ "$waited" -gt 0 ] || log "waiting for the machine to go quiet ($busy cores busy)"
    waited=$(( waited + 2 ))
  done
}

children_seconds() { # children_seconds FILE: CPU seconds of reaped children, from the times builtin's output in FILE
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] } print t }' "$1"
}

# :: LuluClaw

# Settings of every LuluClaw process here. The key plan "bench" has no limits (an empty value binds
# to null, which is unlimited), and workspaces get plan byok (no hourly cap), so nothing is refused.
silo_env=(
  ASPNETCORE_ENVIRONMENT=Production
  "Admin__Token=$ADMIN"
  Demo__Seed=false
  Logging__LogLevel__Default=Warning
  Plans__Key__bench__RequestsPerMinute=
  Plans__Key__bench__RequestsPerHour=
  Plans__Key__bench__RequestsPerDay=
)
# Experiments: extra settings, word-split on spaces.
read -r -a extra_env <<< "${BENCH_SILO_ENV:-}"
silo_env+=("${extra_env[@]}")

SILO_PID=""
SILO_BUILD=silo
start_silo() { # start_silo NAME PORT VAR=VALUE...: starts a LuluClaw process (the build in SILO_BUILD) on its own Orleans ports, its pid in SILO_PID
  local name=$1 port=$2
  shift 2
  env "${silo_env[@]}" Cluster__SiloPort="$(free_port)" Cluster__GatewayPort="$(free_port)" "$@" \
    dotnet "$BUILD/$SILO_BUILD/LuluClaw.Silo.dll" --urls "http://127.0.0.1:$port" > "$WORK/$name.log" 2>&1 &
  SILO_PID=$!
  PIDS+=("$SILO_PID")
}

sqlite_env() { # sqlite_env NAME: sets SQLITE_ENV to the storage settings of a fresh SQLite file
  SQLITE_ENV=(Storage__Provider=sqlite "ConnectionStrings__LuluClaw=Data Source=$WORK/$1.db")
}

json_field() { # json_field NAME < JSON: the first string value of NAME
  grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | sed 's/.*:"\(.*\)"/\1/'
}

WS_IDS=()
make_keys() { # make_keys PORT COUNT: COUNT workspaces (byok, 10^9 credits) with a key each; sets KEYS and WS_IDS
  local port=$1 count=$2 i ws key
  KEYS=""
  WS_IDS=()
  for i in $(seq 1 "$count"); do
    ws=$(curl -sf "http://127.0.0.1:$port/api/admin/workspaces" -H "Authorization: Bearer $ADMIN" \
      -H "Content-Type: application/json" -d "{\"name\":\"bench $i\",\"plan\":\"byok\",\"credits\":1000000000}" | json_field id)
    key=$(curl -sf "http://127.0.0.1:$port/api/admin/workspaces/$ws/keys" -H "Authorization: Bearer $ADMIN" \
      -H "Content-Type: application/json" -d '{"scopes":["chat"],"plan":"bench"}' | json_field key)
    [ -n "$ws" ] && [ -n "$key" ] || { echo "run.sh: could not create a workspace and key on port $port" >&2; exit 1; }
    WS_IDS+=("$ws")
    KEYS="${KEYS:+$KEYS,}$key"
  done
}

check_chat() { # check_chat PORT EXPECT: one turn must answer 200 with a reply containing EXPECT
  local port=$1 expect=$2 body
  body=$(curl -s -w ' HTTP%{http_code}' "http://127.0.0.1:$port/api/gateway/chat" -H "Authorization: Bearer ${KEYS%%,*}" \
    -H "Content-Type: application/json" -d '{"message":"Hello! What can you help me with?","session_id":"bench-check"}')
  if [[ "$body" != *"HTTP200" || "$body" != *"$expect"* ]]; then
    echo "run.sh: the check turn on port $port failed: $body" >&2
    exit 1
  fi
}

# :: PostgreSQL

PG_PORT=""
start_postgres() {
  [ -z "${LULUCLAW_BENCH_POSTGRES:-}" ] || return 0
  [ -z "$PG_DIR" ] || return 0
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "run.sh: no PostgreSQL binaries (apt-get install postgresql) and LULUCLAW_BENCH_POSTGRES unset" >&2
    exit 1
  fi
  PG_DIR=$(mktemp -d /tmp/luluclaw-bench-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  PG_PORT=$(free_port)
  run_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  # fsync stays on: turns are acknowledged only once durable, and that is what is measured.
  run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300 -c fsync=on" start >/dev/null
  log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') started on 127.0.0.1:$PG_PORT (fsync on)"
}

pg_database() { # pg_database NAME: a connection string to a fresh database NAME (or the given server)
  if [ -n "${LULUCLAW_BENCH_POSTGRES:-}" ]; then
    echo "$LULUCLAW_BENCH_POSTGRES${BENCH_PG_CONN_EXTRA:+;$BENCH_PG_CONN_EXTRA}"
    return
  fi
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1"
  echo "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$1${BENCH_PG_CONN_EXTRA:+;$BENCH_PG_CONN_EXTRA}"
}

# :: wrk

parse_wrk() { # parse_wrk FILE: "rps p50_ms p99_ms requests non2xx socket_errors"
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v + 0
    }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { requests = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(",", ""); errors = $4 + $6 + $8 + $10 }
    END { printf "%.1f %.3f %.3f %d %d %d\n", rps, p50, p99, requests, non2xx, errors }' "$1"
}

# measure ID SECONDS CLIENTS MODE "URL..." "SERVER_PID..." "DEP_PID..." [KEYS TAG]
# Runs one wrk per URL at the same time, the clients split between them (each with 1 thread when
# there are several), and prints "rps p50 p99 requests non2xx errors cpu_server cpu_dep cpu_wrk
# cpu_other steal": rps, requests and failures summed; p50 the request-weighted mean of the runs'
# p50; p99 the worst run's p99; CPU in cores: the servers' processes, the dependency's ("pg" for
# the throwaway PostgreSQL), wrk's, every other process on the machine, and the hypervisor's steal.
# MODE chat posts gateway turns (bench/wrk/chat.lua), openai posts to the stub.
measure() {
  local id=$1 seconds=$2 clients=$3 mode=$4 urls=($5) servers=($6) deps=($7) keys=${8:-} tag=${9:-}
  local n=${#urls[@]} i c threads pool out use_pg=0 ndeps=${#deps[@]}
  local wpids=() outs=()
  local before after wrk0 wrk1
  if [[ " ${deps[*]} " == *" pg "* ]]; then
    use_pg=1
    deps=(${deps[@]/pg/})
  fi
  times > "$WORK/times-$id-0"  # in this shell: the CPU time of its reaped children so far
  before=$(snapshot "${servers[*]}" "${deps[*]}" "$use_pg")
  for i in "${!urls[@]}"; do
    c=$(( clients / n + (i < clients % n ? 1 : 0) ))
    [ "$c" -gt 0 ] || continue
    threads=$(( c < WRK_THREADS ? c : WRK_THREADS ))
    [ "$n" -gt 1 ] && threads=1
    out="$WORK/wrk-$id-$i.txt"
    outs+=("$out")
    if [ "$mode" = chat ]; then
      pool=$(( 4 * ((c + threads - 1) / threads) ))
      wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 10s --latency -s "$ROOT/bench/wrk/chat.lua" "${urls[$i]}" \
        -- "$keys" "$tag-n$i" "$pool" "$TURNS_PER_SESSION" > "$out" 2>&1 &
    else
      wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 10s --latency -s "$ROOT/bench/wrk/openai.lua" "${urls[$i]}" > "$out" 2>&1 &
    fi
    wpids+=($!)
  done
  PIDS+=("${wpids[@]}")
  for i in "${wpids[@]}"; do wait "$i" || true; done
  after=$(snapshot "${servers[*]}" "${deps[*]}" "$use_pg")
  times > "$WORK/times-$id-1"
  wrk0=$(children_seconds "$WORK/times-$id-0")
  wrk1=$(children_seconds "$WORK/times-$id-1")
  for out in "${outs[@]}"; do parse_wrk "$out"; done | awk -v before="$before" -v after="$after" \
    -v wrk="$(awk -v a="$wrk0" -v b="$wrk1" 'BEGIN { print b - a }')" -v clk="$CLK" -v hasdep="$ndeps" '
    BEGIN {
      split(before, b, " "); split(after, a, " ")
      s = a[1] - b[1]; mach = a[2] - b[2]; steal = a[3] - b[3]; srv = a[4] - b[4]; dep = a[5] - b[5]
    }
    { rps += $1; w += $4 * $2; if ($3 > p99) p99 = $3; req += $4; non += $5; err += $6 }
    END {
      other = mach / clk - srv / clk - dep / clk - wrk
      printf "%.1f %.3f %.3f %d %d %d %.2f %s %.2f %.2f %.2f\n", rps, (req > 0 ? w / req : 0), p99, req, non, err,
        srv / clk / s, (hasdep == 0 ? "-" : sprintf("%.2f", dep / clk / s)), wrk / s, (other > 0 ? other / s : 0), steal / clk / s
    }'
}

# record SECTION CONFIG CLIENTS "measure output": one result row, also shown as it comes
record() {
  local section=$1 config=$2 clients=$3 m=($4)
  printf '%s\t%s\t%s\t%s\n' "$section" "$config" "$clients" "$(IFS=$'\t'; echo "${m[*]}")" >> "$RESULTS"
  printf '  %-26s %4s clients  %9s req/s  p50 %8s ms  p99 %8s ms  non-2xx %s  errors %s  cpu server %s dep %s wrk %s other %s steal %s\n' \
    "$config" "$clients" "${m[0]}" "${m[1]}" "${m[2]}" "${m[4]}" "${m[5]}" "${m[6]}" "${m[7]}" "${m[8]}" "${m[9]}" "${m[10]}" >&2
}

sample_failure() { # after a run with non-2xx answers, show what one turn answers now
  local port=$1
  log "a sample turn answers: $(curl -s -w ' (HTTP %{http_code})' "http://127.0.0.1:$port/api/gateway/chat" \
    -H "Authorization: Bearer ${KEYS%%,*}" -H "Content-Type: application/json" -d '{"message":"sample","session_id":"bench-sample"}')"
}

# chat_runs SECTION CONFIG "PORT..." "SERVER_PID..." "DEP_PID..." ["CLIENTS..."]: warm-up, then
# each client count (default BENCH_CLIENTS)
chat_runs() {
  local section=$1 config=$2 ports=($3) servers=$4 deps=$5 clients=${6:-$CLIENTS} urls=() p c m
  for p in "${ports[@]}"; do urls+=("http://127.0.0.1:$p"); done
  log "$config: warm-up ${WARMUP}s at 64 clients"
  measure "$config-warmup" "$WARMUP" 64 chat "${urls[*]}" "$servers" "$deps" "$KEYS" "warm" > /dev/null
  for c in $clients; do
    wait_quiet
    m=$(measure "$config-$c" "$S" "$c" chat "${urls[*]}" "$servers" "$deps" "$KEYS" "c$c")
    record "$section" "$config" "$c" "$m"
    set -- $m
    [ "$5" = 0 ] || sample_failure "${ports[0]}"
  done
}

# :: Sections

section_bare() {
  local port pid
  port=$(free_port)
  "$BUILD/bare/LuluClaw.Bench.Bare" --port "$port" > "$WORK/bare.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/health" "$pid" bare
  KEYS=bench-not-checked
  chat_runs gateway "bare ASP.NET Core" "$port" "$pid" ""
  stop "$pid"
}

section_sqlite() { # section_sqlite [BUILD LABEL]: the default build, or another (the baseline)
  local build=${1:-silo} label=${2:-"SQLite, 1 node"} port pid
  [ "$WORKSPACES" = 1 ] || label="$label, $WORKSPACES workspaces"
  port=$(free_port)
  sqlite_env "$build-sqlite"
  SILO_BUILD=$build
  start_silo "$build-sqlite" "$port" "${SQLITE_ENV[@]}" Llm__Provider=echo
  SILO_BUILD=silo
  pid=$SILO_PID
  wait_http "http://127.0.0.1:$port/openapi/v1.json" "$pid" "$build-sqlite"
  make_keys "$port" "$WORKSPACES"
  check_chat "$port" '"reply":"Echo: Hello'
  chat_runs gateway "$label" "$port" "$pid" ""
  stop "$pid"
}

# Three silos of one cluster; each trial starts a session through the third silo and checks that it
# lives there (the admin API names a session's silo), kills that silo with SIGKILL, and times until the session's next turn through
# the first silo is answered. The third silo is then started again and rejoins before the next trial.
section_failover() {
  local conn i trial session silo t0 t1 code ports=() pids=() siloports=()
  start_postgres
  conn=$(pg_database "bench_failover_$RANDOM")
  for i in 0 1 2; do
    ports+=("$(free_port)"); siloports+=("$(free_port)")
    start_silo "failover-node$i" "${ports[$i]}" Storage__Provider=postgres "ConnectionStrings__LuluClaw=$conn" Llm__Provider=echo \
      Cluster__SiloPort="${siloports[$i]}"
    pids+=("$SILO_PID")
  done
  for i in 0 1 2; do wait_http "http://127.0.0.1:${ports[$i]}/openapi/v1.json" "${pids[$i]}" "failover-node$i"; done
  make_keys "${ports[0]}" 1
  for trial in $(seq 1 "$FAILOVER_TRIALS"); do
    wait_active "${ports[0]}" 3
    session=""
    for i in $(seq 1 300); do
      # Its first turn enters through the third silo, where sessions are placed (PreferLocalPlacement).
      curl -sf -o /dev/null "http://127.0.0.1:${ports[2]}/api/gateway/chat" -H "Authorization: Bearer ${KEYS%%,*}" \
        -H "Content-Type: application/json" -d "{\"message\":\"before\",\"session_id\":\"fo-$trial-$i\"}" || continue
      silo=$(curl -sf "http://127.0.0.1:${ports[0]}/api/admin/workspaces/${WS_IDS[0]}/sessions/fo-$trial-$i/messages" -H "Authorization: Bearer $ADMIN" | json_field silo)
      if [[ "$silo" == *":${siloports[2]}@"* ]]; then session=fo-$trial-$i; break; fi
    done
    [ -n "$session" ] || { echo "run.sh: no session was placed on the third silo" >&2; exit 1; }
    kill -9 "${pids[2]}"
    t0=$(date +%s%N)
    while true; do
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${ports[0]}/api/gateway/chat" -H "Authorization: Bearer ${KEYS%%,*}" \
        -H "Content-Type: application/json" -d "{\"message\":\"after\",\"session_id\":\"$session\"}") || true
      [ "$code" != 200 ] || break
      if [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 60000 ]; then echo "run.sh: $session never answered after the kill" >&2; exit 1; fi
      sleep 0.02
    done
    t1=$(date +%s%N)
    printf 'failover\t%s\t%s\n' "$trial" "$(( (t1 - t0) / 1000000 ))" >> "$RESULTS"
    log "failover trial $trial: $session answered on a survivor $(( (t1 - t0) / 1000000 )) ms after kill -9"
    start_silo "failover-node2-$trial" "${ports[2]}" Storage__Provider=postgres "ConnectionStrings__LuluClaw=$conn" Llm__Provider=echo \
      Cluster__SiloPort="${siloports[2]}"
    pids[2]=$SILO_PID
    wait_http "http://127.0.0.1:${ports[2]}/openapi/v1.json" "${pids[2]}" "failover-node2-$trial"
  done
  stop "${pids[@]}"
}

wait_active() { # wait_active PORT N: until the cluster shows N active silos (60 s at most)
  local i
  for i in $(seq 1 300); do
    [ "$(curl -sf "http://127.0.0.1:$1/api/admin/cluster" -H "Authorization: Bearer $ADMIN" | grep -o '"status":"active"' | wc -l)" -ge "$2" ] && return 0
    sleep 0.2
  done
  echo "run.sh: the cluster did not show $2 active silos within 60 s" >&2
  exit 1
}

# section_postgres NODES WORKSPACES ["CLIENTS..." [BUILD]]: NODES LuluClaw processes (the build in
# BUILD, default the current one) on a fresh database, the load spread over WORKSPACES workspaces.
# The configuration names the workspaces when there are several, and the baseline build.
section_postgres() {
  local nodes=$1 workspaces=$2 clients=${3:-$CLIENTS} build=${4:-silo} i ports=() pids=() conn name label
  start_postgres
  conn=$(pg_database "bench_nodes_${nodes}_${workspaces}_${build}_$RANDOM")
  SILO_BUILD=$build
  for i in $(seq 1 "$nodes"); do
    ports+=("$(free_port)")
    name="pg$nodes-ws$workspaces-$build-node$i"
    start_silo "$name" "${ports[-1]}" Storage__Provider=postgres "ConnectionStrings__LuluClaw=$conn" Llm__Provider=echo
    pids+=("$SILO_PID")
  done
  SILO_BUILD=silo
  for i in "${!ports[@]}"; do wait_http "http://127.0.0.1:${ports[$i]}/openapi/v1.json" "${pids[$i]}" "pg$nodes-ws$workspaces-$build-node$((i + 1))"; done
  make_keys "${ports[0]}" "$workspaces"
  for i in "${ports[@]}"; do check_chat "$i" '"reply":"Echo: Hello'; done
  label="PostgreSQL, $nodes node"; [ "$nodes" = 1 ] || label="${label}s"
  [ "$workspaces" = 1 ] || label="$label, $workspaces workspaces"
  [ "$build" = silo ] || label="$label, $BASELINE_LABEL"
  chat_runs gateway "$label" "${ports[*]}" "${pids[*]}" pg "$clients"
  stop "${pids[@]}"
}

# :: pgbench: what PostgreSQL itself sustains for a turn's writes

PGBENCH_CLIENTS=64
PGBENCH_RUN=$(( (RANDOM % 9000 + 1000) * 100 ))  # the scripts' "run" variable: new for each pgbench invocation (section_pgbench counts on), 6 digits at most
PSQL=""
PGBENCH=""

libpq_conn() { # libpq_conn CONN: an Npgsql connection string as a libpq one (host, port, user, password, database; other keys dropped)
  awk -v c="$1" '
    function add(name, v,    i, ch, q) {  # quoted, with a backslash before each backslash and quote
      for (i = 1; i <= length(v); i++) { ch = substr(v, i, 1); q = q (ch == "\\" || ch == "'\''" ? "\\" : "") ch }
      out = out (out == "" ? "" : " ") name "='\''" q "'\''"
    }
    BEGIN {
      n = split(c, parts, ";")
      for (i = 1; i <= n; i++) {
        eq = index(parts[i], "="); if (eq == 0) continue
        k = tolower(substr(parts[i], 1, eq - 1)); gsub(/[ \t]/, "", k); v = substr(parts[i], eq + 1)
        if (k == "host" || k == "server") add("host", v)
        else if (k == "port") add("port", v)
        else if (k == "username" || k == "userid" || k == "user") add("user", v)
        else if (k == "password") add("password", v)
        else if (k == "database" || k == "db") add("dbname", v)
      }
      print out
    }'
}

pg_sql() { # pg_sql CONNINFO SQL: runs SQL with psql, prints the rows unaligned (fields separated by spaces)
  "$PSQL" -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

pg_has_pending() { # pg_has_pending CONNINFO: whether the schema keeps pending turns in a table of their own (0008 on)
  [ "$(pg_sql "$1" "SELECT to_regclass('pending_turns') IS NOT NULL")" = t ]
}

pg_counts() { # pg_counts CONNINFO: "turns done_turns messages sessions", the rows of the tables a turn writes
  if pg_has_pending "$1"; then
    pg_sql "$1" "SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM turns) - (SELECT count(*) FROM pending_turns), (SELECT count(*) FROM messages), (SELECT count(*) FROM sessions)"
  else
    pg_sql "$1" "SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM turns WHERE status = 'done'), (SELECT count(*) FROM messages), (SELECT count(*) FROM sessions)"
  fi
}

# measure_pgbench ID SECONDS SCRIPT WORKSPACES CONNINFO RUN: one pgbench run of SCRIPT,
# PGBENCH_CLIENTS clients on 2 threads, prepared statements (as Npgsql prepares LuluClaw's), and the
# variables every script gets (see bench/pgbench/turn-today.sql; RUN must be new for each call).
# Prints "tps transactions failed aborted latency_ms cpu_pg cpu_pgbench cpu_other steal": pgbench's
# figures (aborted: clients that stopped on an error; all of them if pgbench itself failed), CPU in
# cores as in measure (PostgreSQL's processes, pgbench, every other process, the hypervisor's steal).
measure_pgbench() {
  local id=$1 seconds=$2 script=$3 workspaces=$4 conninfo=$5 run=$6 out="$WORK/pgbench-$1.txt" pid rc=0 before after cpu0 cpu1
  times > "$WORK/times-$id-0"
  before=$(snapshot "" "" 1)
  "$PGBENCH" -n -M prepared -c "$PGBENCH_CLIENTS" -j 2 -T "$seconds" -f "$script" \
    -D workspaces="$workspaces" -D run="$run" -D turns_per_session="$TURNS_PER_SESSION" -D n=0 "$conninfo" > "$out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  after=$(snapshot "" "" 1)
  times > "$WORK/times-$id-1"
  cpu0=$(children_seconds "$WORK/times-$id-0")
  cpu1=$(children_seconds "$WORK/times-$id-1")
  if [ "$rc" != 0 ] || ! grep -q '^number of failed transactions: 0 ' "$out"; then
    log "pgbench $id exited with $rc; its first errors and its summary:"
    { grep -m 3 ' error: ' "$out" || true; grep -E '^(number of (transactions|failed)|tps = )' "$out" || true; } | sed 's/^/  /' >&2
  fi
  awk -v before="$before" -v after="$after" -v pgb="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" -v clk="$CLK" \
    -v rc="$rc" -v clients="$PGBENCH_CLIENTS" -v turns="${PGB_TURNS:-1}" -v pg="$([ -n "$PG_DIR" ] && echo 1 || echo 0)" '
    /^number of transactions actually processed:/ { split($6, t, "/"); tx = t[1] }
    /^number of failed transactions:/ { failed = $5 }
    /^latency average = / { lat = $4 }
    /^tps = / { tps = $3 }
    / aborted in command / { aborted++ }
    END {
      split(before, b, " "); split(after, a, " ")
      s = a[1] - b[1]; mach = a[2] - b[2]; steal = a[3] - b[3]; dep = a[5] - b[5]
      if (rc != 0 && aborted == 0) aborted = clients
      other = mach / clk - dep / clk - pgb
      # PostgreSQL CPU is known only for the throwaway server (its processes are ours to read).
      printf "%.1f %d %d %d %.3f %s %.2f %.2f %.2f\n", tps * turns, tx * turns, failed, aborted, lat, (pg ? sprintf("%.2f", dep / clk / s) : "-"), pgb / s, (other > 0 ? other / s : 0), steal / clk / s
    }' "$out"
}

# record_pgbench SCRIPT WORKSPACES "measure_pgbench output" "counts before" "counts after": one result
# row, with the rows the run added to turns (all, done), messages and sessions
record_pgbench() {
  local name=$1 workspaces=$2 m=($3) c0=($4) c1=($5) d=() i
  for i in 0 1 2 3; do d+=($(( c1[i] - c0[i] ))); done
  printf 'pgbench\t%s\t%s\t%s\t%s\t%s\n' "$name" "$workspaces" "$PGBENCH_CLIENTS" "$(IFS=$'\t'; echo "${m[*]}")" "$(IFS=$'\t'; echo "${d[*]}")" >> "$RESULTS"
  printf '  pgbench %-20s %3s workspaces %4s clients  %9s turns/s  failed %s  aborted clients %s  cpu PostgreSQL %s pgbench %s other %s steal %s  rows: +%s turns (%s done), +%s messages, +%s sessions\n' \
    "$name" "$workspaces" "$PGBENCH_CLIENTS" "${m[0]}" "${m[2]}" "${m[3]}" "${m[5]}" "${m[6]}" "${m[7]}" "${m[8]}" "${d[0]}" "${d[1]}" "${d[2]}" "${d[3]}" >&2
}

# The ceiling: LuluClaw's real schema (the current build runs its migrations on a fresh database at
# start), its workspaces and keys made through the admin API as for the chat rows, the silo stopped;
# then every script, once with all clients on one workspace and once spread over MANY_WORKSPACES.
# pgbench_database BUILD: a fresh database whose schema BUILD's silo made (its migrations ran at its
# start), with MANY_WORKSPACES workspaces (a key each) made through its admin API and the pick table
# the scripts read; sets PGB_CONNINFO
pgbench_database() {
  local build=$1 conn port pid many
  conn=$(pg_database "bench_pgbench_${build}_$RANDOM")
  PGB_CONNINFO=$(libpq_conn "$conn")
  port=$(free_port)
  SILO_BUILD=$build
  start_silo "pgbench-schema-$build" "$port" Storage__Provider=postgres "ConnectionStrings__LuluClaw=$conn" Llm__Provider=echo
  SILO_BUILD=silo
  pid=$SILO_PID
  wait_http "http://127.0.0.1:$port/openapi/v1.json" "$pid" "pgbench-schema-$build"
  many=$(( MANY_WORKSPACES > 1 ? MANY_WORKSPACES : 1 ))
  make_keys "$port" "$many"
  stop "$pid"
  # The scripts take their workspace from this table rather than from -D variables: pgbench cannot
  # pick one of 64 variables by number, but a client can read row (client_id mod W) once, on its
  # first run, outside the turn's transactions. Row 0 (the first workspace made) serves the
  # one-workspace runs. Each row: the workspace, its key and its primary bot, as a chat turn names them.
  pg_sql "$PGB_CONNINFO" "SET client_min_messages TO warning; DROP TABLE IF EXISTS pgbench_pick;
    CREATE TABLE pgbench_pick AS SELECT (row_number() OVER (ORDER BY w.created_at, w.id) - 1)::int AS n,
      w.id AS workspace_id, k.id AS key_id, w.primary_bot_id AS bot_id
    FROM workspaces w JOIN api_keys k ON k.workspace_id = w.id
    WHERE w.id IN ($(printf "'%s'," "${WS_IDS[@]}" | sed 's/,$//'));
    ALTER TABLE pgbench_pick ADD PRIMARY KEY (n);"
  [ "$(pg_sql "$PGB_CONNINFO" "SELECT count(*) FROM pgbench_pick")" = "$many" ] || { echo "run.sh: pgbench_pick does not hold $many workspaces with a key each" >&2; exit 1; }
}

section_pgbench() {
  local conninfo script name many runs ws warm m c0 c1 schema clients
  start_postgres
  if [ -n "$PG_BIN" ]; then PSQL=$PG_BIN/psql; PGBENCH=$PG_BIN/pgbench; else PSQL=$(command -v psql || true); PGBENCH=$(command -v pgbench || true); fi
  if [ ! -x "$PSQL" ] || [ ! -x "$PGBENCH" ]; then
    echo "run.sh: the pgbench section needs pgbench and psql (apt-get install postgresql)" >&2
    exit 1
  fi
  # A script's schema is that of the build its "--@ schema:" line names: "baseline" (the build of
  # BENCH_BASELINE, whose writes turn-today.sql makes) or "current" (the default).
  declare -A conninfos=()
  many=$(( MANY_WORKSPACES > 1 ? MANY_WORKSPACES : 1 ))
  runs=1; [ "$many" = 1 ] || runs="1 $many"
  # PostgreSQL has no JIT to wait for: a short warm-up fills its caches and prepares the statements.
  warm=$(( WARMUP < 5 ? WARMUP : 5 ))
  for script in "${PGBENCH_SCRIPTS[@]}"; do
    name=$(basename "$script" .sql)
    schema=$(sed -n 's/^--@ schema: *//p' "$script" | head -n 1)
    if [ "$schema" = baseline ]; then
      if [ -z "$BASELINE" ]; then log "pgbench $name: needs the baseline's schema and BENCH_BASELINE is empty; skipped"; continue; fi
      schema=baseline
    else
      schema=silo
    fi
    if [ -z "${conninfos[$schema]:-}" ]; then pgbench_database "$schema"; conninfos[$schema]=$PGB_CONNINFO; fi
    conninfo=${conninfos[$schema]}
    # A script may batch several turns in one run ("--@ turns: N", default 1) and ask for fewer
    # clients ("--@ clients: N", default PGBENCH_CLIENTS): turns/s is then tps x N.
    PGB_TURNS=$(sed -n 's/^--@ turns: *//p' "$script" | head -n 1); PGB_TURNS=${PGB_TURNS:-1}
    clients=$(sed -n 's/^--@ clients: *//p' "$script" | head -n 1)
    # The script's own description for the report: its lines that start with "--| ".
    printf 'pgbench-script\t%s\t%s\n' "$name" "$(sed -n 's/^--| \{0,1\}//p' "$script" | tr '\t\n' '  ' | sed 's/ *$//')" >> "$RESULTS"
    for ws in $runs; do
      # Each run starts from empty turn tables, as LuluClaw's rows start from a fresh database (not
      # on a given server: its rows stay).
      [ -n "${LULUCLAW_BENCH_POSTGRES:-}" ] || pg_sql "$conninfo" "TRUNCATE turns, sessions, messages$(pg_has_pending "$conninfo" && echo ", pending_turns")"
      local saved_clients=$PGBENCH_CLIENTS
      PGBENCH_CLIENTS=${clients:-$PGBENCH_CLIENTS}
      log "pgbench $name, $ws workspace(s), $PGBENCH_CLIENTS clients: warm-up ${warm}s"
      PGBENCH_RUN=$(( PGBENCH_RUN + 2 ))
      measure_pgbench "$name-$ws-warmup" "$warm" "$script" "$ws" "$conninfo" "$(( PGBENCH_RUN - 1 ))" > /dev/null
      wait_quiet
      c0=$(pg_counts "$conninfo")
      m=$(measure_pgbench "$name-$ws" "$S" "$script" "$ws" "$conninfo" "$PGBENCH_RUN")
      c1=$(pg_counts "$conninfo")
      record_pgbench "$name" "$ws" "$m" "$c0" "$c1"
      PGBENCH_CLIENTS=$saved_clients
    done
  done
  for conninfo in "${conninfos[@]}"; do pg_sql "$conninfo" "DROP TABLE pgbench_pick"; done
}

section_provider() {
  local stub_port stub_pid port pid c m
  stub_port=$(free_port)
  "$BUILD/stub/LuluClaw.Bench.Stub" --port "$stub_port" > "$WORK/stub.log" 2>&1 &
  stub_pid=$!
  PIDS+=("$stub_pid")
  wait_http "http://127.0.0.1:$stub_port/control/stats" "$stub_pid" stub
  local direct="http://127.0.0.1:$stub_port/v1/chat/completions"
  log "stub direct: warm-up ${WARMUP}s"
  measure stub-warmup "$WARMUP" 64 openai "$direct" "$stub_pid" "" > /dev/null
  for c in 1 64; do
    wait_quiet
    m=$(measure "stub-$c" "$S" "$c" openai "$direct" "$stub_pid" "")
    record provider "stub direct" "$c" "$m"
  done

  port=$(free_port)
  sqlite_env provider
  start_silo provider "$port" "${SQLITE_ENV[@]}" Llm__Provider= \
    "Llm__OpenAI__BaseUrl=http://127.0.0.1:$stub_port/v1" Llm__OpenAI__ApiKey=bench
  pid=$SILO_PID
  wait_http "http://127.0.0.1:$port/openapi/v1.json" "$pid" provider
  make_keys "$port" "$WORKSPACES"
  check_chat "$port" '"reply":"Stub reply'
  log "LuluClaw via stub: warm-up ${WARMUP}s"
  measure lulu-stub-warmup "$WARMUP" 64 chat "http://127.0.0.1:$port" "$pid" "$stub_pid" "$KEYS" warm > /dev/null
  for c in 1 64; do
    wait_quiet
    m=$(measure "lulu-stub-$c" "$S" "$c" chat "http://127.0.0.1:$port" "$pid" "$stub_pid" "$KEYS" "c$c")
    record provider "LuluClaw (SQLite) -> stub" "$c" "$m"
    set -- $m
    [ "$5" = 0 ] || sample_failure "$port"
  done
  stop "$pid" "$stub_pid"
}

# One streams step: a fresh LuluClaw (SQLite) holds N streams from bench/LoadGen.
#   stub mode: the OpenAI provider points at the stub, which holds each answer after its first piece
#              of text (LuluClaw then holds two sockets per stream: the client's and the stub's)
#   echo mode: the echo model waits long enough for all N to be admitted before any answers
sse_step() { # sse_step N MODE: appends an "sse" row
  local n=$1 mode=$2 port pid stub_port="" stub_pid="" delay timeout line
  timeout=$(( 60 + n / 50 ))
  port=$(free_port)
  if [ "$mode" = stub ]; then
    stub_port=$(free_port)
    "$BUILD/stub/LuluClaw.Bench.Stub" --port "$stub_port" > "$WORK/sse-stub-$n.log" 2>&1 &
    stub_pid=$!
    PIDS+=("$stub_pid")
    wait_http "http://127.0.0.1:$stub_port/control/stats" "$stub_pid" "sse-stub-$n"
    sqlite_env "sse-$n"
    start_silo "sse-$n" "$port" "${SQLITE_ENV[@]}" Llm__Provider= Llm__TimeoutSeconds=900 \
      "Llm__OpenAI__BaseUrl=http://127.0.0.1:$stub_port/v1" Llm__OpenAI__ApiKey=bench
  else
    # Long enough for every turn to be admitted first (about 1 ms each on SQLite, at 1000 starts/s).
    delay=$(( 20000 + n * 4 ))
    sqlite_env "sse-$n"
    start_silo "sse-$n" "$port" "${SQLITE_ENV[@]}" Llm__Provider=echo Llm__TimeoutSeconds=900 \
      "Llm__Echo__DelayMilliseconds=$delay"
  fi
  pid=$SILO_PID
  wait_http "http://127.0.0.1:$port/openapi/v1.json" "$pid" "sse-$n"
  make_keys "$port" 1
  wait_quiet
  log "streams: $n at once ($mode mode)"
  local args=(--url "http://127.0.0.1:$port" --key "$KEYS" --streams "$n" --pid "$pid" --tag "sse$n" \
    --rate 1000 --timeout-seconds "$timeout" --mode "$mode")
  if [ "$mode" = stub ]; then
    args+=(--stub "http://127.0.0.1:$stub_port")
  else
    args+=(--admin-token "$ADMIN" --workspace "${WS_IDS[0]}")
  fi
  "$BUILD/loadgen/LuluClaw.Bench.LoadGen" "${args[@]}" > "$WORK/loadgen-$n.txt" 2> >(tee "$WORK/loadgen-$n.err" | sed 's/^/  /' >&2) || true
  line=$(grep '^RESULT' "$WORK/loadgen-$n.txt" || echo "RESULT mode=$mode streams=$n opened=0 concurrent=0 completed=0 failed=$n rss_base_kb=0 rss_kb=0 open_s=0 complete_s=0 error=loadgen-crashed")
  printf 'sse\t%s\n' "${line#RESULT }" >> "$RESULTS"
  stop "$pid"
  [ -z "$stub_pid" ] || stop "$stub_pid"
  [[ "$line" == *"concurrent=$n "*"completed=$n "* ]]
}

section_sse() {
  local n mode fit last=0
  # Stub mode takes two sockets per stream in LuluClaw, plus a margin for everything else.
  fit=$(( (FD_LIMIT - 1000) / 2 / 500 * 500 ))
  for n in $STREAMS; do
    mode=$SSE_MODE
    if [ "$mode" = auto ]; then
      if [ "$n" -le "$fit" ]; then
        mode=stub
      else
        # Too many for stub mode under this open-files limit: first the most stub mode can hold
        # here, then N in echo mode (one socket per stream).
        if [ "$fit" -gt "$last" ]; then
          log "streams: $n in stub mode needs about $(( 2 * n + 1000 )) open files (limit $FD_LIMIT): stub mode at $fit, then echo mode at $n"
          sse_step "$fit" stub || { log "streams: $fit did not fully succeed; not trying more"; break; }
          last=$fit
        fi
        mode=echo
      fi
    fi
    if ! sse_step "$n" "$mode"; then
      log "streams: $n did not fully succeed; not trying more"
      break
    fi
    last=$n
  done
}

# Knowledge at scale (bench/Knowledge): on SQLite, then on a fresh PostgreSQL database, the tool's
# RESULT lines kept as "knowledge PROVIDER key=value...".
section_knowledge() {
  local provider out conn args
  for provider in sqlite postgres; do
    args=(--provider "$provider" --pages "${BENCH_KNOWLEDGE_PAGES:-1000}" --chunks "${BENCH_KNOWLEDGE_CHUNKS:-100000}"
      --real-vectors "${BENCH_KNOWLEDGE_REAL_VECTORS:-200}" --turns "${BENCH_KNOWLEDGE_TURNS:-300}" --retrievals 200)
    if [ "$provider" = postgres ]; then
      start_postgres
      conn=$(pg_database "bench_knowledge_$RANDOM")
      args+=(--connection "$conn")
    fi
    wait_quiet
    log "knowledge: $provider"
    out=$WORK/knowledge-$provider.txt
    "$BUILD/knowledge/LuluClaw.Bench.Knowledge" "${args[@]}" > "$out" 2> >(sed 's/^/  /' >&2) || echo "RESULT kind=failed" >> "$out"
    grep '^RESULT' "$out" | sed "s/^RESULT /knowledge\t$provider\t/" >> "$RESULTS"
  done
}

section_memory() {
  wait_quiet
  log "memory: $SESSIONS sessions with one turn each, in process"
  local line
  "$BUILD/memory/LuluClaw.Bench.Memory" --sessions "$SESSIONS" > "$WORK/memory.txt" 2> >(sed 's/^/  /' >&2) || true
  line=$(grep '^RESULT' "$WORK/memory.txt" || echo "RESULT sessions=$SESSIONS failed=1")
  printf 'memory\t%s\n' "${line#RESULT }" >> "$RESULTS"
}

# :: Run

STARTED=$(date -u +"%Y-%m-%d %H:%M UTC")
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
COMMIT_NOTE=""
if [ "$SOURCE" = head ]; then
  COMMIT_NOTE=" (built from git archive of it)"
elif [ -n "$(GIT_OPTIONAL_LOCKS=0 git status --porcelain -- src 2>/dev/null)" ]; then
  COMMIT_NOTE=" (with uncommitted changes in src/)"
fi
log "sections: ${SECTIONS[*]}; ${S}s per measurement (warm-up ${WARMUP}s); clients: $CLIENTS; open files: $FD_LIMIT"
if [ "$SOURCE" = head ]; then
  # The committed HEAD (read-only: git archive), with the bench/ directory as it is here.
  SRC=$WORK/source
  mkdir -p "$SRC"
  git archive --format=tar "$COMMIT" | tar -x -C "$SRC"
  rm -rf "$SRC/bench"
  tar -C "$ROOT" --exclude=bin --exclude=obj -cf - bench | tar -x -C "$SRC"
  log "building the committed HEAD $COMMIT (from git archive) in $SRC"
fi
build src/Silo/Silo.csproj silo
if { has gateway || has cluster; } && [ -n "$BASELINE" ]; then
  # The baseline, built beside it from git archive, so that both are measured in this run.
  SAVED_SRC=$SRC
  SRC=$WORK/baseline
  mkdir -p "$SRC"
  git archive --format=tar "$BASELINE" | tar -x -C "$SRC"
  log "building the baseline $BASELINE in $SRC"
  build src/Silo/Silo.csproj baseline
  SRC=$SAVED_SRC
fi
if has gateway; then build bench/Bare/Bare.csproj bare; fi
if has provider || has sse; then build bench/Stub/Stub.csproj stub; fi
if has sse; then build bench/LoadGen/LoadGen.csproj loadgen; fi
if has memory; then build bench/Memory/Memory.csproj memory; fi
if has knowledge; then build bench/Knowledge/Knowledge.csproj knowledge; fi

# Anything else running competes for the same cores: say so.
wait_quiet
BACKGROUND=$(busy_cores 3)
if awk -v b="$BACKGROUND" 'BEGIN { exit !(b > 0.2) }'; then
  log "WARNING: other processes use $BACKGROUND cores right now; the numbers will be lower than on an idle machine"
fi

if has gateway; then
  section_bare
  section_sqlite
  if [ -n "$BASELINE" ]; then section_sqlite baseline "SQLite, 1 node, $BASELINE_LABEL"; fi
fi
if has gateway || has cluster; then
  # Each node count on one workspace (BENCH_WORKSPACES) at every client count, then spread over
  # MANY_WORKSPACES at 64 clients; after the one-node rows, the baseline's one-node rows at 64
  # clients, on one workspace and spread, so that the two builds are measured close together.
  for n in $NODES; do
    if [ "$n" = 1 ] && has gateway || has cluster; then
      section_postgres "$n" "$WORKSPACES"
      if [ "$MANY_WORKSPACES" -gt 0 ] && [ "$MANY_WORKSPACES" != "$WORKSPACES" ]; then section_postgres "$n" "$MANY_WORKSPACES" 64; fi
      if [ "$n" = 1 ] && [ -n "$BASELINE" ]; then
        section_postgres 1 "$WORKSPACES" 64 baseline
        if [ "$MANY_WORKSPACES" -gt 0 ] && [ "$MANY_WORKSPACES" != "$WORKSPACES" ]; then section_postgres 1 "$MANY_WORKSPACES" 64 baseline; fi
      fi
    fi
  done
fi
if has pgbench; then section_pgbench; fi
if has failover; then section_failover; fi
if has provider; then section_provider; fi
if has sse; then section_sse; fi
if has memory; then section_memory; fi
if has knowledge; then section_knowledge; fi

# :: Report

MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
PG_VERSION=""
[ -n "$PG_BIN" ] && PG_VERSION="PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (fsync on, max_connections 300)"

REPORT=$WORK/report.md
awk -F'\t' -v started="$STARTED" -v commit="$COMMIT$COMMIT_NOTE" -v nproc="$NPROC" -v mem="$MEM" -v cpu="$CPU" \
  -v secs="$S" -v warm="$WARMUP" -v sections="${SECTIONS[*]}" -v dotnet="$(dotnet --version)" \
  -v wrkv="$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')" -v pg="$PG_VERSION" -v fdlimit="$FD_LIMIT" \
  -v workspaces="$WORKSPACES" -v turns="$TURNS_PER_SESSION" -v background="$BACKGROUND" \
  -v baseline="$BASELINE" -v baseline_label="$BASELINE_LABEL" -v pgbench_version="${PGBENCH:+$("$PGBENCH" --version | awk '{print $3}')}" \
  -v extra="${BENCH_SILO_ENV:-}${BENCH_PG_CONN_EXTRA:+ (PostgreSQL connection string +) $BENCH_PG_CONN_EXTRA}" \
  -f "$ROOT/bench/report.awk" "$RESULTS" > "$REPORT"

echo
cat "$REPORT"
if [ -z "${BENCH_NO_REPORT:-}" ]; then
  if [ ! -s docs/benchmarks.md ]; then
    cat > docs/benchmarks.md <<'EOF'
# Benchmarks

Results of `bench/run.sh`, newest last. Each section says the machine, the commit and how long each
measurement ran; `bench/README.md` explains how to run it and what each number means. The load
generators share the machine with the servers, so absolute numbers are lower than on a dedicated
client; compare rows of one run with each other.
EOF
  fi
  { echo; cat "$REPORT"; } >> docs/benchmarks.md
  log "appended to docs/benchmarks.md"
fi
