using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Crawls a website breadth-first from a start URL, same site only (scheme, host and port), within
/// <see cref="CrawlOptions"/>, honouring robots.txt, re-reading only what changed.
/// </summary>
/// <remarks>
/// 1. The start URL's scheme is checked (a refusal throws), and the site's robots.txt is read:
///    404 or 410 allows everything, any other failure stops the crawl.
/// 2. Pages are taken from a queue in breadth-first order until <see cref="CrawlOptions.MaxPages"/>
///    pages are reached or the crawl's time is up; robots.txt is asked first for each.
/// 3. A request at the depth limit carries the previous crawl's validators (elsewhere a 304 would hide
///    the page's links, and every page below it would look gone), follows at most five redirects itself
///    (each hop checked, each connection guarded by the client <see cref="UrlGuard.CreateClient"/> built),
///    and reads at most <see cref="CrawlOptions.MaxBodyBytes"/>.
/// 4. An HTML page is parsed once: its links are collected, then its text is extracted and hashed.
/// 5. Same-site links within <see cref="CrawlOptions.MaxDepth"/> join the queue, each URL once.
/// </remarks>
/// <param name="http">The client requests go through; in production <see cref="UrlGuard.CreateClient"/>'s.</param>
/// <param name="time">The clock the crawl's and each request's time limits run on.</param>
internal sealed class WebsiteCrawler(HttpClient http, TimeProvider time)
{
    /// <summary>The most redirects followed for one request.</summary>
    private const int MaxRedirects = 5;

    /// <summary>Crawls from <paramref name="start"/>.</summary>
    /// <param name="start">The first page; its site bounds the crawl.</param>
    /// <param name="options">The crawl's limits.</param>
    /// <param name="previous">What the last crawl saw, by normalised URL (<see cref="PreviousPage.Url"/>).</param>
    /// <param name="cancellationToken">Cancels the crawl (then it throws; its own time limit does not).</param>
    /// <exception cref="UrlRefusedException">The start URL is refused, by scheme or by address.</exception>
    public async Task<CrawlResult> CrawlAsync(Uri start, CrawlOptions options, IReadOnlyDictionary<string, PreviousPage> previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(previous);

        // :: Step 1: the start URL and the site's robots.txt.
        if (UrlGuard.SchemeRefusal(start) is { } refusal)
        {
            throw new UrlRefusedException($"{start} cannot be crawled: {refusal}");
        }

        var first = Normalize(start);
        var pages = new List<CrawledPage>();
        var skipped = new List<(string Url, string Reason)>();
        using var crawlTimeout = new CancellationTokenSource(options.CrawlTimeout, time);
        using var crawl = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, crawlTimeout.Token);
        var run = new Run(http, time, options, crawl.Token);

        RobotsRules robots;
        try
        {
            robots = await run.ReadRobotsAsync(first).ConfigureAwait(false);
        }
        catch (FetchFailedException e) when (e.Refused)
        {
            throw new UrlRefusedException($"{first} cannot be crawled: {e.Message}");
        }
        catch (FetchFailedException e)
        {
            skipped.Add((first.AbsoluteUri, $"robots.txt could not be read ({e.Message}), so the site is not crawled"));
            return new CrawlResult(pages, skipped);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            skipped.Add((first.AbsoluteUri, "robots.txt could not be read (timed out), so the site is not crawled"));
            return new CrawlResult(pages, skipped);
        }

