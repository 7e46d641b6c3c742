using System.Data.Common;
using System.Reflection;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Creates and migrates the schema on start from the embedded <c>Schema/NNNN_*.sql</c> scripts, each
/// applied once, in order, in its own transaction. Several nodes starting together on PostgreSQL
/// queue on an advisory lock.
/// </summary>
public sealed partial class SchemaMigrator(SqlStore store, ILogger<SchemaMigrator>? logger = null)
{
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

    /// <summary>Applies every script not applied yet; returns how many ran.</summary>
    public async Task<int> MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenWriterAsync(cancellationToken).ConfigureAwait(false);
        await store.Dialect.BeforeMigrationsAsync(connection, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            cancellationToken: cancellationToken)).ConfigureAwait(false);

        var applied = 0;
        foreach (var (version, sql) in Scripts())
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            if (store.Dialect.MigrationLockSql is { } lockSql)
            {
                await connection.ExecuteAsync(new CommandDefinition(lockSql, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            var done = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = @Version", new { Version = version }, transaction,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (done == 0)
            {
                await connection.ExecuteAsync(new CommandDefinition(sql, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (@Version, @Now)",
                    new { Version = version, Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, transaction,
                    cancellationToken: cancellationToken)).ConfigureAwait(false);
                applied++;
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return applied;
    }

    private static IEnumerable<(long Version, string Sql)> Scripts()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        const string Folder = "LuluClaw.Silo.Storage.Schema.";
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Folder, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var file = name[Folder.Length..];
            var version = long.Parse(file[..file.IndexOf('_')], System.Globalization.CultureInfo.InvariantCulture);
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
            yield return (version, reader.ReadToEnd());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "The database cannot be reached yet (attempt {Attempt}): {Reason}; retrying")]
        public static partial void DatabaseUnreachable(ILogger logger, int attempt, string reason);
    }
}
