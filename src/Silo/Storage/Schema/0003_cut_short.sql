-- Issue 4: a streamed reply the client left before it ended is stored as produced, and marked.
ALTER TABLE messages ADD COLUMN cut_short INTEGER NOT NULL DEFAULT 0;
