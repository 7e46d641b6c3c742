using System.Data.Common;
using System.Threading.Channels;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Group commit for a database with one writer (SQLite): every write waits in one queue, and the
/// writer runs all the writes waiting at the time in one transaction, one after the other, then
/// commits them together: one fsync for the batch instead of one per write.
/// </summary>
/// <remarks>
/// Each write behaves as if it had its own transaction: it sees the writes before it, a write that
/// throws leaves nothing behind (the group is rolled back and run again without it), and its task
/// completes only after the commit that made it durable, so nothing is acknowledged before it is on
/// disk. If the commit itself fails, every write of the group fails.
/// <para>
/// The one exception is a write queued with <c>answerBeforeCommit</c>: its task completes as soon as
/// it has run, while its group is still open. That is for a write whose effect a later durable write
/// checks before anything is acknowledged: a turn's admission, which the turn's commit must find
/// still pending (or the turn fails and nothing was charged). Its caller then overlaps the model call
/// with the fsync, and the turn's commit can join the next group instead of the one after. If its
/// group is rolled back because another write threw, it runs again in the same order on the same
/// state, so it decides the same way.
/// </para>
/// <para>
/// While a group is open, writes that arrive meanwhile join it (up to 512) before the commit.
/// </para>
/// </remarks>
internal sealed class GroupCommitWriter : IAsyncDisposable
{
    private const int MaxBatch = 512;

    private readonly Func<CancellationToken, Task<DbConnection>> _open;
    private readonly Channel<WriteOp> _queue = Channel.CreateUnbounded<WriteOp>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private DbConnection? _connection;

    public GroupCommitWriter(Func<CancellationToken, Task<DbConnection>> open)
    {
        _open = open;
        _writer = Task.Run(RunAsync);
    }

    /// <summary>
    /// Queues <paramref name="work"/>; the task completes once the batch that ran it is committed, or
    /// with <paramref name="answerBeforeCommit"/>, once it has run (see the remarks).
    /// </summary>
    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, bool answerBeforeCommit = false)
    {
        var op = new WriteOp<T>(work, answerBeforeCommit, cancellationToken);
        return _queue.Writer.TryWrite(op) ? op.Task : Task.FromException<T>(new ObjectDisposedException(nameof(GroupCommitWriter)));
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task RunAsync()
    {
        var batch = new List<WriteOp>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            TakeWaiting(batch);
            if (batch.Count > 0)
            {
                await RunBatchAsync(batch).ConfigureAwait(false);
            }
        }
    }

    private async Task RunBatchAsync(List<WriteOp> batch)
    {
        // Failures are rare (a duplicate id, a lost append race): rather than a savepoint around every
        // write, a write that throws rolls the group back, gets its error, and the others run again
        // without it, in the same order, so each sees exactly what it would have seen alone.
        var pending = batch;
        while (pending.Count > 0)
        {
            int failed;
            try
            {
                failed = await RunOnceAsync(pending).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // The database itself failed (the disk, the file): nothing of this group is durable.
                foreach (var op in pending)
                {
                    op.Fail(e);
                }

                if (_connection is not null)
                {
                    await _connection.DisposeAsync().ConfigureAwait(false);
                    _connection = null;
                }

                return;
            }

            if (failed < 0)
            {
                foreach (var op in pending)
                {
                    op.Complete();
                }

                return;
            }

            pending[failed].Complete(); // its error: it wrote nothing
            pending = [.. pending.Where((_, i) => i != failed)];
        }
    }

    /// <summary>Moves the writes waiting in the queue into <paramref name="batch"/>, up to its size; the cancelled ones are told and dropped.</summary>
    private void TakeWaiting(List<WriteOp> batch)
    {
        while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var op))
        {
            if (!op.CancelIfRequested())
            {
                batch.Add(op);
            }
        }
    }

    /// <summary>
    /// Runs the writes in one transaction, with those that arrive meanwhile (appended to
    /// <paramref name="pending"/>), and commits it; or, if one throws, rolls back and returns its index.
    /// </summary>
    private async Task<int> RunOnceAsync(List<WriteOp> pending)
    {
        _connection ??= await _open(CancellationToken.None).ConfigureAwait(false);
        await using var transaction = await _connection.BeginTransactionAsync().ConfigureAwait(false);
        for (var i = 0; i < pending.Count; i++)
        {
            try
            {
                await pending[i].RunAsync(_connection, transaction).ConfigureAwait(false);
            }
            catch (Exception e) when (pending[i].Failed(e))
            {
                await transaction.RollbackAsync().ConfigureAwait(false);
                return i;
            }

            if (i == pending.Count - 1)
            {
                TakeWaiting(pending); // writes that arrived meanwhile join the open group
            }
        }

        await transaction.CommitAsync().ConfigureAwait(false);
        return -1;
    }

    /// <summary>One queued write.</summary>
    private abstract class WriteOp
    {
        /// <summary>Runs the write inside the batch's transaction; its outcome is kept until the commit.</summary>
        public abstract Task RunAsync(DbConnection connection, DbTransaction transaction);

        /// <summary>Keeps <paramref name="error"/> as the write's outcome; always true (for use as an exception filter).</summary>
        public abstract bool Failed(Exception error);

        /// <summary>After the commit: hands the caller its result or its own error.</summary>
        public abstract void Complete();

        /// <summary>The batch did not commit.</summary>
        public abstract void Fail(Exception error);

        /// <summary>True, and the caller is told, if the caller gave up before the write ran.</summary>
        public abstract bool CancelIfRequested();
    }

    private sealed class WriteOp<T>(Func<DbConnection, DbTransaction, Task<T>> work, bool answerBeforeCommit, CancellationToken cancellationToken) : WriteOp
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _completion.Task;

        public override async Task RunAsync(DbConnection connection, DbTransaction transaction)
        {
            _error = null;
            _result = await work(connection, transaction).ConfigureAwait(false);
            if (answerBeforeCommit)
            {
                _completion.TrySetResult(_result);
            }
        }

        public override bool Failed(Exception error)
        {
            _error = error;
            return true;
        }

        public override void Complete()
        {
            if (_error is OperationCanceledException canceled)
            {
                _completion.TrySetCanceled(canceled.CancellationToken);
            }
            else if (_error is not null)
            {
                _completion.TrySetException(_error);
            }
            else
            {
                _completion.TrySetResult(_result!);
            }
        }

        public override void Fail(Exception error) => _completion.TrySetException(error);

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);
    }
}
