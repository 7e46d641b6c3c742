using System.Net;
using System.Reflection;
using Dapper;
using LuluClaw.Silo.Cluster;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Runtime.Membership;
using Orleans.Runtime.MembershipService;
using ClusterOptions = Orleans.Configuration.ClusterOptions;

namespace LuluClaw.Silo.Tests.Cluster;

/// <summary>
/// Migration 0007 (Orleans' clustering tables and named queries, PostgreSQL only), and Orleans' own
/// ADO.NET membership table and gateway list run against it, call by call.
/// </summary>
public sealed class OrleansClusteringSchemaTests : IAsyncLifetime
{
    private const long ClusteringVersion = 7;

    private TestPostgres? _database;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string ConnectionString => _database!.ConnectionString;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    private async Task<LuluStorage> FreshPostgresAsync()
    {
        _database = await TestPostgres.CreateAsync();
        return StorageServiceCollectionExtensions.CreatePostgres(_database.ConnectionString);
    }

    [Fact]
    public async Task Migrate_FreshPostgres_CreatesTheClusteringTablesAndEveryQueryKeyTheProviderRequires()
    {
        await using var store = await FreshPostgresAsync();
        await new SchemaMigrator(store.Database).MigrateAsync(Ct);

        await using var connection = new NpgsqlConnection(ConnectionString);
        var tables = (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", cancellationToken: Ct))).ToHashSet();
        Assert.Subset(tables, new HashSet<string> { "orleansquery", "orleans_cluster_versions", "orleans_cluster_members" });

        // The keys the installed provider checks for at start: the non-public properties of its DbStoredQueries.
        var required = typeof(AdoNetClusteringTable).Assembly
            .GetType("Orleans.Clustering.AdoNet.Storage.DbStoredQueries", throwOnError: true)!
            .GetProperties(BindingFlags.Instance | BindingFlags.NonPublic)
            .Select(p => p.Name)
            .Order(StringComparer.Ordinal)
            .ToArray();
        var queries = (await connection.QueryAsync<(string Key, string Text)>(new CommandDefinition(
            "SELECT QueryKey, QueryText FROM OrleansQuery", cancellationToken: Ct))).ToDictionary(q => q.Key, q => q.Text);
        Assert.Equal(required, queries.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(9, required.Length);

        // Each text names the parameters the provider binds for it (and survived the script's quoting).
        var parameters = new Dictionary<string, string[]>
        {
            ["InsertMembershipVersionKey"] = ["@DeploymentId"],
            ["MembershipReadAllKey"] = ["@DeploymentId"],
            ["MembershipReadRowKey"] = ["@DeploymentId", "@Address", "@Port", "@Generation"],
            ["InsertMembershipKey"] = ["@DeploymentId", "@Address", "@Port", "@Generation", "@SiloName", "@HostName", "@Status", "@ProxyPort", "@StartTime", "@IAmAliveTime", "@Version"],
            ["UpdateMembershipKey"] = ["@DeploymentId", "@Address", "@Port", "@Generation", "@Status", "@SuspectTimes", "@IAmAliveTime", "@Version"],
            ["UpdateIAmAlivetimeKey"] = ["@DeploymentId", "@Address", "@Port", "@Generation", "@IAmAliveTime"],
            ["GatewaysQueryKey"] = ["@DeploymentId", "@Status"],
            ["DeleteMembershipTableEntriesKey"] = ["@DeploymentId"],
            ["CleanupDefunctSiloEntriesKey"] = ["@DeploymentId", "@IAmAliveTime"],
        };
        Assert.All(parameters, p => Assert.All(p.Value, name => Assert.Contains(name, queries[p.Key], StringComparison.Ordinal)));
    }

    [Fact]
    public void ClusteringScript_IsVersion7AndPostgresOnly() =>
        Assert.Equal("postgres", Assert.Single(SchemaMigrator.Scripts(), s => s.Version == ClusteringVersion).Provider);

    [Fact]
    public async Task Migrate_Sqlite_CreatesNoneOfIt()
    {
        var folder = Directory.CreateTempSubdirectory("luluclaw-clustering-").FullName;
        try
        {
            await using var store = StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(folder, "test.db")}");
            await new SchemaMigrator(store.Database).MigrateAsync(Ct);

            await using var connection = await store.Database.OpenAsync(Ct);
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = @Version", new { Version = ClusteringVersion }, cancellationToken: Ct)));
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM sqlite_master WHERE lower(name) IN ('orleansquery', 'orleans_cluster_versions', 'orleans_cluster_members')",
                cancellationToken: Ct)));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task MembershipTable_OrleansProviderOnOurSchema_KeepsTheVersionedProtocol()
    {
        await using var store = await FreshPostgresAsync();
        await new SchemaMigrator(store.Database).MigrateAsync(Ct);
        var t0 = new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Utc);
        var a = SiloAddress.New(IPAddress.Loopback, 11111, 1);
        var b = SiloAddress.New(IPAddress.Loopback, 11112, 2);
        var table = MembershipTable("cluster-1");

