using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>The Developer API on the echo model: bots and their lifecycle, chat by bot, scopes, tenancy.</summary>
public sealed class DeveloperApiTests : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(Provider.Sqlite);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CreateBot_Returns201Starting_ThenRunsWithItsConfiguration()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var created = await client.PostAsJsonAsync("/api/v1/bots",
            new { name = "Support Bot", system_prompt = "You are a helpful support agent.", model = "gpt-4o-mini", channels = new[] { "telegram", "Slack" } }, Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var bot = await Json(created);
        var id = bot.GetProperty("id").GetString()!;
        Assert.StartsWith("bot_", id);
        Assert.Equal($"/api/v1/bots/{id}", created.Headers.Location?.ToString());
        Assert.Equal("starting", bot.GetProperty("status").GetString());
        Assert.Equal("Support Bot", bot.GetProperty("name").GetString());
        Assert.Equal("You are a helpful support agent.", bot.GetProperty("system_prompt").GetString());
        Assert.Equal(["telegram", "slack"], bot.GetProperty("channels").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(0, bot.GetProperty("restart_count").GetInt64());
        Assert.Equal(JsonValueKind.Null, bot.GetProperty("last_restarted_at").ValueKind);
        Assert.True(bot.TryGetProperty("created_at", out _) && bot.TryGetProperty("updated_at", out _));

        var fetched = await Json(await client.GetAsync($"/api/v1/bots/{id}", Ct));
        Assert.Equal("running", fetched.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, fetched.GetProperty("status_reason").ValueKind);

        var list = await Json(await client.GetAsync("/api/v1/bots", Ct));
        Assert.Equal(2, list.GetArrayLength()); // the workspace's primary bot, then the new one
        Assert.Equal(id, list[1].GetProperty("id").GetString());
        Assert.All(list.EnumerateArray(), b => Assert.Equal("running", b.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task CreateBot_WithoutModel_GetsTheDocumentedDefault()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var bot = await Json(await client.PostAsJsonAsync("/api/v1/bots", new { name = "B", system_prompt = "p" }, Ct));

        Assert.Equal("gpt-4o-mini", bot.GetProperty("model").GetString());
        Assert.Equal(0, bot.GetProperty("channels").GetArrayLength());
    }

    [Theory]
    [InlineData("""{"system_prompt": "p"}""", "'name' is required")]
    [InlineData("""{"name": "b"}""", "'system_prompt' is required")]
    [InlineData("""{"name": "", "system_prompt": "p"}""", "'name' must not be empty")]
    [InlineData("""{"name": "b", "system_prompt": "p", "channels": ["icq"]}""", "'channels' may contain 'telegram', 'discord', 'slack' (got 'icq')")]
    [InlineData("""{"name": "b", "system_prompt": "p", "channels": "telegram"}""", "'channels' must be an array of strings")]
    [InlineData("""{"name": "b", "system_prompt": "p", "model": "gpt 4"}""", "'model' may contain only letters, digits and . _ : / -")]
    [InlineData("""{"name": "b", "systemPrompt": "p"}""", "unknown field 'systemPrompt'; expected 'name', 'system_prompt', 'model', 'channels', 'knowledge', 'knowledge_threshold', 'knowledge_fallback'")]
    [InlineData("""[1]""", "request body must be a JSON object")]
    [InlineData("""{"name": """, "request body is not valid JSON (line 1, byte 10)")]
    public async Task CreateBot_BadInput_Is400NamingTheProblem(string body, string error)
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var response = await client.PostAsync("/api/v1/bots", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(error, await ErrorOf(response));
        Assert.Equal(1, (await Json(await client.GetAsync("/api/v1/bots", Ct))).GetArrayLength());
    }

    [Fact]
    public async Task PatchBot_ChangesOnlyGivenFields_Reloads_AndRejectsEmptyOrUnknown()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateBotAsync(client, "Before", "old prompt");

        var patched = await client.PatchAsJsonAsync($"/api/v1/bots/{id}", new { system_prompt = "new prompt" }, Ct);

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var bot = await Json(patched);
        Assert.Equal("reloading", bot.GetProperty("status").GetString());
        Assert.Equal("new prompt", bot.GetProperty("system_prompt").GetString());
        Assert.Equal("Before", bot.GetProperty("name").GetString());
        Assert.Equal("running", (await Json(await client.GetAsync($"/api/v1/bots/{id}", Ct))).GetProperty("status").GetString());

        var empty = await client.PatchAsJsonAsync($"/api/v1/bots/{id}", new { }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.StartsWith("nothing to change", await ErrorOf(empty));
        var unknown = await client.PatchAsJsonAsync($"/api/v1/bots/{id}", new { prompt = "x" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.StartsWith("unknown field 'prompt'", await ErrorOf(unknown));
    }

    [Fact]
    public async Task RestartBot_CountsRestarts_AndTheThreadSurvives()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateBotAsync(client, "B", "p");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "one", session_id = "s1", bot_id = id })).StatusCode);

        var restarted = await Json(await client.PostAsync($"/api/v1/bots/{id}/restart", null, Ct));
        Assert.Equal("restarting", restarted.GetProperty("status").GetString());
        Assert.Equal(1, restarted.GetProperty("restart_count").GetInt64());
        Assert.NotEqual(JsonValueKind.Null, restarted.GetProperty("last_restarted_at").ValueKind);
        await client.PostAsync($"/api/v1/bots/{id}/restart", null, Ct);

        var after = await Json(await client.GetAsync($"/api/v1/bots/{id}", Ct));
        Assert.Equal("running", after.GetProperty("status").GetString());
        Assert.Equal(2, after.GetProperty("restart_count").GetInt64());
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "two", session_id = "s1" })).StatusCode);
        Assert.Equal(["one", "Echo: one", "two", "Echo: two"], (await workspace.HistoryAsync("s1")).Select(m => m.Content));
    }

    [Fact]
    public async Task DeleteBot_ThenEveryCallAboutItIs404_AndChatToItIs404()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateBotAsync(client, "B", "p");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "hi", session_id = "s1", bot_id = id })).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/bots/{id}", Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.PatchAsJsonAsync($"/api/v1/bots/{id}", new { name = "x" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsync($"/api/v1/bots/{id}/restart", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        var named = await ChatAsync(client, new { message = "hi", bot_id = id });
        Assert.Equal(HttpStatusCode.NotFound, named.StatusCode);
        Assert.Equal($"bot '{id}' not found", await ErrorOf(named));
        var inThread = await ChatAsync(client, new { message = "hi again", session_id = "s1" });
        Assert.Equal(HttpStatusCode.NotFound, inThread.StatusCode);
        Assert.Contains("no longer exists", await ErrorOf(inThread));
        Assert.Equal(1, (await Json(await client.GetAsync("/api/v1/bots", Ct))).GetArrayLength());
        Assert.Equal(249, await workspace.CreditsAsync()); // the refused turns cost nothing
    }

    [Fact]
    public async Task DeletePrimaryBot_NextOldestBotAnswersChatWithoutBotId()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var primary = (await Json(await client.GetAsync("/api/v1/bots", Ct)))[0].GetProperty("id").GetString()!;
        var second = await CreateBotAsync(client, "Second", "p");

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/bots/{primary}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "hi", session_id = "s2" })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await ChatAsync(client, new { message = "hi", session_id = "s2", bot_id = primary })).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/bots/{second}", Ct)).StatusCode);
        var none = await ChatAsync(client, new { message = "hi" });
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        Assert.Contains("no bot", await ErrorOf(none));
    }

    [Fact]
    public async Task Chat_SessionStaysWithItsBot_AnotherBotIs409()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var first = await CreateBotAsync(client, "First", "p");
        var second = await CreateBotAsync(client, "Second", "p");

        var ok = await ChatAsync(client, new { message = "hi", session_id = "thread", bot_id = first });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var body = await Json(ok);
        Assert.Equal("thread", body.GetProperty("session_id").GetString());
        Assert.Equal(["credits_remaining", "credits_used", "reply", "session_id"], body.EnumerateObject().Select(p => p.Name).Order());

        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "same bot", session_id = "thread", bot_id = first })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "no bot named", session_id = "thread" })).StatusCode);
        var conflict = await ChatAsync(client, new { message = "other bot", session_id = "thread", bot_id = second });

        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal($"session 'thread' belongs to bot '{first}'; start a new session to talk to bot '{second}'", await ErrorOf(conflict));
        Assert.Equal(6, (await workspace.HistoryAsync("thread")).Count);
        Assert.Equal(247, await workspace.CreditsAsync());
    }

    [Theory]
    [InlineData("""{"session_id": "s"}""", "'message' is required")]
    [InlineData("""{"message": "hi", "bot_id": 7}""", "'bot_id' must be a string")]
    [InlineData("""{"message": "hi", "bot_id": ""}""", "'bot_id' must not be empty")]
    public async Task Chat_BadInput_Is400NamingTheField(string body, string error)
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var response = await client.PostAsync("/api/v1/chat", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(error, await ErrorOf(response));
    }

    [Fact]
    public async Task BotsOfAnotherWorkspace_AreNotFound_ForEveryRouteAndForChat()
    {
        var owner = await _app.CreateWorkspaceAsync();
        var stranger = await _app.CreateWorkspaceAsync();
        using var ownerClient = owner.Client();
        using var strangerClient = stranger.Client();
        var id = await CreateBotAsync(ownerClient, "Private", "p");

        Assert.Equal(HttpStatusCode.NotFound, (await strangerClient.GetAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await strangerClient.PatchAsJsonAsync($"/api/v1/bots/{id}", new { name = "mine" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await strangerClient.PostAsync($"/api/v1/bots/{id}/restart", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await strangerClient.DeleteAsync($"/api/v1/bots/{id}", Ct)).StatusCode);
        var chat = await ChatAsync(strangerClient, new { message = "hi", bot_id = id });
        Assert.Equal(HttpStatusCode.NotFound, chat.StatusCode);
        Assert.Equal($"bot '{id}' not found", await ErrorOf(chat));
        Assert.DoesNotContain(id, await (await strangerClient.GetAsync("/api/v1/bots", Ct)).Content.ReadAsStringAsync(Ct));

        var untouched = await Json(await ownerClient.GetAsync($"/api/v1/bots/{id}", Ct));
        Assert.Equal("Private", untouched.GetProperty("name").GetString());
        Assert.Equal(0, untouched.GetProperty("restart_count").GetInt64());
        Assert.Equal(250, await stranger.CreditsAsync());
    }

    [Fact]
    public async Task Scopes_BotsNeedsBots_ChatNeedsChat_DefaultKeyHasBoth()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var chatOnly = await workspace.WithKeyAsync(scopes: ["chat"]);
        var botsOnly = await workspace.WithKeyAsync(scopes: ["bots"]);
        using var both = workspace.Client();
        using var chatClient = chatOnly.Client();
        using var botsClient = botsOnly.Client();

        var forbidden = await chatClient.GetAsync("/api/v1/bots", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Equal("this API key lacks the 'bots' scope", await ErrorOf(forbidden));
        Assert.Equal(HttpStatusCode.Forbidden, (await chatClient.PostAsJsonAsync("/api/v1/bots", new { name = "b", system_prompt = "p" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await chatClient.PutAsJsonAsync("/api/v1/provider-keys/openai", new { api_key = "sk-0123456789abcdef" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await ChatAsync(botsClient, new { message = "hi" })).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(chatClient, new { message = "hi" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await botsClient.GetAsync("/api/v1/bots", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await both.GetAsync("/api/v1/bots", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(both, new { message = "hi" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _app.CreateClient().GetAsync("/api/v1/bots", Ct)).StatusCode);
    }

    [Fact]
    public async Task BotWhoseProviderIsMissing_IsInError_WithTheReason_AndChatIs503Uncharged()
    {
        // A platform with only OpenAI configured: a claude-* bot has no provider.
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = "http://127.0.0.1:9/v1" });
        var workspace = await app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateBotAsync(client, "Claude", "p", "claude-3-5-haiku-latest");

        var bot = await Json(await client.GetAsync($"/api/v1/bots/{id}", Ct));
        Assert.Equal("error", bot.GetProperty("status").GetString());
        Assert.Contains("Llm:Anthropic:ApiKey", bot.GetProperty("status_reason").GetString());

        var chat = await ChatAsync(client, new { message = "hi", bot_id = id });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, chat.StatusCode);
        Assert.Contains("needs an Anthropic key", await ErrorOf(chat));
        Assert.Equal(250, await workspace.CreditsAsync());

        // Fixing the configuration of the bot heals it.
        var fixedBot = await client.PatchAsJsonAsync($"/api/v1/bots/{id}", new { model = "echo" }, Ct);
        Assert.Equal(HttpStatusCode.OK, fixedBot.StatusCode);
        Assert.Equal("running", (await Json(await client.GetAsync($"/api/v1/bots/{id}", Ct))).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "hi", bot_id = id })).StatusCode);
    }

    [Fact]
    public async Task AdminKeyPlan_IsValidated_AndShown()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var admin = _app.Admin();

        var priority = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/keys", new { plan = "Priority" }, Ct);
        var unknown = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/keys", new { plan = "gold" }, Ct);
        var defaulted = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/keys", new { }, Ct);

        Assert.Equal("priority", (await Json(priority)).GetProperty("plan").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal("'plan' must be one of 'byok', 'priority', 'standard' (got 'gold')", await ErrorOf(unknown));
        Assert.Equal("standard", (await Json(defaulted)).GetProperty("plan").GetString());
    }

    [Fact]
    public async Task ByokKeyPlan_MinuteThenHourWindow_RetryAfterOfTheWindowThatRefused()
    {
        var clock = new ManualTimeProvider();
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, services: s => s.Replace(ServiceDescriptor.Singleton<TimeProvider>(clock)));
        var workspace = await app.CreateWorkspaceAsync(plan: "byok", credits: 1000, keyPlan: "byok");
        using var client = workspace.Client();

        var first = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => ChatAsync(client, new { message = $"m{i}" })));
        Assert.Equal(10, first.Count(r => r.StatusCode == HttpStatusCode.OK));
        var minute = first.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.Equal("60", minute.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("per-key limit of 10 requests per minute (plan 'byok') reached", await ErrorOf(minute));

        clock.Advance(TimeSpan.FromSeconds(61));
        var second = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => ChatAsync(client, new { message = $"n{i}" })));
        Assert.Equal(5, second.Count(r => r.StatusCode == HttpStatusCode.OK));
        var hour = second.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.Equal(TimeSpan.FromSeconds(3600 - 61), hour.Headers.RetryAfter?.Delta);
        Assert.Equal("per-key limit of 15 requests per hour (plan 'byok') reached", await ErrorOf(hour));
        Assert.Equal(1000 - 15, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task OpenApi_Describes_EveryPublicRoute_WithSchemas_AndNoAdminRoutes()
    {
        using var client = _app.CreateClient();

        var response = await client.GetAsync("/openapi/v1.json", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = await Json(response);
        Assert.StartsWith("3.1", document.GetProperty("openapi").GetString());
        var paths = document.GetProperty("paths");
        (string Path, string Method)[] routes =
        [
            ("/api/gateway/chat", "post"), ("/api/v1/chat", "post"), ("/api/v1/bots", "get"), ("/api/v1/bots", "post"),
            ("/api/v1/bots/{botId}", "get"), ("/api/v1/bots/{botId}", "patch"), ("/api/v1/bots/{botId}", "delete"),
            ("/api/v1/bots/{botId}/restart", "post"), ("/api/v1/provider-keys", "get"), ("/api/v1/provider-keys/{provider}", "put"),
            ("/api/v1/provider-keys/{provider}", "delete"),
        ];
        foreach (var (path, method) in routes)
        {
            Assert.True(paths.TryGetProperty(path, out var item) && item.TryGetProperty(method, out _), $"{method} {path} is missing");
        }

        Assert.DoesNotContain(paths.EnumerateObject(), p => p.Name.StartsWith("/api/admin", StringComparison.Ordinal));
        var chat = paths.GetProperty("/api/v1/chat").GetProperty("post");
        var ok = Resolve(document, chat.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema"));
        var requestSchema = Resolve(document, chat.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema"));
        Assert.Equal(["bot_id", "message", "session_id", "stream"], requestSchema.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(["message"], requestSchema.GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("integer", ok.GetProperty("properties").GetProperty("credits_used").GetProperty("type").GetString());
        Assert.Equal(["credits_remaining", "credits_used", "reply", "session_id", "sources"], ok.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.True(chat.GetProperty("responses").TryGetProperty("429", out _));
        Assert.True(chat.GetProperty("responses").GetProperty("200").GetProperty("content").TryGetProperty("text/event-stream", out _));
        var bot = Resolve(document, paths.GetProperty("/api/v1/bots/{botId}").GetProperty("get").GetProperty("responses").GetProperty("200")
            .GetProperty("content").GetProperty("application/json").GetProperty("schema"));
        Assert.Contains("restart_count", bot.GetProperty("properties").EnumerateObject().Select(p => p.Name));
        Assert.True(document.GetProperty("components").GetProperty("securitySchemes").TryGetProperty("bearer", out _));
    }

    private static JsonElement Resolve(JsonElement document, JsonElement schema)
    {
        if (!schema.TryGetProperty("$ref", out var reference))
        {
            return schema;
        }

        var name = reference.GetString()!.Split('/')[^1];
        return document.GetProperty("components").GetProperty("schemas").GetProperty(name);
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient client, object body) => client.PostAsJsonAsync("/api/v1/chat", body, Ct);
}
