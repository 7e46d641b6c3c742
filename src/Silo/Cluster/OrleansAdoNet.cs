using Orleans.Hosting;

namespace LuluClaw.Silo.Cluster;

/// <summary>
/// Orleans' ADO.NET clustering (<c>Microsoft.Orleans.Clustering.AdoNet</c>) on LuluClaw's own
/// PostgreSQL database, whose tables and named queries migration
/// <c>Storage/Schema/0007_orleans_clustering.postgres.sql</c> creates: run
/// <see cref="Storage.SchemaMigrator"/> before the silo or client starts.
/// </summary>
/// <remarks>
/// Nothing has to be registered for the invariant <c>"Npgsql"</c>. Orleans 10 does not look in
/// <see cref="System.Data.Common.DbProviderFactories"/>: its own factory lookup maps the invariant to
/// the type <c>Npgsql.NpgsqlFactory</c> in the assembly <c>Npgsql</c>, loads that assembly by name and
/// reads the type's static <c>Instance</c> field. So a
/// <c>DbProviderFactories.RegisterFactory("Npgsql", NpgsqlFactory.Instance)</c> would change nothing;
/// what is needed is that the Npgsql assembly ships with the host, which Silo's package reference
/// ensures. The provider opens its connections from the connection string, in Npgsql's pool for that
/// string, apart from the stores' data source.
/// </remarks>
public static class OrleansAdoNet
{
    /// <summary>The ADO.NET invariant Orleans knows Npgsql by.</summary>
    public const string PostgresInvariant = "Npgsql";

    /// <summary>
    /// Makes the silo keep its membership (and publish its gateway) in the PostgreSQL database of
    /// <paramref name="connectionString"/>.
    /// </summary>
    public static ISiloBuilder UsePostgresClustering(this ISiloBuilder silo, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return silo.UseAdoNetClustering(options =>
        {
            options.Invariant = PostgresInvariant;
            options.ConnectionString = connectionString;
        });
    }

    /// <summary>
    /// Makes the client find the cluster's gateways (its active silos that accept clients) in the
    /// PostgreSQL database of <paramref name="connectionString"/>.
    /// </summary>
    public static IClientBuilder UsePostgresClustering(this IClientBuilder client, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return client.UseAdoNetClustering(options =>
        {
            options.Invariant = PostgresInvariant;
            options.ConnectionString = connectionString;
        });
    }
}
