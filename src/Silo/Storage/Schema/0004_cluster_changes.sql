-- Issue 5: the changes other nodes must see (a bot changed, restarted or deleted; a key revoked;
-- a workspace's provider keys changed; a session deleted). Each is written in the transaction of
-- the change itself and announced with NOTIFY at its commit; nodes that missed the notification
-- find it here on their next poll. Rows older than an hour are pruned.
CREATE TABLE IF NOT EXISTS cluster_changes (
    id      TEXT PRIMARY KEY,
    node    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS cluster_changes_at ON cluster_changes (at);
