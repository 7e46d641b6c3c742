using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// What differs between the two providers. Everything else, every query included, is shared by
/// <see cref="SqlStore"/>.
/// </summary>
public abstract class SqlDialect
{
    /// <summary><c>sqlite</c> or <c>postgres</c>.</summary>
    public abstract string Name { get; }

    /// <summary>The row-lock suffix of a <c>SELECT</c> inside a write transaction.</summary>
    public abstract string ForUpdate { get; }

    /// <summary>Whether <paramref name="error"/> is a unique or primary-key violation.</summary>
    public abstract bool IsUniqueViolation(Exception error);

    /// <summary>Runs once per opened connection.</summary>
    public virtual Task PrepareConnectionAsync(DbConnection connection, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Taken around every write transaction; null when the database serialises writers itself.</summary>
    public virtual ValueTask<IDisposable?> EnterWriteAsync(CancellationToken cancellationToken) => ValueTask.FromResult<IDisposable?>(null);

    /// <summary>Runs before migrations, outside any transaction.</summary>
    public virtual Task BeforeMigrationsAsync(DbConnection connection, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A statement that makes concurrent migrators wait for each other, inside the migration transaction.</summary>
    public virtual string? MigrationLockSql => null;

    /// <summary>
    /// The statement that announces a change to the other nodes at commit (parameters <c>@Channel</c>
    /// and <c>@Payload</c>); null where one process owns the database.
    /// </summary>
    public virtual string? NotifySql => null;
}

/// <summary>
/// SQLite: one file, one writer. Writes are queued on a process-wide lock instead of spinning on
/// SQLITE_BUSY; <c>BEGIN IMMEDIATE</c> (Microsoft.Data.Sqlite's default) takes the file's write lock.
/// </summary>
public sealed class SqliteDialect(string synchronous) : SqlDialect
{
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly string _pragmas = $"PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 30000;";

    public override string Name => "sqlite";

    public override string ForUpdate => "";

    public override bool IsUniqueViolation(Exception error) => error is SqliteException { SqliteErrorCode: 19 };

    public override async Task PrepareConnectionAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = _pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public override async ValueTask<IDisposable?> EnterWriteAsync(CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        return new Releaser(_writer);
    }

    public override async Task BeforeMigrationsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        public void Dispose() => semaphore.Release();
    }
}

/// <summary>PostgreSQL: row locks decide between nodes; an advisory lock serialises migrations.</summary>
public sealed class PostgresDialect : SqlDialect
{
    public override string Name => "postgres";

    public override string ForUpdate => " FOR UPDATE";

    public override bool IsUniqueViolation(Exception error) => error is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public override string MigrationLockSql => "SELECT pg_advisory_xact_lock(4242424201)";

    public override string NotifySql => "SELECT pg_notify(@Channel, @Payload)";
}
