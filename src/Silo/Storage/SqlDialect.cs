using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
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

    /// <summary>
    /// For the group-commit writer, after the first commit on <paramref name="writer"/>: how to make
    /// its commits durable when they are not when they return (see <see cref="GroupCommitWriter"/>);
    /// null if they are.
    /// </summary>
    internal virtual ICommitFlush? OpenCommitFlush(DbConnection writer) => null;

    /// <summary>
    /// A statement that lets a write transaction's commit return before it is flushed, for the writes
    /// answered before they are durable (a turn's admission: the turn's own commit, flushed, comes
    /// later in the same log and makes it durable). Null where group commit already answers those
    /// early (<see cref="GroupCommits"/>).
    /// </summary>
    public virtual string? EarlyCommitSql => null;

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
/// <remarks>
/// With <c>synchronous</c> FULL (or EXTRA) and the database in WAL mode, the writer's connection runs
/// with NORMAL, which writes the log at each commit but syncs it only around checkpoints, and the
/// group-commit writer syncs the log itself after each group (<see cref="WalFlush"/>), off the
/// writer's path. A write is still answered only once its commit is on disk, as with FULL.
/// </remarks>
public sealed class SqliteDialect(string synchronous) : SqlDialect
{
    // The writer reads the database file through a memory map (up to SQLite's limit of 2 GiB) and
    // keeps SQLite's default page cache (2 MiB), which then holds only the pages the log has newer
    // copies of. A big cache cost more than it saved: every commit trims it (pcache1Truncate), and
    // that scan grows with the cache; with a 64 MiB cache it was a twentieth of the process's CPU,
    // and the map makes a miss a memory read instead of a system call. Readers keep SQLite's
    // defaults: a reader's cache is dropped whenever the writer commits, so a big one only costs
    // time to empty, and SQLite's default synchronous (FULL) only concerns writers.
    private const string WriterPragmas = "PRAGMA busy_timeout = 30000; PRAGMA mmap_size = 2147483648;";

    private readonly bool _flushesItself = synchronous.Trim().ToUpperInvariant() is "FULL" or "EXTRA" or "2" or "3";

    public override string Name => "sqlite";

    public override string ForUpdateOf(string alias) => ""; // BEGIN IMMEDIATE holds the whole file

    public override bool IsUniqueViolation(Exception error) => error is SqliteException { SqliteErrorCode: 19 };

    public override async Task PrepareWriterAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        var lowered = false;
        if (_flushesItself)
        {
            command.CommandText = "PRAGMA journal_mode;";
            lowered = await command.ExecuteScalarAsync(cancellationToken) is "wal";
        }

        // Lowered, the group-commit writer syncs the log after each group (WalFlush), and runs the
        // checkpoints between groups instead of SQLite on whichever commit crosses the line.
        command.CommandText = lowered
            ? $"PRAGMA synchronous = NORMAL; {WriterPragmas} PRAGMA wal_autocheckpoint = 0;"
            : $"PRAGMA synchronous = {synchronous}; {WriterPragmas}";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public override bool GroupCommits => true;

    internal override ICommitFlush? OpenCommitFlush(DbConnection writer)
    {
        if (!_flushesItself || writer is not SqliteConnection { DataSource: { Length: > 0 } path })
        {
            return null;
        }

        // Only where PrepareWriterAsync lowered the level (a WAL database): then this connection's commits are not synced.
        using var command = writer.CreateCommand();
        command.CommandText = "PRAGMA synchronous;";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 1 ? new WalFlush(path + "-wal") : null;
    }

    public override async Task BeforeMigrationsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// A SQLite database's write-ahead log kept by the group-commit writer: its fsync, through a
    /// handle of its own, and its checkpoints. The log keeps its file while a connection is open
    /// (SQLite reuses it from the start after a checkpoint), and the writer opens this after its
    /// first commit on a connection and disposes it with that connection.
    /// </summary>
    private sealed class WalFlush(string path) : ICommitFlush
    {
        // SQLite's own checkpoints come every 1,000 log pages, on the commit that crosses the line,
        // however many writes wait behind it: about every 30 groups of a busy writer, and each one
        // stalls the writer for a few milliseconds. These run after a group when nothing waits, or
        // after four times as many groups if the writer is never idle.
        private const int GroupsPerCheckpoint = 32;
        private const int GroupsBeforeBusyCheckpoint = 128;

        private readonly SafeFileHandle _log = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        private int _groups;

        public void Flush() => RandomAccess.FlushToDisk(_log);

        public void AfterGroup(DbConnection writer, bool idle)
        {
            if (++_groups < (idle ? GroupsPerCheckpoint : GroupsBeforeBusyCheckpoint))
            {
                return;
            }

            _groups = 0;
            try
            {
                using var command = writer.CreateCommand();
                command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
                command.ExecuteNonQuery();
            }
            catch (DbException)
            {
                // Not this time: the log grows a little longer, until the next checkpoint's turn comes.
            }
        }

        public void Dispose() => _log.Dispose();
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

    // The admission's row lock on the workspace then goes at commit instead of after the WAL flush.
    public override string EarlyCommitSql => "SET LOCAL synchronous_commit TO OFF";
}
