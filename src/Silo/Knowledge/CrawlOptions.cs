namespace LuluClaw.Silo.Knowledge;

/// <summary>What a crawl is allowed to do.</summary>
/// <param name="MaxPages">The most pages a crawl returns.</param>
/// <param name="MaxDepth">How many links away from the start page (depth 0) the crawl goes.</param>
internal sealed record CrawlOptions(int MaxPages = 50, int MaxDepth = 2)
{
    /// <summary>The longest one request (headers and body, redirect hops each on their own) may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest the whole crawl may take; what was reached by then is returned.</summary>
    public TimeSpan CrawlTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The largest body read; a larger page is skipped.</summary>
    public long MaxBodyBytes { get; init; } = 2 * 1024 * 1024;

    /// <summary>The User-Agent header sent, whose product token (before the slash) is matched in robots.txt.</summary>
    public string UserAgent { get; init; } = "LuluClawBot/1.0 (+knowledge crawler)";
}

/// <summary>What the last crawl saw of a page, so a re-crawl can skip what did not change.</summary>
/// <param name="Url">The page's normalised URL.</param>
/// <param name="ContentHash">SHA-256 (lowercase hex) of the page's extracted text.</param>
/// <param name="ETag">The ETag the server sent, if any.</param>
/// <param name="LastModified">The Last-Modified header the server sent, verbatim, if any.</param>
internal sealed record PreviousPage(string Url, string ContentHash, string? ETag, string? LastModified);

/// <summary>
/// A page the crawl reached. Unchanged: the server answered 304 to a conditional request, or the
/// extracted text's hash equals the previous one (then <paramref name="Document"/> is null).
/// </summary>
/// <param name="Url">The page's normalised URL (after same-site redirects).</param>
/// <param name="Title">The page's title, when it was read.</param>
/// <param name="Document">The page's text; null when unchanged.</param>
/// <param name="ContentHash">SHA-256 (lowercase hex) of the extracted text (the previous hash on a 304).</param>
/// <param name="ETag">The ETag to send next time, if any.</param>
/// <param name="LastModified">The Last-Modified value to send next time, if any.</param>
/// <param name="Unchanged">Whether the page is as the previous crawl saw it.</param>
internal sealed record CrawledPage(string Url, string? Title, ExtractedDocument? Document, string ContentHash, string? ETag, string? LastModified, bool Unchanged);

/// <summary>The crawl's outcome: the pages reached, in breadth-first order, and, per URL that was skipped or failed, why.</summary>
/// <param name="Pages">The pages reached.</param>
/// <param name="Skipped">URLs not read and the reason (robots.txt, refused address, too large, not HTML, HTTP status, timeout).</param>
internal sealed record CrawlResult(IReadOnlyList<CrawledPage> Pages, IReadOnlyList<(string Url, string Reason)> Skipped);
