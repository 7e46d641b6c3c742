-- Issue 4: a streamed reply the client left before it ended is stored as produced, and marked.
ALTER TABLE messages ADD COLUMN cut_short INTEGER NOT NULL DEFAULT 0;

-- Per-token request counters of the OpenClaw-compatible surface: fixed one-minute windows, one row
-- per key, bucket and window; a key's older windows are deleted as its new ones start.
CREATE TABLE IF NOT EXISTS request_counts (
    key_id       TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key_id, bucket, window_start)
);
