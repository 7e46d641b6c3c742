using System.Data.Common;
using System.Net;
using System.Net.Sockets;
using Dapper;
using LuluClaw.Silo.Cluster;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Messaging;
using Orleans.Runtime;
using ClusterOptions = Orleans.Configuration.ClusterOptions;

namespace LuluClaw.Silo.Tests.Cluster;

/// <summary>
/// Real Orleans silos and a client in this process, clustered through Orleans' ADO.NET provider on
/// a fresh PostgreSQL database that only our migration prepared.
/// </summary>
public sealed class OrleansClusterTests : IAsyncLifetime
{
    // Generous for a shared two-core machine; a phase normally takes well under a second.
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromSeconds(60);

    private readonly List<IHost> _hosts = [];
    private readonly string _clusterId = $"cluster-{Guid.NewGuid():N}";
    private TestPostgres? _database;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _database = await TestPostgres.CreateAsync();
        await using var store = StorageServiceCollectionExtensions.CreatePostgres(_database.ConnectionString);
        await new SchemaMigrator(store.Database).MigrateAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _hosts.Count - 1; i >= 0; i--)
        {
            try
            {
                await _hosts[i].StopAsync(CancellationToken.None);
            }
            finally
            {
                await ((IAsyncDisposable)_hosts[i]).DisposeAsync();
            }
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    [Fact]
    public async Task TwoSilos_OnOurSchema_SeeEachOtherActiveServeAClientAndSeeAGracefulStop()
    {
        // Orleans finds Npgsql's factory by itself (OrleansAdoNet's remarks): nothing is registered here.
        Assert.False(DbProviderFactories.TryGetFactory(OrleansAdoNet.PostgresInvariant, out _));

        // :: Phase 1: two silos join through the membership table.
        var ports = FreePorts(4);
        var a = await StartSiloAsync("silo-a", ports[0], ports[1]);
        var b = await StartSiloAsync("silo-b", ports[2], ports[3]);
        var addressA = a.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        var addressB = b.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        HashSet<SiloAddress> both = [addressA, addressB];

        await WaitForMembershipAsync(a, "silo-a seeing both silos active", s => ActiveSilos(s).SetEquals(both));
        await WaitForMembershipAsync(b, "silo-b seeing both silos active", s => ActiveSilos(s).SetEquals(both));
        var management = a.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        Assert.Equal(both, (await management.GetHosts(onlyActive: true, Ct)).Keys.ToHashSet());

        // :: Phase 2: a client finds both gateways in the same tables and calls into the cluster.
        var client = await StartClientAsync();
        var gateways = await client.Services.GetRequiredService<IGatewayListProvider>().GetGatewaysAsync(Ct);
        Assert.Equal(
            new HashSet<Uri> { GatewayUri(addressA, ports[1]), GatewayUri(addressB, ports[3]) },
            gateways.ToHashSet());
        var fromClient = client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
        Assert.Equal(both, (await fromClient.GetHosts(onlyActive: true, Ct)).Keys.ToHashSet());
        await StopAsync(client);

        // :: Phase 3: silo-b stops gracefully; silo-a sees it go, and the table says it is dead.
        await StopAsync(b);
        await WaitForMembershipAsync(a, "silo-a seeing silo-b no longer active", s => ActiveSilos(s).SetEquals([addressA]));
        Assert.Equal([addressA], (await management.GetHosts(onlyActive: true, Ct)).Keys);

        await using var connection = new NpgsqlConnection(_database!.ConnectionString);
        var rows = (await connection.QueryAsync<(int Port, int Status)>(new CommandDefinition(
            "SELECT port, status FROM orleans_cluster_members WHERE cluster_id = @ClusterId",
            new { ClusterId = _clusterId }, cancellationToken: Ct))).ToDictionary(r => r.Port, r => (SiloStatus)r.Status);
        Assert.Equal(new Dictionary<int, SiloStatus> { [ports[0]] = SiloStatus.Active, [ports[2]] = SiloStatus.Dead }, rows);
    }

    private async Task<IHost> StartSiloAsync(string name, int siloPort, int gatewayPort)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.UseOrleans(silo => silo
            .UsePostgresClustering(_database!.ConnectionString)
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (_clusterId, "luluclaw-tests"))
            .Configure<SiloOptions>(o => o.SiloName = name)
            .ConfigureEndpoints(IPAddress.Loopback, siloPort, gatewayPort));
        return await StartAsync(builder.Build());
    }

    private async Task<IHost> StartClientAsync()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.UseOrleansClient(client => client
            .UsePostgresClustering(_database!.ConnectionString)
            .Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (_clusterId, "luluclaw-tests")));
        return await StartAsync(builder.Build());
    }

    private async Task<IHost> StartAsync(IHost host)
    {
        _hosts.Add(host);
        await host.StartAsync(Ct);
        return host;
    }

    private async Task StopAsync(IHost host)
    {
        _hosts.Remove(host);
        try
        {
            await host.StopAsync(Ct);
        }
        finally
        {
            await ((IAsyncDisposable)host).DisposeAsync();
        }
    }

    /// <summary>
    /// The first membership view of <paramref name="silo"/>, from its current one on, that meets
    /// <paramref name="condition"/>; fails naming <paramref name="phase"/> after <see cref="PhaseTimeout"/>.
    /// </summary>
    private static async Task WaitForMembershipAsync(IHost silo, string phase, Func<ClusterMembershipSnapshot, bool> condition)
    {
        var membership = silo.Services.GetRequiredService<IClusterMembershipService>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(PhaseTimeout);
        var last = membership.CurrentSnapshot;
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(timeout.Token))
            {
                last = snapshot;
                if (condition(snapshot))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
        }

        var seen = string.Join(", ", last.Members.Values.Select(m => $"{m.Name} {m.SiloAddress} {m.Status}"));
        Assert.Fail($"{phase}: not within {PhaseTimeout.TotalSeconds:0} s; last membership seen: {seen}");
    }

    private static HashSet<SiloAddress> ActiveSilos(ClusterMembershipSnapshot snapshot) =>
        snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToHashSet();

    private static Uri GatewayUri(SiloAddress silo, int gatewayPort) =>
        SiloAddress.New(silo.Endpoint.Address, gatewayPort, silo.Generation).ToGatewayUri();

    /// <summary>Distinct free loopback ports: each bound to port 0 until all are picked, then released.</summary>
    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        try
        {
            foreach (var listener in listeners)
            {
                listener.Start();
            }

            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
