-- Issue 17: knowledge sources. A source row says what to ingest (settings: a website's page and
-- depth budget, a manual source's entries or text, as JSON) and where its ingestion stands. The
-- background ingestion claims a due source with a lease (lease_owner, lease_until): one silo
-- ingests a source at a time, and a source whose silo died is claimed again once its lease runs
-- out. version counts the changes that call for a new ingestion (a refresh, new manual entries):
-- an ingestion that started before one does not commit.
CREATE TABLE IF NOT EXISTS knowledge_sources (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    url              TEXT,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    chunk_count      BIGINT NOT NULL DEFAULT 0,
    settings         TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_ingested_at BIGINT,
    next_crawl_at    BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT
);

CREATE INDEX IF NOT EXISTS knowledge_sources_by_workspace ON knowledge_sources (workspace_id, created_at);
CREATE INDEX IF NOT EXISTS knowledge_sources_by_status ON knowledge_sources (status);

-- An uploaded document's bytes, kept so that a refresh (or an ingestion a dead silo left) can run again.
CREATE TABLE IF NOT EXISTS knowledge_files (
    source_id  TEXT PRIMARY KEY,
    file_name  TEXT NOT NULL,
    media_type TEXT NOT NULL,
    content    BYTEA NOT NULL
);

-- What the last ingestion saw of each page of a source (a website's URL; the one page of a document
-- or manual source has the key ''): a re-crawl sends its ETag / Last-Modified and re-chunks and
-- re-embeds only the pages whose text hash changed.
CREATE TABLE IF NOT EXISTS knowledge_pages (
    source_id     TEXT NOT NULL,
    page_key      TEXT NOT NULL,
    title         TEXT,
    content_hash  TEXT NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    PRIMARY KEY (source_id, page_key)
);

-- Keys minted before the knowledge scope existed get it with bots, as new keys do.
UPDATE api_keys SET scopes = scopes || ' knowledge'
WHERE (' ' || scopes || ' ') LIKE '% bots %' AND (' ' || scopes || ' ') NOT LIKE '% knowledge %';
