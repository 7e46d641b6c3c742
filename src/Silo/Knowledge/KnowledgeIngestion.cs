using System.Security.Cryptography;
using System.Text;
using LuluClaw.Grains.Knowledge;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Knowledge;

/// <summary>Knowledge ingestion's settings (section <c>Knowledge</c>).</summary>
public sealed class KnowledgeOptions
{
    /// <summary>Whether this silo ingests at all (tests that drive <see cref="KnowledgeIngestion.IngestNextAsync"/> themselves turn it off).</summary>
    public bool RunInBackground { get; set; } = true;

    /// <summary>How often a silo looks for a source to ingest, when nothing woke it sooner (a new source on this silo does).</summary>
    public double PollSeconds { get; set; } = 5;

    /// <summary>How long a claim holds without renewal: a silo that dies mid-ingestion leaves its source to another after this.</summary>
    public double LeaseSeconds { get; set; } = 60;

    /// <summary>
    /// Whether the crawler may fetch private addresses (10/8, 172.16/12, 192.168/16, fc00::/7) and
    /// loopback: off by default (server-side request forgery); on for an intranet or a test. Link-local
    /// and cloud metadata addresses are refused even then.
    /// </summary>
    public bool AllowPrivateAddresses { get; set; }

    /// <summary>How long one page request of a crawl may take.</summary>
    public double CrawlRequestSeconds { get; set; } = 10;

    /// <summary>How long a whole crawl may take.</summary>
    public double CrawlSeconds { get; set; } = 300;

    /// <summary>How often a website is crawled again.</summary>
    public double RecrawlHours { get; set; } = 24;

    /// <summary>The most tokens a chunk has.</summary>
    public int MaxChunkTokens { get; set; } = 256;

    /// <summary>How many tokens of a chunk's end the next chunk repeats.</summary>
    public int ChunkOverlapTokens { get; set; } = 32;

    /// <summary>How many passages a chat turn's prompt gets, at most.</summary>
    public int PromptPassages { get; set; } = 5;

    /// <summary>How many tokens of passages a chat turn's prompt gets, at most.</summary>
    public int PromptTokens { get; set; } = 1500;

    /// <summary>
    /// The evidence gate of a bot that sets none of its own: the least cosine similarity (0 to 1) between
    /// the question's embedding and the closest passage retrieved for it, in a workspace that has
    /// knowledge, for the model to be asked. Below it the bot answers <see cref="FallbackAnswer"/>.
    /// Calibrated on the quality corpus (docs/benchmarks.md, "Retrieval quality").
    /// </summary>
    public double EvidenceThreshold { get; set; } = DefaultEvidenceThreshold;

    /// <summary>What a bot that sets no words of its own says when the evidence gate holds.</summary>
    public string FallbackAnswer { get; set; } = DefaultFallbackAnswer;

    /// <summary>The default of <see cref="EvidenceThreshold"/>.</summary>
    public const double DefaultEvidenceThreshold = 0.3;

    /// <summary>The default of <see cref="FallbackAnswer"/>.</summary>
    public const string DefaultFallbackAnswer = "I don't know: the information I have doesn't cover that.";

    /// <summary>
    /// How many megabytes of chunk vectors a silo keeps in memory for retrieval, over all workspaces
    /// (at 8 bits a dimension, about 40 MB per 100,000 chunks of 384 dimensions). Past it, the least
    /// recently retrieved workspaces are dropped and read from the database again when next needed;
    /// the workspace being retrieved stays even if it alone is larger.
    /// </summary>
    public double VectorCacheMegabytes { get; set; } = 512;
}

