using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests.Apis;

public sealed class AdminApiTests : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(Provider.Sqlite);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Routes_WithoutConfiguredToken_Are404()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Admin:Token"] = "" });
        using var client = app.Admin();

        var response = await client.PostAsJsonAsync("/api/admin/workspaces", new { name = "x", plan = "starter" }, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-token")]
    [InlineData("Bearer test-admin-token-but-longer")]
    public async Task Routes_WithMissingOrWrongToken_Are401(string? authorization)
    {
        using var client = _app.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/admin/workspaces") { Content = JsonContent.Create(new { name = "x", plan = "starter" }) };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("admin token", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task CreateWorkspace_Returns201WithDocumentedFields()
    {
        using var admin = _app.Admin();

        var response = await admin.PostAsJsonAsync("/api/admin/workspaces", new { name = "Acme", plan = "Premium", credits = 250 }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(Guid.TryParse(body.GetProperty("id").GetString(), out _));
        Assert.Equal("Acme", body.GetProperty("name").GetString());
        Assert.Equal("premium", body.GetProperty("plan").GetString());
        Assert.Equal(250, body.GetProperty("credits_remaining").GetInt64());
        Assert.StartsWith("bot_", body.GetProperty("primary_bot_id").GetString());
        Assert.Equal($"/api/admin/workspaces/{body.GetProperty("id").GetString()}", response.Headers.Location?.ToString());
    }

    [Theory]
    [InlineData("{\"plan\": \"starter\"}", "'name' is required")]
    [InlineData("{\"name\": \"x\"}", "'plan' is required")]
    [InlineData("{\"name\": \"x\", \"plan\": \"gold\"}", "'plan' must be one of 'byok', 'premium', 'pro', 'starter'")]
    [InlineData("{\"name\": \"x\", \"plan\": \"starter\", \"credits\": -1}", "'credits' must be between 0")]
    [InlineData("{\"name\": \"x\", \"plan\": \"starter\", \"credits\": 2.5}", "'credits' must be a whole number")]
    [InlineData("{\"name\": \"x\", \"plan\": \"starter\", \"credits\": \"5\"}", "'credits' must be a whole number")]
    [InlineData("nope", "not valid JSON")]
    public async Task CreateWorkspace_BadBody_Returns400(string body, string expected)
    {
        using var admin = _app.Admin();

        var response = await admin.PostAsync("/api/admin/workspaces", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Workspace_PlanCreditsAndKeys_RoundTrip()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter", credits: 10);
        using var admin = _app.Admin();

        var patched = await admin.PatchAsJsonAsync($"/api/admin/workspaces/{workspace.Id}", new { plan = "byok" }, Ct);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("byok", (await patched.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("plan").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PatchAsJsonAsync($"/api/admin/workspaces/{workspace.Id}", new { plan = "gold" }, Ct)).StatusCode);

        var credits = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/credits", new { amount = 5 }, Ct);
        Assert.Equal(15, (await credits.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("credits_remaining").GetInt64());
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/credits", new { amount = 0 }, Ct)).StatusCode);

        var key = await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/keys", new { scopes = new[] { "chat", "sessions" } }, Ct);
        Assert.Equal(HttpStatusCode.Created, key.StatusCode);
        var keyBody = await key.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var plaintext = keyBody.GetProperty("key").GetString()!;
        Assert.Matches("^lulu_sk_[A-Za-z0-9_-]{43}$", plaintext);
        Assert.Equal(plaintext[..12], keyBody.GetProperty("prefix").GetString());
        Assert.Equal(["chat", "sessions"], keyBody.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        var defaults = await admin.PostAsync($"/api/admin/workspaces/{workspace.Id}/keys", null, Ct);
        Assert.Equal(["chat", "bots", "knowledge"], (await defaults.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync($"/api/admin/workspaces/{workspace.Id}/keys", new { scopes = new[] { "root" } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/admin/workspaces/{workspace.Id}/keys/key_unknown", Ct)).StatusCode);
    }

    [Theory]
    [InlineData("GET", "")]
    [InlineData("PATCH", "")]
    [InlineData("POST", "/credits")]
    [InlineData("POST", "/keys")]
    public async Task UnknownWorkspace_Is404(string method, string suffix)
    {
        using var admin = _app.Admin();
        foreach (var id in new[] { Guid.NewGuid().ToString(), "not-a-guid" })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), $"/api/admin/workspaces/{id}{suffix}")
            {
                Content = JsonContent.Create(new { plan = "pro", amount = 5 }),
            };
            var response = await admin.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    [Fact]
    public async Task StoredKey_IsOnlyItsHash()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var file = _app.SqliteFile!;

        // Read the raw bytes of the database and its write-ahead log, as an attacker with the file would.
        var raw = string.Concat(new[] { file, file + "-wal" }.Where(File.Exists).Select(f =>
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream, Encoding.Latin1);
            return reader.ReadToEnd();
        }));
        Assert.DoesNotContain(workspace.Key, raw);
        Assert.Contains(ApiKeys.Hash(workspace.Key), raw);
    }
}
