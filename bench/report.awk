# Turns bench/run.sh's results (tab-separated rows) into the Markdown section appended to
# docs/benchmarks.md. Rows:
#   gateway|provider  CONFIG  CLIENTS  RPS  P50_MS  P99_MS  REQUESTS  NON2XX  ERRORS  CPU_SERVER  CPU_DEP  CPU_WRK  CPU_OTHER  STEAL
#   sse               key=value ... (bench/LoadGen's RESULT line)
#   memory            key=value ... (bench/Memory's RESULT line)
#   knowledge         PROVIDER  key=value ... (bench/Knowledge's RESULT lines: kind=ingest|seed|turns|retrieval|cache)
#   failover          TRIAL  MS (kill -9 of a silo to its session's next answer through a survivor)
#   pgbench           SCRIPT  WORKSPACES  CLIENTS  TPS  TRANSACTIONS  FAILED  ABORTED_CLIENTS  LATENCY_MS  CPU_PG  CPU_PGBENCH  CPU_OTHER  STEAL
#                     TURNS_ADDED  DONE_ADDED  MESSAGES_ADDED  SESSIONS_ADDED
#   pgbench-script    SCRIPT  DESCRIPTION
# Gateway configurations: "SQLite, 1 node" or "PostgreSQL, N node(s)", then ", W workspaces" when W
# is not 1, then ", " baseline_label for the baseline build's rows.
# Variables: started commit nproc mem cpu secs warm sections dotnet wrkv pg fdlimit workspaces turns
# background extra baseline baseline_label pgbench_version.

function num(x) { return x + 0 }

function group(n,    s, neg) {
  n = sprintf("%.0f", n)
  neg = n ~ /^-/
  if (neg) n = substr(n, 2)
  s = ""
  while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
  return (neg ? "-" : "") n s
}

function ms(x) {
  x = num(x)
  if (x < 1) return sprintf("%.3f", x)
  if (x < 10) return sprintf("%.2f", x)
  if (x < 100) return sprintf("%.1f", x)
  return sprintf("%.0f", x)
}

function pct(x) { return (x < 0.1 ? sprintf("%.2f%%", 100 * x) : sprintf("%.0f%%", 100 * x)) }

function failures(req, non, err,    share) {
  if (non + err == 0) return "0"
  share = (non + err) / (req + non + err > 0 ? req : 1)
  return sprintf("**FLAGGED: %s non-2xx, %s socket errors (%s)**", group(non), group(err), pct(share))
}

function verdict(ok, valid) {
  if (!valid) return "INVALID (failed requests)"
  return ok ? "met" : "**missed**"
}

function cpucols(k) {
  return cs[k] " / " cd[k] " / " cw[k] " / " co[k] (num(cst[k]) >= 0.05 ? " (+" cst[k] " stolen)" : "")
}

function ratio(x) { return sprintf("%.2f×", x) }

function pct1(x) { return sprintf("%.1f%%", 100 * x) }

# The workspaces a gateway configuration names (1 when it names none).
function cfg_ws(c,    m) {
  if (match(c, /, [0-9]+ workspaces/)) { m = substr(c, RSTART + 2, RLENGTH - 2); return m + 0 }
  return 1
}

function is_base(c) { return baseline != "" && index(c, baseline_label) > 0 }

function kv(s, key,    parts, i, n, pair) {
  n = split(s, parts, " ")
  for (i = 1; i <= n; i++) {
    split(parts[i], pair, "=")
    if (pair[1] == key) return pair[2]
  }
  return ""
}

BEGIN { FS = "\t"; ng = 0; np = 0; ns = 0; nm = 0; nf = 0; nb = 0 }

