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

/// <summary>
/// Every store of one database, over one <see cref="Storage.Database"/>: made once per process by
/// <see cref="StorageServiceCollectionExtensions.CreateSqlite"/> or
/// <see cref="StorageServiceCollectionExtensions.CreatePostgres"/>.
/// </summary>
public sealed class LuluStorage : IAsyncDisposable
{
    private readonly PostgresAdmissions? _admissions;
    private readonly PostgresCommits? _commits;
    private readonly NpgsqlDataSource? _admissionPool;

    /// <param name="postgres">On PostgreSQL: the pool of every write, and the admissions' own (see <see cref="PostgresAdmissions"/>).</param>
    public LuluStorage(Database database, (NpgsqlDataSource Writes, NpgsqlDataSource Admissions)? postgres = null, string? nodeId = null)
    {
        Database = database;
        if (postgres is { } pools)
        {
            _admissionPool = pools.Admissions;
            _admissions = new PostgresAdmissions(pools.Admissions);
            _commits = new PostgresCommits(pools.Writes);
        }

        Changes = new ClusterChangeLog(database, nodeId);
        Tenants = new TenantStore(database, Changes);
        Ledger = new TurnLedger(database, _admissions);
        Conversations = new ConversationStore(database, _commits);
        RequestCounter = new RequestCounter(database);
        KeyRing = new KeyRingStore(database);
        Knowledge = new KnowledgeStore(database);
    }

    public Database Database { get; }

    public ClusterChangeLog Changes { get; }

    public TenantStore Tenants { get; }

    public TurnLedger Ledger { get; }

    public ConversationStore Conversations { get; }

    public RequestCounter RequestCounter { get; }

    public KeyRingStore KeyRing { get; }

    public KnowledgeStore Knowledge { get; }

    /// <summary>Sends what waits in the batches and the group commit, then closes the pool.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_admissions is not null)
        {
            await _admissions.DisposeAsync().ConfigureAwait(false);
        }

        if (_commits is not null)
        {
            await _commits.DisposeAsync().ConfigureAwait(false);
        }

        if (_admissionPool is not null)
        {
            await _admissionPool.DisposeAsync().ConfigureAwait(false);
        }

        await Database.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Registers the configured storage provider.</summary>
public static class StorageServiceCollectionExtensions
{
    /// <summary>Adds every store (<see cref="LuluStorage"/>) behind its interface, over SQLite or PostgreSQL.</summary>
    public static IServiceCollection AddLuluStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(_ =>
        {
            var (options, connectionString) = StorageOptions.From(configuration);
            return options.Provider == "sqlite"
                ? CreateSqlite(connectionString, options.SqliteSynchronous)
                : CreatePostgres(connectionString, options.TimeoutSeconds);
        });
        services.AddSingleton(sp => sp.GetRequiredService<LuluStorage>().Database);
        services.AddSingleton(sp => sp.GetRequiredService<LuluStorage>().Changes);
        services.AddSingleton(sp => sp.GetRequiredService<LuluStorage>().KeyRing);
        services.AddSingleton<ITenantStore>(sp => sp.GetRequiredService<LuluStorage>().Tenants);
        services.AddSingleton<ITurnLedger>(sp => sp.GetRequiredService<LuluStorage>().Ledger);
        services.AddSingleton<IConversationStore>(sp => sp.GetRequiredService<LuluStorage>().Conversations);
        services.AddSingleton<IRequestCounter>(sp => sp.GetRequiredService<LuluStorage>().RequestCounter);
        services.AddSingleton<IKnowledgeStore>(sp => sp.GetRequiredService<LuluStorage>().Knowledge);
        services.AddSingleton<SchemaMigrator>();
        services.AddHostedService<AbandonedTurnReaper>();
        services.AddOptions<ChangeFeedOptions>().Bind(configuration.GetSection("Cluster"));
        services.AddHostedService<ClusterChangeFeed>();

        return services;
    }

    /// <summary>The stores over a SQLite file (its folder is created), in WAL mode.</summary>
    public static LuluStorage CreateSqlite(string connectionString, string synchronous = "FULL")
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DataSource is { Length: > 0 } path && path != ":memory:" && Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder)
        {
            Directory.CreateDirectory(folder);
        }

        builder.Pooling = true;
        DbDataSource dataSource = SqliteFactory.Instance.CreateDataSource(builder.ConnectionString);
        return new LuluStorage(new Database(dataSource, new SqliteDialect(synchronous)));
    }

    /// <summary>The stores over PostgreSQL; connecting and each statement give up after <paramref name="timeoutSeconds"/>.</summary>
    public static LuluStorage CreatePostgres(string connectionString, int timeoutSeconds = 5, string? nodeId = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = timeoutSeconds, CommandTimeout = timeoutSeconds };
        if (builder.MaxAutoPrepare == 0)
        {
            // Every turn runs the same few statements: prepared once per pooled connection, PostgreSQL
            // skips parsing and planning them on each turn. A connection string's own value wins.
            builder.MaxAutoPrepare = 32;
        }

        // No store leaves session state on a connection (transactions say SET LOCAL; the migration
        // lock is a transaction's; the change feed's LISTEN has a connection of its own), so a
        // connection going back to the pool needs no reset: Npgsql's reset is seven statements
        // sent ahead of the next use, on every batch and every read.
        builder.NoResetOnClose = true;
        var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);

        // The admissions' own pool: their transactions commit without waiting for the flush (see
        // PostgresAdmissions), set once per connection instead of once per transaction.
        builder.Options = $"{builder.Options} -c synchronous_commit=off".Trim();
        var admissions = NpgsqlDataSource.Create(builder.ConnectionString);
        return new LuluStorage(new Database(dataSource, new PostgresDialect()), (dataSource, admissions), nodeId);
    }
}
