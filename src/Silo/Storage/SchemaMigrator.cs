using System.Data.Common;
using System.Reflection;
using Microsoft.Extensions.Logging.Abstractions;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Creates and migrates the schema on start from the embedded <c>Schema/NNNN_*.sql</c> scripts, each
/// applied once, in order, in its own transaction. Several nodes starting together on PostgreSQL
/// queue on an advisory lock.
/// </summary>
/// <remarks>
/// A script is named <c>NNNN_words.sql</c> and runs on every provider, or <c>NNNN_words.PROVIDER.sql</c>
/// (<c>PROVIDER</c> one of the <see cref="SqlDialect.Name"/>s: <c>sqlite</c>, <c>postgres</c>) and runs on
/// that provider only; elsewhere it is skipped and not recorded as applied. The versions <c>NNNN</c>
/// are one sequence across all scripts, whatever their provider: no two scripts share a version.
/// A PostgreSQL-only script is for what only a cluster needs, such as Orleans' clustering tables
/// (<c>0007_orleans_clustering.postgres.sql</c>); SQLite runs a single silo and needs none of it.
/// </remarks>
public sealed partial class SchemaMigrator(Database store, ILogger<SchemaMigrator>? logger = null)
{
    // The names of the dialects (SqlDialect.Name), as they appear in script names.
    private const string SqliteProvider = "sqlite";
    private const string PostgresProvider = "postgres";

    /// <summary>
    /// <see cref="MigrateAsync"/>, waiting for the database while it cannot be reached (a node may
    /// start before PostgreSQL does), retrying every few seconds until <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task<int> MigrateWhenReachableAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await MigrateAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DbException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                Log.DatabaseUnreachable(logger ?? NullLogger<SchemaMigrator>.Instance, attempt, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Applies every script of this provider not applied yet; returns how many ran.</summary>
    public async Task<int> MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenWriterAsync(cancellationToken).ConfigureAwait(false);
        await store.Dialect.BeforeMigrationsAsync(connection, cancellationToken).ConfigureAwait(false);

        // Under the lock too: two PostgreSQL sessions creating the same table at once can both pass
        // IF NOT EXISTS, and the second then fails on the catalog's unique index.
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await LockAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
            await Statements.ExecuteAsync(connection, transaction,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)", cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        var applied = 0;
        foreach (var (version, _, sql) in Scripts().Where(s => s.Provider is null || s.Provider == store.Dialect.Name))
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await LockAsync(connection, transaction, cancellationToken).ConfigureAwait(false);

            var done = await Statements.ScalarAsync(connection, transaction,
                "SELECT COUNT(*) FROM schema_migrations WHERE version = @Version", cancellationToken, ("Version", version)).ConfigureAwait(false);
            if (done == 0)
            {
                await Statements.ExecuteAsync(connection, transaction, sql, cancellationToken).ConfigureAwait(false);
                await Statements.ExecuteAsync(connection, transaction,
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (@Version, @Now)", cancellationToken,
                    ("Version", version), ("Now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())).ConfigureAwait(false);
                applied++;
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return applied;
    }

    private async Task LockAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        if (store.Dialect.MigrationLockSql is { } lockSql)
        {
            await Statements.ExecuteAsync(connection, transaction, lockSql, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every embedded script in version order, with the provider it is limited to (null: all).</summary>
    internal static IReadOnlyList<(long Version, string? Provider, string Sql)> Scripts()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        const string Folder = "LuluClaw.Silo.Storage.Schema.";
        var scripts = new List<(long Version, string? Provider, string Sql)>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Folder, StringComparison.Ordinal)))
        {
            var (version, provider) = ParseScriptName(name[Folder.Length..]);
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
            scripts.Add((version, provider, reader.ReadToEnd()));
        }

        scripts.Sort((x, y) => x.Version.CompareTo(y.Version));
        for (var i = 1; i < scripts.Count; i++)
        {
            if (scripts[i].Version == scripts[i - 1].Version)
            {
                throw new InvalidOperationException($"Two schema scripts have version {scripts[i].Version}: the versions are one sequence across providers.");
            }
        }

        return scripts;
    }

    /// <summary>
    /// The version and provider of a script named <c>NNNN_words.sql</c> (provider null) or
    /// <c>NNNN_words.PROVIDER.sql</c>; throws for any other name, so that a misspelt provider cannot
    /// make a script run everywhere or nowhere.
    /// </summary>
    internal static (long Version, string? Provider) ParseScriptName(string file)
    {
        var parts = file.Split('.');
        var underscore = parts[0].IndexOf('_', StringComparison.Ordinal);
        if (parts is not [_, "sql"] and not [_, _, "sql"] || underscore <= 0
            || !long.TryParse(parts[0].AsSpan(0, underscore), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
        {
            throw new InvalidOperationException($"Schema script '{file}' is not named NNNN_words.sql or NNNN_words.PROVIDER.sql.");
        }

        if (parts.Length == 2)
        {
            return (version, null);
        }

        return parts[1] is SqliteProvider or PostgresProvider
            ? (version, parts[1])
            : throw new InvalidOperationException($"Schema script '{file}' names provider '{parts[1]}'; use '{SqliteProvider}' or '{PostgresProvider}'.");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "The database cannot be reached yet (attempt {Attempt}): {Reason}; retrying")]
        public static partial void DatabaseUnreachable(ILogger logger, int attempt, string reason);
    }
}