        // :: Init: the first creates the version row, a second (another silo) finds it.
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);
        await MembershipTable("cluster-1").InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);
        var empty = await table.ReadAllAsync(Ct);
        Assert.Equal(0, empty.Version.Version);
        Assert.Empty(empty.Members);

        // :: Insert: only at the version read, only once per silo.
        Assert.True(await table.InsertRowAsync(Entry(a, SiloStatus.Joining, 30001, t0), empty.Version.Next(), Ct));
        Assert.False(await table.InsertRowAsync(Entry(b, SiloStatus.Joining, 0, t0), empty.Version.Next(), Ct)); // stale version
        var one = await table.ReadAllAsync(Ct);
        Assert.Equal(1, one.Version.Version);
        Assert.False(await table.InsertRowAsync(Entry(a, SiloStatus.Joining, 30001, t0), one.Version.Next(), Ct)); // already a member
        Assert.True(await table.InsertRowAsync(Entry(b, SiloStatus.Active, 0, t0), one.Version.Next(), Ct));

        var two = await table.ReadAllAsync(Ct);
        Assert.Equal(2, two.Version.Version);
        var readA = Assert.Single(two.Members, m => m.Item1.SiloAddress.Equals(a)).Item1;
        Assert.Equal(("silo-11111", "host-11111", SiloStatus.Joining, 30001), (readA.SiloName, readA.HostName, readA.Status, readA.ProxyPort));
        Assert.Equal(t0, readA.StartTime);
        Assert.Equal(DateTimeKind.Utc, readA.IAmAliveTime.Kind);
        Assert.Null(readA.SuspectTimes);

        // :: ReadRow: the version and that silo only, or the version alone.
        var rowB = await table.ReadRowAsync(b, Ct);
        Assert.Equal(2, rowB.Version.Version);
        Assert.Equal(b, Assert.Single(rowB.Members).Item1.SiloAddress);
        var none = await table.ReadRowAsync(SiloAddress.New(IPAddress.Loopback, 11113, 3), Ct);
        Assert.Equal(2, none.Version.Version);
        Assert.Empty(none.Members);

        // :: Update: status, suspicions and last sign of life, only at the version read.
        var activeA = Entry(a, SiloStatus.Active, 30001, t0);
        activeA.IAmAliveTime = t0.AddSeconds(5);
        activeA.SuspectTimes = [Tuple.Create(b, t0.AddSeconds(4))];
        // (Orleans passes the row's etag, which this provider makes the version read, and the version.)
        Assert.False(await table.UpdateRowAsync(activeA, one.Version.VersionEtag, one.Version.Next(), Ct));
        Assert.True(await table.UpdateRowAsync(activeA, two.Version.VersionEtag, two.Version.Next(), Ct));
        var current = (await table.ReadAllAsync(Ct)).Version;
        Assert.False(await table.UpdateRowAsync(Entry(SiloAddress.New(IPAddress.Loopback, 11113, 3), SiloStatus.Active, 0, t0), current.VersionEtag, current.Next(), Ct));
        var three = await table.ReadAllAsync(Ct);
        Assert.Equal(3, three.Version.Version);
        readA = Assert.Single(three.Members, m => m.Item1.SiloAddress.Equals(a)).Item1;
        Assert.Equal(SiloStatus.Active, readA.Status);
        Assert.Equal(t0.AddSeconds(5), readA.IAmAliveTime);
        var suspicion = Assert.Single(readA.SuspectTimes ?? []);
        Assert.Equal((b, t0.AddSeconds(4)), (suspicion.Item1, suspicion.Item2));

        // :: IAmAlive: a heartbeat, not a membership change.
        var alive = Entry(a, SiloStatus.Active, 30001, t0);
        alive.IAmAliveTime = t0.AddSeconds(9);
        await table.UpdateIAmAliveAsync(alive, Ct);
        var afterHeartbeat = await table.ReadAllAsync(Ct);
        Assert.Equal(3, afterHeartbeat.Version.Version);
        Assert.Equal(t0.AddSeconds(9), afterHeartbeat.Members.Single(m => m.Item1.SiloAddress.Equals(a)).Item1.IAmAliveTime);

        // :: Gateways: active silos that accept clients (a's gateway port; b has none).
        var gateways = await GatewaysAsync("cluster-1");
        Assert.Equal(SiloAddress.New(IPAddress.Loopback, 30001, 1).ToGatewayUri(), Assert.Single(gateways));

        // :: Cleanup: dead silos last alive before the date go, the others stay.
        var deadB = Entry(b, SiloStatus.Dead, 0, t0);
        Assert.True(await table.UpdateRowAsync(deadB, afterHeartbeat.Version.VersionEtag, afterHeartbeat.Version.Next(), Ct));
        await table.CleanupDefunctSiloEntriesAsync(new DateTimeOffset(t0.AddSeconds(-1)), Ct);
        Assert.Equal(2, (await table.ReadAllAsync(Ct)).Members.Count);
        await table.CleanupDefunctSiloEntriesAsync(new DateTimeOffset(t0.AddSeconds(1)), Ct);
        Assert.Equal(a, Assert.Single((await table.ReadAllAsync(Ct)).Members).Item1.SiloAddress);

        // :: Delete: forgets one cluster, version row and members, and leaves another alone.
        var other = MembershipTable("cluster-2");
        await other.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);
        Assert.True(await other.InsertRowAsync(Entry(a, SiloStatus.Active, 30001, t0), (await other.ReadAllAsync(Ct)).Version.Next(), Ct));
        await table.DeleteMembershipTableEntriesAsync("cluster-1", Ct);
        await using var connection = new NpgsqlConnection(ConnectionString);
        Assert.Equal(
            new[] { "cluster-2" },
            await connection.QueryAsync<string>(new CommandDefinition("SELECT cluster_id FROM orleans_cluster_versions", cancellationToken: Ct)));
        Assert.Equal(
            new[] { "cluster-2" },
            await connection.QueryAsync<string>(new CommandDefinition("SELECT cluster_id FROM orleans_cluster_members", cancellationToken: Ct)));
        Assert.Single((await other.ReadAllAsync(Ct)).Members);
    }

    private static MembershipEntry Entry(SiloAddress silo, SiloStatus status, int proxyPort, DateTime startTime) => new()
    {
        SiloAddress = silo,
        SiloName = $"silo-{silo.Endpoint.Port}",
        HostName = $"host-{silo.Endpoint.Port}",
        Status = status,
        ProxyPort = proxyPort,
        StartTime = startTime,
        IAmAliveTime = startTime,
    };

    private AdoNetClusteringTable MembershipTable(string clusterId) => new(
        new ServiceCollection().BuildServiceProvider(),
        Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "luluclaw-tests" }),
        Options.Create(new AdoNetClusteringSiloOptions { Invariant = OrleansAdoNet.PostgresInvariant, ConnectionString = ConnectionString }),
        NullLogger<AdoNetClusteringTable>.Instance);

    private async Task<IList<Uri>> GatewaysAsync(string clusterId)
    {
        var provider = new AdoNetGatewayListProvider(
            NullLogger<AdoNetGatewayListProvider>.Instance,
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new AdoNetClusteringClientOptions { Invariant = OrleansAdoNet.PostgresInvariant, ConnectionString = ConnectionString }),
            Options.Create(new GatewayOptions()),
            Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "luluclaw-tests" }));
        await provider.InitializeGatewayListProviderAsync(Ct);
        return await provider.GetGatewaysAsync(Ct);
    }
}
