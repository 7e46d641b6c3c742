using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// The OpenAPI document against the routes the server really maps, against Redocly's linter (every
/// recommended rule, errors and warnings alike), and its reference page in a real Chromium.
/// </summary>
public sealed class OpenApiDocumentTests : IAsyncLifetime
{
    /// <summary>The public surfaces; everything else (admin, health, the document and its page) is not part of the document.</summary>
    private static readonly string[] PublicPrefixes = ["/api/gateway/", "/api/v1/", "/v1/", "/openclaw/"];

    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(Provider.Sqlite);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryPublicRoute_IsDescribed_WithItsSuccessAndItsSurfacesErrorTypes()
    {
        var document = await DocumentAsync();
        var paths = document.GetProperty("paths");
        var routes = _app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.TrimStart('/').TrimEnd('/'), Methods: e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? []))
            .Where(r => PublicPrefixes.Any(p => (r.Path + "/").StartsWith(p, StringComparison.Ordinal)))
            .ToArray();
        Assert.True(routes.Length >= 19, $"only {routes.Length} public routes found");
        foreach (var (path, methods) in routes)
        {
            foreach (var method in methods)
            {
                var operation = default(JsonElement);
                Assert.True(paths.TryGetProperty(path, out var item) && item.TryGetProperty(method.ToLowerInvariant(), out operation),
                    $"{method} {path} is mapped but not in the document");
                var responses = operation.GetProperty("responses").EnumerateObject().ToDictionary(r => r.Name, r => r.Value);
                Assert.Contains(responses.Keys, s => s.StartsWith('2'));
                Assert.Contains("401", responses.Keys);
                var errorType = path.StartsWith("/v1/", StringComparison.Ordinal) ? "OpenAIErrorBody"
                    : path.StartsWith("/openclaw/", StringComparison.Ordinal) ? "OpenClawErrorBody"
                    : "ErrorBody";
                foreach (var (status, response) in responses.Where(r => r.Key[0] is '4' or '5'))
                {
                    var schema = response.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString();
                    Assert.True(schema == $"#/components/schemas/{errorType}", $"{method} {path} {status} is described as {schema}, not {errorType}");
                    if (status is "429" or "503")
                    {
                        Assert.True(response.GetProperty("headers").TryGetProperty("Retry-After", out _), $"{method} {path} {status} has no Retry-After");
                    }
                }
            }
        }

        var bot = document.GetProperty("components").GetProperty("schemas").GetProperty("BotResponse").GetProperty("properties");
        Assert.Equal(["starting", "running", "reloading", "restarting", "error"], bot.GetProperty("status").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));
        var chat = document.GetProperty("components").GetProperty("schemas").GetProperty("GatewayChatRequest").GetProperty("properties");
        Assert.Equal(4000, chat.GetProperty("message").GetProperty("maxLength").GetInt32());
        Assert.Equal(128, chat.GetProperty("session_id").GetProperty("maxLength").GetInt32());
        var completions = paths.GetProperty("/v1/chat/completions").GetProperty("post").GetProperty("responses");
        foreach (var status in new[] { "200", "429" })
        {
            var headers = completions.GetProperty(status).GetProperty("headers");
            Assert.All(new[] { "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests" },
                name => Assert.True(headers.TryGetProperty(name, out _), $"/v1/chat/completions {status} does not describe {name}"));
        }

        Assert.DoesNotContain(document.GetProperty("servers").EnumerateArray(), s => s.GetProperty("url").GetString()!.EndsWith('/'));
    }

    [Fact]
    public async Task Redocly_LintsTheDocument_WithNoErrorAndNoWarning()
    {
        var tools = Path.Combine(RepositoryRoot(), "tests", "openapi");
        var redocly = Path.Combine(tools, "node_modules", ".bin", "redocly");
        Assert.True(File.Exists(redocly), $"the linter is not installed: run 'npm ci --prefix {tools}' (test.sh does)");
        var file = Path.Combine(Directory.CreateTempSubdirectory("luluclaw-openapi-").FullName, "openapi.json");
        await File.WriteAllTextAsync(file, (await DocumentAsync()).GetRawText(), Ct);

        var start = new ProcessStartInfo(redocly) { WorkingDirectory = tools, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "lint", file, "--format=stylish", "--config", Path.Combine(tools, "redocly.yaml") })
        {
            start.ArgumentList.Add(argument);
        }

        using var lint = Process.Start(start)!;
        var output = await lint.StandardOutput.ReadToEndAsync(Ct) + await lint.StandardError.ReadToEndAsync(Ct);
        await lint.WaitForExitAsync(Ct);

        Assert.True(lint.ExitCode == 0, output);
        Assert.Contains("Your API description is valid", output);
        Assert.False(output.Replace("Deprecation warning", "", StringComparison.Ordinal).Contains("warning", StringComparison.OrdinalIgnoreCase), output);
    }

    [Fact]
    public async Task Docs_RendersTheReference_InChromium_FromThisServerOnly()
    {
        var folder = Directory.CreateTempSubdirectory("luluclaw-docs-").FullName;
        using var server = await ServerProcess.StartAsync(folder, Ct);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        var elsewhere = new List<string>();
        await page.RouteAsync("**/*", async route =>
        {
            if (new Uri(route.Request.Url).Host == server.Address.Host)
            {
                await route.ContinueAsync();
            }
            else
            {
                elsewhere.Add(route.Request.Url);
                await route.AbortAsync();
            }
        });

        var response = await page.GotoAsync(new Uri(server.Address, "/docs").ToString());

        Assert.Equal((int)HttpStatusCode.OK, response!.Status);
        // The page is drawn by its script from the document: an operation's summary appears only once both loaded.
        await page.GetByText("Send a message in a thread of the workspace's primary bot").First.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        Assert.Contains("LuluClaw API", await page.TitleAsync());
        Assert.Empty(elsewhere);
    }

    private async Task<JsonElement> DocumentAsync()
    {
        // As a deployment behind a host name serves it: the document's server is the host it was asked on.
        using var client = _app.CreateClient(new() { BaseAddress = new Uri("http://api.luluclaw.test") });
        var response = await client.GetAsync("/openapi/v1.json", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Json(response);
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "LuluClaw.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("The tests do not run inside the repository.");
    }
}
