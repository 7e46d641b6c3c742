-- Issue 17: the chunks retrieval reads, each with its source, page, heading and embedding (float32
-- little-endian), and an FTS5 index of their text kept by triggers (external content: the text is
-- stored once, in knowledge_chunks). chunk_id is the rowid, so FTS5 can point at it.
CREATE TABLE IF NOT EXISTS knowledge_chunks (
    chunk_id     INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    page_key     TEXT NOT NULL,
    position     BIGINT NOT NULL,
    title        TEXT,
    heading      TEXT,
    text         TEXT NOT NULL,
    tokens       BIGINT NOT NULL,
    embedding    BLOB
);

CREATE INDEX IF NOT EXISTS knowledge_chunks_by_source ON knowledge_chunks (source_id, page_key);
CREATE INDEX IF NOT EXISTS knowledge_chunks_by_workspace ON knowledge_chunks (workspace_id);

CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_chunks_fts USING fts5(
    heading, text, content='knowledge_chunks', content_rowid='chunk_id', tokenize='porter unicode61');

CREATE TRIGGER IF NOT EXISTS knowledge_chunks_fts_insert AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (rowid, heading, text) VALUES (new.chunk_id, coalesce(new.heading, ''), new.text);
END;

CREATE TRIGGER IF NOT EXISTS knowledge_chunks_fts_delete AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts, rowid, heading, text) VALUES ('delete', old.chunk_id, coalesce(old.heading, ''), old.text);
END;
