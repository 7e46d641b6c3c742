using System.Data.Common;
using Npgsql;

namespace LuluClaw.Silo.Hosting;

/// <summary>What Orleans' ADO.NET providers need to find PostgreSQL.</summary>
public static class OrleansAdoNet
{
    /// <summary>The ADO.NET invariant name Orleans knows PostgreSQL by.</summary>
    public const string PostgresInvariant = "Npgsql";

    /// <summary>
    /// Registers Npgsql's <see cref="DbProviderFactory"/> under <see cref="PostgresInvariant"/>, so that
    /// Orleans finds it through <see cref="DbProviderFactories"/> instead of loading an assembly by name.
    /// Safe to call more than once.
    /// </summary>
    public static void RegisterProviders() => DbProviderFactories.RegisterFactory(PostgresInvariant, NpgsqlFactory.Instance);
}
