using System.Net;
using System.Net.Http.Json;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>Per-key plans under concurrency, decided by the database of each provider.</summary>
public abstract class KeyPlanTests(Provider provider) : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(provider);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Chat_TwoHundredConcurrentOnStandardKey_Exactly30Admitted()
    {
        // An unlimited workspace plan, so only the key's windows (30/min, 30/h, 600/day) can refuse.
        var workspace = await _app.CreateWorkspaceAsync(plan: "byok", credits: 1000, keyPlan: "standard");
        using var client = workspace.Client();

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            client.PostAsJsonAsync("/api/v1/chat", new { message = $"m{i}", session_id = $"s{i % 13}" }, TestContext.Current.CancellationToken)));

        Assert.Equal(30, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToArray();
        Assert.Equal(170, refused.Length);
        Assert.All(refused, r => Assert.InRange(r.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 3600));
        Assert.Equal(1000 - 30, await workspace.CreditsAsync());

        // Another key of the same workspace is not held back by the first key's windows.
        var other = await workspace.WithKeyAsync(plan: "standard");
        using var otherClient = other.Client();
        var response = await otherClient.PostAsJsonAsync("/api/v1/chat", new { message = "hi" }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Chat_PriorityKeyOnStarterWorkspace_TheStricterWorkspaceHourWins()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter", credits: 1000, keyPlan: "priority");
        using var client = workspace.Client();

        var responses = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            client.PostAsJsonAsync("/api/v1/chat", new { message = $"m{i}" }, TestContext.Current.CancellationToken)));

        Assert.Equal(15, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(85, responses.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));
    }
}

public sealed class SqliteKeyPlanTests() : KeyPlanTests(Provider.Sqlite);

public sealed class PostgresKeyPlanTests() : KeyPlanTests(Provider.Postgres);
