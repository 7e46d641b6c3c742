using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// Two silos of one Orleans cluster on one PostgreSQL database, in one process. A bot, a key or a
/// session has one activation in the cluster, so a change made through one silo is what the other
/// sees at once; a workspace's provider keys, cached per silo with its model clients, reach the
/// other silo by NOTIFY or, with listening off, by the poll of the changes table.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> NotifyOnly = new() { ["Cluster:PollInterval"] = "01:00:00" };
    private static readonly Dictionary<string, string?> PollOnly = new() { ["Cluster:Listen"] = "false", ["Cluster:PollInterval"] = "00:00:00.2" };

    private StubModelServer _stub = null!;
    private LuluClawApp _a = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _a = await LuluClawApp.StartAsync(Provider.Postgres, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Llm:OpenAI:ApiKey"] = "sk-platform",
            ["Cluster:PollInterval"] = "01:00:00",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _a.DisposeAsync();
        await _stub.DisposeAsync();
    }

    [Fact]
    public async Task BotPatchRestartDelete_ThroughOneSilo_AreWhatTheOtherSees()
    {
        await using var b = _a.AnotherNode(NotifyOnly);
        var workspace = await _a.CreateWorkspaceAsync(plan: "pro");
        using var onA = workspace.Client();
        using var onB = (workspace with { App = b }).Client();
        var id = await CreateBotAsync(onA, "Before", "Prompt one.");

        // The bot has one activation in the cluster, wherever a request enters.
        Assert.Equal("Before", (await Json(await onB.GetAsync($"/api/v1/bots/{id}", Ct))).GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.OK, (await onB.PostAsJsonAsync("/api/v1/chat", new { bot_id = id, message = "hi", session_id = "s1" }, Ct)).StatusCode);
        Assert.Equal("Prompt one.", _stub.Requests[^1].Messages[0].Content);

        // PATCH through A: the next turn through B uses the new prompt, at once.
        Assert.Equal(HttpStatusCode.OK, (await onA.PatchAsJsonAsync($"/api/v1/bots/{id}", new { name = "After", system_prompt = "Prompt two." }, Ct)).StatusCode);
        Assert.Equal("After", (await Json(await onB.GetAsync($"/api/v1/bots/{id}", Ct))).GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.OK, (await onB.PostAsJsonAsync("/api/v1/chat", new { bot_id = id, message = "again", session_id = "s1" }, Ct)).StatusCode);
        Assert.Equal("Prompt two.", _stub.Requests[^1].Messages[0].Content);

        // Restart on A: B shows the new count.
        Assert.Equal(HttpStatusCode.OK, (await onA.PostAsync($"/api/v1/bots/{id}/restart", null, Ct)).StatusCode);
        Assert.Equal(1, (await Json(await onB.GetAsync($"/api/v1/bots/{id}", Ct))).GetProperty("restart_count").GetInt64());

        // Delete on A: gone on B too, chat included.
        Assert.Equal(HttpStatusCode.NoContent, (await onA.DeleteAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await onB.GetAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await onB.PostAsJsonAsync("/api/v1/chat", new { bot_id = id, message = "still?", session_id = "s2" }, Ct)).StatusCode);
    }

    [Fact]
    public async Task KeyRevokedThroughOneSilo_IsRefusedOnTheOther_OnEveryRoute()
    {
        await using var b = _a.AnotherNode(NotifyOnly);
        var workspace = await _a.CreateWorkspaceAsync(plan: "pro");
        using var onB = (workspace with { App = b }).Client();
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/bots", Ct)).StatusCode); // the key is resolved (and its answer kept) by its one activation

        using var admin = _a.Admin();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/admin/workspaces/{workspace.Id}/keys/{workspace.KeyId}", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await onB.GetAsync("/api/v1/bots", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "hi", session_id = "s" }, Ct)).StatusCode);
    }

    [Theory]
    [InlineData("notify")]
    [InlineData("poll")]
    public async Task ProviderKeyPutOnOneNode_IsUsedByTheOthersNextTurn(string path)
    {
        await using var b = _a.AnotherNode(path == "notify" ? NotifyOnly : PollOnly);
        var workspace = await _a.CreateWorkspaceAsync(plan: "pro");
        using var onA = workspace.Client();
        using var onB = (workspace with { App = b }).Client();
        Assert.Equal(HttpStatusCode.OK, (await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "one", session_id = "s" }, Ct)).StatusCode);
        Assert.Equal("Bearer sk-platform", _stub.Requests[^1].Authorization); // B caches a client with the platform key

        const string Byok = "sk-byok-cluster-0000000000001";
        Assert.Equal(HttpStatusCode.OK, (await onA.PutAsJsonAsync("/api/v1/provider-keys/openai", new { api_key = Byok }, Ct)).StatusCode);

        await Eventually("provider key", async () =>
        {
            Assert.Equal(HttpStatusCode.OK, (await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "next", session_id = "s" }, Ct)).StatusCode);
            return _stub.Requests[^1].Authorization == $"Bearer {Byok}";
        });
    }

    [Fact]
    public async Task OneSession_AlternatingNodes_KeepsOneGaplessThread()
    {
        await using var b = _a.AnotherNode(NotifyOnly);
        var workspace = await _a.CreateWorkspaceAsync(plan: "pro");
        HttpClient[] nodes = [workspace.Client(), (workspace with { App = b }).Client()];
        for (var turn = 1; turn <= 10; turn++)
        {
            var answer = await nodes[turn % 2].PostAsJsonAsync("/api/gateway/chat", new { message = $"turn {turn}", session_id = "shared" }, Ct);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

            // Each node's model call saw the whole thread, whichever node wrote it.
            Assert.Equal(2 * turn - 1, _stub.Requests[^1].Messages.Count(m => m.Role is "user" or "assistant"));
        }

        var history = await workspace.HistoryAsync("shared");
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), history.Select(m => m.Seq));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"turn {i}"), history.Where(m => m.Role == "user").Select(m => m.Content));

        // Reads on either node see the whole thread too.
        using var adminB = b.Admin();
        var onB = await adminB.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspace.Id}/sessions/shared/messages", Ct);
        Assert.Equal(20, onB.GetProperty("messages").GetArrayLength());
        foreach (var node in nodes)
        {
            node.Dispose();
        }
    }

    [Fact]
    public async Task TopUpAndPlanChangeOnOneNode_HoldOnTheOtherAtOnce()
    {
        await using var b = _a.AnotherNode(NotifyOnly);
        var workspace = await _a.CreateWorkspaceAsync(plan: "pro", credits: 1);
        using var onB = (workspace with { App = b }).Client();
        using var admin = _a.Admin();

        Assert.Equal(HttpStatusCode.OK, (await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "one", session_id = "s" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.PaymentRequired, (await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "two", session_id = "s" }, Ct)).StatusCode);

        // No waiting: admission reads the balance and the plan in the database.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/credits", new { amount = 100 }, Ct)).StatusCode);
        var paid = await onB.PostAsJsonAsync("/api/gateway/chat", new { message = "two", session_id = "s" }, Ct);
        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal(99, (await Json(paid)).GetProperty("credits_remaining").GetInt64());

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync($"/api/admin/workspaces/{workspace.Id}", new { plan = "starter" }, Ct)).StatusCode);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 15; i++)
        {
            statuses.Add((await onB.PostAsJsonAsync("/api/gateway/chat", new { message = $"m{i}", session_id = "s" }, Ct)).StatusCode);
        }

        Assert.Equal(13, statuses.Count(s => s == HttpStatusCode.OK)); // Starter's 15 an hour, 2 of them spent
        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }

    /// <summary>Waits for <paramref name="condition"/> (at most 10 s) and reports how long it took.</summary>
    private async Task Eventually(string what, Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{what}: not seen on the other node after 10 s");
            await Task.Delay(20, Ct);
        }

        output.WriteLine($"{what}: seen on the other node after {clock.ElapsedMilliseconds} ms");
    }
}
