using LuluClaw.Tests;
using LuluClaw.Silo.Knowledge;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The crawler against a real local website: limits, robots.txt, the guard, re-crawls and time limits.</summary>
public sealed class WebsiteCrawlerTests : IAsyncLifetime
{
    private static readonly IReadOnlyDictionary<string, PreviousPage> NoPrevious = new Dictionary<string, PreviousPage>();

    private readonly HttpClient _client = UrlGuard.CreateClient(allowPrivate: true);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private LocalSite _site = null!;

    /// <summary>Eight pages, a robots.txt with a group for us and one for everyone, and the traps.</summary>
    public async ValueTask InitializeAsync()
    {
        _site = await LocalSite.StartAsync();
        _site.Page("/robots.txt", "User-agent: *\nDisallow: /\n\nUser-agent: LuluClawBot\nDisallow: /secret\nAllow: /secret/open$\n", "text/plain");
        _site.Page("/", Html("Home", "Welcome to the test site.",
            "/a", "/b", "/secret", "/secret/open", "/big", "/file.pdf", "/to-metadata", "/to-file",
            "https://elsewhere.example/page", "mailto:someone@example.com", "javascript:void(0)", "tel:+15550100", "#top", "/a#part"));
        _site.Page("/a", Html("Page A", "Alpha text about apples.", "/a/deep", "/"));
        _site.Page("/a/deep", Html("Deep", "Deep text.", "/a/deeper"));
        _site.Page("/a/deeper", Html("Deeper", "Too deep to reach."));
        _site.Page("/b", Html("Page B", "Beta text about bananas.", "/a"));
        _site.Page("/secret", Html("Secret", "Nobody should read this."));
        _site.Page("/secret/open", Html("Open", "Explicitly allowed."));
        _site.Page("/big", Html("Big", new string('x', 20_000)));
        _site.Page("/file.pdf", "%PDF-1.4 not really", "application/pdf");
        _site.Redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/");
        _site.Redirect("/to-file", "file:///etc/passwd");
    }

    /// <summary>Lets a held request go and stops the site.</summary>
    public async ValueTask DisposeAsync()
    {
        _release.TrySetResult();
        await _site.DisposeAsync();
        _client.Dispose();
    }

    [Fact]
    public async Task CrawlAsync_AStartUrlThatMovesToAnotherSite_CrawlsTheSiteItMovedTo_AndOnlyThat()
    {
        await using var moved = await LocalSite.StartAsync();
        moved.Page("/home", Html("Home", "The new home of the help pages.", "/about", _site.BaseUrl + "b"));
        moved.Page("/about", Html("About", "About the new site."));
        _site.Redirect("/old", moved.BaseUrl + "home");

        var result = await Crawler().CrawlAsync(new Uri(_site.BaseUrl, "/old"), Options(), NoPrevious, TestContext.Current.CancellationToken);

        Assert.Equal([moved.BaseUrl + "home", moved.BaseUrl + "about"], result.Pages.Select(p => p.Url));
        Assert.Contains("/robots.txt", moved.Requests); // the new site's own rules were asked for
        Assert.DoesNotContain("/b", _site.Requests); // the old site is off the site now
    }

    [Fact]
    public async Task CrawlAsync_Site_BreadthFirstWithinDepthAndSkipsTheTraps()
    {
        var result = await Crawler().CrawlAsync(_site.BaseUrl, Options(), NoPrevious, TestContext.Current.CancellationToken);

        Assert.Equal(["/", "/a", "/b", "/secret/open", "/a/deep"], result.Pages.Select(p => new Uri(p.Url).AbsolutePath));
        Assert.DoesNotContain("/a/deeper", _site.Requests);
        Assert.Equal("Page A", result.Pages[1].Title);
        Assert.Contains(result.Pages[1].Document!.Sections, s => s.Text.Contains("Alpha text about apples.", StringComparison.Ordinal));
        Assert.All(result.Pages, p => Assert.False(p.Unchanged));
        Assert.All(result.Pages, p => Assert.Matches("^[0-9a-f]{64}$", p.ContentHash));

        var reasons = result.Skipped.ToDictionary(s => s.Url, s => s.Reason);
        Assert.Contains("robots.txt", reasons[Url("/secret")], StringComparison.Ordinal);
        Assert.Contains("larger than 4096 bytes", reasons[Url("/big")], StringComparison.Ordinal);
        Assert.Contains("not HTML", reasons[Url("/file.pdf")], StringComparison.Ordinal);
        Assert.Contains("169.254.169.254", reasons[Url("/to-metadata")], StringComparison.Ordinal);
        Assert.StartsWith("refused", reasons[Url("/to-metadata")], StringComparison.Ordinal);
        Assert.Contains("file", reasons[Url("/to-file")], StringComparison.Ordinal);
        Assert.Contains("off the site", reasons["https://elsewhere.example/page"], StringComparison.Ordinal);
        Assert.DoesNotContain(result.Skipped, s => !s.Url.StartsWith("http", StringComparison.Ordinal));
        Assert.DoesNotContain("/secret", _site.Requests);
        Assert.Single(_site.Requests, "/a");
    }

