using Orleans;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Storage;

namespace LuluClaw.Silo.Bootstrap;

/// <summary>
/// On first start with an empty embedded database, creates a demo workspace and prints its id and,
/// once, its key (to standard output, not to the log), so that a newcomer can curl straight away and
/// follow the admin API's walk-through on it.
/// </summary>
public sealed class DemoWorkspace(IGrainFactory grains, ITenantStore tenants, Database store, IConfiguration configuration)
{
    /// <summary>Creates the demo workspace if this is a fresh SQLite database; returns its key, or null.</summary>
    public async Task<string?> SeedAsync(CancellationToken cancellationToken)
    {
        if (store.Dialect is not SqliteDialect || !configuration.GetValue("Demo:Seed", true) || await tenants.AnyWorkspaceAsync(cancellationToken))
        {
            return null;
        }

        var id = Guid.NewGuid().ToString("D");
        var workspace = grains.GetGrain<IWorkspaceGrain>(id);
        await workspace.CreateAsync(new CreateWorkspaceRequest("Demo", "starter", 250), cancellationToken);
        var key = await workspace.CreateKeyAsync(new CreateApiKeyRequest(null), cancellationToken);
        var baseUrl = LocalUrl(configuration["urls"]);
        Console.WriteLine(
            $$"""

            LuluClaw created a demo workspace (plan starter, 250 credits).

                workspace id: {{id}}
                API key:      {{key!.Key}}   (shown this once)

            Try it:
                curl -s {{baseUrl}}/api/gateway/chat -H "Authorization: Bearer {{key.Key}}" -H "Content-Type: application/json" -d '{"message": "Hello!"}'

            """);
        return key.Key;
    }

    /// <summary>The first address the server listens on, as a client on this machine would call it.</summary>
    private static string LocalUrl(string? urls)
    {
        var first = (string.IsNullOrWhiteSpace(urls) ? "http://127.0.0.1:5080" : urls).Split(';', StringSplitOptions.TrimEntries)[0].TrimEnd('/');
        foreach (var wildcard in new[] { "://*:", "://+:", "://0.0.0.0:", "://[::]:" })
        {
            first = first.Replace(wildcard, "://127.0.0.1:", StringComparison.Ordinal);
        }

        return first;
    }
}
