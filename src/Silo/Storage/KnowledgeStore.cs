using System.Runtime.InteropServices;
using LuluClaw.Grains.Storage;
using static LuluClaw.Silo.Storage.Columns;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Knowledge sources and what their ingestion made of them (tables <c>knowledge_sources</c>,
/// <c>knowledge_files</c>, <c>knowledge_pages</c>, <c>knowledge_chunks</c>).
/// </summary>
/// <remarks>
/// A claim is a conditional update: the source's row moves to crawling under a lease only if it is
/// still due, so two silos that pick the same source cannot both have it (on PostgreSQL the second
/// update waits for the first and then finds the row no longer due). An ingestion settles only if
/// its lease and the version it claimed still hold, so a source changed, refreshed or deleted
/// meanwhile is never overwritten by what an older ingestion found.
/// </remarks>
public sealed class KnowledgeStore(Database database) : IKnowledgeStore
{
    private const string SourceColumns =
        "id, workspace_id, name, type, url, status, status_reason, chunk_count, settings, version, created_at, updated_at, last_ingested_at, next_crawl_at";

    public Task InsertSourceAsync(KnowledgeSourceRecord source, KnowledgeFile? file, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            await Statements.ExecuteAsync(c, tx,
                $"""
                INSERT INTO knowledge_sources ({SourceColumns}, lease_owner, lease_until)
                VALUES (@Id, @WorkspaceId, @Name, @Type, @Url, @Status, @StatusReason, @ChunkCount, @Settings, @Version, @CreatedAt, @UpdatedAt, @LastIngestedAt, @NextCrawlAt, NULL, NULL)
                """,
                cancellationToken,
                ("Id", source.Id), ("WorkspaceId", Id(source.WorkspaceId)), ("Name", source.Name), ("Type", source.Type), ("Url", source.Url),
                ("Status", source.Status), ("StatusReason", source.StatusReason), ("ChunkCount", source.ChunkCount), ("Settings", source.Settings),
                ("Version", source.Version), ("CreatedAt", Ms(source.CreatedAt)), ("UpdatedAt", Ms(source.UpdatedAt)),
                ("LastIngestedAt", Ms(source.LastIngestedAt)), ("NextCrawlAt", Ms(source.NextCrawlAt)));
            if (file is not null)
            {
                await Statements.ExecuteAsync(c, tx,
                    "INSERT INTO knowledge_files (source_id, file_name, media_type, content) VALUES (@SourceId, @FileName, @MediaType, @Content)",
                    cancellationToken, ("SourceId", source.Id), ("FileName", file.FileName), ("MediaType", file.MediaType), ("Content", file.Content));
            }

            return true;
        }, cancellationToken);

    public Task<KnowledgeSourceRecord?> GetSourceAsync(Guid workspaceId, string sourceId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null,
            $"SELECT {SourceColumns} FROM knowledge_sources WHERE id = @Id AND workspace_id = @WorkspaceId",
            ReadSource, cancellationToken, ("Id", sourceId), ("WorkspaceId", Id(workspaceId))), cancellationToken);

    public Task<(IReadOnlyList<KnowledgeSourceRecord> Sources, long Total)> ListSourcesAsync(Guid workspaceId, int offset, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<(IReadOnlyList<KnowledgeSourceRecord>, long)>(async c =>
        {
            var sources = await Statements.RowsAsync(c, null,
                $"""
                SELECT {SourceColumns} FROM knowledge_sources WHERE workspace_id = @WorkspaceId
                ORDER BY created_at DESC, id DESC LIMIT @Limit OFFSET @Offset
                """,
                ReadSource, cancellationToken, ("WorkspaceId", Id(workspaceId)), ("Limit", limit), ("Offset", offset));
            var total = await Statements.ScalarAsync(c, null, "SELECT COUNT(*) FROM knowledge_sources WHERE workspace_id = @WorkspaceId",
                cancellationToken, ("WorkspaceId", Id(workspaceId)));
            return (sources, total ?? 0);
        }, cancellationToken);

    public Task<KnowledgeSourceRecord?> UpdateSourceAsync(
        Guid workspaceId, string sourceId, string? name, string? settings, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            // Without new settings, the settings written are the stored ones: one statement either way.
            var changed = await Statements.ExecuteAsync(c, tx,
                """
                UPDATE knowledge_sources SET name = COALESCE(@Name, name), settings = COALESCE(@Settings, settings), updated_at = @Now,
                    status = CASE WHEN @Reingest = 1 THEN 'pending' ELSE status END,
                    status_reason = CASE WHEN @Reingest = 1 THEN NULL ELSE status_reason END,
                    version = version + @Reingest,
                    lease_owner = CASE WHEN @Reingest = 1 THEN NULL ELSE lease_owner END,
                    lease_until = CASE WHEN @Reingest = 1 THEN NULL ELSE lease_until END
                WHERE id = @Id AND workspace_id = @WorkspaceId
                """,
                cancellationToken, ("Name", name), ("Settings", settings), ("Now", Ms(now)), ("Reingest", settings is null ? 0 : 1), ("Id", sourceId),
                ("WorkspaceId", Id(workspaceId)));
            return changed == 0 ? null : await SourceAsync(c, tx, sourceId, cancellationToken);
        }, cancellationToken);

    public Task<KnowledgeSourceRecord?> RequestIngestionAsync(Guid workspaceId, string sourceId, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            var changed = await Statements.ExecuteAsync(c, tx,
                """
                UPDATE knowledge_sources SET status = 'pending', status_reason = NULL, version = version + 1, lease_owner = NULL, lease_until = NULL, updated_at = @Now
                WHERE id = @Id AND workspace_id = @WorkspaceId
                """,
                cancellationToken, ("Now", Ms(now)), ("Id", sourceId), ("WorkspaceId", Id(workspaceId)));
            return changed == 0 ? null : await SourceAsync(c, tx, sourceId, cancellationToken);
        }, cancellationToken);

    public Task<bool> DeleteSourceAsync(Guid workspaceId, string sourceId, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            if (await Statements.ExecuteAsync(c, tx, "DELETE FROM knowledge_sources WHERE id = @Id AND workspace_id = @WorkspaceId",
                    cancellationToken, ("Id", sourceId), ("WorkspaceId", Id(workspaceId))) == 0)
            {
                return false;
            }

            await CountTermsAsync(c, tx, Id(workspaceId), sourceId, null, -1, cancellationToken);
            foreach (var table in new[] { "knowledge_chunks", "knowledge_pages", "knowledge_files" })
            {
                await Statements.ExecuteAsync(c, tx, $"DELETE FROM {table} WHERE source_id = @Id", cancellationToken, ("Id", sourceId));
            }

            return true;
        }, cancellationToken);

    public Task<KnowledgeClaim?> ClaimDueSourceAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            const string Due =
                "(status = 'pending' OR (status = 'crawling' AND lease_until < @Now) OR (status IN ('ready', 'error') AND next_crawl_at <= @Now))";
            var id = await Statements.RowAsync(c, tx,
                $"SELECT id FROM knowledge_sources WHERE {Due} ORDER BY updated_at, id LIMIT 1", r => r.GetString(0), cancellationToken, ("Now", Ms(now)));
            if (id is null || await Statements.ExecuteAsync(c, tx,
                    $"UPDATE knowledge_sources SET status = 'crawling', lease_owner = @Owner, lease_until = @LeaseUntil WHERE id = @Id AND {Due}",
                    cancellationToken, ("Owner", owner), ("LeaseUntil", Ms(leaseUntil)), ("Id", id), ("Now", Ms(now))) == 0)
            {
                return null; // nothing due, or another silo claimed it first
            }

            var source = (await SourceAsync(c, tx, id, cancellationToken))!;
            var file = await Statements.RowAsync(c, tx, "SELECT file_name, media_type, content FROM knowledge_files WHERE source_id = @Id",
                r => new KnowledgeFile(r.GetString(0), r.GetString(1), r.GetBytes(2)), cancellationToken, ("Id", id));
            var pages = await Statements.RowsAsync(c, tx,
                "SELECT page_key, title, content_hash, etag, last_modified FROM knowledge_pages WHERE source_id = @Id ORDER BY page_key",
                r => new KnowledgePageRecord(r.GetString(0), r.StringOrNull(1), r.GetString(2), r.StringOrNull(3), r.StringOrNull(4)), cancellationToken, ("Id", id));
            return new KnowledgeClaim(source, file, pages);
        }, cancellationToken);

    public Task<bool> RenewLeaseAsync(string sourceId, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) => await Statements.ExecuteAsync(c, tx,
            "UPDATE knowledge_sources SET lease_until = @LeaseUntil WHERE id = @Id AND lease_owner = @Owner AND status = 'crawling'",
            cancellationToken, ("LeaseUntil", Ms(leaseUntil)), ("Id", sourceId), ("Owner", owner)) == 1, cancellationToken);

    public Task<bool> CompleteIngestionAsync(IngestionOutcome outcome, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            // Locked (on PostgreSQL) until this commits: a refresh or a delete waits for it, and then wins.
            var version = await Statements.ScalarAsync(c, tx,
                $"SELECT version FROM knowledge_sources s WHERE id = @Id AND lease_owner = @Owner AND status = 'crawling'{database.Dialect.ForUpdateOf("s")}",
                cancellationToken, ("Id", outcome.SourceId), ("Owner", outcome.Owner));
            if (version != outcome.Version)
            {
                return false;
            }

            if (outcome.Pages is { } pages)
            {
                await ReplacePagesAsync(c, tx, outcome.SourceId, pages, cancellationToken);
            }

            await Statements.ExecuteAsync(c, tx,
                """
                UPDATE knowledge_sources SET status = @Status, status_reason = @StatusReason, last_ingested_at = @Now, updated_at = @Now,
                    next_crawl_at = @NextCrawlAt, lease_owner = NULL, lease_until = NULL,
                    chunk_count = (SELECT COUNT(*) FROM knowledge_chunks WHERE source_id = @Id)
                WHERE id = @Id
                """,
                cancellationToken, ("Status", outcome.Status), ("StatusReason", outcome.StatusReason), ("Now", Ms(now)),
                ("NextCrawlAt", Ms(outcome.NextCrawlAt)), ("Id", outcome.SourceId));
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyList<KnowledgeChunkRecord>> GetChunksAsync(string sourceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            "SELECT page_key, position, text, tokens, title, heading, embedding FROM knowledge_chunks WHERE source_id = @Id ORDER BY page_key, position",
            r => new KnowledgeChunkRecord(r.GetString(0), (int)r.GetInt64(1), r.GetString(2), (int)r.GetInt64(3), r.StringOrNull(4), r.StringOrNull(5),
                r.IsNull(6) ? null : Floats(r.GetBytes(6))),
            cancellationToken, ("Id", sourceId)), cancellationToken).ConfigureAwait(false);

    /// <summary>How many matches the ranked query may rank: the rarest terms are taken while their matches add up to no more.</summary>
    internal const int RankedMatches = 1000;

    /// <summary>How many matches are ranked when even the rarest term is common.</summary>
    internal const int CommonQueryMatches = 250;

    /// <remarks>
    /// Ranking every match of a common word costs a BM25 or <c>ts_rank</c> per match: at 100,000 chunks
    /// "the" or "order" match most of them, hundreds of milliseconds. So each term's matches are counted
    /// first (cheap: no ranking), and the ranked query takes the rarest terms, rarest first, while their
    /// matches add up to at most <see cref="RankedMatches"/>: those are the ones that decide a BM25
    /// ranking (a word in many chunks weighs little), and there are few of their matches. When even the
    /// rarest term is common, the first <see cref="CommonQueryMatches"/> matches are ranked. SQLite counts
    /// a term's first matches in its FTS5 index (one index, every workspace's chunks); PostgreSQL reads
    /// the workspace's count of each lexeme from <c>knowledge_terms</c>, which the writes below keep,
    /// because counting through its GIN index visits every matching row.
    /// </remarks>
    public async Task<IReadOnlyList<long>> SearchTextAsync(Guid workspaceId, IReadOnlyList<string> terms, int limit, CancellationToken cancellationToken)
    {
        // Terms are letters and digits only (the retriever makes them so), each quoted: nothing of the user's text is query syntax.
        var words = terms.Where(t => t.Length > 0 && t.All(char.IsLetterOrDigit)).Distinct(StringComparer.Ordinal).ToArray();
        if (words.Length == 0)
        {
            return [];
        }

        var postgres = database.Dialect.Name == "postgres";
        return await database.ReadAsync(async c =>
        {
            var counted = postgres ? await PostgresTermCountsAsync(c, workspaceId, words, cancellationToken) : await SqliteTermCountsAsync(c, words, cancellationToken);
            var present = counted.Where(t => t.Chunks > 0).OrderBy(t => t.Chunks).ThenBy(t => t.Term, StringComparer.Ordinal).ToArray();
            if (present.Length == 0)
            {
                return [];
            }

            var rare = new List<string>();
            var total = 0L;
            foreach (var (term, chunks) in present)
            {
                if ((total += chunks) > RankedMatches)
                {
                    break;
                }

                rare.Add(term);
            }

            string Query(IEnumerable<string> some) => string.Join(postgres ? " | " : " OR ", some);
            var sql = (rare.Count > 0, postgres) switch
            {
                (true, true) => """
                    SELECT c.chunk_id FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                    WHERE c.workspace_id = @WorkspaceId AND s.status <> 'error' AND c.search @@ @Query::tsquery
                    ORDER BY ts_rank(c.search, @Query::tsquery) DESC, c.chunk_id LIMIT @Limit
                    """,
                (true, false) => """
                    SELECT c.chunk_id FROM knowledge_chunks_fts f JOIN knowledge_chunks c ON c.chunk_id = f.rowid JOIN knowledge_sources s ON s.id = c.source_id
                    WHERE knowledge_chunks_fts MATCH @Query AND c.workspace_id = @WorkspaceId AND s.status <> 'error'
                    ORDER BY bm25(knowledge_chunks_fts), c.chunk_id LIMIT @Limit
                    """,
                // PostgreSQL takes the first matches of the rarest lexeme and ranks them by all of them; FTS5 ranks by what it matched.
                (false, true) => $"""
                    SELECT chunk_id FROM (
                        SELECT c.chunk_id, ts_rank(c.search, @Query::tsquery) AS score FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
                        WHERE c.workspace_id = @WorkspaceId AND s.status <> 'error' AND c.search @@ @Match::tsquery LIMIT {CommonQueryMatches}) m
                    ORDER BY score DESC, chunk_id LIMIT @Limit
                    """,
                (false, false) => $"""
                    SELECT chunk_id FROM (
                        SELECT c.chunk_id, bm25(knowledge_chunks_fts) AS score FROM knowledge_chunks_fts f JOIN knowledge_chunks c ON c.chunk_id = f.rowid JOIN knowledge_sources s ON s.id = c.source_id
                        WHERE knowledge_chunks_fts MATCH @Query AND c.workspace_id = @WorkspaceId AND s.status <> 'error' LIMIT {CommonQueryMatches}) m
                    ORDER BY score, chunk_id LIMIT @Limit
                    """,
            };
            return await Statements.RowsAsync(c, null, sql, r => r.GetInt64(0), cancellationToken,
                ("WorkspaceId", Id(workspaceId)), ("Query", Query(rare.Count > 0 ? rare : present.Select(t => t.Term))), ("Match", present[0].Term), ("Limit", limit));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Each word quoted for FTS5, with how many chunks match it, counted up to one more than <see cref="RankedMatches"/>.</summary>
    private static async Task<IReadOnlyList<(string Term, long Chunks)>> SqliteTermCountsAsync(System.Data.Common.DbConnection c, string[] words, CancellationToken cancellationToken)
    {
        var quoted = words.Select(w => $"\"{w}\"").ToArray();
        var counts = string.Join(", ", quoted.Select((_, i) =>
            $"(SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH @T{i} LIMIT {RankedMatches + 1}))"));
        var matches = await Statements.RowAsync(c, null, $"SELECT {counts}", r => Enumerable.Range(0, quoted.Length).Select(r.GetInt64).ToArray(),
            cancellationToken, quoted.Select((w, i) => ($"T{i}", (object?)w)).ToArray());
        return quoted.Select((w, i) => (w, matches![i])).ToArray();
    }

    /// <summary>
    /// The lexemes PostgreSQL makes of the words (English stemming, stop words dropped), each quoted for
    /// a <c>tsquery</c>, with the workspace's count of chunks holding it.
    /// </summary>
    private static Task<List<(string Term, long Chunks)>> PostgresTermCountsAsync(System.Data.Common.DbConnection c, Guid workspaceId, string[] words, CancellationToken cancellationToken) =>
        Statements.RowsAsync(c, null,
            """
            SELECT l.lexeme, COALESCE(t.chunks, 0) FROM unnest(tsvector_to_array(to_tsvector('english', @Text))) AS l (lexeme)
            LEFT JOIN knowledge_terms t ON t.workspace_id = @WorkspaceId AND t.lexeme = l.lexeme
            """,
            r => ($"'{r.GetString(0).Replace("'", "''", StringComparison.Ordinal)}'", r.GetInt64(1)), cancellationToken,
            ("Text", string.Join(' ', words)), ("WorkspaceId", Id(workspaceId)));

    public async Task<IReadOnlyList<KnowledgeSourceStamp>> GetAnsweringSourceStampsAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            "SELECT id, version, COALESCE(last_ingested_at, 0), chunk_count FROM knowledge_sources WHERE workspace_id = @WorkspaceId AND status <> 'error' ORDER BY id",
            r => new KnowledgeSourceStamp(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3)),
            cancellationToken, ("WorkspaceId", Id(workspaceId))), cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<(long ChunkId, byte[] Embedding)>> GetSourceEmbeddingsAsync(string sourceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            "SELECT chunk_id, embedding FROM knowledge_chunks WHERE source_id = @Id AND embedding IS NOT NULL ORDER BY chunk_id",
            r => (r.GetInt64(0), r.GetBytes(1)), cancellationToken, ("Id", sourceId)), cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<RetrievedChunk>> GetRetrievedChunksAsync(Guid workspaceId, IReadOnlyList<long> chunkIds, CancellationToken cancellationToken)
    {
        if (chunkIds.Count == 0)
        {
            return [];
        }

        // The ids are numbers this store made: written into the statement, which keeps one statement per count.
        var list = string.Join(", ", chunkIds.Select(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var rows = await database.ReadAsync(c => Statements.RowsAsync(c, null,
            $"""
            SELECT c.chunk_id, c.source_id, s.name, CASE WHEN s.type = 'website' THEN c.page_key END, c.title, c.heading, c.text, c.tokens
            FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id
            WHERE c.workspace_id = @WorkspaceId AND s.status <> 'error' AND c.chunk_id IN ({list})
            """,
            r => new RetrievedChunk(r.GetInt64(0), r.GetString(1), r.GetString(2), r.StringOrNull(3), r.StringOrNull(4), r.StringOrNull(5), r.GetString(6), (int)r.GetInt64(7)),
            cancellationToken, ("WorkspaceId", Id(workspaceId))), cancellationToken).ConfigureAwait(false);
        var byId = rows.ToDictionary(r => r.ChunkId);
        return [.. chunkIds.Where(byId.ContainsKey).Select(id => byId[id])];
    }

    /// <summary>The source's pages become <paramref name="pages"/>: gone pages and changed pages lose their chunks, changed and new pages get theirs.</summary>
    private async Task ReplacePagesAsync(
        System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string sourceId, IReadOnlyList<KnowledgePageUpdate> pages, CancellationToken cancellationToken)
    {
        var workspaceId = await Statements.RowAsync(c, tx, "SELECT workspace_id FROM knowledge_sources WHERE id = @Id", r => r.GetString(0), cancellationToken, ("Id", sourceId));
        var kept = pages.Select(p => p.Page.Key).ToHashSet(StringComparer.Ordinal);
        var stored = await Statements.RowsAsync(c, tx, "SELECT page_key FROM knowledge_pages WHERE source_id = @Id", r => r.GetString(0), cancellationToken, ("Id", sourceId));
        var gone = stored.Where(key => !kept.Contains(key)).ToArray();
        var replaced = pages.Where(p => p.Chunks is not null).Select(p => p.Page.Key).ToArray();
        await CountTermsAsync(c, tx, workspaceId!, sourceId, [.. gone, .. replaced], -1, cancellationToken);
        foreach (var key in gone)
        {
            await DeletePageAsync(c, tx, sourceId, key, cancellationToken);
        }

        foreach (var (page, chunks) in pages)
        {
            if (chunks is not null)
            {
                await DeletePageAsync(c, tx, sourceId, page.Key, cancellationToken);
                foreach (var chunk in chunks)
                {
                    await Statements.ExecuteAsync(c, tx,
                        """
                        INSERT INTO knowledge_chunks (workspace_id, source_id, page_key, position, title, heading, text, tokens, embedding)
                        VALUES (@WorkspaceId, @SourceId, @PageKey, @Position, @Title, @Heading, @Text, @Tokens, @Embedding)
                        """,
                        cancellationToken, ("WorkspaceId", workspaceId), ("SourceId", sourceId), ("PageKey", page.Key), ("Position", chunk.Position),
                        ("Title", chunk.Title), ("Heading", chunk.Heading), ("Text", chunk.Text), ("Tokens", chunk.Tokens),
                        ("Embedding", chunk.Embedding is { } vector ? Bytes(vector) : null));
                }

                await Statements.ExecuteAsync(c, tx,
                    """
                    INSERT INTO knowledge_pages (source_id, page_key, title, content_hash, etag, last_modified)
                    VALUES (@SourceId, @PageKey, @Title, @ContentHash, @ETag, @LastModified)
                    """,
                    cancellationToken, ("SourceId", sourceId), ("PageKey", page.Key), ("Title", page.Title), ("ContentHash", page.ContentHash),
                    ("ETag", page.ETag), ("LastModified", page.LastModified));
            }
            else
            {
                // Unchanged: its chunks stay; what the server said of it (a new ETag) is kept for the next crawl.
                await Statements.ExecuteAsync(c, tx,
                    "UPDATE knowledge_pages SET etag = @ETag, last_modified = @LastModified WHERE source_id = @SourceId AND page_key = @PageKey",
                    cancellationToken, ("ETag", page.ETag), ("LastModified", page.LastModified), ("SourceId", sourceId), ("PageKey", page.Key));
            }
        }

        await CountTermsAsync(c, tx, workspaceId!, sourceId, replaced, 1, cancellationToken);
    }

    /// <summary>
    /// On PostgreSQL, adds (<paramref name="sign"/> 1) or takes away (-1) the lexemes of a source's chunks
    /// on the given pages (every page when null) to or from the workspace's <c>knowledge_terms</c>.
    /// Writers of one workspace take its advisory lock first, so two sources ingested at once update the
    /// shared counts one after the other instead of deadlocking on them.
    /// </summary>
    private async Task CountTermsAsync(
        System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string workspaceId, string sourceId, string[]? pageKeys, int sign, CancellationToken cancellationToken)
    {
        if (database.Dialect.Name != "postgres" || pageKeys is { Length: 0 })
        {
            return;
        }

        await Statements.ExecuteAsync(c, tx, "SELECT pg_advisory_xact_lock(hashtextextended('knowledge_terms ' || @WorkspaceId, 0))", cancellationToken, ("WorkspaceId", workspaceId));
        var pages = pageKeys is null ? "" : " AND page_key = ANY(@Pages)";
        await Statements.ExecuteAsync(c, tx,
            $"""
            INSERT INTO knowledge_terms (workspace_id, lexeme, chunks)
            SELECT @WorkspaceId, lexeme, {sign} * COUNT(*) FROM knowledge_chunks, unnest(tsvector_to_array(search)) AS lexeme
            WHERE source_id = @SourceId{pages} GROUP BY lexeme ORDER BY lexeme
            ON CONFLICT (workspace_id, lexeme) DO UPDATE SET chunks = knowledge_terms.chunks + excluded.chunks
            """,
            cancellationToken, ("WorkspaceId", workspaceId), ("SourceId", sourceId), ("Pages", pageKeys));
        if (sign < 0)
        {
            await Statements.ExecuteAsync(c, tx, "DELETE FROM knowledge_terms WHERE workspace_id = @WorkspaceId AND chunks <= 0", cancellationToken, ("WorkspaceId", workspaceId));
        }
    }

    private static async Task DeletePageAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string sourceId, string pageKey, CancellationToken cancellationToken)
    {
        await Statements.ExecuteAsync(c, tx, "DELETE FROM knowledge_chunks WHERE source_id = @Id AND page_key = @PageKey", cancellationToken, ("Id", sourceId), ("PageKey", pageKey));
        await Statements.ExecuteAsync(c, tx, "DELETE FROM knowledge_pages WHERE source_id = @Id AND page_key = @PageKey", cancellationToken, ("Id", sourceId), ("PageKey", pageKey));
    }

    private static Task<KnowledgeSourceRecord?> SourceAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string sourceId, CancellationToken cancellationToken) =>
        Statements.RowAsync(c, tx, $"SELECT {SourceColumns} FROM knowledge_sources WHERE id = @Id", ReadSource, cancellationToken, ("Id", sourceId));

    private static KnowledgeSourceRecord ReadSource(IRow r) => new(
        r.GetString(0), r.Guid(1), r.GetString(2), r.GetString(3), r.StringOrNull(4), r.GetString(5), r.StringOrNull(6), r.GetInt64(7),
        r.GetString(8), r.GetInt64(9), r.Time(10), r.Time(11), r.TimeOrNull(12), r.TimeOrNull(13));

    /// <summary>An embedding as stored: its float32s, little-endian.</summary>
    internal static byte[] Bytes(float[] vector) => MemoryMarshal.AsBytes(vector.AsSpan()).ToArray();

    /// <summary>A stored embedding.</summary>
    internal static float[] Floats(byte[] bytes) => MemoryMarshal.Cast<byte, float>(bytes).ToArray();
}
