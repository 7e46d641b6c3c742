using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LuluClaw.WebApi.Tests;

/// <summary>Which storage a test app runs on.</summary>
public enum Provider
{
    Sqlite,
    Postgres,
}

/// <summary>The real LuluClaw app over in-memory HTTP, on a fresh database of the chosen provider.</summary>
public sealed class LuluClawApp : WebApplicationFactory<Program>
{
    public const string AdminToken = "test-admin-token";

    private readonly Dictionary<string, string?> _settings;
    private readonly string? _folder;
    private readonly TestPostgres? _postgres;
    private readonly Action<IServiceCollection>? _services;

    private LuluClawApp(Dictionary<string, string?> settings, string? folder, TestPostgres? postgres, Action<IServiceCollection>? services)
    {
        _settings = settings;
        _folder = folder;
        _postgres = postgres;
        _services = services;
    }

    /// <summary>
    /// Starts an app on an empty database; <paramref name="settings"/> add to or override the
    /// defaults, and <paramref name="services"/> may replace services (a manual clock, say).
    /// </summary>
    /// <remarks><paramref name="connectionString"/> may rewrite the test database's connection string (to go through a proxy, say).</remarks>
    public static async Task<LuluClawApp> StartAsync(
        Provider provider, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null,
        Func<string, string>? connectionString = null)
    {
        var all = new Dictionary<string, string?>(TestPorts.Silo()) { ["Admin:Token"] = AdminToken, ["Demo:Seed"] = "false" };
        string? folder = null;
        TestPostgres? postgres = null;
        if (provider == Provider.Postgres)
        {
            postgres = await TestPostgres.CreateAsync();
            all["Storage:Provider"] = "postgres";
            all["ConnectionStrings:LuluClaw"] = connectionString?.Invoke(postgres.ConnectionString) ?? postgres.ConnectionString;
        }
        else
        {
            folder = Directory.CreateTempSubdirectory("luluclaw-app-").FullName;
            all["Storage:Provider"] = "sqlite";
            all["ConnectionStrings:LuluClaw"] = $"Data Source={Path.Combine(folder, "luluclaw.db")}";
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var app = new LuluClawApp(all, folder, postgres, services);
        _ = app.Server; // boot now: migrations run before the first request
        return app;
    }

    /// <summary>
    /// Another node of the same cluster: a second app on this app's PostgreSQL database, with
    /// <paramref name="settings"/> on top of this app's. Dispose it before this app.
    /// </summary>
    public LuluClawApp AnotherNode(IDictionary<string, string?>? settings = null)
    {
        if (_postgres is null)
        {
            throw new InvalidOperationException("only PostgreSQL is shared by several nodes");
        }

        var all = new Dictionary<string, string?>(_settings);
        foreach (var (key, value) in TestPorts.Silo())
        {
            all[key] = value; // its own silo of the same cluster
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var node = new LuluClawApp(all, folder: null, postgres: null, _services);
        _ = node.Server;
        return node;
    }

    protected override IHost CreateHost(IHostBuilder builder)
    {
        // As host configuration, the settings reach Program's command line (the factory passes them as
        // --key=value), so they are there while Program configures the silo, before the host is built.
        builder.ConfigureHostConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        return base.CreateHost(builder);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        if (_services is not null)
        {
            builder.ConfigureServices(_services);
        }
    }

    /// <summary>The SQLite database file, for the SQLite provider.</summary>
    public string? SqliteFile => _folder is null ? null : Path.Combine(_folder, "luluclaw.db");

    /// <summary>
    /// The official OpenAI .NET SDK pointed at this app's <c>/v1</c> with <paramref name="key"/>, without
    /// retries (a test sees each answer as it came), and with <c>X-Session-Id</c> when <paramref name="sessionId"/> is given.
    /// </summary>
    public OpenAI.OpenAIClient OpenAISdk(string key, string? sessionId = null)
    {
        var http = CreateClient();
        if (sessionId is not null)
        {
            http.DefaultRequestHeaders.Add("X-Session-Id", sessionId);
        }

        return new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(key), new OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(http),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
        });
    }

    /// <summary>A client that sends the admin token.</summary>
    public HttpClient Admin()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    /// <summary>Creates a workspace through the admin API and mints a key for it (default scopes and plan unless given).</summary>
    public async Task<TestWorkspace> CreateWorkspaceAsync(string plan = "starter", long credits = 250, string[]? scopes = null, string? keyPlan = null)
    {
        using var admin = Admin();
        var created = await admin.PostAsJsonAsync("/api/admin/workspaces", new { name = "Acme", plan, credits });
        created.EnsureSuccessStatusCode();
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        return await new TestWorkspace(this, id, "", "").WithKeyAsync(scopes, keyPlan);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_folder is not null)
        {
            Directory.Delete(_folder, recursive: true);
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }
}

/// <summary>A workspace and one of its keys.</summary>
public sealed record TestWorkspace(LuluClawApp App, string Id, string KeyId, string Key)
{
    /// <summary>A client that sends this workspace's key.</summary>
    public HttpClient Client()
    {
        var client = App.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        return client;
    }

    /// <summary>The same workspace with a new key minted through the admin API.</summary>
    public async Task<TestWorkspace> WithKeyAsync(string[]? scopes = null, string? plan = null)
    {
        using var admin = App.Admin();
        var request = new Dictionary<string, object>();
        if (scopes is not null)
        {
            request["scopes"] = scopes;
        }

        if (plan is not null)
        {
            request["plan"] = plan;
        }

        var key = await admin.PostAsJsonAsync($"/api/admin/workspaces/{Id}/keys", request);
        key.EnsureSuccessStatusCode();
        var body = await key.Content.ReadFromJsonAsync<JsonElement>();
        return this with { KeyId = body.GetProperty("id").GetString()!, Key = body.GetProperty("key").GetString()! };
    }

    /// <summary>The id of the workspace's primary bot (the first the bot list shows).</summary>
    public async Task<string> PrimaryBotIdAsync()
    {
        using var client = Client();
        return (await client.GetFromJsonAsync<JsonElement>("/api/v1/bots"))[0].GetProperty("id").GetString()!;
    }

    /// <summary>The balance as the admin API reports it.</summary>
    public async Task<long> CreditsAsync()
    {
        using var admin = App.Admin();
        return (await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{Id}")).GetProperty("credits_remaining").GetInt64();
    }

    /// <summary>A session's stored messages as (role, content), oldest first; empty if there are none.</summary>
    public async Task<IReadOnlyList<(long Seq, string Role, string Content)>> HistoryAsync(string sessionId)
    {
        using var admin = App.Admin();
        var response = await admin.GetAsync($"/api/admin/workspaces/{Id}/sessions/{Uri.EscapeDataString(sessionId)}/messages");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return [];
        }

        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("messages").EnumerateArray()
            .Select(m => (m.GetProperty("seq").GetInt64(), m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToArray();
    }
}
