using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Tests;

/// <summary>
/// A real website on Kestrel (127.0.0.1, a free port) whose pages a test sets and changes; it
/// answers conditional requests with 304 by ETag and records every path requested.
/// </summary>
public sealed class LocalSite : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Func<HttpContext, Task>> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _requests = new();
    private WebApplication? _app;

    /// <summary>The site's root, <c>http://127.0.0.1:port/</c>.</summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Every path requested, in order.</summary>
    public IReadOnlyList<string> Requests => [.. _requests];

    /// <summary>Starts the site.</summary>
    public static async Task<LocalSite> StartAsync()
    {
        var site = new LocalSite();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Run(site.HandleAsync);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        site._app = app;
        site.BaseUrl = new Uri(addresses.First() + "/");
        return site;
    }

    /// <summary>Serves <paramref name="body"/> at <paramref name="path"/> with an ETag of its hash.</summary>
    public void Page(string path, string body, string contentType = "text/html; charset=utf-8") =>
        _routes[path] = async context =>
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            var etag = $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}\"";
            context.Response.Headers.ETag = etag;
            if (context.Request.Headers.IfNoneMatch == etag)
            {
                context.Response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }

            context.Response.ContentType = contentType;
            await context.Response.Body.WriteAsync(bytes);
        };

    /// <summary>Answers <paramref name="path"/> with a redirect to <paramref name="location"/>.</summary>
    public void Redirect(string path, string location) =>
        _routes[path] = context =>
        {
            context.Response.StatusCode = StatusCodes.Status302Found;
            context.Response.Headers.Location = location;
            return Task.CompletedTask;
        };

    /// <summary>Answers <paramref name="path"/> with whatever <paramref name="handler"/> does.</summary>
    public void Route(string path, Func<HttpContext, Task> handler) => _routes[path] = handler;

    /// <summary>Stops the site.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(deadline.Token);
            await _app.DisposeAsync();
        }
    }

    private Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        _requests.Enqueue(path + context.Request.QueryString);
        if (_routes.TryGetValue(path, out var handler))
        {
            return handler(context);
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }
}
