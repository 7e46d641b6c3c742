-- Issue 17: how many of a workspace's chunks hold each lexeme, kept by the store in the transaction
-- that writes or deletes the chunks. The full-text search reads it to rank only by the rare words of
-- a question: counting a word's matches through the GIN index visits every matching row (a common
-- word costs tens of milliseconds at 100,000 chunks), reading its count here is one index probe.
-- SQLite's FTS5 counts a word's first matches cheaply and needs no such table.
CREATE TABLE IF NOT EXISTS knowledge_terms (
    workspace_id TEXT NOT NULL,
    lexeme       TEXT NOT NULL,
    chunks       BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, lexeme)
);

INSERT INTO knowledge_terms (workspace_id, lexeme, chunks)
SELECT workspace_id, lexeme, COUNT(*) FROM knowledge_chunks, unnest(tsvector_to_array(search)) AS lexeme GROUP BY workspace_id, lexeme
ON CONFLICT (workspace_id, lexeme) DO NOTHING;

-- Ranking reads each match's tsvector. Left to the defaults, a chunk's row (text, tsvector and a
-- 1,536-byte embedding) is over the TOAST threshold and the tsvector is moved out of line, so each
-- match costs three more page reads (2.5 times the time at 1,000 matches). The embedding, which only
-- the vector cache's load reads, goes out of line instead, and the tsvector stays in the row.
-- The UPDATE rewrites the rows already there (the generated column is computed again, stored the new way).
ALTER TABLE knowledge_chunks ALTER COLUMN search SET STORAGE MAIN;
ALTER TABLE knowledge_chunks ALTER COLUMN embedding SET STORAGE EXTERNAL;
UPDATE knowledge_chunks SET text = text;
