using System.Data.Common;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Cluster;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace LuluClaw.Silo.Storage;

/// <summary>Settings of storage (<c>Storage</c> section and <c>ConnectionStrings:LuluClaw</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>The SQLite file used when no connection string is given.</summary>
    public const string DefaultSqlitePath = "./data/luluclaw.db";

    /// <summary><c>sqlite</c> (default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>
    /// PostgreSQL: how long to wait for a connection or a statement before giving up (default 5 s), so
    /// that requests fail fast with 503 while the database is unreachable instead of hanging.
    /// </summary>
    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>SQLite's <c>synchronous</c> pragma: FULL (default) makes every acknowledged turn survive power loss too.</summary>
    public string SqliteSynchronous { get; set; } = "FULL";

    /// <summary>Reads the options and the connection string; throws a clear error for an unknown provider.</summary>
    public static (StorageOptions Options, string ConnectionString) From(IConfiguration configuration)
    {
        var options = configuration.GetSection("Storage").Get<StorageOptions>() ?? new StorageOptions();
        options.Provider = options.Provider.Trim().ToLowerInvariant();
        var connectionString = configuration.GetConnectionString("LuluClaw");
        connectionString = options.Provider switch
        {
            "sqlite" => string.IsNullOrWhiteSpace(connectionString) ? $"Data Source={DefaultSqlitePath}" : connectionString,
            "postgres" or "postgresql" => string.IsNullOrWhiteSpace(connectionString)
                ? throw new InvalidOperationException("Storage:Provider is postgres but ConnectionStrings:LuluClaw is empty.")
                : connectionString,
            _ => throw new InvalidOperationException($"Storage:Provider '{options.Provider}' is not known; use 'sqlite' or 'postgres'."),
        };
        return (options, connectionString);
    }
}

/// <summary>Registers the configured storage provider.</summary>
public static class StorageServiceCollectionExtensions
{
    /// <summary>Adds <see cref="SqlStore"/> behind every store interface, over SQLite or PostgreSQL.</summary>
    public static IServiceCollection AddLuluStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(_ =>
        {
            var (options, connectionString) = StorageOptions.From(configuration);
            return options.Provider == "sqlite"
                ? CreateSqlite(connectionString, options.SqliteSynchronous)
                : CreatePostgres(connectionString, options.TimeoutSeconds);
        });
        services.AddSingleton<ITenantStore>(sp => sp.GetRequiredService<SqlStore>());
        services.AddSingleton<ITurnLedger>(sp => sp.GetRequiredService<SqlStore>());
        services.AddSingleton<IConversationStore>(sp => sp.GetRequiredService<SqlStore>());
        services.AddSingleton<IRequestCounter>(sp => sp.GetRequiredService<SqlStore>());
        services.AddSingleton<SchemaMigrator>();
        services.AddHostedService<AbandonedTurnReaper>();
        services.AddOptions<ChangeFeedOptions>().Bind(configuration.GetSection("Cluster"));
        services.AddHostedService<ClusterChangeFeed>();

        return services;
    }

    /// <summary>A store over a SQLite file (its folder is created), in WAL mode.</summary>
    public static SqlStore CreateSqlite(string connectionString, string synchronous = "FULL")
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DataSource is { Length: > 0 } path && path != ":memory:" && Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder)
        {
            Directory.CreateDirectory(folder);
        }

        builder.Pooling = true;
        DbDataSource dataSource = SqliteFactory.Instance.CreateDataSource(builder.ConnectionString);
        return new SqlStore(dataSource, new SqliteDialect(synchronous));
    }

    /// <summary>A store over PostgreSQL; connecting and each statement give up after <paramref name="timeoutSeconds"/>.</summary>
    public static SqlStore CreatePostgres(string connectionString, int timeoutSeconds = 5)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = timeoutSeconds, CommandTimeout = timeoutSeconds };
        if (builder.MaxAutoPrepare == 0)
        {
            // Every turn runs the same few statements: prepared once per pooled connection, PostgreSQL
            // skips parsing and planning them on each turn. A connection string's own value wins.
            builder.MaxAutoPrepare = 32;
        }

        return new(NpgsqlDataSource.Create(builder.ConnectionString), new PostgresDialect());
    }
}
