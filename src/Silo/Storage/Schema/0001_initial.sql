-- One script for both providers: only types and syntax that SQLite and PostgreSQL share.
-- Times are Unix milliseconds (BIGINT); ids are TEXT; workspace ids are UUIDs in "D" format.

CREATE TABLE IF NOT EXISTS workspaces (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    plan           TEXT NOT NULL,
    credits        BIGINT NOT NULL CHECK (credits >= 0),
    primary_bot_id TEXT NOT NULL,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS bots (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    system_prompt TEXT NOT NULL,
    model         TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS bots_by_workspace ON bots (workspace_id);

CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    plan         TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE IF NOT EXISTS sessions (
    workspace_id  TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    bot_id        TEXT NOT NULL,
    channel       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_activity BIGINT NOT NULL,
    message_count BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, session_id)
);

-- Append-only history: a row is never updated; (workspace, session, seq) is unique.
CREATE TABLE IF NOT EXISTS messages (
    workspace_id TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    turn_id      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, session_id, seq)
);

-- Admitted turns: the rolling window counts these rows. 'pending' while the model answers,
-- 'done' once the turn's messages are stored; a refunded turn's row is deleted.
CREATE TABLE IF NOT EXISTS turns (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key_id       TEXT,
    session_id   TEXT NOT NULL,
    admitted_at  BIGINT NOT NULL,
    credits      BIGINT NOT NULL,
    status       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_window ON turns (workspace_id, admitted_at);
