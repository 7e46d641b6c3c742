using LuluClaw.Silo;
using LuluClaw.Silo.Hosting;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
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
public class TwoSilos : IAsyncLifetime
{
    /// <summary>The credits each tenant's workspace starts with (a turn costs one).</summary>
    public const long Credits = 1_000;

    private readonly TimeSpan? _responseTimeout;
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

    private readonly TimeProvider? _time;

    public TwoSilos()
        : this(responseTimeout: null)
    {
    }

    /// <param name="responseTimeout">How long a grain call may take, instead of LuluClaw's own (the model timeout and 30 s).</param>
    /// <param name="time">The silos' clock, instead of the system's.</param>
    protected TwoSilos(TimeSpan? responseTimeout, TimeProvider? time = null)
    {
        _responseTimeout = responseTimeout;
        _time = time;
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        try
        {
            _postgres = await TestPostgres.CreateAsync();
        }
        catch (Xunit.Sdk.SkipException e)
        {
            // A fixture cannot skip tests: each test skips itself when it asks for the cluster.
            _skipped = e.Message;
            return;
        }

        _stub = await StubModelServer.StartAsync(Ct);

        // The schema first, once: both silos start on a migrated database, as nodes do after Program.cs migrates.
        await using (var store = StorageServiceCollectionExtensions.CreatePostgres(_postgres.ConnectionString))
        {
            await new SchemaMigrator(store.Database).MigrateAsync(Ct);
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
            if (_time is not null)
            {
                host.Services.AddSingleton(_time); // before AddLuluClaw, which adds the system's clock only if none is there
            }

            host.Services.AddLuluClaw(host.Configuration);
            host.Services.AddSingleton<IIncomingGrainCallFilter>(Calls);
        });

        // LuluClaw's grain settings (collection, call timeouts) as Program.cs gives them; the test cluster keeps its own clustering.
        builder.ConfigureSilo((_, silo) =>
        {
            silo.ConfigureLuluGrains(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
            if (_responseTimeout is { } timeout)
            {
                silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = timeout);
            }
        });
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
        await workspace.CreateAsync(new CreateWorkspaceRequest("Grains test", "byok", Credits), Ct);
        var key = await workspace.CreateKeyAsync(new CreateApiKeyRequest(Scopes: null, Plan: "priority"), Ct)
            ?? throw new InvalidOperationException($"workspace {workspaceId}: CreateKeyAsync answered null right after CreateAsync");
        var botId = BotIds.New();
        await B.GetGrain<IBotGrain>(botId).CreateAsync(new CreateBotRequest(workspaceId, "Test bot", systemPrompt, BotDefaults.Model, []), Ct);
        return new Tenant(workspaceId, key.Id, botId);
    }

    /// <summary>The requests the model received for turns whose message starts with <paramref name="tenant"/>'s <see cref="Tenant.Tag"/>, in order.</summary>
    public List<StubRequest> ModelRequests(Tenant tenant) =>
        [.. Stub.Requests.Where(r => r.LastUserContent.StartsWith(tenant.Tag, StringComparison.Ordinal))];

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

    /// <summary>A mark for this tenant's messages, to tell its model requests from other tests' (see <see cref="TwoSilos.ModelRequests"/>).</summary>
    public string Tag => $"[{WorkspaceId:N}]";
}

/// <summary>
/// An incoming grain call filter on both silos that records each call as it enters a grain and as it
/// leaves it, so a test can wait for "the call has reached the grain" (or "is done there") instead
/// of sleeping.
/// </summary>
/// <remarks>
/// A call counts as entered once the grain method has run up to its first wait: the filter records
/// it when <see cref="IIncomingGrainCallContext.Invoke"/> hands back its task, before awaiting it. It
/// has left when that task has finished, however it ended. A streamed method enters as the stream
/// extension's <c>StartEnumeration</c> call on the grain (one per stream, whichever method it streams).
/// </remarks>
public sealed class CallProbe : IIncomingGrainCallFilter
{
    private readonly Lock _lock = new();
    private readonly List<(GrainId Grain, string Method, bool Left)> _calls = [];
    private readonly List<(GrainId Grain, string Method, bool Left, int Count, TaskCompletionSource Reached)> _waiters = [];

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var call = context.Invoke();
        Record(context.TargetId, context.InterfaceMethod.Name, left: false);
        try
        {
            await call;
        }
        finally
        {
            Record(context.TargetId, context.InterfaceMethod.Name, left: true);
        }
    }

    /// <summary>Completes once <paramref name="count"/> calls to <paramref name="method"/> have entered <paramref name="grain"/>.</summary>
    public Task WaitForEntryAsync(IAddressable grain, string method, int count) => WaitAsync(grain.GetGrainId(), method, left: false, count);

    /// <summary>Completes once <paramref name="count"/> calls to <paramref name="method"/> have left <paramref name="grain"/>.</summary>
    public Task WaitForExitAsync(IAddressable grain, string method, int count) => WaitAsync(grain.GetGrainId(), method, left: true, count);

    private Task WaitAsync(GrainId grain, string method, bool left, int count)
    {
        lock (_lock)
        {
            if (_calls.Count(c => c == (grain, method, left)) >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((grain, method, left, count, reached));
            return reached.Task;
        }
    }

    private void Record(GrainId grain, string method, bool left)
    {
        List<TaskCompletionSource> reached = [];
        lock (_lock)
        {
            _calls.Add((grain, method, left));
            var count = _calls.Count(c => c == (grain, method, left));
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                var waiter = _waiters[i];
                if ((waiter.Grain, waiter.Method, waiter.Left) == (grain, method, left) && waiter.Count <= count)
                {
                    reached.Add(waiter.Reached);
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