/// <summary>
/// Ingests knowledge sources in the background, on every silo: it claims a due source from the
/// store under a lease (so that one silo ingests a given source, and one that dies leaves it to
/// another when its lease runs out), reads it, chunks it by tokens, and settles it in one
/// transaction: <c>ready</c> with its chunks, or <c>error</c> with a reason a person can act on.
/// A re-ingestion re-chunks only the pages whose text hash changed.
/// </summary>
/// <remarks>
/// The lease is renewed a third of the way through, so a long ingestion keeps it. A source changed,
/// refreshed or deleted while it was being ingested is not overwritten: the store refuses an
/// outcome whose claim no longer holds, and the source is claimed afresh.
/// </remarks>
internal sealed partial class KnowledgeIngestion(
    IKnowledgeStore store, ITextEmbedder embedder, IOptionsMonitor<KnowledgeOptions> options, TimeProvider time, ILogger<KnowledgeIngestion> logger)
    : BackgroundService, IKnowledgeIngestionSignal
{
    /// <summary>The key of the one page a document or manual source has.</summary>
    public const string SinglePage = "";

    private readonly string _owner = $"{Environment.MachineName}/{Guid.NewGuid():N}";
    private readonly Lazy<HttpClient> _guardedPrivate = new(() => UrlGuard.CreateClient(allowPrivate: true));
    private readonly Lazy<HttpClient> _guardedPublic = new(() => UrlGuard.CreateClient(allowPrivate: false));
    private readonly SemaphoreSlim _wake = new(0, 1);

    /// <inheritdoc />
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // woken already
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (options.CurrentValue.RunInBackground && !stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await IngestNextAsync(stoppingToken))
                {
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.Failed(logger, e);
            }

            using var poll = new CancellationTokenSource(TimeSpan.FromSeconds(options.CurrentValue.PollSeconds), time);
            using var woken = CancellationTokenSource.CreateLinkedTokenSource(poll.Token, stoppingToken);
            try
            {
                await _wake.WaitAsync(woken.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // time to look again
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Claims and ingests one due source; false if none was due.</summary>
    public async Task<bool> IngestNextAsync(CancellationToken cancellationToken)
    {
        var lease = TimeSpan.FromSeconds(options.CurrentValue.LeaseSeconds);
        var now = time.GetUtcNow();
        if (await store.ClaimDueSourceAsync(_owner, now, now + lease, cancellationToken) is not { } claim)
        {
            return false;
        }

        var source = claim.Source;
        using var renewing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewal = RenewAsync(source.Id, lease, renewing.Token);
        IngestionOutcome outcome;
        try
        {
            var (pages, reason) = await ReadAsync(claim, cancellationToken);
            outcome = new IngestionOutcome(source.Id, source.Version, _owner, KnowledgeStatus.Ready, reason, pages, NextCrawl(source));
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or UrlRefusedException or HttpRequestException)
        {
            outcome = new IngestionOutcome(source.Id, source.Version, _owner, KnowledgeStatus.Error, e.Message, null, NextCrawl(source));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.SourceFailed(logger, source.Id, e);
            outcome = new IngestionOutcome(source.Id, source.Version, _owner, KnowledgeStatus.Error,
                "ingestion failed unexpectedly; refresh the source to try again", null, NextCrawl(source));
        }
        finally
        {
            await renewing.CancelAsync();
            await renewal;
        }

        if (!await store.CompleteIngestionAsync(outcome, time.GetUtcNow(), CancellationToken.None))
        {
            Log.Superseded(logger, source.Id);
        }

        return true;
    }

    private DateTimeOffset? NextCrawl(KnowledgeSourceRecord source) =>
        source.Type == KnowledgeTypes.Website ? time.GetUtcNow() + TimeSpan.FromHours(options.CurrentValue.RecrawlHours) : null;

    /// <summary>The source's pages as they are now, each with its chunks, or none where it did not change since the last ingestion.</summary>
    private async Task<(IReadOnlyList<KnowledgePageUpdate> Pages, string? Reason)> ReadAsync(KnowledgeClaim claim, CancellationToken cancellationToken)
    {
        var source = claim.Source;
        if (source.Type == KnowledgeTypes.Website)
        {
            return await CrawlAsync(claim, cancellationToken);
        }

        var document = source.Type switch
        {
            KnowledgeTypes.Manual => Manual(KnowledgeSettings.FromJson(source.Settings)),
            KnowledgeTypes.Document when claim.File is { } file => DocumentText.Extract(file.Content, file.MediaType),
            KnowledgeTypes.Document => throw new InvalidDataException("the document's file is missing; upload it again"),
            _ => throw new InvalidDataException($"unknown source type '{source.Type}'"),
        };
        cancellationToken.ThrowIfCancellationRequested();
        return ([Page(SinglePage, document, claim.Pages.FirstOrDefault(p => p.Key == SinglePage), etag: null, lastModified: null, cancellationToken)], null);
    }

    /// <summary>
    /// A website: crawled through the address guard, sending what the last crawl saw; each page is a page
    /// of the source (keyed by its URL), re-chunked only if its text changed. Pages skipped are named in the reason.
    /// </summary>
    private async Task<(IReadOnlyList<KnowledgePageUpdate> Pages, string? Reason)> CrawlAsync(KnowledgeClaim claim, CancellationToken cancellationToken)
    {
        var settings = KnowledgeSettings.FromJson(claim.Source.Settings);
        var current = options.CurrentValue;
        var crawler = new WebsiteCrawler((current.AllowPrivateAddresses ? _guardedPrivate : _guardedPublic).Value, time);
        var crawl = new CrawlOptions(settings.MaxPages ?? KnowledgeSettings.DefaultMaxPages, settings.MaxDepth ?? KnowledgeSettings.DefaultMaxDepth)
        {
            RequestTimeout = TimeSpan.FromSeconds(current.CrawlRequestSeconds),
            CrawlTimeout = TimeSpan.FromSeconds(current.CrawlSeconds),
        };
        var previous = claim.Pages.ToDictionary(p => p.Key, p => new PreviousPage(p.Key, p.ContentHash, p.ETag, p.LastModified));
        var result = await crawler.CrawlAsync(new Uri(claim.Source.Url!), crawl, previous, cancellationToken);
        if (result.Pages.Count == 0)
        {
            var why = result.Skipped.FirstOrDefault() is { Url: not null } first ? $"{first.Url}: {first.Reason}" : "the site has no HTML page";
            throw new InvalidDataException($"no page of the site could be read ({why})");
        }

        var pages = new List<KnowledgePageUpdate>(result.Pages.Count);
        foreach (var page in result.Pages)
        {
            var known = claim.Pages.FirstOrDefault(p => p.Key == page.Url);
            pages.Add(page.Unchanged && known is not null || page.Document is null
                ? new KnowledgePageUpdate(new KnowledgePageRecord(page.Url, page.Title ?? known?.Title, page.ContentHash, page.ETag, page.LastModified), null)
                : Page(page.Url, page.Document, known, page.ETag, page.LastModified, cancellationToken));
        }

        var reason = result.Skipped.Count == 0 ? null
            : $"{result.Skipped.Count} page(s) skipped, first {result.Skipped[0].Url}: {result.Skipped[0].Reason}";
        return (pages, reason);
    }

    /// <summary>One page's update: unchanged (no chunks) if its text hash is the one stored, else its new chunks.</summary>
    private KnowledgePageUpdate Page(
        string key, ExtractedDocument document, KnowledgePageRecord? previous, string? etag, string? lastModified, CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(DocumentText.Flatten(document))));
        var page = new KnowledgePageRecord(key, document.Title, hash, etag, lastModified);
        if (previous?.ContentHash == hash)
        {
            return new KnowledgePageUpdate(page, null);
        }

        var chunker = new TokenChunker(options.CurrentValue.MaxChunkTokens, options.CurrentValue.ChunkOverlapTokens);
        var pieces = chunker.Chunk(document);
        if (pieces.Count == 0)
        {
            throw new InvalidDataException("the source has no text to answer from");
        }

        // Each chunk is embedded once, here, with the heading it sits under, and compared at retrieval by cosine.
        var vectors = embedder.Embed([.. pieces.Select(c => EmbeddedText(c.Heading, c.Text))], cancellationToken);
        var chunks = pieces.Select((c, i) => new KnowledgeChunkRecord(key, c.Index, c.Text, c.Tokens, document.Title, c.Heading, vectors[i])).ToArray();
        return new KnowledgePageUpdate(page, chunks);
    }

    /// <summary>What a chunk's vector is made of: its heading (a question, a section title), then its text.</summary>
    internal static string EmbeddedText(string? heading, string text) => heading is null ? text : $"{heading}\n{text}";

    /// <summary>A manual source's entries (one section each, under its question) or its free text.</summary>
    private static ExtractedDocument Manual(KnowledgeSettings settings) => settings.Entries is { Count: > 0 } entries
        ? new ExtractedDocument(null, [.. entries.Select(e => new ExtractedSection(e.Question, $"Q: {e.Question}\nA: {e.Answer}"))])
        : DocumentText.Extract(Encoding.UTF8.GetBytes(settings.Content ?? ""), "text/plain");

    private async Task RenewAsync(string sourceId, TimeSpan lease, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(lease / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!await store.RenewLeaseAsync(sourceId, _owner, time.GetUtcNow() + lease, cancellationToken))
                {
                    return; // changed or deleted meanwhile: its outcome will be refused
                }
            }
        }
        catch (OperationCanceledException)
        {
            // ingestion over
        }
        catch (Exception e)
        {
            Log.RenewFailed(logger, sourceId, e);
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        foreach (var client in new[] { _guardedPrivate, _guardedPublic }.Where(c => c.IsValueCreated))
        {
            client.Value.Dispose();
        }

        base.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Knowledge ingestion could not look for due sources")]
        public static partial void Failed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Ingesting knowledge source {SourceId} failed")]
        public static partial void SourceFailed(ILogger logger, string sourceId, Exception exception);

        [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Knowledge source {SourceId} changed or went while it was ingested; the newer state stands")]
        public static partial void Superseded(ILogger logger, string sourceId);

        [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Could not renew the lease of knowledge source {SourceId}")]
        public static partial void RenewFailed(ILogger logger, string sourceId, Exception exception);
    }
}