$1 == "gateway" || $1 == "provider" {
  key = $2 SUBSEP $3
  if ($1 == "gateway") { gk[++ng] = key } else { pk[++np] = key }
  cfg[key] = $2; cl[key] = $3; rps[key] = num($4); p50[key] = num($5); p99[key] = num($6)
  req[key] = num($7); non[key] = num($8); err[key] = num($9)
  cs[key] = $10; cd[key] = $11; cw[key] = $12; co[key] = $13; cst[key] = $14
  ours[key] = num($10) + num($11) + num($12); stolen[key] = num($14)
  measured++
  if (num($13) >= 0.2) disturbed++
  next
}
$1 == "sse" { sse[++ns] = $2; next }
$1 == "memory" { memrow[++nm] = $2; next }
$1 == "knowledge" {
  if (!($2 in kn_seen)) { kn_seen[$2] = 1; kn_prov[++nkp] = $2 }
  k = kv($3, "kind")
  if (k == "retrieval") { kn_part[$2, kv($3, "part")] = $3; if (!(kv($3, "part") in kn_partseen)) { kn_partseen[kv($3, "part")] = 1; kn_parts[++nkparts] = kv($3, "part") } }
  else kn[$2, k] = $3
  next
}
$1 == "failover" { fo[++nf] = num($3); next }
$1 == "pgbench-script" { if (!($2 in pgb_desc)) pgb_scripts[++npgs] = $2; pgb_desc[$2] = $3; next }
$1 == "pgbench" {
  i = ++nb
  b_script[i] = $2; b_ws[i] = num($3); b_cl[i] = num($4); b_tps[i] = num($5); b_tx[i] = num($6); b_failed[i] = num($7); b_aborted[i] = num($8)
  b_lat[i] = num($9); b_cpg[i] = $10; b_cpgb[i] = $11; b_co[i] = $12; b_cst[i] = $13
  b_turns[i] = num($14); b_done[i] = num($15); b_msgs[i] = num($16); b_sess[i] = num($17)
  b_valid[i] = (b_failed[i] + b_aborted[i] == 0 && b_tx[i] > 0)
  measured++
  if (num($12) >= 0.2) disturbed++
  # The best valid script per workspace count: the ceiling the LuluClaw rows are set beside.
  if (b_valid[i] && b_tps[i] > best_tps[b_ws[i]]) { best_tps[b_ws[i]] = b_tps[i]; best_script[b_ws[i]] = b_script[i] }
  next
}

