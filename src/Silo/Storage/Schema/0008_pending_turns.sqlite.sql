-- A turn's admission becomes two rows: its row in turns, which the rolling windows count and which
-- is written once and never updated, and its row in pending_turns until the turn commits (the row
-- goes) or is refunded (both go). The reaper reads pending_turns, which holds only the turns in
-- flight, so it needs no index of its own (0009 is the same change on PostgreSQL).
--
-- On SQLite both tables are WITHOUT ROWID: a table keyed by a text id is otherwise two b-trees
-- (the rows by rowid, and the key's index), and every b-tree a turn touches is pages the group
-- commit writes to the log. turns is rebuilt for it (SQLite cannot change that in place), without
-- the status and alive_at columns and the turns_pending index, which pending_turns replaces.
CREATE TABLE IF NOT EXISTS pending_turns (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    credits      BIGINT NOT NULL,
    admitted_at  BIGINT NOT NULL,
    alive_at     BIGINT
) WITHOUT ROWID;

INSERT INTO pending_turns (id, workspace_id, credits, admitted_at, alive_at)
    SELECT id, workspace_id, credits, admitted_at, alive_at FROM turns WHERE status = 'pending';

CREATE TABLE turns_rebuilt (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key_id       TEXT,
    session_id   TEXT NOT NULL,
    admitted_at  BIGINT NOT NULL,
    credits      BIGINT NOT NULL
) WITHOUT ROWID;

INSERT INTO turns_rebuilt (id, workspace_id, key_id, session_id, admitted_at, credits)
    SELECT id, workspace_id, key_id, session_id, admitted_at, credits FROM turns;

DROP TABLE turns;
ALTER TABLE turns_rebuilt RENAME TO turns;
CREATE INDEX turns_window ON turns (workspace_id, admitted_at);
CREATE INDEX turns_by_key ON turns (key_id, admitted_at);
