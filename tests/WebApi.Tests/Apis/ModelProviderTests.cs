using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Tests;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// Chat through real providers: LuluClaw's OpenAI and Anthropic clients against a stand-in provider
/// on 127.0.0.1, end to end from the Developer API.
/// </summary>
public sealed class ModelProviderTests : IAsyncLifetime
{
    private const string PlatformOpenAIKey = "sk-platform-0000000000000001";
    private const string PlatformAnthropicKey = "sk-ant-platform-000000000002";

    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Llm:OpenAI:ApiKey"] = PlatformOpenAIKey,
            ["Llm:Anthropic:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(), // the …/v1 form works for Anthropic too
            ["Llm:Anthropic:ApiKey"] = PlatformAnthropicKey,
            ["Llm:TimeoutSeconds"] = "5",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("gpt-4o-mini", "/v1/chat/completions")]
    [InlineData("claude-3-5-haiku-latest", "/v1/messages")]
    public async Task Chat_SystemPromptAndWholeHistoryReachTheProvider_InOrder(string model, string path)
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "You are terse.", model);

        for (var i = 1; i <= 3; i++)
        {
            var response = await ChatAsync(client, new { message = $"question {i}", session_id = "s1", bot_id = bot });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal($"Stub reply to: question {i}", (await Json(response)).GetProperty("reply").GetString());
        }

        var last = _stub.Requests[^1];
        Assert.Equal(path, last.Path);
        Assert.Equal(model, last.Model);
        Assert.False(last.Stream);
        Assert.Equal(
            [
                ("system", "You are terse."),
                ("user", "question 1"), ("assistant", "Stub reply to: question 1"),
                ("user", "question 2"), ("assistant", "Stub reply to: question 2"),
                ("user", "question 3"),
            ],
            last.Messages.Select(m => (m.Role, m.Content)));
        Assert.Equal(247, await workspace.CreditsAsync());
    }

    [Theory]
    [InlineData("gpt-")]
    [InlineData("claude-")]
    [InlineData("echo-")]
    public async Task Chat_EachProvidersModelCall_IsAChatActivityOfLuluClawModels(string modelPrefix)
    {
        // A model name of this test only: activities of tests running alongside share the source.
        var model = modelPrefix + Guid.NewGuid().ToString("N");
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == Silo.Models.ModelClientPipeline.TelemetrySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (Equals(activity.GetTagItem("gen_ai.request.model"), model))
                {
                    stopped.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var response = await ChatAsync(client, new { message = "hi", bot_id = await CreateBotAsync(client, "Bot", "p", model) });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var activity = Assert.Single(stopped);
        Assert.Equal($"chat {model}", activity.DisplayName);
        Assert.NotNull(activity.GetTagItem("gen_ai.usage.output_tokens"));
    }

    [Fact]
    public async Task Chat_PlatformKeysReachEachProvider_InItsOwnHeader()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        await ChatAsync(client, new { message = "hi", bot_id = await CreateBotAsync(client, "Bot", "p", "gpt-4o-mini") });
        await ChatAsync(client, new { message = "hi", bot_id = await CreateBotAsync(client, "Bot", "p", "claude-3-5-haiku-latest") });

        Assert.Equal($"Bearer {PlatformOpenAIKey}", _stub.Requests.Single(r => r.Path == "/v1/chat/completions").Authorization);
        Assert.Equal(PlatformAnthropicKey, _stub.Requests.Single(r => r.Path == "/v1/messages").ApiKey);
    }

    [Fact]
    public async Task Patch_SystemPromptOrModel_ChangesTheVeryNextTurn()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "Old prompt.", "gpt-4o-mini");
        await ChatAsync(client, new { message = "one", session_id = "s", bot_id = bot });

        Assert.Equal(HttpStatusCode.OK, (await client.PatchAsJsonAsync($"/api/v1/bots/{bot}", new { system_prompt = "New prompt." }, Ct)).StatusCode);
        await ChatAsync(client, new { message = "two", session_id = "s" });
        Assert.Equal(("system", "New prompt."), (_stub.Requests[^1].Messages[0].Role, _stub.Requests[^1].Messages[0].Content));
        Assert.Equal("gpt-4o-mini", _stub.Requests[^1].Model);

        Assert.Equal(HttpStatusCode.OK, (await client.PatchAsJsonAsync($"/api/v1/bots/{bot}", new { model = "llama3.1:8b" }, Ct)).StatusCode);
        await ChatAsync(client, new { message = "three", session_id = "s" });
        Assert.Equal("llama3.1:8b", _stub.Requests[^1].Model);

        // Across providers too: the same thread moves to Anthropic with its whole history.
        Assert.Equal(HttpStatusCode.OK, (await client.PatchAsJsonAsync($"/api/v1/bots/{bot}", new { model = "claude-3-5-haiku-latest" }, Ct)).StatusCode);
        var response = await ChatAsync(client, new { message = "four", session_id = "s" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("/v1/messages", _stub.Requests[^1].Path);
        Assert.Equal(8, _stub.Requests[^1].Messages.Count); // system, three turns of two, the new question
    }

    [Fact]
    public async Task Patch_WhileATurnIsInFlight_ThatTurnFinishesOnTheOldConfiguration()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "Old prompt.", "gpt-4o-mini");
        _stub.HoldReplies();
        var inFlight = ChatAsync(client, new { message = "slow", session_id = "a", bot_id = bot });
        await _stub.WaitForRequestsAsync(1, Ct);

        var patched = await client.PatchAsJsonAsync($"/api/v1/bots/{bot}", new { system_prompt = "New prompt." }, Ct);
        _stub.ReleaseReplies();

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await inFlight).StatusCode);
        Assert.Equal("Old prompt.", _stub.Requests[0].Messages[0].Content);
        await ChatAsync(client, new { message = "next", session_id = "b", bot_id = bot });
        Assert.Equal("New prompt.", _stub.Requests[1].Messages[0].Content);
    }

    [Fact]
    public async Task Restart_RebuildsTheModelClient_RestartCountGrows_HistorySurvives()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "p", "gpt-4o-mini");
        await ChatAsync(client, new { message = "before", session_id = "s", bot_id = bot });
        var models = (Silo.Models.ChatClientProvider)_app.Services.GetService(typeof(Silo.Models.ChatClientProvider))!;
        var built = models.ClientsBuilt;

        var restarted = await Json(await client.PostAsync($"/api/v1/bots/{bot}/restart", null, Ct));
        var response = await ChatAsync(client, new { message = "after", session_id = "s" });

        Assert.Equal(1, restarted.GetProperty("restart_count").GetInt64());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(built + 1, models.ClientsBuilt);
        Assert.Equal(["p", "before", "Stub reply to: before", "after"], _stub.Requests[^1].Messages.Select(m => m.Content));
        Assert.Equal(4, (await workspace.HistoryAsync("s")).Count);
    }

    [Theory]
    [InlineData(429, "7", "7")]
    [InlineData(503, "120", "120")]
    [InlineData(500, null, null)]
    [InlineData(401, null, null)]
    public async Task ProviderFailure_Is503_WithItsRetryAfter_NotCharged_NothingStored(int status, string? retryAfter, string? expectedRetryAfter)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "p", "gpt-4o-mini");
        _stub.FailNext(status, retryAfter);

        var response = await ChatAsync(client, new { message = "hi", session_id = "s", bot_id = bot });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(expectedRetryAfter, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var error = await ErrorOf(response);
        Assert.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture), error);
        Assert.DoesNotContain(PlatformOpenAIKey, error);
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));

        // The failure left nothing behind: the next turn starts the thread at seq 1.
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "again", session_id = "s" })).StatusCode);
        Assert.Equal([1L, 2], (await workspace.HistoryAsync("s")).Select(m => m.Seq));
    }

    [Fact]
    public async Task AnthropicFailure_Is503_WithItsRetryAfter_NotCharged()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        var bot = await CreateBotAsync(client, "Bot", "p", "claude-3-5-haiku-latest");
        _stub.FailNext(429, "9");

        var response = await ChatAsync(client, new { message = "hi", session_id = "s", bot_id = bot });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(9), response.Headers.RetryAfter?.Delta);
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task ProviderTooSlow_Is503_AfterTheConfiguredTimeout_NotCharged()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Llm:TimeoutSeconds"] = "0.2",
        });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        _stub.HoldReplies();

        var response = await client.PostAsJsonAsync("/api/v1/chat", new { message = "hi", session_id = "s" }, Ct);
        _stub.ReleaseReplies();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("did not answer within 0.2 s", await ErrorOf(response));
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task ProviderUnreachable_Is503_NotCharged()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = new Uri(StubModelServer.ClosedPortUrl(), "v1").ToString(),
        });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();

        var response = await client.PostAsJsonAsync("/api/v1/chat", new { message = "hi", session_id = "s" }, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task Byok_WorkspaceKeyIsUsedInsteadOfThePlatforms_ShownOnlyAsHint_UnreadableInTheDatabase()
    {
        const string Byok = "sk-byok-SECRET-7f3a9c2e51d04b8a";
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var put = await client.PutAsJsonAsync("/api/v1/provider-keys/openai", new { api_key = Byok }, Ct);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var stored = await put.Content.ReadAsStringAsync(Ct);
        Assert.DoesNotContain("SECRET", stored);
        Assert.Equal("sk-…4b8a", JsonDocument.Parse(stored).RootElement.GetProperty("hint").GetString());
        var list = await client.GetStringAsync("/api/v1/provider-keys", Ct);
        Assert.DoesNotContain("SECRET", list);
        Assert.Equal("openai", JsonDocument.Parse(list).RootElement[0].GetProperty("provider").GetString());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat", new { message = "hi" }, Ct)).StatusCode);
        Assert.Equal($"Bearer {Byok}", _stub.Requests[^1].Authorization);

        // Another workspace still uses the platform's key.
        var other = await _app.CreateWorkspaceAsync();
        using var otherClient = other.Client();
        await otherClient.PostAsJsonAsync("/api/v1/chat", new { message = "hi" }, Ct);
        Assert.Equal($"Bearer {PlatformOpenAIKey}", _stub.Requests[^1].Authorization);

        // The plaintext is nowhere in the database file or its write-ahead log.
        foreach (var file in new[] { _app.SqliteFile!, _app.SqliteFile + "-wal" }.Where(File.Exists))
        {
            var bytes = await ReadSharedAsync(file);
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes("SECRET-7f3a9c2e")));
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.Unicode.GetBytes("SECRET-7f3a9c2e")));
        }

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/api/v1/provider-keys/openai", Ct)).StatusCode);
        await client.PostAsJsonAsync("/api/v1/chat", new { message = "hi" }, Ct);
        Assert.Equal($"Bearer {PlatformOpenAIKey}", _stub.Requests[^1].Authorization);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync("/api/v1/provider-keys/openai", Ct)).StatusCode);
    }

    [Fact]
    public async Task Byok_AnthropicKey_ReachesAnthropic_AndBadRequestsAreClear()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsJsonAsync("/api/v1/provider-keys/anthropic", new { api_key = "sk-ant-byok-000000000000009" }, Ct)).StatusCode);

        await ChatAsync(client, new { message = "hi", bot_id = await CreateBotAsync(client, "Bot", "p", "claude-3-5-haiku-latest") });
        Assert.Equal("sk-ant-byok-000000000000009", _stub.Requests[^1].ApiKey);

        var unknown = await client.PutAsJsonAsync("/api/v1/provider-keys/mistral", new { api_key = "k-0000000000000" }, Ct);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("unknown provider 'mistral'; keys can be stored for 'openai', 'anthropic'", await ErrorOf(unknown));
        var missing = await client.PutAsJsonAsync("/api/v1/provider-keys/openai", new { key = "k" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("unknown field 'key'; expected 'api_key'", await ErrorOf(missing));
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, Ct);
        return buffer.ToArray();
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient client, object body) => client.PostAsJsonAsync("/api/v1/chat", body, Ct);
}
