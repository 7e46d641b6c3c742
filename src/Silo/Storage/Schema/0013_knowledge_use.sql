-- Issue 17: how each bot uses the workspace's knowledge, and which knowledge each reply used.
-- bots.knowledge is JSON ({"enabled", "threshold", "fallback"}); null is the defaults (knowledge on,
-- the configured evidence gate and words). messages.sources is JSON, for an assistant reply that was
-- given knowledge: [{"id", "name", "url", "chunks": [chunk ids]}] in the order the prompt showed them.
ALTER TABLE bots ADD COLUMN knowledge TEXT;
ALTER TABLE messages ADD COLUMN sources TEXT;
