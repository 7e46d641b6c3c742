-- pgbench script: chat turns' writes as LuluClaw makes them on PostgreSQL since issue 15
-- (PostgresAdmissions, then PostgresCommits): one run is a batch of 16 turns, admitted in one
-- transaction and committed in one statement, each turn of its own session, with the bench's
-- unlimited key plan and a byok workspace (no rolling window to count). Run by bench/run.sh's
-- pgbench section, which multiplies pgbench's tps by the "turns" line below.
--
--@ schema: current
--@ turns: 16
--@ clients: 3
--| Sixteen turns' writes as LuluClaw makes them now, in batches. Admission, one transaction in two
--| round trips: `BEGIN`, the workspace row `FOR UPDATE`, the key's row, the sixteen sessions' last
--| `seq`, the bot's version; then one `INSERT` of the sixteen rows of `turns` and `pending_turns`,
--| the workspace's debit and `COMMIT`, not waiting for the WAL flush. Commit, one statement
--| (flushed): delete the sixteen pending rows and, for those it deleted, the session rows (created
--| on a session's first turn, updated on the others) and the 32 messages. Three clients, as a
--| LuluClaw silo keeps at most two admission batches and one commit batch in flight.
--
-- Variables: as turn-today.sql (workspaces, run, turns_per_session, n). Slot g (0..15) of a client
-- is one session stream: its turn of run n belongs to session n / turns_per_session, the first of
-- which creates the session row, so no batch holds a session twice (as in LuluClaw, where a
-- session has one turn in flight).

\if :n = 0
\set pick :client_id % :workspaces
SELECT workspace_id AS ws, key_id AS key, bot_id AS bot FROM pgbench_pick WHERE n = :pick \gset
\endif
\set k :n % :turns_per_session
\set s :n / :turns_per_session

-- :: Admission, round trip 1: BEGIN, the lock and the reads the decisions need.
\startpipeline
BEGIN;
SET LOCAL synchronous_commit TO OFF;
SELECT id, plan, credits FROM workspaces WHERE id = :ws FOR UPDATE;
SELECT id, workspace_id, plan, revoked_at FROM api_keys WHERE id = :key;
SELECT g.sid, (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.workspace_id = :ws AND m.session_id = g.sid)
FROM (SELECT format('%s-%s-%s-s%s', (:run)::bigint, (:client_id)::int, g, (:s)::bigint) AS sid FROM generate_series(0, 15) g) g;
SELECT id, workspace_id, version FROM bots WHERE id = :bot;
\endpipeline

-- :: Admission, round trip 2: the sixteen turns, the debit, COMMIT.
\startpipeline
WITH t AS (
    SELECT format('%s-%s-%s-t%s', (:run)::bigint, (:client_id)::int, g, (:n)::bigint) AS id, format('%s-%s-%s-s%s', (:run)::bigint, (:client_id)::int, g, (:s)::bigint) AS sid
    FROM generate_series(0, 15) g),
pending AS (
    INSERT INTO pending_turns (id, workspace_id, credits, admitted_at)
    SELECT id, :ws, 1, (extract(epoch FROM now()) * 1000)::bigint FROM t)
INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits)
SELECT id, :ws, :key, sid, (extract(epoch FROM now()) * 1000)::bigint, 1 FROM t;
UPDATE workspaces SET credits = credits - 16 WHERE id = :ws;
COMMIT;
\endpipeline

-- :: Commit: one statement, its own transaction, flushed.
WITH t AS (
    SELECT format('%s-%s-%s-t%s', (:run)::bigint, (:client_id)::int, g, (:n)::bigint) AS id, format('%s-%s-%s-s%s', (:run)::bigint, (:client_id)::int, g, (:s)::bigint) AS sid
    FROM generate_series(0, 15) g),
settled AS (
    DELETE FROM pending_turns WHERE id IN (SELECT id FROM t) RETURNING id),
new_sessions AS (
    INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
    SELECT :ws, sid, :bot, 'gateway', (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint, 2
    FROM t WHERE (:k)::int = 0 AND id IN (SELECT id FROM settled)),
old_sessions AS (
    UPDATE sessions s SET last_activity = (extract(epoch FROM now()) * 1000)::bigint, message_count = s.message_count + 2
    FROM t WHERE (:k)::int <> 0 AND s.workspace_id = :ws AND s.session_id = t.sid AND t.id IN (SELECT id FROM settled)),
new_messages AS (
    INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id, cut_short)
    SELECT :ws, t.sid, 2 * (:k)::int + r.i, r.role, r.content, (extract(epoch FROM now()) * 1000)::bigint, t.id, 0
    FROM t CROSS JOIN (VALUES (1, 'user', 'Hello! What can you help me with?'),
                              (2, 'assistant', 'Echo: Hello! What can you help me with?')) AS r(i, role, content)
    WHERE t.id IN (SELECT id FROM settled))
SELECT count(*) FROM settled;

\set n :n + 1
