namespace LuluClaw.Grains.Storage;

/// <summary>
/// Knowledge sources, their pages and chunks. Each call is one database transaction. Ingestion
/// claims a due source with a lease, so that one silo ingests it at a time and a dead silo's
/// ingestion is claimed again when its lease runs out.
/// </summary>
public interface IKnowledgeStore
{
    /// <summary>Stores a new source (and a document's file).</summary>
    Task InsertSourceAsync(KnowledgeSourceRecord source, KnowledgeFile? file, CancellationToken cancellationToken);

    /// <summary>The workspace's source, or null.</summary>
    Task<KnowledgeSourceRecord?> GetSourceAsync(Guid workspaceId, string sourceId, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> of the workspace's sources, newest first, after the <paramref name="offset"/> newer ones; and their total.</summary>
    Task<(IReadOnlyList<KnowledgeSourceRecord> Sources, long Total)> ListSourcesAsync(Guid workspaceId, int offset, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Renames the source and, with <paramref name="settings"/>, replaces what it ingests and asks for
    /// it to be ingested again (pending, a new version, any lease dropped). Null if there is no such source.
    /// </summary>
    Task<KnowledgeSourceRecord?> UpdateSourceAsync(Guid workspaceId, string sourceId, string? name, string? settings, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Asks for the source to be ingested again now: pending, a new version, any lease dropped. Null if there is no such source.</summary>
    Task<KnowledgeSourceRecord?> RequestIngestionAsync(Guid workspaceId, string sourceId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Deletes the source with its file, pages and chunks; false if there was none.</summary>
    Task<bool> DeleteSourceAsync(Guid workspaceId, string sourceId, CancellationToken cancellationToken);

    /// <summary>
    /// Claims one source that is due for ingestion, if any: pending; or crawling under a lease that ran out
    /// (its silo died); or a website whose next crawl is due. It becomes crawling, leased to
    /// <paramref name="owner"/> until <paramref name="leaseUntil"/>.
    /// </summary>
    Task<KnowledgeClaim?> ClaimDueSourceAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>Extends <paramref name="owner"/>'s lease of the source; false if it holds it no longer (the source was changed, refreshed or deleted).</summary>
    Task<bool> RenewLeaseAsync(string sourceId, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>
    /// Settles an ingestion, if its claim still holds (the lease is the owner's and the version the one
    /// claimed): the pages and chunks as <paramref name="outcome"/> says, the status, the chunk count.
    /// False, writing nothing, if the claim no longer holds.
    /// </summary>
    Task<bool> CompleteIngestionAsync(IngestionOutcome outcome, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The source's chunks, in order (for tests and for the chunk cap's checks).</summary>
    Task<IReadOnlyList<KnowledgeChunkRecord>> GetChunksAsync(string sourceId, CancellationToken cancellationToken);

    /// <summary>
    /// Full-text search of the workspace's ingested sources (any not in <c>error</c>; one being ingested again answers from its last ingestion): the ids of up to <paramref name="limit"/>
    /// chunks matching any of <paramref name="terms"/>, best ranked first (BM25 on SQLite, <c>ts_rank</c> on PostgreSQL).
    /// </summary>
    Task<IReadOnlyList<long>> SearchTextAsync(Guid workspaceId, IReadOnlyList<string> terms, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// What identifies the chunks of each of the workspace's sources that answer (not in <c>error</c>) as they stand: a
    /// source's chunks change only when an ingestion settles (which sets its last ingestion time, and
    /// its chunk count) and when it is deleted (its row goes). One small indexed read of the sources
    /// table, made on every retrieval to tell whether a silo's cached vectors still hold.
    /// </summary>
    Task<IReadOnlyList<KnowledgeSourceStamp>> GetAnsweringSourceStampsAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>The embeddings of the source's chunks, by chunk id, ascending (chunks without one are left out).</summary>
    Task<IReadOnlyList<(long ChunkId, byte[] Embedding)>> GetSourceEmbeddingsAsync(string sourceId, CancellationToken cancellationToken);

    /// <summary>The chunks of <paramref name="chunkIds"/> that still belong to a source of the workspace not in <c>error</c>, with their source.</summary>
    Task<IReadOnlyList<RetrievedChunk>> GetRetrievedChunksAsync(Guid workspaceId, IReadOnlyList<long> chunkIds, CancellationToken cancellationToken);
}

/// <summary>An answering source's stamp (not in <c>error</c>): while it is the same, so are the source's chunks (see <see cref="IKnowledgeStore.GetAnsweringSourceStampsAsync"/>).</summary>
public sealed record KnowledgeSourceStamp(string SourceId, long Version, long LastIngestedAtMs, long ChunkCount);

/// <summary>A chunk as retrieval hands it on: its text and where it came from.</summary>
/// <param name="Url">The page it came from (a website's page; null for documents and manual sources).</param>
public sealed record RetrievedChunk(long ChunkId, string SourceId, string SourceName, string? Url, string? Title, string? Heading, string Text, int Tokens);

/// <summary>A knowledge source row. <see cref="Settings"/> is JSON: what the source's type needs to ingest it.</summary>
/// <param name="Version">Counts the changes that call for a new ingestion; an ingestion commits only at the version it claimed.</param>
/// <param name="NextCrawlAt">When a website is due to be crawled again.</param>
public sealed record KnowledgeSourceRecord(
    string Id,
    Guid WorkspaceId,
    string Name,
    string Type,
    string? Url,
    string Status,
    string? StatusReason,
    long ChunkCount,
    string Settings,
    long Version,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastIngestedAt,
    DateTimeOffset? NextCrawlAt)
{
    /// <summary>The public view.</summary>
    public KnowledgeSourceInfo ToInfo() => new(Id, WorkspaceId, Name, Type, Url, ChunkCount, Status, StatusReason, CreatedAt, UpdatedAt, LastIngestedAt);
}

/// <summary>An uploaded document, as stored.</summary>
public sealed record KnowledgeFile(string FileName, string MediaType, byte[] Content);

/// <summary>What the last ingestion kept of one page of a source (<see cref="Key"/>: a website page's URL, or <c>""</c> for a document's or manual source's one page).</summary>
public sealed record KnowledgePageRecord(string Key, string? Title, string ContentHash, string? ETag, string? LastModified);

/// <summary>A source claimed for ingestion, with what it needs: its file, and what the last ingestion saw of its pages.</summary>
public sealed record KnowledgeClaim(KnowledgeSourceRecord Source, KnowledgeFile? File, IReadOnlyList<KnowledgePageRecord> Pages);

/// <summary>One chunk: its page, position, text, size in tokens, the page title and heading it came under, and its embedding.</summary>
public sealed record KnowledgeChunkRecord(string PageKey, int Position, string Text, int Tokens, string? Title, string? Heading, float[]? Embedding);

/// <summary>A page as an ingestion found it: <see cref="Chunks"/> null when it did not change (its stored chunks stay).</summary>
public sealed record KnowledgePageUpdate(KnowledgePageRecord Page, IReadOnlyList<KnowledgeChunkRecord>? Chunks);

/// <summary>
/// How an ingestion ended. With <see cref="Pages"/>, they replace the source's pages: a page not listed
/// is gone (its chunks with it). Without (a failed ingestion), the stored pages and chunks stay.
/// </summary>
/// <param name="Version">The version the ingestion claimed.</param>
/// <param name="Owner">The lease owner that claimed it.</param>
/// <param name="NextCrawlAt">When to ingest it again by itself (a website's schedule); null for never.</param>
public sealed record IngestionOutcome(
    string SourceId, long Version, string Owner, string Status, string? StatusReason, IReadOnlyList<KnowledgePageUpdate>? Pages, DateTimeOffset? NextCrawlAt);