    [Fact]
    public async Task CrawlAsync_MaxPages_StopsThere()
    {
        var result = await Crawler().CrawlAsync(_site.BaseUrl, Options() with { MaxPages = 2 }, NoPrevious, TestContext.Current.CancellationToken);

        Assert.Equal([Url("/"), Url("/a")], result.Pages.Select(p => p.Url));
        Assert.DoesNotContain("/b", _site.Requests);
    }

    [Fact]
    public async Task CrawlAsync_MaxDepthZero_ReadsOnlyTheStart()
    {
        var result = await Crawler().CrawlAsync(_site.BaseUrl, Options() with { MaxDepth = 0 }, NoPrevious, TestContext.Current.CancellationToken);

        Assert.Equal([Url("/")], result.Pages.Select(p => p.Url));
    }

    [Fact]
    public async Task CrawlAsync_Recrawl_UnchangedBy304AndChangedPageRead()
    {
        var crawler = Crawler();
        var first = await crawler.CrawlAsync(_site.BaseUrl, Options(), NoPrevious, TestContext.Current.CancellationToken);
        var previous = first.Pages.ToDictionary(p => p.Url, p => new PreviousPage(p.Url, p.ContentHash, p.ETag, p.LastModified));
        Assert.All(first.Pages, p => Assert.NotNull(p.ETag));

        var second = await crawler.CrawlAsync(_site.BaseUrl, Options() with { MaxDepth = 0 }, previous, TestContext.Current.CancellationToken);
        _site.Page("/", Html("Home", "Welcome, the text changed.", "/a"));
        var third = await crawler.CrawlAsync(_site.BaseUrl, Options() with { MaxDepth = 0 }, previous, TestContext.Current.CancellationToken);

        var unchanged = Assert.Single(second.Pages);
        Assert.True(unchanged.Unchanged);
        Assert.Null(unchanged.Document);
        Assert.Equal(first.Pages[0].ContentHash, unchanged.ContentHash);
        var changed = Assert.Single(third.Pages);
        Assert.False(changed.Unchanged);
        Assert.Contains(changed.Document!.Sections, s => s.Text.Contains("the text changed", StringComparison.Ordinal));
        Assert.NotEqual(first.Pages[0].ContentHash, changed.ContentHash);
    }

    [Fact]
    public async Task CrawlAsync_RecrawlFromTheStart_ReachesEveryPageAgain_EachUnchanged()
    {
        var crawler = Crawler();
        var first = await crawler.CrawlAsync(_site.BaseUrl, Options(), NoPrevious, TestContext.Current.CancellationToken);
        var previous = first.Pages.ToDictionary(p => p.Url, p => new PreviousPage(p.Url, p.ContentHash, p.ETag, p.LastModified));

        var again = await crawler.CrawlAsync(_site.BaseUrl, Options(), previous, TestContext.Current.CancellationToken);

        // The unchanged start page is read whole (a 304 would hide its links), so the pages below it are reached again.
        Assert.Equal(first.Pages.Select(p => p.Url), again.Pages.Select(p => p.Url));
        Assert.All(again.Pages, p => Assert.True(p.Unchanged, p.Url));
        Assert.All(again.Pages, p => Assert.Null(p.Document));
    }

    [Fact]
    public async Task CrawlAsync_SameTextNewETag_UnchangedByHashAndLinksFollowed()
    {
        var crawler = Crawler();
        var first = await crawler.CrawlAsync(_site.BaseUrl, Options() with { MaxDepth = 1 }, NoPrevious, TestContext.Current.CancellationToken);
        var previous = first.Pages.ToDictionary(p => p.Url, p => new PreviousPage(p.Url, p.ContentHash, "\"stale\"", null));

        var second = await crawler.CrawlAsync(_site.BaseUrl, Options() with { MaxDepth = 1 }, previous, TestContext.Current.CancellationToken);

        Assert.Equal(first.Pages.Select(p => p.Url), second.Pages.Select(p => p.Url));
        Assert.All(second.Pages, p => Assert.True(p.Unchanged, p.Url));
    }

