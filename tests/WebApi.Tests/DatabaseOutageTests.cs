using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using Npgsql;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// PostgreSQL taken away and brought back, through a TCP proxy standing in for the network: requests
/// fail fast with 503 in each surface's own shape, nothing stored is lost or doubled, and the node
/// serves again by itself once the database is back.
/// </summary>
public sealed class DatabaseOutageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TcpProxy _proxy = null!;
    private LuluClawApp _app = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = await LuluClawApp.StartAsync(Provider.Postgres, new Dictionary<string, string?> { ["Storage:TimeoutSeconds"] = "2" }, connectionString: direct =>
        {
            var builder = new NpgsqlConnectionStringBuilder(direct);
            _proxy = TcpProxy.Start(builder.Host!, builder.Port);
            builder.Host = "127.0.0.1";
            builder.Port = _proxy.Port;
            return builder.ConnectionString;
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Theory]
    [InlineData(ProxyMode.Refuse)]
    [InlineData(ProxyMode.Blackhole)]
    public async Task DatabaseAway_Fast503InEachSurfacesShape_ThenRecoversByItself(ProxyMode outage)
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "pro", credits: 100);
        using var client = workspace.Client();
        client.Timeout = TimeSpan.FromSeconds(30); // a hang would fail the test here, not pass it slowly
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/gateway/chat", new { message = "before", session_id = "s" }, Ct)).StatusCode);

        _proxy.Set(outage);

        var clock = Stopwatch.StartNew();
        var gateway = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "during", session_id = "s" }, Ct);
        output.WriteLine($"{outage}: gateway answered {(int)gateway.StatusCode} after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, gateway.StatusCode);
        Assert.Contains("database is unavailable", await ErrorOf(gateway));
        Assert.NotNull(gateway.Headers.RetryAfter);

        var openAI = await client.PostAsJsonAsync("/v1/chat/completions",
            new { model = "anything", messages = new[] { new { role = "user", content = "during" } } }, Ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, openAI.StatusCode);
        Assert.Equal("server_error", (await Json(openAI)).GetProperty("error").GetProperty("type").GetString());

        var openClaw = await client.GetAsync("/openclaw/api/v1/status", Ct); // any key may ask; counting the request needs the database
        Assert.Equal(HttpStatusCode.ServiceUnavailable, openClaw.StatusCode);
        Assert.Equal("SERVICE_UNAVAILABLE", (await Json(openClaw)).GetProperty("error").GetProperty("code").GetString());

        // A key this node has never seen cannot be checked either: 503, not 401 or 500.
        using var stranger = _app.CreateClient();
        stranger.DefaultRequestHeaders.Authorization = new("Bearer", "lulu_sk_" + new string('Q', 43)); // well formed, never minted
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await stranger.PostAsJsonAsync("/api/gateway/chat", new { message = "x" }, Ct)).StatusCode);

        _proxy.Set(ProxyMode.Forward);

        // Back by itself: no restart, no operator.
        clock.Restart();
        HttpResponseMessage after;
        while ((after = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "after", session_id = "s" }, Ct)).StatusCode != HttpStatusCode.OK)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, after.StatusCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the node did not recover within 30 s of the database's return");
            await Task.Delay(100, Ct);
        }

        output.WriteLine($"{outage}: serving again {clock.ElapsedMilliseconds} ms after the database returned");

        // Only the two acknowledged turns are stored and charged.
        Assert.Equal(98, (await Json(after)).GetProperty("credits_remaining").GetInt64());
        Assert.Equal(
            [(1L, "user", "before"), (2L, "assistant", "Echo: before"), (3L, "user", "after"), (4L, "assistant", "Echo: after")],
            await workspace.HistoryAsync("s"));
        Assert.Equal(98, await workspace.CreditsAsync());
    }
}
