using System.Diagnostics;
using LuluClaw;
using LuluClaw.Silo;
using LuluClaw.Silo.Hosting;
using LuluClaw.Silo.Storage;
using Orleans;
using Orleans.Runtime;

// Memory per idle session activation, in process:
// 1. builds LuluClaw's services with the real AddLuluClaw and its Orleans silo (UseOrleans with
//    ConfigureLuluClaw, one silo on free ports) over a temporary SQLite file (the echo model, no
//    provider configured), migrates the schema and starts the silo; idle collection is set to an
//    hour, so every activation stays for the run;
// 2. creates a workspace (plan byok) and a key (an unlimited key plan) through the grains;
// 3. warms up: a first batch of sessions with one turn each (JIT, pools, caches);
// 4. full blocking GC, GC.GetTotalMemory(true) = before;
// 5. N sessions, one turn each (ISessionGrain.SendAsync through IGrainFactory), nothing kept;
// 6. full blocking GC, GC.GetTotalMemory(true) = after; (after - before) / N per session, less the
//    UTF-16 bytes of the two message texts each session holds (the user's message and the reply).
// Usage: LuluClaw.Bench.Memory [--sessions 10000] [--message-chars 32] [--concurrency 64]
var sessions = Arg("--sessions", 10_000);
var messageChars = Arg("--message-chars", 32);
var concurrency = Arg("--concurrency", 64);
var warmup = Math.Max(200, sessions / 10);

var dir = Directory.CreateTempSubdirectory("luluclaw-bench-memory-");
try
{
    var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Production", ContentRootPath = dir.FullName });
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Storage:Provider"] = "sqlite",
        ["ConnectionStrings:LuluClaw"] = $"Data Source={Path.Combine(dir.FullName, "luluclaw.db")}",
        // Durability does not change what an activation keeps in memory; this only makes the run faster.
        ["Storage:SqliteSynchronous"] = "OFF",
        ["Demo:Seed"] = "false",
        ["Plans:Key:bench:RequestsPerMinute"] = "",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Actors:IdleTimeout"] = "01:00:00",
        ["Cluster:SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Cluster:GatewayPort"] = "0",
    });
    builder.Services.AddLuluClaw(builder.Configuration);
    builder.UseOrleans(silo => silo.ConfigureLuluClaw(builder.Configuration));
    await using var app = builder.Build();
    await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync(CancellationToken.None);
    await app.StartAsync();

    var grains = app.Services.GetRequiredService<IGrainFactory>();
    var management = grains.GetGrain<IManagementGrain>(0);
    var workspaceId = Guid.NewGuid();
    var workspace = grains.GetGrain<IWorkspaceGrain>(workspaceId.ToString("D"));
    await workspace.CreateAsync(new CreateWorkspaceRequest("bench-memory", "byok", 100_000_000), CancellationToken.None);
    var key = await workspace.CreateKeyAsync(new CreateApiKeyRequest(["chat"], "bench"), CancellationToken.None)
        ?? throw new InvalidOperationException("the workspace was not created");

    var clock = Stopwatch.StartNew();
    await RunTurnsAsync("warm", warmup);
    var activationsBefore = await SessionActivationsAsync();
    var before = SettledHeap();
    var textChars = await RunTurnsAsync("s", sessions);
    var after = SettledHeap();
    var activationsAfter = await SessionActivationsAsync();

    var perSession = (double)(after - before) / sessions;
    var textBytes = 2.0 * textChars / sessions;
    Console.Error.WriteLine(
        $"memory: {sessions} sessions in {clock.Elapsed.TotalSeconds:F1}s; activations {activationsBefore} -> {activationsAfter}; " +
        $"heap {before / 1024} KB -> {after / 1024} KB; {perSession:F0} B per session, of which message text {textBytes:F0} B");
    Console.WriteLine(
        $"RESULT sessions={sessions} activations={activationsAfter - activationsBefore} heap_before={before} heap_after={after} " +
        $"per_session={perSession:F0} text_bytes={textBytes:F0} beyond_text={perSession - textBytes:F0}");
    await app.StopAsync();
    return activationsAfter - activationsBefore >= sessions ? 0 : 1;

    // Session activations in the silo, as Orleans counts them.
    async Task<int> SessionActivationsAsync() =>
        (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains("SessionGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);

    // One turn in each of `count` new sessions, `concurrency` at a time; returns the characters of
    // message text the sessions now hold (each user message and its reply).
    async Task<long> RunTurnsAsync(string prefix, int count)
    {
        long chars = 0;
        var failures = 0;
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, ct) =>
        {
            var message = $"m{i:D8}".PadRight(messageChars, 'x');
            var session = grains.GetGrain<ISessionGrain>(SessionKey.Of(workspaceId, $"{prefix}-{i}"));
            var result = await session.SendAsync(new ChatTurnRequest(message, key.Id, "gateway"), ct);
            if (result.Status == ChatTurnStatus.Ok)
            {
                Interlocked.Add(ref chars, message.Length + result.Reply!.Length);
            }
            else
            {
                Interlocked.Increment(ref failures);
            }
        });
        if (failures > 0)
        {
            throw new InvalidOperationException($"{failures} of {count} turns failed");
        }

        return chars;
    }
}
finally
{
    SqliteConnectionPoolsClear();
    dir.Delete(recursive: true);
}

static long SettledHeap()
{
    for (var i = 0; i < 3; i++)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    return GC.GetTotalMemory(forceFullCollection: true);
}

static int FreePort()
{
    using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
    listener.Start();
    return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
}

static void SqliteConnectionPoolsClear() => Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var value) ? value : fallback;
}
