using System.Net;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace LuluClaw.Bench.Knowledge;

/// <summary>
/// A generated website on Kestrel at 127.0.0.1: page 0 at <c>/</c>, page i at <c>/p/i</c>; page i
/// links to pages 31i + 1 … 31i + 31, so 1,000 pages are three links deep. Each page: a title, three
/// sections of two paragraphs (the same text on every request), navigation and a footer.
/// </summary>
internal sealed class Site : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string[] _pages;
    private int _served;

    private Site(WebApplication app, string[] pages)
    {
        _app = app;
        _pages = pages;
    }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>How many pages (not robots.txt) were answered with 200.</summary>
    public int PagesServed => Volatile.Read(ref _served);

    /// <summary>The mean words of text a page has.</summary>
    public int WordsPerPage { get; private set; }

    public static async Task<Site> StartAsync(int count, TextMaker text)
    {
        var random = new Random(7);
        var pages = new string[count];
        long words = 0;
        for (var i = 0; i < count; i++)
        {
            var title = text.Title(random);
            var html = new StringBuilder($"<!doctype html><html><head><title>{title}</title></head><body>");
            html.Append("<nav><a href=\"/\">Home</a> <a href=\"/p/1\">Guides</a></nav><main>");
            html.Append($"<h1>{title}</h1>");
            for (var section = 0; section < 3; section++)
            {
                html.Append($"<h2>{text.Title(random)}</h2>");
                for (var p = 0; p < 2; p++)
                {
                    var paragraph = text.Paragraph(random, 60, 110);
                    words += paragraph.Count(c => c == ' ') + 1;
                    html.Append($"<p>{paragraph}</p>");
                }
            }

            html.Append("<ul>");
            for (var child = (31 * i) + 1; child <= (31 * i) + 31 && child < count; child++)
            {
                html.Append($"<li><a href=\"/p/{child}\">{text.Title(random)}</a></li>");
            }

            html.Append("</ul></main><footer>© Bench Handbook. All rights reserved.</footer></body></html>");
            pages[i] = html.ToString();
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var site = new Site(app, pages) { WordsPerPage = (int)(words / Math.Max(1, count)) };
        app.Run(site.HandleAsync);
        await app.StartAsync();
        site.BaseUrl = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First() + "/");
        return site;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        int? page = path == "/" ? 0 : path.StartsWith("/p/", StringComparison.Ordinal) && int.TryParse(path[3..], out var n) && n > 0 && n < _pages.Length ? n : null;
        if (path == "/robots.txt")
        {
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("User-agent: *\nAllow: /\n");
            return;
        }

        if (page is not { } i)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        Interlocked.Increment(ref _served);
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(_pages[i]);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
