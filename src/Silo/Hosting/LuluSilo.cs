using System.Net;
using LuluClaw.Silo.Cluster;
using LuluClaw.Silo.Storage;
using Microsoft.Extensions.AI;
using Orleans.Dashboard;
using Orleans.Serialization;
using Orleans.Configuration;

namespace LuluClaw.Silo.Hosting;

/// <summary>
/// Settings of the Orleans cluster (<c>Cluster</c> section). One silo on SQLite uses them for its
/// ports only; on PostgreSQL every silo that names the same <see cref="Id"/> and database joins one cluster.
/// </summary>
public sealed class ClusterSettings
{
    /// <summary>The port silos talk to each other on (<c>Cluster:SiloPort</c>, default 11111).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>The port Orleans clients connect to (<c>Cluster:GatewayPort</c>, default 30000); 0 opens none.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other silos reach this one at (<c>Cluster:AdvertisedAddress</c>, default 127.0.0.1).</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>The cluster's id (<c>Cluster:Id</c>, default <c>luluclaw</c>): silos with the same id and database form one cluster.</summary>
    public string Id { get; set; } = "luluclaw";

    /// <summary>Reads the section, with the defaults for what it leaves out.</summary>
    public static ClusterSettings From(IConfiguration configuration) => configuration.GetSection("Cluster").Get<ClusterSettings>() ?? new();
}

/// <summary>How LuluClaw runs its grains on Orleans: clustering, failure detection, collection, timeouts.</summary>
public static class LuluSilo
{
    /// <summary>The service id: the same for every LuluClaw cluster, so grain identities never change with <see cref="ClusterSettings.Id"/>.</summary>
    public const string ServiceId = "luluclaw";

    /// <summary>
    /// Configures <paramref name="silo"/> from <paramref name="configuration"/>: on SQLite one silo with
    /// localhost clustering; on PostgreSQL ADO.NET clustering on the same database as LuluClaw's data,
    /// with membership tuned to declare a dead silo within about a second and a half.
    /// </summary>
    public static ISiloBuilder ConfigureLuluClaw(this ISiloBuilder silo, IConfiguration configuration)
    {
        var cluster = ClusterSettings.From(configuration);
        var (storage, connectionString) = StorageOptions.From(configuration);
        if (storage.Provider == "sqlite")
        {
            // One process owns the SQLite file, so one silo is the whole cluster.
            silo.UseLocalhostClustering(cluster.SiloPort, cluster.GatewayPort, serviceId: ServiceId, clusterId: cluster.Id);
        }
        else
        {
            silo.UsePostgresClustering(connectionString);
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.Id;
                o.ServiceId = ServiceId;
            });
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = IPAddress.Parse(cluster.AdvertisedAddress);
                o.SiloPort = cluster.SiloPort;
                o.GatewayPort = cluster.GatewayPort;
                // Listen on every address, so a silo behind NAT or in a container is reachable at the advertised one.
                o.SiloListeningEndpoint = new IPEndPoint(IPAddress.Any, cluster.SiloPort);
                o.GatewayListeningEndpoint = cluster.GatewayPort == 0 ? null : new IPEndPoint(IPAddress.Any, cluster.GatewayPort);
            });
        }

        silo.Configure<ClusterMembershipOptions>(o =>
        {
            // Orleans' defaults take about 14 s to declare a silo dead (three missed 5 s probes), and
            // every session that lived there is unreachable meanwhile. A chat service would rather
            // probe often: three missed probes of 400 ms, two votes, and the table read every 2 s
            // (gossip usually tells sooner). On loopback or a LAN a probe answers in well under a
            // millisecond, so 400 ms leaves a wide margin before a busy silo is taken for dead.
            o.ProbeTimeout = TimeSpan.FromMilliseconds(400);
            o.NumMissedProbesLimit = 3;
            o.NumVotesForDeathDeclaration = 2;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(10);
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(10);
        });
        silo.Configure<ClusterMembershipOptions>(configuration.GetSection("Cluster:Membership"));
        return silo.ConfigureLuluGrains(configuration);
    }

    /// <summary>
    /// How LuluClaw's grains run on <paramref name="silo"/>, whatever its clustering: when idle
    /// activations are collected and how long a grain call may take. Test clusters, which bring
    /// their own clustering, use it too.
    /// </summary>
    public static ISiloBuilder ConfigureLuluGrains(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.Configure<GrainCollectionOptions>(o =>
        {
            o.CollectionAge = configuration.GetValue("Actors:IdleTimeout", TimeSpan.FromMinutes(10));
            o.CollectionQuantum = TimeSpan.FromSeconds(Math.Clamp(o.CollectionAge.TotalSeconds / 4, 1, 60));
        });

        // A grain call waits at most for the model call it may be making (Llm:TimeoutSeconds) plus
        // the database's share; Orleans' own default of 30 s would cut a slow model's turn short.
        // A call that times out is cancelled in the grain too (Orleans leaves it running by default):
        // a turn still waiting for its session (behind a long stream, say) would otherwise run, be
        // charged and be stored after its caller was told it failed, and come back as a duplicate
        // when the client retries the 503.
        var modelTimeout = TimeSpan.FromSeconds(configuration.GetValue("Llm:TimeoutSeconds", 60.0));
        silo.Configure<SiloMessagingOptions>(o =>
        {
            o.ResponseTimeout = modelTimeout + TimeSpan.FromSeconds(30);
            o.CancelRequestOnTimeout = true;
        });
        silo.Services.AddSerializer(serializer => serializer.AddChatTypeCodecs());
        if (WebApi.WebApiEndpoints.DashboardEnabled(configuration))
        {
            silo.AddDashboard();
        }

        return silo;
    }

    /// <summary>
    /// Lets Microsoft.Extensions.AI's chat types (<c>ChatMessage</c>, its contents, <c>ChatOptions</c>,
    /// usage) cross a grain boundary: Orleans has no codec of its own for them, so they travel as JSON
    /// with the library's own options (<see cref="AIJsonUtilities.DefaultOptions"/>), which know every
    /// content type by its discriminator rather than by a .NET type name.
    /// </summary>
    /// <remarks>
    /// No grain contract takes them today (a turn crosses boundaries as LuluClaw's own records); this
    /// is for the contracts that will, such as tools and handoffs.
    /// </remarks>
    public static ISerializerBuilder AddChatTypeCodecs(this ISerializerBuilder serializer) =>
        serializer.AddJsonSerializer(
            isSupported: type => type.Namespace == typeof(ChatMessage).Namespace && type.Assembly == typeof(ChatMessage).Assembly,
            jsonSerializerOptions: AIJsonUtilities.DefaultOptions);
}