    [Fact]
    public async Task CrawlAsync_StartOnLoopbackWithPublicOnlyClient_Throws()
    {
        using var publicOnly = UrlGuard.CreateClient(allowPrivate: false);
        var crawler = new WebsiteCrawler(publicOnly, TimeProvider.System);

        var error = await Assert.ThrowsAsync<UrlRefusedException>(
            () => crawler.CrawlAsync(_site.BaseUrl, Options(), NoPrevious, TestContext.Current.CancellationToken));

        Assert.Contains("127.0.0.1", error.Message, StringComparison.Ordinal);
        Assert.Empty(_site.Requests);
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://127.0.0.1/")]
    public async Task CrawlAsync_StartWithRefusedScheme_Throws(string start)
    {
        await Assert.ThrowsAsync<UrlRefusedException>(
            () => Crawler().CrawlAsync(new Uri(start), Options(), NoPrevious, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task CrawlAsync_RobotsServerError_CrawlsNothing()
    {
        _site.Route("/robots.txt", context =>
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return Task.CompletedTask;
        });

        var result = await Crawler().CrawlAsync(_site.BaseUrl, Options(), NoPrevious, TestContext.Current.CancellationToken);

        Assert.Empty(result.Pages);
        Assert.Contains("robots.txt", Assert.Single(result.Skipped).Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("/", _site.Requests);
    }

    [Fact]
    public async Task CrawlAsync_HeldPage_SkippedWhenItsRequestTimesOut()
    {
        HoldAt("/b");
        var time = new FakeTimeProvider();
        var options = Options() with { RequestTimeout = TimeSpan.FromSeconds(3), MaxDepth = 1 };

        var crawl = new WebsiteCrawler(_client, time).CrawlAsync(_site.BaseUrl, options, NoPrevious, TestContext.Current.CancellationToken);
        await _held.Task.WaitAsync(TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(4));
        var result = await crawl;

        Assert.Contains("timed out", result.Skipped.Single(s => s.Url == Url("/b")).Reason, StringComparison.Ordinal);
        Assert.Contains(Url("/secret/open"), result.Pages.Select(p => p.Url));
    }

    [Fact]
    public async Task CrawlAsync_HeldPage_CrawlTimeLimitEndsTheCrawl()
    {
        HoldAt("/b");
        var time = new FakeTimeProvider();
        var options = Options() with { RequestTimeout = TimeSpan.FromMinutes(10), CrawlTimeout = TimeSpan.FromMinutes(1) };

        var crawl = new WebsiteCrawler(_client, time).CrawlAsync(_site.BaseUrl, options, NoPrevious, TestContext.Current.CancellationToken);
        await _held.Task.WaitAsync(TestContext.Current.CancellationToken);
        time.Advance(TimeSpan.FromMinutes(2));
        var result = await crawl;

        Assert.Equal([Url("/"), Url("/a")], result.Pages.Select(p => p.Url));
        Assert.Contains("time limit", result.Skipped.Single(s => s.Url == Url("/b")).Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("/secret/open", _site.Requests);
    }

    private WebsiteCrawler Crawler() => new(_client, TimeProvider.System);

    private static CrawlOptions Options() => new(MaxPages: 20, MaxDepth: 2) { MaxBodyBytes = 4096 };

    private string Url(string path) => new Uri(_site.BaseUrl, path).AbsoluteUri;

    /// <summary>Makes <paramref name="path"/> hold its answer until the test ends, signalling when a request is held.</summary>
    private void HoldAt(string path) =>
        _site.Route(path, async context =>
        {
            _held.TrySetResult();
            try
            {
                await _release.Task.WaitAsync(context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                // The crawler gave up on the request: what the test wanted.
            }
        });

    private static string Html(string title, string text, params string[] links) =>
        $"""
        <!doctype html>
        <html><head><title>{title}</title></head>
        <body>
        <nav>{string.Concat(links.Select(l => $"<a href=\"{l}\">{l}</a> "))}</nav>
        <h1>{title}</h1>
        <p>{text}</p>
        </body></html>
        """;
}
