namespace LuluClaw;

/// <summary>
/// A workspace's knowledge sources (websites, documents, manual entries), keyed by the workspace id:
/// what the management routes call. The sources live in the database; this grain checks that each
/// source it touches is the workspace's, so another workspace's source answers as if it did not
/// exist. Ingestion is not done here: a new or refreshed source is <see cref="KnowledgeStatus.Pending"/>,
/// and the silos' background ingestion picks it up.
/// </summary>
[Alias("luluclaw.IKnowledgeGrain")]
public interface IKnowledgeGrain : IGrainWithStringKey
{
    /// <summary>Adds a source, <see cref="KnowledgeStatus.Pending"/>.</summary>
    [Alias("CreateAsync")]
    Task<KnowledgeSourceInfo> CreateAsync(NewKnowledgeSource source, CancellationToken cancellationToken);

    /// <summary>A page of the workspace's sources, newest first, and how many there are in all.</summary>
    [Alias("ListAsync")]
    Task<KnowledgeSourcePage> ListAsync(int offset, int limit, CancellationToken cancellationToken);

    /// <summary>The source, or null if the workspace has none by that id.</summary>
    [Alias("GetAsync")]
    Task<KnowledgeSourceInfo?> GetAsync(string sourceId, CancellationToken cancellationToken);

    /// <summary>
    /// Renames the source and, for a manual source, replaces its entries or content (it is then
    /// ingested again). Null if the workspace has no such source.
    /// </summary>
    [Alias("UpdateAsync")]
    Task<KnowledgeSourceInfo?> UpdateAsync(string sourceId, KnowledgeSourceChanges changes, CancellationToken cancellationToken);

    /// <summary>Deletes the source and its chunks, which leave retrieval at once; false if there was none.</summary>
    [Alias("DeleteAsync")]
    Task<bool> DeleteAsync(string sourceId, CancellationToken cancellationToken);

    /// <summary>Asks for the source to be ingested again now (<see cref="KnowledgeStatus.Pending"/>). Null if there is none.</summary>
    [Alias("RefreshAsync")]
    Task<KnowledgeSourceInfo?> RefreshAsync(string sourceId, CancellationToken cancellationToken);
}

/// <summary>The kinds of knowledge source, by their wire names.</summary>
public static class KnowledgeTypes
{
    /// <summary>A website, crawled from a start URL.</summary>
    public const string Website = "website";
    /// <summary>An uploaded file: PDF, plain text, Markdown or HTML.</summary>
    public const string Document = "document";
    /// <summary>Question-and-answer entries or free text written by the workspace.</summary>
    public const string Manual = "manual";

    /// <summary>Every type.</summary>
    public static readonly IReadOnlyList<string> All = [Website, Document, Manual];
}

/// <summary>Where a source is in its ingestion, by the wire names of the Insights document.</summary>
public static class KnowledgeStatus
{
    /// <summary>Waiting for ingestion.</summary>
    public const string Pending = "pending";
    /// <summary>Being fetched, chunked and embedded.</summary>
    public const string Crawling = "crawling";
    /// <summary>Ingested: its chunks are used for retrieval (and go on being used while it is pending or crawling again, until the next ingestion settles; not once in error).</summary>
    public const string Ready = "ready";
    /// <summary>Ingestion failed; <see cref="KnowledgeSourceInfo.StatusReason"/> says why.</summary>
    public const string Error = "error";

    /// <summary>Every status.</summary>
    public static readonly IReadOnlyList<string> All = [Pending, Crawling, Ready, Error];
}

/// <summary>One question and its answer in a manual source.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.KnowledgeEntry")]
public sealed record KnowledgeEntry([property: Id(0)] string Question, [property: Id(1)] string Answer);

/// <summary>A source to add. Which fields count depends on <see cref="Type"/>.</summary>
/// <param name="Url">A website's start URL.</param>
/// <param name="MaxPages">A website's page budget; null for the default.</param>
/// <param name="MaxDepth">How many links deep a website's crawl goes from its start page; null for the default.</param>
/// <param name="Entries">A manual source's questions and answers (or <paramref name="Content"/>).</param>
/// <param name="Content">A manual source's free text (or <paramref name="Entries"/>).</param>
/// <param name="FileName">A document's file name, as uploaded.</param>
/// <param name="MediaType">A document's media type, as LuluClaw recognised it.</param>
/// <param name="File">A document's bytes.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.NewKnowledgeSource")]
public sealed record NewKnowledgeSource(
    [property: Id(0)] string Type,
    [property: Id(1)] string Name,
    [property: Id(2)] string? Url = null,
    [property: Id(3)] int? MaxPages = null,
    [property: Id(4)] int? MaxDepth = null,
    [property: Id(5)] IReadOnlyList<KnowledgeEntry>? Entries = null,
    [property: Id(6)] string? Content = null,
    [property: Id(7)] string? FileName = null,
    [property: Id(8)] string? MediaType = null,
    [property: Id(9)] byte[]? File = null);

/// <summary>Changes to a source: null fields stay as they are.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.KnowledgeSourceChanges")]
public sealed record KnowledgeSourceChanges(
    [property: Id(0)] string? Name = null,
    [property: Id(1)] IReadOnlyList<KnowledgeEntry>? Entries = null,
    [property: Id(2)] string? Content = null);

/// <summary>A source as the routes show it.</summary>
/// <param name="Url">A website's start URL; null for the other types.</param>
/// <param name="ChunkCount">How many chunks of it retrieval can use.</param>
/// <param name="StatusReason">Why the last ingestion failed, or what it skipped; null when there is nothing to say.</param>
/// <param name="LastIngestedAt">When an ingestion of it last finished, ready or not.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.KnowledgeSourceInfo")]
public sealed record KnowledgeSourceInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] Guid WorkspaceId,
    [property: Id(2)] string Name,
    [property: Id(3)] string Type,
    [property: Id(4)] string? Url,
    [property: Id(5)] long ChunkCount,
    [property: Id(6)] string Status,
    [property: Id(7)] string? StatusReason,
    [property: Id(8)] DateTimeOffset CreatedAt,
    [property: Id(9)] DateTimeOffset UpdatedAt,
    [property: Id(10)] DateTimeOffset? LastIngestedAt);

/// <summary>A page of sources and the workspace's total.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.KnowledgeSourcePage")]
public sealed record KnowledgeSourcePage([property: Id(0)] IReadOnlyList<KnowledgeSourceInfo> Sources, [property: Id(1)] long Total);
