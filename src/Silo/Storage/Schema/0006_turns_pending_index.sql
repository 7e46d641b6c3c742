-- Issue 5: the reaper of abandoned turns looks only at pending turns, which are the few turns whose
-- model call is under way; without an index it read the whole table every minute, and the table
-- holds every turn of the longest rate window (a day). Settled turns older than that are pruned.
CREATE INDEX IF NOT EXISTS turns_pending ON turns (admitted_at) WHERE status = 'pending';