END {
  printf "## %s, commit %s\n\n", started, commit
  printf "Machine: %s cores (%s), %s RAM; .NET SDK %s, wrk %s%s; open files limit %s. ", nproc, cpu, mem, dotnet, wrkv, (pg == "" ? "" : ", " pg), fdlimit
  printf "Sections: %s. Each measurement ran %s s after a %s s warm-up per server; the load generators run on the same machine (loopback). ", sections, secs, warm
  printf "Sessions: %s turns each, then fresh ones; %s. ", turns, (workspaces == 1 ? "one workspace unless the configuration names more" : "as many workspaces as the configuration names (**BENCH_WORKSPACES=" workspaces "**, not the default, for the rows that would have one)")
  if (extra != "") printf "**Experiment settings** (not the defaults): `%s`. ", extra
  printf "Other processes used %s cores just before the run%s", background,
    (num(background) > 0.2 ? " (**the machine was not idle**)" : "")
  if (disturbed > 0) printf "; **in %d of %d measurements other processes used 0.2 cores or more** (the \"other\" CPU column): those rows are lower than on an idle machine", disturbed, measured
  printf ".\n\n"

  # :: Gateway and cluster
  if (ng > 0) {
    print "### Gateway chat, echo model: `POST /api/gateway/chat`\n"
    print "| configuration | clients | turns/s | p50 ms | p99 ms | ÷ bare | ÷ pgbench | non-2xx / errors | CPU cores: server / PostgreSQL / wrk / other | target |"
    print "|---|---:|---:|---:|---:|---:|---:|---|---|---|"
    for (i = 1; i <= ng; i++) {
      k = gk[i]
      if (cfg[k] ~ /^bare/) bare[cl[k]] = rps[k]
    }
    for (i = 1; i <= ng; i++) {
      k = gk[i]
      ws = cfg_ws(cfg[k]); base = is_base(cfg[k]); valid = (non[k] + err[k] == 0)
      share = (cfg[k] !~ /^bare/ && bare[cl[k]] > 0) ? pct(rps[k] / bare[cl[k]]) : ""
      # Beside PostgreSQL's own ceiling for the same writes: the best pgbench script on as many workspaces.
      ceiling = (cfg[k] ~ /^PostgreSQL/ && cl[k] == 64 && (ws in best_tps)) ? pct(rps[k] / best_tps[ws]) : ""
      target = ""
      if (cfg[k] ~ /^SQLite/ && ws == 1 && cl[k] == 64) {
        if (base) { sqb_rps = rps[k]; sqb_valid = valid; sqb_seen = 1 }
        else { target = (baseline == "" ? "" : "within 5% of " baseline " or better"); sq_rps = rps[k]; sq_p99 = p99[k]; sq_valid = valid; sq_seen = 1 }
      }
      if (cfg[k] ~ /^PostgreSQL, 1 node/ && ws == 1 && cl[k] == 64) {
        if (base) { pgb1_rps = rps[k]; pgb1_valid = valid; pgb1_seen = 1 }
        else { target = (baseline == "" ? "" : "≥ 3× " baseline); pg1_rps = rps[k]; pg1_valid = valid; pg1_seen = 1 }
      }
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", cfg[k], cl[k], group(rps[k]), ms(p50[k]), ms(p99[k]),
        share, ceiling, failures(req[k], non[k], err[k]), cpucols(k), target
      if (cfg[k] ~ /^PostgreSQL/) {
        nodes = cfg[k]; sub(/^PostgreSQL, /, "", nodes); sub(/ node.*/, "", nodes)
        # 1-node rows at 64 clients, either build, for the lines under the pgbench table.
        if (nodes == 1 && cl[k] == 64) { one[++n1] = k; one_ws[k] = ws }
        if (base) continue
        pg_rps[ws, nodes, cl[k]] = rps[k]; pg_cpu[ws, nodes, cl[k]] = cd[k]; pg_mach[ws, nodes, cl[k]] = ours[k]
        pg_other[ws, nodes, cl[k]] = num(co[k]); pg_steal[ws, nodes, cl[k]] = stolen[k]; pg_valid[ws, nodes, cl[k]] = valid
        if (!((ws, cl[k]) in pg_runs_seen)) { pg_runs_seen[ws, cl[k]] = 1; pg_run_ws[++npr] = ws; pg_run_cl[npr] = cl[k] }
        if (!(nodes in pg_nodes_seen)) { pg_nodes_seen[nodes] = 1; pg_nodes[++npn] = nodes }
      }
    }
    print ""
    print "p50 and p99 come from `wrk --latency`. With several nodes, one wrk per node runs at the same time with the clients split between them: turns/s are summed, p50 is the request-weighted mean of the per-node p50s and p99 the worst per-node p99. ÷ pgbench: a PostgreSQL row at 64 clients as a share of the best pgbench script's turns/s on as many workspaces (the PostgreSQL ceiling table below). CPU is user + system time over the measurement, in cores: the server process(es), PostgreSQL's processes, wrk, and every other process on the machine (anything above 0 there competed with the benchmark); \"stolen\" is time the hypervisor gave to other machines. The .NET thread pool spins while waiting for work, so a server's CPU at low load overstates the work it does."
    print ""
    if (npn > 1) {
      print "PostgreSQL, turns/s by nodes:\n"
      for (j = 1; j <= npr; j++) {
        ws = pg_run_ws[j]; c = pg_run_cl[j]
        if (c < npn) continue  # fewer clients than nodes: the extra nodes get none
        measured_nodes = 0
        for (i = 1; i <= npn; i++) if ((ws, pg_nodes[i], c) in pg_rps) measured_nodes++
        if (measured_nodes < 2) continue
        line = sprintf("- %s clients, %s workspace%s:", c, ws, (ws == 1 ? "" : "s"))
        best = 0; bestn = ""; sat = ""; prev = ""; parts = 0
        for (i = 1; i <= npn; i++) {
          n = pg_nodes[i]
          if (!((ws, n, c) in pg_rps)) continue
          line = line sprintf("%s %s node%s %s (PostgreSQL %s cores, benchmark %.2f of %s cores%s%s)", (parts++ > 0 ? ";" : ""), n, (n == 1 ? "" : "s"), group(pg_rps[ws, n, c]),
            pg_cpu[ws, n, c], pg_mach[ws, n, c], nproc, (pg_other[ws, n, c] >= 0.2 ? sprintf(", other processes %.2f", pg_other[ws, n, c]) : ""),
            (pg_steal[ws, n, c] >= 0.05 ? sprintf(", stolen %.2f", pg_steal[ws, n, c]) : ""))
          if (prev != "" && sat == "" && pg_rps[ws, n, c] < 1.1 * pg_rps[ws, prev, c]) sat = prev
          prev = n
          if (pg_rps[ws, n, c] > best) { best = pg_rps[ws, n, c]; bestn = n }
        }
        if (sat != "") {
          line = line sprintf(". Adding nodes gains < 10%% beyond %s node%s", sat, (sat == 1 ? "" : "s"))
          full = pg_mach[ws, sat, c] + pg_other[ws, sat, c] + pg_steal[ws, sat, c]
          line = line (pg_mach[ws, sat, c] >= 0.85 * nproc ? sprintf(": the benchmark keeps the machine's %s cores busy there, so this is the box's limit, not PostgreSQL's alone", nproc) \
            : full >= 0.9 * nproc ? ": the cores were taken there, partly by other processes or the hypervisor (steal); rerun on an idle machine" \
            : sprintf(": the machine is not CPU-bound there (%.2f of %s cores), so the limit is in PostgreSQL (commit latency, row locks) or in LuluClaw's per-workspace admission", full, nproc))
        } else {
          line = line sprintf(". Throughput still grows up to %s node%s", bestn, (bestn == 1 ? "" : "s"))
        }
        print line "."
      }
      print ""
    }
  }

  # :: PostgreSQL's own ceiling
  if (nb > 0) {
    print "### PostgreSQL ceiling (pgbench, a turn's writes)\n"
    print "| script | workspaces | clients | turns/s | PostgreSQL CPU cores | pgbench / other CPU cores | failed | rows per turn: turns / messages / sessions |"
    print "|---|---:|---:|---:|---:|---|---|---|"
    for (i = 1; i <= nb; i++) {
      fail = (b_tx[i] == 0 ? sprintf("**FLAGGED: no transaction completed, %s clients aborted**", b_aborted[i]) \
        : b_failed[i] + b_aborted[i] == 0 ? "0" : sprintf("**FLAGGED: %s failed transactions, %s clients aborted**", group(b_failed[i]), b_aborted[i]))
      rows = (b_tx[i] > 0 ? sprintf("%.2f / %.2f / %.2f", b_turns[i] / b_tx[i], b_msgs[i] / b_tx[i], b_sess[i] / b_tx[i]) : "-")
      if (b_done[i] != b_turns[i]) rows = rows sprintf(" (**%s not done**)", group(b_turns[i] - b_done[i]))
      printf "| %s | %s | %s | %s | %s | %s / %s%s | %s | %s |\n", b_script[i], b_ws[i], b_cl[i], group(b_tps[i]), b_cpg[i], b_cpgb[i], b_co[i],
        (num(b_cst[i]) >= 0.05 ? " (+" b_cst[i] " stolen)" : ""), fail, rows
    }
    print ""
    printf "pgbench%s runs each script of `bench/pgbench/` as `pgbench -n -M prepared -c CLIENTS -j 2 -T %s` (prepared statements, as Npgsql prepares LuluClaw's) on LuluClaw's real schema: a fresh database on which a LuluClaw build ran its migrations at start (the baseline's for a script of its writes, the current build's otherwise) and made its workspaces and keys through the admin API, as for the chat rows, and was then stopped. A script's run is one turn's writes, or a batch of turns (turn-batched: 16), and turns/s is pgbench's tps times that. Before each row the turn tables are emptied and a short warm-up runs. On 1 workspace every client takes turns on the same workspace row; on more, client *c* uses workspace *c* mod W. Sessions get %s turns each, then fresh ones. CPU is user + system time over the measurement, in cores: PostgreSQL's processes (the postmaster and all its children, the backends included), pgbench, every other process. Rows per turn: what the run added to each table, per turn (1 / 2 / %.2f).\n\n", \
      (pgbench_version == "" ? "" : " " pgbench_version), secs, turns, (turns > 0 ? 1 / turns : 0)
    for (i = 1; i <= npgs; i++) if (pgb_desc[pgb_scripts[i]] != "") printf "- `%s`: %s\n", pgb_scripts[i], pgb_desc[pgb_scripts[i]]
    if (npgs > 0) print ""
    for (i = 1; i <= n1; i++) {
      k = one[i]; ws = one_ws[k]
      if (ws in best_tps)
        printf "- %s, 64 clients: %s turns/s, %s of `%s` on %s workspace%s (%s turns/s).\n", cfg[k], group(rps[k]), pct(rps[k] / best_tps[ws]),
          best_script[ws], ws, (ws == 1 ? "" : "s"), group(best_tps[ws])
    }
    if (n1 > 0) print ""
  }

  # :: Failover
  if (nf > 0) {
    print "### Failover: kill -9 of a silo to its session's next answer on a survivor (PostgreSQL, 3 silos)\n"
    print "| trial | ms |"
    print "|---:|---:|"
    fo_max = 0
    for (i = 1; i <= nf; i++) { printf "| %d | %s |\n", i, group(fo[i]); if (fo[i] > fo_max) fo_max = fo[i] }
    print ""
    print "Each trial: a session placed on the third silo (the admin API names a session's silo), `kill -9` of that silo, then the session's next turn sent through the first silo every 20 ms (each attempt until then a 503 with Retry-After) until it is answered; the time from the kill to that answer. The third silo is started again and rejoins before the next trial."
    print ""
  }

  # :: Provider overhead
  if (np > 0) {
    print "### Through the OpenAI provider vs directly to the stub\n"
    print "| path | connections | requests/s | p50 ms | p99 ms | non-2xx / errors | CPU cores: server / stub / wrk / other |"
    print "|---|---:|---:|---:|---:|---|---|"
    for (i = 1; i <= np; i++) {
      k = pk[i]
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", cfg[k], cl[k], group(rps[k]), ms(p50[k]), ms(p99[k]),
        failures(req[k], non[k], err[k]), cpucols(k)
      side = (cfg[k] ~ /^stub/ ? "stub" : "lulu")
      prov_rps[side, cl[k]] = rps[k]; prov_p50[side, cl[k]] = p50[k]; prov_valid[side, cl[k]] = (non[k] + err[k] == 0)
      prov_seen[side, cl[k]] = 1
    }
    print ""
    print "Direct: wrk posts an OpenAI chat body (system prompt + one user message) to the stub's `/v1/chat/completions`. Through LuluClaw: gateway turns on SQLite (one node, synchronous FULL) whose bot model `gpt-4o-mini` goes to the OpenAI provider, pointed at the same stub."
    print ""
    if (("stub", 64) in prov_seen && ("lulu", 64) in prov_seen) {
      prov_ratio = prov_rps["lulu", 64] / prov_rps["stub", 64]; prov_ratio_valid = prov_valid["lulu", 64] && prov_valid["stub", 64]; prov_ratio_seen = 1
      printf "- At 64 connections LuluClaw serves %s of the stub's direct throughput (target ≥ 50%%): %s.\n", pct(prov_ratio), verdict(prov_ratio >= 0.5, prov_ratio_valid)
    }
    if (("stub", 1) in prov_seen && ("lulu", 1) in prov_seen) {
      added = prov_p50["lulu", 1] - prov_p50["stub", 1]; added_valid = prov_valid["lulu", 1] && prov_valid["stub", 1]; added_seen = 1
      printf "- At 1 connection LuluClaw adds %s ms to the p50 (%s − %s ms; target < 0.2 ms): %s.\n", ms(added), ms(prov_p50["lulu", 1]), ms(prov_p50["stub", 1]), verdict(added < 0.2, added_valid)
    }
    print ""
  }

  # :: Streams
  if (ns > 0) {
    print "### Concurrent idle SSE streams, one LuluClaw process (SQLite)\n"
    print "| streams | mode | open at once | completed | failed | server RSS before → with N open | RSS per stream | open / finish s | result |"
    print "|---:|---|---:|---:|---:|---|---:|---|---|"
    largest = 0
    for (i = 1; i <= ns; i++) {
      r = sse[i]
      n = num(kv(r, "streams")); conc = num(kv(r, "concurrent")); done = num(kv(r, "completed")); failed = num(kv(r, "failed"))
      base = num(kv(r, "rss_base_kb")); rss = num(kv(r, "rss_kb"))
      ok = (conc == n && done == n)
      if (ok && n > largest) { largest = n; largest_mode = kv(r, "mode") }
      if (ok && kv(r, "mode") == "stub" && n > largest_stub) largest_stub = n
      emsg = kv(r, "error"); gsub(/%20/, " ", emsg); gsub(/%3A/, ":", emsg)
      printf "| %s | %s | %s | %s | %s | %s MB → %s MB | %s KB | %s / %s | %s |\n", group(n), kv(r, "mode"), group(conc), group(done), group(failed),
        group(base / 1024), group(rss / 1024), (n > 0 ? sprintf("%.0f", (rss - base) / n) : "-"), kv(r, "open_s"), kv(r, "complete_s"),
        (ok ? "ok" : "**failed**" (emsg == "-" || emsg == "" ? "" : ": " substr(emsg, 1, 120)))
    }
    sse_largest = largest; sse_seen = 1
    print ""
    print "Each stream is `POST /api/gateway/chat` with `\"stream\": true` in its own session, from bench/LoadGen (a separate process), started at 1,000 per second. *stub* mode: the OpenAI provider points at bench/Stub, which holds every answer after its first piece of text; a stream counts as open once its first `delta` event arrived, and the stub confirms it holds N model calls at once; LuluClaw then holds two sockets per stream (client and model). *echo* mode (used when 2N sockets would not fit the open-files limit): the echo model waits before its first word, so LuluClaw sends nothing yet; a stream counts as open once its turn was admitted, and all N must be admitted (credits down by N) before any answer comes back. Then all are released and must end with a `done` event. RSS is the server's VmRSS; per stream = (with N open − before) / N."
    print ""
    sse_note = sprintf("%s (%s mode)", group(largest), largest_mode)
    if (largest_mode != "stub" && largest_stub > 0) sse_note = sse_note sprintf("; %s in stub mode, the most the open-files limit (%s) allows with two sockets per stream", group(largest_stub), fdlimit)
    printf "Largest N fully held and completed: %s (target 10,000): %s.\n\n", sse_note, verdict(largest >= 10000, 1)
  }

  # :: Memory
  if (nm > 0) {
    print "### Memory per idle session activation\n"
    print "| sessions | new activations | heap before → after | per session | message text per session | beyond the text | target |"
    print "|---:|---:|---|---:|---:|---:|---|"
    for (i = 1; i <= nm; i++) {
      r = memrow[i]
      if (kv(r, "failed") != "") { print "| " group(kv(r, "sessions")) " | | | | | **failed** | < 4,096 B |"; continue }
      beyond = num(kv(r, "beyond_text")); mem_seen = 1; mem_beyond = beyond
      printf "| %s | %s | %s KB → %s KB | %s B | %s B | %s B | < 4,096 B: %s |\n", group(kv(r, "sessions")), group(kv(r, "activations")),
        group(kv(r, "heap_before") / 1024), group(kv(r, "heap_after") / 1024), group(kv(r, "per_session")), group(kv(r, "text_bytes")),
        group(beyond), verdict(beyond < 4096, 1)
    }
    print ""
    print "In process (bench/Memory): LuluClaw's real services (`AddLuluClaw`) and its Orleans silo over a temporary SQLite file and the echo model, idle collection set to an hour. After a warm-up batch, N new sessions get one turn each through `ISessionGrain.SendAsync`; the managed heap (`GC.GetTotalMemory(true)` after full blocking compacting collections) is read before and after. Per session = growth / N; the message text is the UTF-16 bytes of the user message and the reply each session holds (their string headers count as overhead)."
    print ""
  }

  # :: Knowledge
  if (nkp > 0) {
    print "### Knowledge at scale (bench/Knowledge)\n"
    print "| storage | ingestion: pages | chunks | pages/s | chunks/s | seeded chunks | chat turn p50 / p95 / p99, workspace with the chunks | the same, workspace without knowledge | added at p95 | target |"
    print "|---|---:|---:|---:|---:|---:|---|---|---:|---|"
    for (i = 1; i <= nkp; i++) {
      p = kn_prov[i]; ing = kn[p, "ingest"]; t = kn[p, "turns"]; sd = kn[p, "seed"]
      name = (p == "postgres" ? "PostgreSQL" : "SQLite")
      if ((p, "failed") in kn) { print "| " name " | **failed** | | | | | | | | |"; continue }
      added = num(kv(t, "added_p95"))
      if (t != "") { kn_target_seen = 1; kn_target = kn_target (kn_target == "" ? "" : "; ") name " " ms(added) " ms"; if (added >= 20) kn_target_fail = 1 }
      printf "| %s | %s | %s | %s | %s | %s | %s / %s / %s ms | %s / %s / %s ms | %s ms | < 20 ms: %s |\n", name,
        (ing == "" ? "not run" : group(kv(ing, "pages"))), (ing == "" ? "" : group(kv(ing, "chunks"))), (ing == "" ? "" : kv(ing, "pages_per_s")), (ing == "" ? "" : kv(ing, "chunks_per_s")),
        group(kv(sd, "chunks")), ms(kv(t, "knowledge_p50")), ms(kv(t, "knowledge_p95")), ms(kv(t, "knowledge_p99")),
        ms(kv(t, "empty_p50")), ms(kv(t, "empty_p95")), ms(kv(t, "empty_p99")), ms(added), (t == "" ? "not run" : verdict(added < 20, 1))
    }
    print ""
    print "Retrieval alone and its parts, in process (p50 / p95 / p99 ms):\n"
    line = "| part |"; sep = "|---|"
    for (i = 1; i <= nkp; i++) { line = line " " (kn_prov[i] == "postgres" ? "PostgreSQL" : "SQLite") " |"; sep = sep "---|" }
    print line; print sep
    for (j = 1; j <= nkparts; j++) {
      line = "| `" kn_parts[j] "` |"
      for (i = 1; i <= nkp; i++) { r = kn_part[kn_prov[i], kn_parts[j]]; line = line " " (r == "" ? "" : ms(kv(r, "p50")) " / " ms(kv(r, "p95")) " / " ms(kv(r, "p99"))) " |" }
      print line
    }
    print ""
    print "One process with LuluClaw's real services and HTTP host (Kestrel on 127.0.0.1), the echo model. Ingestion: a generated website (a tree of links three deep, about " kv(kn[kn_prov[1], "ingest"], "words_per_page") " words a page) served on 127.0.0.1, one website source made through `POST /api/v1/knowledge-sources`, ingested by the silo's own ingestion (crawler through the URL guard, chunker, MiniLM embedder, store) until nothing is due. Seeded chunks: generated English-like text (Zipf vocabulary), 500 chunks a source, through the store; the first " kv(kn[kn_prov[1], "seed"], "real_vectors") " have MiniLM embeddings, the rest random unit vectors (brute force costs the same whatever the values). Turns: `POST /api/gateway/chat` one at a time, alternating the workspace with the chunks and one without knowledge, the same generated questions, after a warm-up; the difference of the two p95s is what retrieval adds. Parts: `retrieve` is `KnowledgeRetriever.RetrieveAsync` (5 passages); `cache_check` the in-memory vectors' check against the sources' stamps; `embed` the question's MiniLM embedding; `vector_top50` the 8-bit brute-force scan of every vector with the top 50 kept; `text_top50` the store's full-text search."
    print ""
  }

  # :: Targets
  print "### Targets\n"
  print "| target | measured | verdict |"
  print "|---|---|---|"
  t_pg = "PostgreSQL, one silo, one workspace, 64 clients: ≥ 3× the turns/s of " (baseline == "" ? "the baseline" : baseline) " in the same run"
  if (pg1_seen && pgb1_seen && pgb1_rps > 0)
    printf "| %s | %s vs %s turns/s: %s | %s |\n", t_pg, group(pg1_rps), group(pgb1_rps), ratio(pg1_rps / pgb1_rps), verdict(pg1_rps >= 3 * pgb1_rps, pg1_valid && pgb1_valid)
  else if (pg1_seen) printf "| %s | %s turns/s, no baseline run | |\n", t_pg, group(pg1_rps)
  else printf "| %s | not run | |\n", t_pg
  t_sq = "SQLite, one node, 64 clients: within 5% of " (baseline == "" ? "the baseline" : baseline) " or better"
  if (sq_seen && sqb_seen && sqb_rps > 0)
    printf "| %s | %s vs %s turns/s: %s (p99 %s ms) | %s |\n", t_sq, group(sq_rps), group(sqb_rps), pct1(sq_rps / sqb_rps), ms(sq_p99), verdict(sq_rps >= 0.95 * sqb_rps, sq_valid && sqb_valid)
  else if (sq_seen) printf "| %s | %s turns/s, no baseline run | |\n", t_sq, group(sq_rps)
  else printf "| %s | not run | |\n", t_sq
  if (nf > 0) printf "| a killed silo's session answers on a survivor within 2 s | worst of %d trials: %s ms | %s |\n", nf, group(fo_max), verdict(fo_max <= 2000, 1)
  else print "| a killed silo's session answers on a survivor within 2 s | not run | |"
  if (prov_ratio_seen) printf "| OpenAI provider: ≥ 50%% of direct-to-stub at 64 connections | %s | %s |\n", pct(prov_ratio), verdict(prov_ratio >= 0.5, prov_ratio_valid)
  else print "| OpenAI provider: ≥ 50% of direct-to-stub at 64 connections | not run | |"
  if (added_seen) printf "| OpenAI provider: < 0.2 ms p50 added at 1 connection | %s ms | %s |\n", ms(added), verdict(added < 0.2, added_valid)
  else print "| OpenAI provider: < 0.2 ms p50 added at 1 connection | not run | |"
  if (sse_seen) printf "| 10,000 concurrent idle SSE streams | %s | %s |\n", sse_note, verdict(sse_largest >= 10000, 1)
  else print "| 10,000 concurrent idle SSE streams | not run | |"
  if (mem_seen) printf "| < 4 KB per idle session activation beyond its message text | %s B | %s |\n", group(mem_beyond), verdict(mem_beyond < 4096, 1)
  else print "| < 4 KB per idle session activation beyond its message text | not run | |"
  if (kn_target_seen) printf "| retrieval over 100,000 chunks adds < 20 ms at p95 to a chat turn | %s | %s |\n", kn_target, verdict(!kn_target_fail, 1)
  if (npr > 0) {
    line = ""
    for (j = 1; j <= npr; j++) {
      ws = pg_run_ws[j]; c = pg_run_cl[j]; part = ""
      for (i = 1; i <= npn; i++) if ((ws, pg_nodes[i], c) in pg_rps) part = part (part == "" ? "" : " / ") group(pg_rps[ws, pg_nodes[i], c])
      line = line (line == "" ? "" : "; ") c " clients, " ws " workspace" (ws == 1 ? "" : "s") ": " part
    }
    printf "| PostgreSQL %s node(s) throughput, turns/s | %s | reported |\n", (npn > 1 ? "1/2/3" : "1"), line
  } else print "| PostgreSQL 1/2/3 nodes throughput | not run | |"
  if (nb > 0) {
    line = ""; nw = 0
    for (ws in best_tps) if (best_tps[ws] > 0) wsl[++nw] = ws + 0
    for (i = 2; i <= nw; i++) for (j = i; j > 1 && wsl[j - 1] > wsl[j]; j--) { t = wsl[j]; wsl[j] = wsl[j - 1]; wsl[j - 1] = t }
    for (j = 1; j <= nw; j++) {
      ws = wsl[j]
      part = sprintf("%s workspace%s: %s turns/s (`%s`)", ws, (ws == 1 ? "" : "s"), group(best_tps[ws]), best_script[ws])
      if ((ws, 1, 64) in pg_rps) part = part sprintf(", LuluClaw 1 node %s of it", pct(pg_rps[ws, 1, 64] / best_tps[ws]))
      line = line (line == "" ? "" : "; ") part
    }
    printf "| PostgreSQL ceiling for a turn's writes (pgbench, best script) | %s | reported |\n", (line == "" ? "no valid run" : line)
  } else print "| PostgreSQL ceiling for a turn's writes (pgbench) | not run | |"
}
