using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>The Gateway chat endpoint, run once per storage provider.</summary>
public abstract class GatewayApiTests(Provider provider) : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(provider);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static async Task<HttpResponseMessage> ChatAsync(HttpClient client, object body) =>
        await client.PostAsJsonAsync("/api/gateway/chat", body, TestContext.Current.CancellationToken);

    [Fact]
    public async Task Chat_WithoutSessionId_AnswersInNewServerMadeThread()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 250);
        using var client = workspace.Client();

        var response = await ChatAsync(client, new { message = "Hello! What can you help me with?" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("Echo: Hello! What can you help me with?", body.GetProperty("reply").GetString());
        Assert.StartsWith("sess_", body.GetProperty("session_id").GetString());
        Assert.Equal(1, body.GetProperty("credits_used").GetInt64());
        Assert.Equal(249, body.GetProperty("credits_remaining").GetInt64());
        Assert.Equal(["credits_remaining", "credits_used", "reply", "session_id"], body.EnumerateObject().Select(p => p.Name).Order());

        var second = await ChatAsync(client, new { message = "again" });
        var secondBody = await second.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.NotEqual(body.GetProperty("session_id").GetString(), secondBody.GetProperty("session_id").GetString());
    }

    [Fact]
    public async Task Chat_WithSessionId_ContinuesThreadAndStoresEveryTurnInOrder()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        for (var i = 1; i <= 3; i++)
        {
            var response = await ChatAsync(client, new { message = $"turn {i}", session_id = "user-abc-session-1" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("user-abc-session-1", (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("session_id").GetString());
        }

        var history = await workspace.HistoryAsync("user-abc-session-1");
        Assert.Equal([1L, 2, 3, 4, 5, 6], history.Select(m => m.Seq));
        Assert.Equal(
            [("user", "turn 1"), ("assistant", "Echo: turn 1"), ("user", "turn 2"), ("assistant", "Echo: turn 2"), ("user", "turn 3"), ("assistant", "Echo: turn 3")],
            history.Select(m => (m.Role, m.Content)));
        Assert.Equal(247, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Chat_SameSessionIdInAnotherWorkspace_IsSeparateThread()
    {
        var first = await _app.CreateWorkspaceAsync();
        var second = await _app.CreateWorkspaceAsync();
        using var firstClient = first.Client();
        using var secondClient = second.Client();

        await ChatAsync(firstClient, new { message = "mine", session_id = "shared" });
        await ChatAsync(secondClient, new { message = "theirs", session_id = "shared" });

        Assert.Equal(["mine", "Echo: mine"], (await first.HistoryAsync("shared")).Select(m => m.Content));
        Assert.Equal(["theirs", "Echo: theirs"], (await second.HistoryAsync("shared")).Select(m => m.Content));
    }

    public static TheoryData<string, string> BadBodies => new()
    {
        { "not json", "not valid JSON" },
        { "", "empty" },
        { "[\"message\"]", "JSON object" },
        { "{}", "'message' is required" },
        { "{\"message\": null}", "'message' is required" },
        { "{\"message\": \"\"}", "'message' must not be empty" },
        { "{\"message\": \"   \"}", "'message' must not be empty" },
        { "{\"message\": 42}", "'message' must be a string" },
        { "{\"message\": [\"hi\"]}", "'message' must be a string" },
        { $"{{\"message\": \"{new string('x', 4001)}\"}}", "'message' must be at most 4000 characters" },
        { "{\"message\": \"hi\", \"session_id\": \"\"}", "'session_id' must not be empty" },
        { $"{{\"message\": \"hi\", \"session_id\": \"{new string('s', 129)}\"}}", "'session_id' must be at most 128 characters" },
        { "{\"message\": \"hi\", \"session_id\": 7}", "'session_id' must be a string" },
        { "{\"message\": \"hi\", \"session_id\": \"a\\u0000b\"}", "control characters" },
        { "{\"message\": \"hi\"", "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Chat_BadBody_Returns400NamingTheProblem_AndChargesNothing(string body, string expected)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();

        var response = await client.PostAsync("/api/gateway/chat", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await ErrorOf(response));
        Assert.Equal(10, await workspace.CreditsAsync());
    }

    /// <summary>Bodies whose bytes are not Unicode text where a string is, or that name a field twice: each was a 500 or a silent pick before.</summary>
    public static TheoryData<byte[], string> HostileBodies => new()
    {
        { Bytes("{\"message\": \"hi ", [0xFF], "\"}"), "'message' is not valid Unicode text" }, // a byte no UTF-8 has
        { Bytes("{\"message\": \"hi ", [0xC0, 0xAF], "\"}"), "'message' is not valid Unicode text" }, // an overlong '/'
        { Bytes("{\"message\": \"hi ", [0xED, 0xA0, 0x80], "\"}"), "'message' is not valid Unicode text" }, // a surrogate encoded raw
        { Bytes("{\"message\": \"hi \\ud800\"}"), "'message' is not valid Unicode text" }, // an escaped lone surrogate
        { Bytes("{\"message\": \"hi \\udc00\\ud800\"}"), "'message' is not valid Unicode text" }, // a pair in the wrong order
        { Bytes("{\"message\": \"hi\", \"session_id\": \"\\ud83d\"}"), "'session_id' is not valid Unicode text" },
        { Bytes("{\"mess", [0xFF], "age\": \"hi\"}"), "a field name is not valid Unicode text" },
        { Bytes("{\"message\": \"hi\", \"message\": \"there\"}"), "a property appears twice" },
    };

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task Chat_HostileBytes_Returns400NamingTheProblem_ChargesNothing_AndKeepsServing(byte[] body, string expected)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        var response = await client.PostAsync("/api/gateway/chat", content, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await ErrorOf(response));
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "still here" })).StatusCode);
    }

    private static byte[] Bytes(string text, byte[]? middle = null, string tail = "") =>
        [.. Encoding.UTF8.GetBytes(text), .. middle ?? [], .. Encoding.UTF8.GetBytes(tail)];

    [Fact]
    public async Task Chat_LongestAllowedMessageAndSessionId_AreAccepted()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        // 4000 characters counted as characters, not UTF-16 units: an emoji is one.
        var message = new string('x', 3999) + "😀";
        var response = await ChatAsync(client, new { message, session_id = new string('s', 128) });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(null, "missing API key")]
    [InlineData("Basic dXNlcjpwYXNz", "missing API key")]
    [InlineData("Bearer not-a-key", "malformed API key")]
    [InlineData("Bearer lulu_sk_short", "malformed API key")]
    [InlineData("Bearer lulu_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "invalid API key")]
    public async Task Chat_MissingMalformedOrUnknownKey_Returns401(string? authorization, string expected)
    {
        using var client = _app.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gateway/chat") { Content = JsonContent.Create(new { message = "hi" }) };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains(expected, await ErrorOf(response));
    }

    [Fact]
    public async Task Chat_RevokedKey_Returns401AtOnce()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "before" })).StatusCode);

        using var admin = _app.Admin();
        var revoke = await admin.DeleteAsync($"/api/admin/workspaces/{workspace.Id}/keys/{workspace.KeyId}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);

        var after = await ChatAsync(client, new { message = "after" });
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Contains("invalid API key", await ErrorOf(after));
    }

    [Fact]
    public async Task Chat_KeyWithoutChatScope_Returns403()
    {
        var workspace = await _app.CreateWorkspaceAsync(scopes: ["bots"]);
        using var client = workspace.Client();

        var response = await ChatAsync(client, new { message = "hi" });

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("'chat' scope", await ErrorOf(response));
    }

    [Fact]
    public async Task Chat_CreditsExhausted_Returns402_AndTopUpHelps()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 1);
        using var client = workspace.Client();
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "one" })).StatusCode);

        var refused = await ChatAsync(client, new { message = "two", session_id = "s" });
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        Assert.Contains("credit", await ErrorOf(refused));
        Assert.Empty(await workspace.HistoryAsync("s"));

        using var admin = _app.Admin();
        var topUp = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/credits", new { amount = 100 }, TestContext.Current.CancellationToken);
        Assert.Equal(100, (await topUp.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("credits_remaining").GetInt64());
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "three" })).StatusCode);
    }

    [Fact]
    public async Task Chat_RollingHourFull_Returns429WithRetryAfter_AndPlanUpgradeRaisesTheCap()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter");
        using var client = workspace.Client();
        for (var i = 0; i < 15; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = $"m{i}" })).StatusCode);
        }

        var refused = await ChatAsync(client, new { message = "sixteenth" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var retryAfter = long.Parse(refused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 3500, 3600); // the first turn leaves the window in about an hour
        Assert.Contains("limit", await ErrorOf(refused));
        Assert.Equal(250 - 15, await workspace.CreditsAsync());

        using var admin = _app.Admin();
        var patch = await admin.PatchAsJsonAsync($"/api/admin/workspaces/{workspace.Id}", new { plan = "pro" }, TestContext.Current.CancellationToken);
        Assert.Equal("pro", (await patch.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("plan").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, new { message = "on pro" })).StatusCode);
    }

    [Fact]
    public async Task Chat_ModelProviderUnavailable_Returns503_AndChargesNothing()
    {
        await using var app = await LuluClawApp.StartAsync(provider, new Dictionary<string, string?> { ["Llm:Provider"] = "mistral" });
        var workspace = await app.CreateWorkspaceAsync(credits: 5);
        using var client = workspace.Client();

        var response = await ChatAsync(client, new { message = "hi", session_id = "s" });

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("model provider 'mistral' (Llm:Provider) is not available", await ErrorOf(response));
        Assert.Equal(5, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task Chat_ModelTimesOutAfterAdmission_Returns503_RefundsCreditsAndWindow()
    {
        // A model far slower than the deadline: the admission is made, then the model call fails.
        await using var app = await LuluClawApp.StartAsync(provider, new Dictionary<string, string?>
        {
            ["Llm:TimeoutSeconds"] = "0.05",
            ["Llm:Echo:DelayMilliseconds"] = "30000",
        });
        var workspace = await app.CreateWorkspaceAsync(plan: "starter", credits: 5);
        using var client = workspace.Client();

        for (var i = 0; i < 16; i++)
        {
            var response = await ChatAsync(client, new { message = "hi", session_id = "s" });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode); // never 429: refunded turns leave the window
            Assert.Contains("did not answer", await ErrorOf(response));
        }

        Assert.Equal(5, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task Chat_TwoHundredConcurrentOnStarter_Exactly15Admitted()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter", credits: 1000);
        using var client = workspace.Client();

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => ChatAsync(client, new { message = $"m{i}" })));

        Assert.Equal(15, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(185, responses.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));
        Assert.Equal(1000 - 15, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Chat_HundredConcurrentWithFiveCredits_ExactlyFiveAdmitted_BalanceZero()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter", credits: 5);
        using var client = workspace.Client();

        var responses = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => ChatAsync(client, new { message = $"m{i}", session_id = $"s{i % 7}" })));

        Assert.Equal(5, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(95, responses.Count(r => r.StatusCode == HttpStatusCode.PaymentRequired));
        Assert.Equal(0, await workspace.CreditsAsync());
        var stored = 0;
        for (var s = 0; s < 7; s++)
        {
            stored += (await workspace.HistoryAsync($"s{s}")).Count;
        }

        Assert.Equal(10, stored); // five turns, two messages each, nothing for the refused ones
    }
}

public sealed class SqliteGatewayApiTests() : GatewayApiTests(Provider.Sqlite);

public sealed class PostgresGatewayApiTests() : GatewayApiTests(Provider.Postgres);
