-- The same change as 0008_pending_turns.sqlite.sql, on PostgreSQL: a turn's admission becomes its row in
-- turns, which the rolling windows count and which is written once and never updated, and its row
-- in pending_turns until the turn commits (the row goes) or is refunded (both go). Settling a turn
-- used to update its turns row, and since the pending-turns index named the status, every commit
-- wrote a new version of the row and of all four of its index entries; now it deletes one small
-- row. The reaper reads pending_turns, which holds only the turns in flight.
CREATE TABLE IF NOT EXISTS pending_turns (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    credits      BIGINT NOT NULL,
    admitted_at  BIGINT NOT NULL,
    alive_at     BIGINT
);

INSERT INTO pending_turns (id, workspace_id, credits, admitted_at, alive_at)
    SELECT id, workspace_id, credits, admitted_at, alive_at FROM turns WHERE status = 'pending';

DROP INDEX IF EXISTS turns_pending;
ALTER TABLE turns DROP COLUMN alive_at;
ALTER TABLE turns DROP COLUMN status;
