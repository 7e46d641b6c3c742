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

    /// <summary>The row-lock suffix of a <c>SELECT</c> inside a write transaction, locking the rows of table alias <paramref name="alias"/>.</summary>
    public abstract string ForUpdateOf(string alias);

    /// <summary>Whether <paramref name="error"/> is a unique or primary-key violation.</summary>
    public abstract bool IsUniqueViolation(Exception error);

    /// <summary>Runs on each connection opened to write (the group-commit writer's, a migration's); readers need nothing.</summary>
    public virtual Task PrepareWriterAsync(DbConnection connection, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Whether writes go through one writer that commits them in groups (<see cref="GroupCommitWriter"/>):
    /// for a database with a single writer, where each commit costs an fsync. Otherwise each write is
    /// its own transaction and the database arbitrates between them.
    /// </summary>
    public virtual bool GroupCommits => false;

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
/// SQLite: one file, one writer. Writes queue for the process's one writer, which commits them in
/// groups (one fsync per group) instead of spinning on SQLITE_BUSY; <c>BEGIN IMMEDIATE</c>
/// (Microsoft.Data.Sqlite's default) takes the file's write lock.
/// </summary>
public sealed class SqliteDialect(string synchronous) : SqlDialect
{
    // The writer's page cache holds the hot part of the tables and indexes (64 MiB). Readers keep
    // SQLite's defaults: a reader's cache is dropped whenever the writer commits, so a big one only
    // costs time to empty, and SQLite's default synchronous (FULL) only concerns writers.
    private readonly string _writerPragmas = $"PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 30000; PRAGMA cache_size = -65536;";

    public override string Name => "sqlite";

    public override string ForUpdateOf(string alias) => ""; // BEGIN IMMEDIATE holds the whole file

    public override bool IsUniqueViolation(Exception error) => error is SqliteException { SqliteErrorCode: 19 };

    public override async Task PrepareWriterAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = _writerPragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public override bool GroupCommits => true;

    public override async Task BeforeMigrationsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

}

/// <summary>PostgreSQL: row locks decide between nodes; an advisory lock serialises migrations.</summary>
public sealed class PostgresDialect : SqlDialect
{
    public override string Name => "postgres";

    public override string ForUpdateOf(string alias) => $" FOR UPDATE OF {alias}";

    public override bool IsUniqueViolation(Exception error) => error is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public override string MigrationLockSql => "SELECT pg_advisory_xact_lock(4242424201)";

    public override string NotifySql => "SELECT pg_notify(@Channel, @Payload)";
}
