-- Issue 3: bot lifecycle fields, per-key rolling windows, workspaces' own provider keys, and the
-- Data Protection key ring that encrypts them (shared by every node of a cluster).

ALTER TABLE bots ADD COLUMN channels TEXT NOT NULL DEFAULT '';
ALTER TABLE bots ADD COLUMN restart_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bots ADD COLUMN last_restarted_at BIGINT;

CREATE INDEX IF NOT EXISTS turns_by_key ON turns (key_id, admitted_at);

-- Only ciphertext (ASP.NET Core Data Protection) and a masked hint; never the key itself.
CREATE TABLE IF NOT EXISTS provider_keys (
    workspace_id TEXT NOT NULL,
    provider     TEXT NOT NULL,
    ciphertext   TEXT NOT NULL,
    hint         TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, provider)
);

CREATE TABLE IF NOT EXISTS data_protection_keys (
    name       TEXT PRIMARY KEY,
    xml        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
