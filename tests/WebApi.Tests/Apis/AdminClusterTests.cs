using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>What operators see of the Orleans cluster: <c>/api/admin/cluster</c>, a session's silo, the Orleans Dashboard.</summary>
public sealed class AdminClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Cluster_ListsTheSiloAndCountsSessionActivations()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite);
        var workspace = await app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        foreach (var session in new[] { "a", "b", "c" })
        {
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/gateway/chat", new { message = "hi", session_id = session }, Ct)).StatusCode);
        }

        using var admin = app.Admin();
        var cluster = await admin.GetFromJsonAsync<JsonElement>("/api/admin/cluster", Ct);

        var silo = Assert.Single(cluster.GetProperty("silos").EnumerateArray());
        Assert.Equal("active", silo.GetProperty("status").GetString());
        Assert.StartsWith("127.0.0.1:", silo.GetProperty("address").GetString());
        Assert.True(silo.GetProperty("started_at").GetDateTimeOffset() <= DateTimeOffset.UtcNow);
        var sessions = cluster.GetProperty("activations").EnumerateArray().Single(a => a.GetProperty("grain_type").GetString()!.Contains("session", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(3, sessions.GetProperty("count").GetInt32());
        Assert.Equal(3, sessions.GetProperty("by_silo").GetProperty(silo.GetProperty("address").GetString()!).GetInt32());

        // A session's history names the silo its activation lives on.
        var history = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspace.Id}/sessions/a/messages", Ct);
        Assert.Equal(silo.GetProperty("address").GetString(), history.GetProperty("silo").GetString());
    }

    [Fact]
    public async Task Cluster_WithoutTheAdminToken_Is401()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite);
        using var anonymous = app.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/admin/cluster", Ct)).StatusCode);
    }

    [Fact]
    public async Task Dashboard_IsOffUnlessConfigured_AndThenOnlyBehindTheAdminToken()
    {
        await using (var off = await LuluClawApp.StartAsync(Provider.Sqlite))
        {
            using var admin = off.Admin();
            Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/admin/dashboard/", Ct)).StatusCode);
        }

        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Admin:Dashboard"] = "true" });
        using var anonymous = app.CreateClient();
        foreach (var path in new[] { "/api/admin/dashboard/", "/api/admin/dashboard/index.min.js", "/api/admin/dashboard/version" })
        {
            var refused = await anonymous.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Basic", refused.Headers.WwwAuthenticate.Single().Scheme); // a browser asks for the token
        }

        using var wrong = app.CreateClient();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:not-the-token")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/admin/dashboard/", Ct)).StatusCode);

        using var browser = app.CreateClient();
        browser.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"ops:{LuluClawApp.AdminToken}")));
        var page = await browser.GetAsync("/api/admin/dashboard/", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<html", await page.Content.ReadAsStringAsync(Ct), StringComparison.OrdinalIgnoreCase);

        using var admin2 = app.Admin();
        Assert.Equal(HttpStatusCode.OK, (await admin2.GetAsync("/api/admin/dashboard/version", Ct)).StatusCode);
    }
}
