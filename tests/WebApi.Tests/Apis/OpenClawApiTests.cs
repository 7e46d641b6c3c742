using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>The OpenClaw-compatible surface under <c>/openclaw/api/v1</c>.</summary>
public sealed class OpenClawApiTests : IAsyncLifetime
{
    private const string Base = "/openclaw/api/v1";
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
    {
        ["OpenClaw:ChatRequestsPerMinute"] = "100",
        ["OpenClaw:ReadRequestsPerMinute"] = "1000",
    });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(TestWorkspace Workspace, HttpClient Client)> TokenAsync(string[]? scopes = null)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 100, scopes: scopes ?? ["chat", "sessions"]);
        return (workspace, workspace.Client());
    }

    [Fact]
    public async Task Chat_AnswersInOpenClawsShape()
    {
        var (workspace, client) = await TokenAsync();

        var response = await client.PostAsJsonAsync($"{Base}/chat", new { message = "What's the weather like today?", sessionKey = "session_abc123" }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(["content", "createdAt", "id", "model", "sessionKey", "usage"], body.EnumerateObject().Select(p => p.Name).Order());
        Assert.StartsWith("msg_", body.GetProperty("id").GetString());
        Assert.Equal("Echo: What's the weather like today?", body.GetProperty("content").GetString());
        Assert.Equal("session_abc123", body.GetProperty("sessionKey").GetString());
        Assert.Equal("gpt-4o-mini", body.GetProperty("model").GetString());
        Assert.True(body.GetProperty("usage").GetProperty("inputTokens").GetInt64() > 0);
        Assert.Equal(6, body.GetProperty("usage").GetProperty("outputTokens").GetInt64()); // "Echo:" and five words
        Assert.True(body.GetProperty("createdAt").TryGetDateTimeOffset(out _));
        Assert.Equal(99, await workspace.CreditsAsync());
        Assert.Equal("100", response.Headers.GetValues("X-RateLimit-Limit").Single());
        Assert.Equal("99", response.Headers.GetValues("X-RateLimit-Remaining").Single());
        var reset = long.Parse(response.Headers.GetValues("X-RateLimit-Reset").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(reset - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 0, 60);
    }

    [Theory]
    [InlineData("/chat/stream", false)]
    [InlineData("/chat", true)]
    public async Task ChatStream_StartDeltasDone_AsDocumented(string path, bool streamField)
    {
        var (_, client) = await TokenAsync();
        object body = streamField ? new { message = "Write a short poem", sessionKey = "poems", stream = true } : new { message = "Write a short poem", sessionKey = "poems" };

        using var request = new HttpRequestMessage(HttpMethod.Post, Base + path) { Content = JsonContent.Create(body) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var events = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(Ct))
        {
            events.Add(item);
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("start", events[0].EventType);
        Assert.StartsWith("msg_", JsonDocument.Parse(events[0].Data).RootElement.GetProperty("id").GetString());
        Assert.Equal("poems", JsonDocument.Parse(events[0].Data).RootElement.GetProperty("sessionKey").GetString());
        Assert.Equal("done", events[^1].EventType);
        Assert.Equal("poems", JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("sessionKey").GetString());
        Assert.All(events[1..^1], e => Assert.Equal("delta", e.EventType));
        Assert.Equal("Echo: Write a short poem", string.Concat(events[1..^1].Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("content").GetString())));
        var usage = JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("usage");
        Assert.Equal(5, usage.GetProperty("outputTokens").GetInt64());
        Assert.True(usage.GetProperty("inputTokens").GetInt64() > 0);
    }

    [Fact]
    public async Task ChatStream_WithoutSessionKey_StartAndDoneNameTheKeyTheServerMade()
    {
        var (_, client) = await TokenAsync();

        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Base}/chat/stream") { Content = JsonContent.Create(new { message = "a new thread" }) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var events = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(Ct))
        {
            events.Add(item);
        }

        Assert.Equal(["start", "done"], new[] { events[0].EventType, events[^1].EventType });
        var key = JsonDocument.Parse(events[0].Data).RootElement.GetProperty("sessionKey").GetString();
        Assert.StartsWith("sess_", key);
        Assert.Equal(key, JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("sessionKey").GetString());

        // It is the thread's key: the client can read and continue it.
        var history = await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions/{key}/history", Ct);
        Assert.Equal(["a new thread", "Echo: a new thread"], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task Status_Uptime_CountsFromTheProcessStart_NotFromTheFirstRequest()
    {
        // The app's clock is a day and 7.5 s past this process's start; nothing of this surface has run in this app yet.
        DateTime started;
        using (var process = System.Diagnostics.Process.GetCurrentProcess())
        {
            started = process.StartTime.ToUniversalTime();
        }

        var clock = new LuluClaw.Tests.ManualTimeProvider(new DateTimeOffset(started, TimeSpan.Zero) + TimeSpan.FromDays(1) + TimeSpan.FromSeconds(7.5));
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, services: s => s.Replace(ServiceDescriptor.Singleton<TimeProvider>(clock)));
        var workspace = await app.CreateWorkspaceAsync(scopes: ["sessions"]);
        using var client = workspace.Client();

        var first = await client.GetFromJsonAsync<JsonElement>($"{Base}/status", Ct);
        clock.Advance(TimeSpan.FromSeconds(60));
        var later = await client.GetFromJsonAsync<JsonElement>($"{Base}/status", Ct);

        Assert.Equal(86_407, first.GetProperty("uptime").GetInt64());
        Assert.Equal(86_467, later.GetProperty("uptime").GetInt64());
    }

    [Fact]
    public async Task Sessions_ListEveryThreadOfTheWorkspace_WhicheverSurfaceStartedIt()
    {
        var (workspace, client) = await TokenAsync();
        await client.PostAsJsonAsync($"{Base}/chat", new { message = "from openclaw", sessionKey = "oc-1" }, Ct);
        await client.PostAsJsonAsync("/api/gateway/chat", new { message = "from the gateway", session_id = "gw-1" }, Ct);
        await client.PostAsJsonAsync("/api/gateway/chat", new { message = "again", session_id = "gw-1" }, Ct);

        var sessions = (await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions", Ct)).GetProperty("sessions");

        Assert.Equal(2, sessions.GetArrayLength());
        var gateway = sessions.EnumerateArray().Single(s => s.GetProperty("key").GetString() == "gw-1");
        Assert.Equal("gateway", gateway.GetProperty("channel").GetString());
        Assert.Equal(4, gateway.GetProperty("messageCount").GetInt64());
        Assert.True(gateway.GetProperty("lastActivity").GetDateTimeOffset() >= gateway.GetProperty("createdAt").GetDateTimeOffset());
        Assert.Equal("openclaw", sessions.EnumerateArray().Single(s => s.GetProperty("key").GetString() == "oc-1").GetProperty("channel").GetString());
        var other = await _app.CreateWorkspaceAsync(scopes: ["sessions"]);
        using var otherClient = other.Client();
        Assert.Equal(0, (await otherClient.GetFromJsonAsync<JsonElement>($"{Base}/sessions", Ct)).GetProperty("sessions").GetArrayLength());
    }

    [Fact]
    public async Task History_NewestLimitOldestFirst_DeleteRemovesIt()
    {
        var (_, client) = await TokenAsync();
        for (var i = 1; i <= 3; i++)
        {
            await client.PostAsJsonAsync($"{Base}/chat", new { message = $"m{i}", sessionKey = "h" }, Ct);
        }

        var all = (await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions/h/history", Ct)).GetProperty("messages");
        var lastThree = (await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions/h/history?limit=3", Ct)).GetProperty("messages");

        Assert.Equal(6, all.GetArrayLength());
        Assert.Equal(["Echo: m2", "m3", "Echo: m3"], lastThree.EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        Assert.Equal(["assistant", "user", "assistant"], lastThree.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.True(lastThree[0].GetProperty("timestamp").TryGetDateTimeOffset(out _));
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync($"{Base}/sessions/h/history?limit=0", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"{Base}/sessions/h", Ct)).StatusCode);
        var gone = await client.GetAsync($"{Base}/sessions/h/history", Ct);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Equal("NOT_FOUND", (await gone.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"{Base}/sessions/h", Ct)).StatusCode);
        Assert.Equal(0, (await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions", Ct)).GetProperty("sessions").GetArrayLength());

        // The key starts afresh.
        await client.PostAsJsonAsync($"{Base}/chat", new { message = "new start", sessionKey = "h" }, Ct);
        Assert.Equal(2, (await client.GetFromJsonAsync<JsonElement>($"{Base}/sessions/h/history", Ct)).GetProperty("messages").GetArrayLength());
    }

    [Fact]
    public async Task Status_RealValues()
    {
        var (_, client) = await TokenAsync();
        await client.PostAsJsonAsync($"{Base}/chat", new { message = "hi", sessionKey = "a" }, Ct);
        await client.PostAsJsonAsync($"{Base}/chat", new { message = "hi", sessionKey = "b" }, Ct);

        var status = await client.GetFromJsonAsync<JsonElement>($"{Base}/status", Ct);

        Assert.Equal("healthy", status.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(status.GetProperty("version").GetString()));
        Assert.True(status.GetProperty("uptime").GetInt64() >= 0);
        Assert.Equal(2, status.GetProperty("activeSessions").GetInt64());
        Assert.Equal("echo", status.GetProperty("model").GetProperty("provider").GetString());
        Assert.Equal("gpt-4o-mini", status.GetProperty("model").GetProperty("model").GetString());
    }

    [Fact]
    public async Task Errors_UseOpenClawsCodes()
    {
        var (_, chatOnly) = await TokenAsync(["chat"]);
        var (_, sessionsOnly) = await TokenAsync(["sessions"]);
        using var anonymous = _app.CreateClient();

        await AssertErrorAsync(await anonymous.GetAsync($"{Base}/sessions", Ct), HttpStatusCode.Unauthorized, "UNAUTHORIZED");
        await AssertErrorAsync(await chatOnly.GetAsync($"{Base}/sessions", Ct), HttpStatusCode.Forbidden, "FORBIDDEN");
        await AssertErrorAsync(await sessionsOnly.PostAsJsonAsync($"{Base}/chat", new { message = "hi" }, Ct), HttpStatusCode.Forbidden, "FORBIDDEN");
        await AssertErrorAsync(await chatOnly.PostAsJsonAsync($"{Base}/chat", new { sessionKey = "x" }, Ct), HttpStatusCode.BadRequest, "INVALID_REQUEST");
        await AssertErrorAsync(await sessionsOnly.GetAsync($"{Base}/sessions/nope/history", Ct), HttpStatusCode.NotFound, "NOT_FOUND");
    }

    [Fact]
    public async Task ModelFailure_Is502ModelError()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:Provider"] = "mistral" });
        var workspace = await app.CreateWorkspaceAsync(credits: 5, scopes: ["chat"]);
        using var client = workspace.Client();

        await AssertErrorAsync(await client.PostAsJsonAsync($"{Base}/chat", new { message = "hi" }, Ct), HttpStatusCode.BadGateway, "MODEL_ERROR");
        Assert.Equal(5, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task PerTokenLimit_IsExactUnderConcurrency_ThenRateLimitedWithRetryAfter()
    {
        var clock = new LuluClaw.Tests.ManualTimeProvider(new DateTimeOffset(2026, 11, 1, 12, 0, 15, TimeSpan.Zero));
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["OpenClaw:ReadRequestsPerMinute"] = "20" },
            s => s.Replace(ServiceDescriptor.Singleton<TimeProvider>(clock)));
        var workspace = await app.CreateWorkspaceAsync(scopes: ["sessions"]);
        using var client = workspace.Client();

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => client.GetAsync($"{Base}/sessions", Ct)));

        Assert.Equal(20, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        var limited = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToArray();
        Assert.Equal(30, limited.Length);
        Assert.All(responses, r => Assert.Equal("20", r.Headers.GetValues("X-RateLimit-Limit").Single()));
        Assert.All(responses, r => Assert.Equal("1793534460", r.Headers.GetValues("X-RateLimit-Reset").Single())); // 12:01:00, the window's end
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(),
            responses.Where(r => r.StatusCode == HttpStatusCode.OK).Select(r => r.Headers.GetValues("X-RateLimit-Remaining").Single()).Order());
        var error = (await limited[0].Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("RATE_LIMITED", error.GetProperty("code").GetString());
        Assert.Equal(45, error.GetProperty("retryAfter").GetInt64());
        Assert.Equal("0", limited[0].Headers.GetValues("X-RateLimit-Remaining").Single());

        // The next minute starts a new window.
        clock.Advance(TimeSpan.FromSeconds(45));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"{Base}/sessions", Ct)).StatusCode);
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }
}
