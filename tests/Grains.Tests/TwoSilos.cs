using LuluClaw.Silo;
using LuluClaw.Silo.Hosting;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace LuluClaw.Grains.Tests;

/// <summary>The test classes that share one <see cref="TwoSilos"/> cluster; they run one after another.</summary>
/// <remarks>
/// One cluster for all of them keeps the run short (two silos start in a few seconds, once). Run one
/// after another they cannot disturb each other's activations, which matters to the test that forces
/// activation collection across the cluster; each test works in a workspace of its own.
/// </remarks>
[CollectionDefinition(Name)]
public sealed class TwoSilosCollection : ICollectionFixture<TwoSilos>
{
    public const string Name = "two silos";
}

/// <summary>
/// Two in-process Orleans silos running LuluClaw's grains and services (<c>AddLuluClaw</c>) on one fresh
/// PostgreSQL database, their bots answered by a <see cref="StubModelServer"/>. <see cref="A"/> and
/// <see cref="B"/> are each silo's own grain factory, so a call enters the cluster through that silo.
/// </summary>
public sealed class TwoSilos : IAsyncLifetime
{
    private TestPostgres? _postgres;
    private InProcessTestCluster? _cluster;
    private string? _skipped;
    private StubModelServer? _stub;

    /// <summary>The model every bot talks to.</summary>
    public StubModelServer Stub => _stub!;

    /// <summary>Records the calls that enter grains on either silo.</summary>
    public CallProbe Calls { get; } = new();

    /// <summary>The cluster, once started; skips the calling test when PostgreSQL is not configured.</summary>
    public InProcessTestCluster Cluster
    {
        get
        {
            if (_skipped is not null)
            {
                Assert.Skip(_skipped);
            }

            return _cluster!;
        }
    }

    /// <summary>The first silo's grain factory: calls made with it enter through silo A.</summary>
    public IGrainFactory A => FactoryOf(0);

    /// <summary>The second silo's grain factory: calls made with it enter through silo B.</summary>
    public IGrainFactory B => FactoryOf(1);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        try
        {
            _postgres = await TestPostgres.CreateAsync();
        }
        catch (Exception e) when (e.GetType().Name == "SkipException")
        {
            // A fixture cannot skip tests: each test skips itself when it asks for the cluster.
            _skipped = e.Message;
            return;
        }

        _stub = await StubModelServer.StartAsync(Ct);

        // The schema first, once: both silos start on a migrated database, as nodes do after Program.cs migrates.
        await using (var store = StorageServiceCollectionExtensions.CreatePostgres(_postgres.ConnectionString))
        {
            await new SchemaMigrator(store).MigrateAsync(Ct);
        }

        var settings = new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "postgres",
            ["ConnectionStrings:LuluClaw"] = _postgres.ConnectionString,
            ["Llm:OpenAI:BaseUrl"] = Stub.OpenAIBaseUrl.ToString(),
            ["Llm:OpenAI:ApiKey"] = "sk-platform",
        };
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSiloHost((_, host) =>
        {
            host.Configuration.AddInMemoryCollection(settings);
            host.Services.AddLuluClaw(host.Configuration);
            host.Services.AddSingleton<IIncomingGrainCallFilter>(Calls);
        });

        // LuluClaw's grain settings (collection, call timeouts) as Program.cs gives them; the test cluster keeps its own clustering.
        builder.ConfigureSilo((_, silo) => silo.ConfigureLuluGrains(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()));
        _cluster = builder.Build();
        await _cluster.DeployAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }

        if (_stub is not null)
        {
            await _stub.DisposeAsync();
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    /// <summary>
    /// A new workspace with an API key and a bot of its own, made through the grains (entering
    /// through silo A for the workspace and key, B for the bot).
    /// </summary>
    public async Task<Tenant> CreateTenantAsync(string systemPrompt = "You are a test bot.")
    {
        var workspaceId = Guid.NewGuid();
        var workspace = A.GetGrain<IWorkspaceGrain>(workspaceId.ToString("D"));
        await workspace.CreateAsync(new CreateWorkspaceRequest("Grains test", "byok", Credits: 1_000), Ct);
        var key = await workspace.CreateKeyAsync(new CreateApiKeyRequest(Scopes: null, Plan: "priority"), Ct)
            ?? throw new InvalidOperationException($"workspace {workspaceId}: CreateKeyAsync answered null right after CreateAsync");
        var botId = BotIds.New();
        await B.GetGrain<IBotGrain>(botId).CreateAsync(new CreateBotRequest(workspaceId, "Test bot", systemPrompt, BotDefaults.Model, []), Ct);
        return new Tenant(workspaceId, key.Id, botId);
    }

    /// <summary>Every activation of <paramref name="grain"/> in the cluster, by silo, as the silos report them.</summary>
    public async Task<IReadOnlyList<SiloAddress>> ActivationsAsync(IAddressable grain)
    {
        var id = grain.GetGrainId();
        var statistics = await Cluster.Client.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return [.. statistics.Where(s => s.GrainId == id).Select(s => s.SiloAddress)];
    }

    /// <summary>
    /// Waits for <paramref name="task"/>, or fails naming <paramref name="what"/> (the grain and the
    /// phase) if it has not finished within <paramref name="seconds"/>.
    /// </summary>
    public static async Task Within(Task task, string what, double seconds = 20)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(seconds), Ct);
        }
        catch (TimeoutException) when (!task.IsCompleted)
        {
            throw new TimeoutException($"{what}: not done within {seconds} s");
        }
    }

    /// <inheritdoc cref="Within(Task, string, double)"/>
    public static async Task<T> Within<T>(Task<T> task, string what, double seconds = 20)
    {
        await Within((Task)task, what, seconds);
        return await task;
    }

    private IGrainFactory FactoryOf(int index)
    {
        var silo = Cluster.Silos[index];
        return Cluster.GetSiloServiceProvider(silo.SiloAddress).GetRequiredService<IGrainFactory>();
    }
}

