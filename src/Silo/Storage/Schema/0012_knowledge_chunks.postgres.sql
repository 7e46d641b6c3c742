-- Issue 17: the same chunks as 0011_knowledge_chunks.sqlite.sql, on PostgreSQL: full-text search
-- through a generated tsvector column and its GIN index (English stemming, as SQLite's porter).
CREATE TABLE IF NOT EXISTS knowledge_chunks (
    chunk_id     BIGSERIAL PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    page_key     TEXT NOT NULL,
    position     BIGINT NOT NULL,
    title        TEXT,
    heading      TEXT,
    text         TEXT NOT NULL,
    tokens       BIGINT NOT NULL,
    embedding    BYTEA,
    search       tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED
);

CREATE INDEX IF NOT EXISTS knowledge_chunks_by_source ON knowledge_chunks (source_id, page_key);
CREATE INDEX IF NOT EXISTS knowledge_chunks_by_workspace ON knowledge_chunks (workspace_id);
CREATE INDEX IF NOT EXISTS knowledge_chunks_search ON knowledge_chunks USING GIN (search);