        // :: Step 2: breadth-first over the queue.
        var queue = new Queue<(Uri Url, int Depth)>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { first.AbsoluteUri };
        queue.Enqueue((first, 0));
        var site = first; // the site the crawl keeps to: the start URL's, or where the start URL redirects
        while (queue.Count > 0 && pages.Count < options.MaxPages)
        {
            var (url, depth) = queue.Dequeue();
            if (crawl.IsCancellationRequested)
            {
                cancellationToken.ThrowIfCancellationRequested();
                skipped.Add((url.AbsoluteUri, $"the crawl's time limit ({options.CrawlTimeout}) was reached"));
                break;
            }

            if (!robots.IsAllowed(url))
            {
                skipped.Add((url.AbsoluteUri, "disallowed by robots.txt"));
                continue;
            }

            // :: Step 3: the request, its redirects and its body.
            Fetched fetched;
            try
            {
                // A 304 has no links: only a page whose links are not followed (at the depth limit) is asked for
                // conditionally; any other is read whole, and its unchanged text is told by its hash (step 4).
                var validators = depth >= options.MaxDepth ? previous.GetValueOrDefault(url.AbsoluteUri) : null;
                fetched = await run.FetchPageAsync(url, validators, robots).ConfigureAwait(false);
            }
            catch (FetchFailedException e)
            {
                skipped.Add((e.Url ?? url.AbsoluteUri, e.Message));
                continue;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                skipped.Add((url.AbsoluteUri, crawlTimeout.IsCancellationRequested
                    ? $"the crawl's time limit ({options.CrawlTimeout}) was reached"
                    : $"timed out after {options.RequestTimeout}"));
                continue;
            }

            if (!SameSite(fetched.Url, site))
            {
                if (depth > 0 || pages.Count > 0)
                {
                    skipped.Add((url.AbsoluteUri, $"redirected off the site, to {fetched.Url}"));
                    continue;
                }

                // The start URL moved (http to https, example.com to www.example.com): the site is where it went,
                // every hop of which the guard checked, under that site's own robots.txt.
                site = fetched.Url;
                try
                {
                    robots = await run.ReadRobotsAsync(site).ConfigureAwait(false);
                }
                catch (Exception e) when (e is FetchFailedException || e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    skipped.Add((site.AbsoluteUri, $"robots.txt of {site.Authority} could not be read, so the site is not crawled"));
                    break;
                }

                if (!robots.IsAllowed(site))
                {
                    skipped.Add((site.AbsoluteUri, "disallowed by robots.txt"));
                    break;
                }
            }

            if (fetched.Url != url && !seen.Add(fetched.Url.AbsoluteUri))
            {
                continue;
            }

            var known = previous.GetValueOrDefault(fetched.Url.AbsoluteUri);
            if (fetched.NotModified && known is not null)
            {
                pages.Add(new CrawledPage(fetched.Url.AbsoluteUri, null, null, known.ContentHash,
                    fetched.ETag ?? known.ETag, fetched.LastModified ?? known.LastModified, Unchanged: true));
                continue;
            }

            // :: Step 4: links first (chrome such as nav holds them), then the text.
            var document = fetched.Html!;
            var links = Links(document, fetched.Url);
            ExtractedDocument? text = null;
            try
            {
                text = HtmlText.Extract(document);
            }
            catch (InvalidDataException e)
            {
                skipped.Add((fetched.Url.AbsoluteUri, e.Message));
            }

            if (text is { Sections.Count: > 0 })
            {
                var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(DocumentText.Flatten(text))));
                var unchanged = known is not null && known.ContentHash == hash;
                pages.Add(new CrawledPage(fetched.Url.AbsoluteUri, text.Title, unchanged ? null : text, hash,
                    fetched.ETag, fetched.LastModified, unchanged));
            }
            else if (text is not null)
            {
                skipped.Add((fetched.Url.AbsoluteUri, "the page has no readable text"));
            }

            // :: Step 5: same-site links one level deeper.
            if (depth >= options.MaxDepth)
            {
                continue;
            }

            foreach (var link in links)
            {
                if (!SameSite(link, site))
                {
                    if (seen.Add(link.AbsoluteUri))
                    {
                        skipped.Add((link.AbsoluteUri, "off the site, not followed"));
                    }

                    continue;
                }

                if (seen.Add(link.AbsoluteUri))
                {
                    queue.Enqueue((link, depth + 1));
                }
            }
        }

        return new CrawlResult(pages, skipped);
    }

    /// <summary>The URL without its fragment, with a path, in its canonical form.</summary>
    internal static Uri Normalize(Uri url)
    {
        var builder = new UriBuilder(url) { Fragment = "" };
        if (builder.Path.Length == 0)
        {
            builder.Path = "/";
        }

        return new Uri(builder.Uri.GetComponents(UriComponents.HttpRequestUrl, UriFormat.UriEscaped));
    }

    private static bool SameSite(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>The page's links: resolved against its base, http(s) only, without fragments, each once, in order.</summary>
    private static List<Uri> Links(IHtmlDocument document, Uri pageUrl)
    {
        var baseUrl = pageUrl;
        if (document.QuerySelector("base[href]")?.GetAttribute("href") is { } declared
            && Uri.TryCreate(pageUrl, declared, out var declaredBase))
        {
            baseUrl = declaredBase;
        }

        var links = new List<Uri>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var anchor in document.QuerySelectorAll("a[href], area[href]"))
        {
            var href = anchor.GetAttribute("href")!.Trim();
            if (href.Length == 0 || href.StartsWith('#')
                || !Uri.TryCreate(baseUrl, href, out var target)
                || UrlGuard.SchemeRefusal(target) is not null)
            {
                // mailto:, javascript:, tel: and the like are not pages.
                continue;
            }

            var normal = Normalize(target);
            if (seen.Add(normal.AbsoluteUri))
            {
                links.Add(normal);
            }
        }

        return links;
    }

    /// <summary>A page fetched: where it ended up, its validators, and its parsed HTML unless it was not modified.</summary>
    private sealed record Fetched(Uri Url, bool NotModified, IHtmlDocument? Html, string? ETag, string? LastModified);

    /// <summary>A request that failed in a way the crawl reports and goes on.</summary>
    /// <param name="message">Why, for the Skipped list.</param>
    /// <param name="url">The URL that failed, when not the one requested (a redirect target).</param>
    /// <param name="refused">Whether the guard refused the address or the scheme.</param>
    private sealed class FetchFailedException(string message, string? url = null, bool refused = false) : Exception(message)
    {
        /// <summary>The URL that failed, when not the one requested.</summary>
        public string? Url { get; } = url;

        /// <summary>Whether the guard refused it.</summary>
        public bool Refused { get; } = refused;
    }

    /// <summary>One crawl's requests: its client, limits and token.</summary>
    private sealed class Run(HttpClient http, TimeProvider time, CrawlOptions options, CancellationToken crawlToken)
    {
        private readonly string _productToken = options.UserAgent.Split('/', ' ')[0];

        /// <summary>The site's robots.txt rules for our product token.</summary>
        public async Task<RobotsRules> ReadRobotsAsync(Uri site)
        {
            var robotsUrl = new Uri(site, "/robots.txt");
            using var response = await SendAsync(robotsUrl, validators: null, robots: null).ConfigureAwait(false);
            if (response.Response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
            {
                return RobotsRules.AllowAll;
            }

            if (!response.Response.IsSuccessStatusCode)
            {
                throw new FetchFailedException($"HTTP {(int)response.Response.StatusCode}");
            }

            var body = await ReadBodyAsync(response).ConfigureAwait(false);
            return RobotsRules.Parse(Encoding.UTF8.GetString(body), _productToken);
        }

        /// <summary>Fetches one page, conditional on <paramref name="known"/>'s validators.</summary>
        public async Task<Fetched> FetchPageAsync(Uri url, PreviousPage? known, RobotsRules robots)
        {
            using var response = await SendAsync(url, known, robots).ConfigureAwait(false);
            var message = response.Response;
            var etag = message.Headers.ETag?.ToString();
            var lastModified = message.Content.Headers.TryGetValues("Last-Modified", out var values) ? values.FirstOrDefault() : null;
            if (message.StatusCode == HttpStatusCode.NotModified)
            {
                return new Fetched(response.Url, NotModified: true, null, etag, lastModified);
            }

            if (!message.IsSuccessStatusCode)
            {
                throw new FetchFailedException($"HTTP {(int)message.StatusCode}", response.Url.AbsoluteUri);
            }

            var mediaType = message.Content.Headers.ContentType?.MediaType;
            if (mediaType is not ("text/html" or "application/xhtml+xml"))
            {
                throw new FetchFailedException($"not HTML ({mediaType ?? "no Content-Type"})", response.Url.AbsoluteUri);
            }

            var body = await ReadBodyAsync(response).ConfigureAwait(false);
            var charset = message.Content.Headers.ContentType?.CharSet;
            var html = EncodingOf(charset) is { } encoding
                ? new HtmlParser().ParseDocument(encoding.GetString(body))
                : new HtmlParser().ParseDocument(new MemoryStream(body, writable: false));
            return new Fetched(response.Url, NotModified: false, html, etag, lastModified);
        }

        /// <summary>Sends a GET, following up to five redirects, each target checked by scheme (and by robots.txt on the site); the guard checks every connection.</summary>
        private async Task<Answer> SendAsync(Uri url, PreviousPage? validators, RobotsRules? robots)
        {
            var current = url;
            for (var hop = 0; ; hop++)
            {
                var timeout = new CancellationTokenSource(options.RequestTimeout, time);
                var linked = CancellationTokenSource.CreateLinkedTokenSource(crawlToken, timeout.Token);
                HttpResponseMessage message;
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, current);
                    request.Headers.UserAgent.ParseAdd(options.UserAgent);
                    request.Headers.Accept.ParseAdd("text/html, application/xhtml+xml;q=0.9, */*;q=0.1");
                    if (validators is not null && current == url)
                    {
                        if (validators.ETag is not null && EntityTagHeaderValue.TryParse(validators.ETag, out var tag))
                        {
                            request.Headers.IfNoneMatch.Add(tag);
                        }

                        if (validators.LastModified is not null)
                        {
                            request.Headers.TryAddWithoutValidation("If-Modified-Since", validators.LastModified);
                        }
                    }

                    message = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
                }
                catch (HttpRequestException e)
                {
                    linked.Dispose();
                    timeout.Dispose();
                    throw Failure(e, url, current);
                }
                catch
                {
                    linked.Dispose();
                    timeout.Dispose();
                    throw;
                }

                var response = new Answer(current, message, timeout, linked);
                var status = (int)message.StatusCode;
                if (status is < 300 or > 399 || status == 304 || message.Headers.Location is not { } location)
                {
                    return response;
                }

                response.Dispose();
                if (hop == MaxRedirects)
                {
                    throw new FetchFailedException($"more than {MaxRedirects} redirects", url.AbsoluteUri);
                }

                var target = new Uri(current, location);
                if (UrlGuard.SchemeRefusal(target) is { } refusal)
                {
                    throw new FetchFailedException($"redirect to a refused URL {target}: {refusal}", url.AbsoluteUri, refused: true);
                }

                current = Normalize(target);
                if (robots is not null && SameSite(current, url) && !robots.IsAllowed(current))
                {
                    throw new FetchFailedException($"redirect to {current}, which robots.txt disallows", url.AbsoluteUri);
                }
            }
        }

        /// <summary>The body, at most <see cref="CrawlOptions.MaxBodyBytes"/>; a longer one fails the page.</summary>
        private async Task<byte[]> ReadBodyAsync(Answer response)
        {
            var limit = options.MaxBodyBytes;
            if (response.Response.Content.Headers.ContentLength > limit)
            {
                throw new FetchFailedException($"larger than {limit} bytes", response.Url.AbsoluteUri);
            }

            await using var stream = await response.Response.Content.ReadAsStreamAsync(response.Token).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, response.Token).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    // Stop reading: the rest is never downloaded.
                    throw new FetchFailedException($"larger than {limit} bytes", response.Url.AbsoluteUri);
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }

        /// <summary>The reason a request failed, refused when the guard's exception is among its causes.</summary>
        private static FetchFailedException Failure(HttpRequestException e, Uri requested, Uri current)
        {
            var hop = current == requested ? "" : $" (redirected to {current})";
            for (Exception? inner = e; inner is not null; inner = inner.InnerException)
            {
                if (inner is UrlRefusedException refused)
                {
                    return new FetchFailedException($"refused{hop}: {refused.Message}", requested.AbsoluteUri, refused: true);
                }
            }

            return new FetchFailedException($"request failed{hop}: {e.Message}", requested.AbsoluteUri);
        }

        private static Encoding? EncodingOf(string? charset)
        {
            if (string.IsNullOrWhiteSpace(charset))
            {
                return null;
            }

            try
            {
                return Encoding.GetEncoding(charset.Trim('"'));
            }
            catch (ArgumentException)
            {
                return null;
            }
        }
    }

    /// <summary>A response and the time limit its body is read under, disposed together.</summary>
    private sealed class Answer(Uri url, HttpResponseMessage response, CancellationTokenSource timeout, CancellationTokenSource linked) : IDisposable
    {
        /// <summary>The URL that answered (after redirects).</summary>
        public Uri Url { get; } = url;

        /// <summary>The answer.</summary>
        public HttpResponseMessage Response { get; } = response;

        /// <summary>The request's time limit and the crawl's, together.</summary>
        public CancellationToken Token => linked.Token;

        /// <inheritdoc />
        public void Dispose()
        {
            Response.Dispose();
            linked.Dispose();
            timeout.Dispose();
        }
    }
}
