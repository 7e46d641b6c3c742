-- pgbench script: one chat turn's writes as LuluClaw d2e79b2 makes them on PostgreSQL (SqlStore.cs:
-- AdmitAsync, then CommitTurnAsync), an echo turn of the gateway with the bench's unlimited key plan
-- and a byok workspace (so the admission counts no rolling window). One run of this script is one
-- turn, so pgbench's tps is turns/s. Run by bench/run.sh's pgbench section:
--
--   pgbench -n -M prepared -c 64 -j 2 -T SECONDS -f turn-today.sql \
--     -D workspaces=W -D run=R -D turns_per_session=10 -D n=0
--
--@ schema: baseline
--| A turn's writes as d2e79b2 makes them, in its two transactions. Admission: `BEGIN` and
--| `SET LOCAL synchronous_commit TO OFF`; the admission `SELECT` (the workspace row
--| `FOR UPDATE OF w`, its key's row, the session's last `seq`, the bot's version); `INSERT` of the
--| pending turn; `UPDATE` of the workspace's credits `RETURNING` them; `COMMIT`, not waiting for the
--| WAL flush. Commit: `UPDATE` of the turn to done; the session row (`INSERT` on the session's first
--| turn, `UPDATE` on the others); one `INSERT` of both messages; `COMMIT`, flushed (durable).
--| Prepared statements, one round trip each, with `BEGIN` sent together with the transaction's
--| first statement, as Npgsql does. Each turn is admitted in a transaction of its own, where d2e79b2
--| puts every admission waiting on a node for one workspace into one.
--
-- Lines starting with "--| " are this script's description in the report (docs/benchmarks.md).
--
-- Variables (from -D; pgbench gives every client its own copy, kept from one run of the script to
-- the next):
--   workspaces         how many rows of pgbench_pick (0 .. W-1) the clients are spread over
--   run                a number of 6 digits or fewer, new for every pgbench invocation: ids never repeat
--   turns_per_session  a session gets this many turns, then the client starts a fresh one
--   n                  0 at the start: the client's turn counter, moved on at the end of each run
--
-- Prepared (-M prepared), as Npgsql prepares LuluClaw's statements (Max Auto Prepare 32), and with
-- every value a bound parameter except the constant texts and the times (see admitted_at below).

-- :: The client's workspace, once, on its first run: client c takes row c mod W of pgbench_pick
-- (workspace id, its key's id and its primary bot's id; filled by run.sh after the real silo
-- created them through the admin API). With 64 clients over 64 workspaces that is one client per
-- workspace; over 1, all 64 queue on the one workspace row's lock, as LuluClaw's turns do.
\if :n = 0
\set pick :client_id % :workspaces
SELECT workspace_id AS ws, key_id AS key, bot_id AS bot FROM pgbench_pick WHERE n = :pick \gset
\endif

-- :: Ids, from numbers (pgbench has no string functions): decimal digits, 18 at most, in TEXT
-- columns. The turn counter comes before the client in the turn id, so that like LuluClaw's
-- time-ordered turn ids (Ids.NewOrdered) new rows go to the end of the turns primary key.
\set turn (:run * 1000000000 + :n) * 1000 + :client_id
\set session (:run * 100000000 + :n / :turns_per_session) * 1000 + :client_id
\set cost 1

-- :: Admission (WorkspaceAdmissions.RunAsync through WriteAloneAsync with answerBeforeCommit): its
-- commit does not wait for the WAL flush (PostgresDialect.EarlyCommitSql), so the workspace row's
-- lock goes at once; the turn's own commit below, flushed, makes it durable. Npgsql sends BEGIN
-- with the transaction's first statement, hence the pipeline: one round trip, as in LuluClaw.
-- (LuluClaw puts every admission that waits on a node for the same workspace into one such
-- transaction; here each turn has its own, which is what LuluClaw does when none waits.)
\startpipeline
BEGIN;
SET LOCAL synchronous_commit TO OFF;
\endpipeline
SELECT w.plan, w.credits, k.id AS key_id, k.plan AS key_plan, k.revoked_at,
    (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.workspace_id = w.id AND m.session_id = :session) AS last_seq,
    (SELECT b.version FROM bots b WHERE b.id = :bot AND b.workspace_id = w.id) AS bot_version
FROM workspaces w LEFT JOIN api_keys k ON k.id = :key AND k.workspace_id = w.id
WHERE w.id = :ws FOR UPDATE OF w \gset a_
-- admitted_at: LuluClaw binds the silo's clock in Unix ms; pgbench has no clock, so PostgreSQL's
-- transaction time stands in for it.
INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits, status)
VALUES (:turn, :ws, :key, :session, (extract(epoch FROM now()) * 1000)::bigint, :cost, 'pending');
UPDATE workspaces SET credits = credits - :cost WHERE id = :ws RETURNING credits;
COMMIT;

-- :: Commit (CommitTurnAsync): settle the admission, the session row (created by the session's
-- first turn, updated by the others), both messages in one statement after the thread's last seq
-- as the admission read it. An ordinary commit: durable (fsync) before the turn is answered.
\set seq1 :a_last_seq + 1
\set seq2 :a_last_seq + 2
\startpipeline
BEGIN;
UPDATE turns SET status = 'done' WHERE id = :turn AND status = 'pending';
\endpipeline
\if :n % :turns_per_session = 0
INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
VALUES (:ws, :session, :bot, 'gateway', (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint, 2);
\else
UPDATE sessions SET last_activity = (extract(epoch FROM now()) * 1000)::bigint, message_count = message_count + 2
WHERE workspace_id = :ws AND session_id = :session;
\endif
INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id, cut_short) VALUES
    (:ws, :session, :seq1, 'user', 'Hello! What can you help me with?', (extract(epoch FROM now()) * 1000)::bigint, :turn, 0),
    (:ws, :session, :seq2, 'assistant', 'Echo: Hello! What can you help me with?', (extract(epoch FROM now()) * 1000)::bigint, :turn, 0);
COMMIT;

\set n :n + 1
