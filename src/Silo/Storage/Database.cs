using System.Data.Common;

namespace LuluClaw.Silo.Storage;

/// <summary>When a write is answered.</summary>
public enum WriteDurability
{
    /// <summary>Once it is on disk: what is acknowledged to a client must survive a crash.</summary>
    Durable,

    /// <summary>
    /// Once every later read and write of the database sees it, before it is on disk. Only for a
    /// write that a later durable write of the same database checks before anything is acknowledged
    /// (a turn's admission, checked by the turn's commit or refund): the log is flushed in order, so
    /// that write's flush makes this one durable too, and a crash before it forgets both.
    /// </summary>
    Visible,
}

/// <summary>
/// The connection and transaction discipline every store shares: reads on a pooled connection of
/// their own; writes in a transaction that is committed before the call returns, answered as
/// <see cref="WriteDurability"/> says.
/// </summary>
/// <remarks>
/// How a write reaches the database is the provider's business and no store's: on SQLite (one
/// writer) every write joins the group-commit writer's queue (<see cref="GroupCommitWriter"/>), and
/// a store's write looks exactly like its own transaction; on PostgreSQL each write is its own
/// transaction and the database arbitrates. The turn path on PostgreSQL batches many turns' writes
/// in one statement on top of this (<see cref="PostgresAdmissions"/>, <see cref="PostgresCommits"/>).
/// </remarks>
public sealed class Database(DbDataSource dataSource, SqlDialect dialect) : IAsyncDisposable
{
    private GroupCommitWriter? _groupCommit;

    /// <summary>The provider's dialect.</summary>
    public SqlDialect Dialect => dialect;

    /// <summary>Finishes the writes queued for the next group commit, then closes the writer.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_groupCommit is not null)
        {
            await _groupCommit.DisposeAsync().ConfigureAwait(false);
        }

        await dataSource.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>A connection to read with.</summary>
    internal ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) => dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>A connection to write with, set up as the dialect wants its writers.</summary>
    internal async Task<DbConnection> OpenWriterAsync(CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await dialect.PrepareWriterAsync(connection, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <paramref name="read"/> on a connection of its own; it sees every write already answered.</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        // SQLite answers a visible write before its group commits: a read waits for that commit.
        if (_groupCommit?.AnsweredWritesCommitted is { IsCompleted: false } committed)
        {
            await committed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await read(connection).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction and returns once it is committed (and, if
    /// <paramref name="durability"/> is <see cref="WriteDurability.Durable"/>, on disk). If it throws,
    /// it leaves nothing behind and its caller gets the exception.
    /// </summary>
    public Task<T> WriteAsync<T>(
        Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, WriteDurability durability = WriteDurability.Durable) =>
        dialect.GroupCommits
            ? (_groupCommit ?? GroupCommit()).WriteAsync(work, cancellationToken, durability)
            : WriteAloneAsync(work, durability, cancellationToken);

    /// <summary>The group-commit writer, made on the first write; after that, finding it allocates nothing (a lambda per write was 0.8% of the bytes a turn allocates).</summary>
    private GroupCommitWriter GroupCommit() =>
        LazyInitializer.EnsureInitialized(ref _groupCommit, () => new GroupCommitWriter(OpenWriterAsync, dialect.OpenCommitFlush));

    /// <summary>One write in its own transaction; a <see cref="WriteDurability.Visible"/> one commits without waiting for its flush (<see cref="SqlDialect.EarlyCommitSql"/>).</summary>
    private async Task<T> WriteAloneAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, WriteDurability durability, CancellationToken cancellationToken)
    {
        await using var connection = await OpenWriterAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (durability == WriteDurability.Visible && dialect.EarlyCommitSql is { } early)
        {
            await Statements.ExecuteAsync(connection, transaction, early, cancellationToken).ConfigureAwait(false);
        }

        var result = await work(connection, transaction).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// <see cref="WriteAsync{T}"/>, with a unique-key violation thrown as <paramref name="duplicate"/>'s
    /// exception instead of the provider's.
    /// </summary>
    public async Task<T> WriteUniqueAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, Func<Exception, Exception> duplicate, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteAsync(work, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (dialect.IsUniqueViolation(e))
        {
            throw duplicate(e);
        }
    }
}