/// <summary>A workspace of its own for one test: its id, an API key's id, a bot.</summary>
public sealed record Tenant(Guid WorkspaceId, string KeyId, string BotId)
{
    /// <summary>The grain key of session <paramref name="sessionId"/> in this workspace.</summary>
    public string Session(string sessionId) => SessionKey.Of(WorkspaceId, sessionId);

    /// <summary>A turn of this tenant's bot with its key.</summary>
    public ChatTurnRequest Turn(string message) => new(message, KeyId, "api", BotId);
}

/// <summary>
/// An incoming grain call filter on both silos that records each call as it enters a grain, so a
/// test can wait for "the call has reached the grain" instead of sleeping.
/// </summary>
/// <remarks>
/// A call counts as entered once the grain method has run up to its first wait: the filter records
/// it when <see cref="IIncomingGrainCallContext.Invoke"/> hands back its task, before awaiting it. A
/// streamed method enters as the stream extension's <c>StartEnumeration</c> call on the grain (one per
/// stream, whichever streamed method it starts).
/// </remarks>
public sealed class CallProbe : IIncomingGrainCallFilter
{
    private readonly Lock _lock = new();
    private readonly List<(GrainId Grain, string Method)> _entered = [];
    private readonly List<(GrainId Grain, string Method, int Count, TaskCompletionSource Reached)> _waiters = [];

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var call = context.Invoke();
        Record(context.TargetId, context.InterfaceMethod.Name);
        await call;
    }

    /// <summary>How many calls to <paramref name="method"/> have entered <paramref name="grain"/>.</summary>
    public int Entered(IAddressable grain, string method)
    {
        var id = grain.GetGrainId();
        lock (_lock)
        {
            return _entered.Count(e => e.Grain == id && e.Method == method);
        }
    }

    /// <summary>Completes once <paramref name="count"/> calls to <paramref name="method"/> have entered <paramref name="grain"/>.</summary>
    public Task WaitForEntryAsync(IAddressable grain, string method, int count)
    {
        var id = grain.GetGrainId();
        lock (_lock)
        {
            if (_entered.Count(e => e.Grain == id && e.Method == method) >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((id, method, count, reached));
            return reached.Task;
        }
    }

    private void Record(GrainId grain, string method)
    {
        List<TaskCompletionSource> reached = [];
        lock (_lock)
        {
            _entered.Add((grain, method));
            var count = _entered.Count(e => e.Grain == grain && e.Method == method);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Grain == grain && _waiters[i].Method == method && _waiters[i].Count <= count)
                {
                    reached.Add(_waiters[i].Reached);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var waiter in reached)
        {
            waiter.TrySetResult();
        }
    }
}
