using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary><c>GET /api/admin/workspaces</c>, run once per storage provider.</summary>
public abstract class AdminWorkspaceListTests(Provider provider) : IAsyncLifetime
{
    private readonly ManualTimeProvider _clock = new();
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await LuluClawApp.StartAsync(provider, services: s => s.Replace(ServiceDescriptor.Singleton<TimeProvider>(_clock)));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task List_NewestFirst_EachItemAsTheWorkspacesOwnRouteShowsIt()
    {
        using var admin = _app.Admin();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await _app.CreateWorkspaceAsync()).Id);
            _clock.Advance(TimeSpan.FromSeconds(1)); // created a second apart, so "newest" is not decided by the id
        }

        var list = await admin.GetFromJsonAsync<JsonElement>("/api/admin/workspaces", Ct);

        Assert.Equal(["limit", "page", "total", "workspaces"], list.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal((1, 50, 3), (list.GetProperty("page").GetInt32(), list.GetProperty("limit").GetInt32(), list.GetProperty("total").GetInt64()));
        var items = list.GetProperty("workspaces").EnumerateArray().ToArray();
        Assert.Equal(Enumerable.Reverse(ids), items.Select(w => w.GetProperty("id").GetString()));
        foreach (var item in items)
        {
            var one = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{item.GetProperty("id").GetString()}", Ct);
            Assert.True(JsonElement.DeepEquals(one, item), $"listed {item} but GET by id shows {one}");
        }
    }

    [Fact]
    public async Task List_Pages_ByPageAndLimit_PastTheLastIsEmpty()
    {
        using var admin = _app.Admin();
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await _app.CreateWorkspaceAsync()).Id);
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        ids.Reverse();
        async Task<string?[]> PageAsync(string query)
        {
            var page = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces?{query}", Ct);
            Assert.Equal(5, page.GetProperty("total").GetInt64());
            return [.. page.GetProperty("workspaces").EnumerateArray().Select(w => w.GetProperty("id").GetString())];
        }

        Assert.Equal(ids[..2], await PageAsync("limit=2"));
        Assert.Equal(ids[2..4], await PageAsync("page=2&limit=2"));
        Assert.Equal(ids[4..], await PageAsync("page=3&limit=2"));
        Assert.Empty(await PageAsync("page=4&limit=2"));
        Assert.Empty(await PageAsync($"page={int.MaxValue}&limit=200"));
    }

    [Theory]
    [InlineData("page=0", "'page'")]
    [InlineData("page=-1", "'page'")]
    [InlineData("page=two", "'page'")]
    [InlineData("page=1.5", "'page'")]
    [InlineData("page=", "'page'")]
    [InlineData("page=1&page=2", "'page'")]
    [InlineData("limit=0", "'limit' must be a whole number from 1 to 200")]
    [InlineData("limit=201", "'limit'")]
    [InlineData("limit=%2B5", "'limit'")]
    [InlineData("page=1&limit=many", "'limit'")]
    public async Task List_BadPageOrLimit_Is400NamingIt(string query, string expected)
    {
        using var admin = _app.Admin();

        var response = await admin.GetAsync($"/api/admin/workspaces?{query}", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith(expected, (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task List_WithoutTheAdminToken_Is401()
    {
        using var anonymous = _app.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/admin/workspaces", Ct)).StatusCode);
    }
}

public sealed class SqliteAdminWorkspaceListTests() : AdminWorkspaceListTests(Provider.Sqlite);

public sealed class PostgresAdminWorkspaceListTests() : AdminWorkspaceListTests(Provider.Postgres);
