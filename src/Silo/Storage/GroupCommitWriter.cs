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
/// A write queued with <see cref="WriteDurability.Visible"/> is answered as soon as it has run,
/// while its group is still open: for a write whose effect a later durable write checks before
/// anything is acknowledged (a turn's admission, which the turn's commit must find still pending,
/// or the turn fails and nothing was charged). Its caller overlaps the model call with the rest of
/// the group, its commit and its flush, and the turn's commit can join the next group. Readers do
/// not see the write before the group commits, so <see cref="AnsweredWritesCommitted"/> is what
/// <see cref="Database.ReadAsync"/> waits for first: no read misses a write already answered. If
/// the group is rolled back because another write threw, the write runs again in the same order
/// on the same state, so it decides the same way. (Answered at the commit instead, SQLite's echo
/// chat did 13,685 turns/s against 14,399 answered early, means of three alternating runs.)
/// </para>
/// <para>
/// While a group is open, writes that arrive meanwhile join it (up to 512) before the commit.
/// </para>
/// <para>
/// Where the connection gives an <see cref="ICommitFlush"/> (SQLite in WAL mode: its commits then
/// write the log without syncing it), the fsync leaves the writer: a group's commit hands the group
/// to a flusher, which syncs the log once for every group committed since its last sync and only
/// then answers their writes. The writer meanwhile runs the next group, so the writes waiting for a
/// group (admissions included) no longer wait behind an fsync, and a sync covers several groups
/// when the disk is slow. Durability is the same: a write is answered only after an fsync that
/// started after its commit. Its commit is visible to other connections a little earlier, before
/// it is durable, as it is in any database whose readers see a commit before its flush returns.
/// </para>
/// </remarks>
internal sealed class GroupCommitWriter : IAsyncDisposable
{
    private const int MaxBatch = 512;

    private readonly Func<CancellationToken, Task<DbConnection>> _open;
    private readonly Func<DbConnection, ICommitFlush?> _flushFor;
    private readonly Channel<WriteOp> _queue = Channel.CreateUnbounded<WriteOp>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<Committed> _committed = Channel.CreateUnbounded<Committed>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Task _writer;
    private readonly Task _flusher;
    private DbConnection? _connection;
    private ICommitFlush? _flush;
    private bool _flushAsked;
    private TaskCompletionSource? _earlyAnswered;

    /// <param name="open">Opens the writer's connection (again, after the database failed).</param>
    /// <param name="flushFor">
    /// After the first commit on a connection: how to make its commits durable, or null if a commit
    /// is durable when it returns.
    /// </param>
    public GroupCommitWriter(Func<CancellationToken, Task<DbConnection>> open, Func<DbConnection, ICommitFlush?>? flushFor = null)
    {
        _open = open;
        _flushFor = flushFor ?? (static _ => null);
        _writer = Task.Run(RunAsync);
        _flusher = Task.Run(FlushAsync);
    }

    /// <summary>
    /// Queues <paramref name="work"/>; the task completes once the group that ran it is durable, or
    /// with <see cref="WriteDurability.Visible"/>, once it has run (see the remarks).
    /// </summary>
    public Task<T> WriteAsync<T>(
        Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, WriteDurability durability = WriteDurability.Durable)
    {
        var op = new WriteOp<T>(work, durability == WriteDurability.Visible, cancellationToken);
        return _queue.Writer.TryWrite(op) ? op.Task : Task.FromException<T>(new ObjectDisposedException(nameof(GroupCommitWriter)));
    }

    /// <summary>
    /// Completes once every write answered so far is committed, so visible to readers: at once,
    /// unless the running group has answered a <see cref="WriteDurability.Visible"/> write early.
    /// </summary>
    public Task AnsweredWritesCommitted => Volatile.Read(ref _earlyAnswered)?.Task ?? Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        await CloseConnectionAsync().ConfigureAwait(false);
        _committed.Writer.TryComplete();
        await _flusher.ConfigureAwait(false);
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
                if (_flush is not null && _connection is not null)
                {
                    _flush.AfterGroup(_connection, idle: !_queue.Reader.TryPeek(out _));
                }
            }
        }
    }

    private async Task RunBatchAsync(List<WriteOp> batch)
    {
        // Failures are rare (a duplicate id, a lost append race): rather than a savepoint around every
        // write, a write that throws rolls the group back, gets its error, and the others run again
        // without it, in the same order, so each sees exactly what it would have seen alone.
        var pending = batch;
        try
        {
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

                    await CloseConnectionAsync().ConfigureAwait(false);
                    return;
                }

                if (failed < 0)
                {
                    AnswerCommitted(pending);
                    return;
                }

                pending[failed].Complete(); // its error: it wrote nothing
                pending = [.. pending.Where((_, i) => i != failed)];
            }
        }
        finally
        {
            // Committed (or gone with the database): readers waiting for the early answers go on.
            Interlocked.Exchange(ref _earlyAnswered, null)?.TrySetResult();
        }
    }

    /// <summary>After its commit: answers the group's writes now, or once the flusher has made the commit durable.</summary>
    private void AnswerCommitted(List<WriteOp> group)
    {
        if (_flush is null)
        {
            foreach (var op in group)
            {
                op.Complete();
            }

            return;
        }

        _committed.Writer.TryWrite(new Committed([.. group.Where(op => !op.AnsweredEarly)], _flush));
    }

    /// <summary>
    /// Closes the writer's connection (the database failed, or the writer is disposed). Its flush
    /// goes to the flusher, to be disposed after the groups queued before it have been flushed.
    /// </summary>
    private async ValueTask CloseConnectionAsync()
    {
        if (_flush is not null)
        {
            _committed.Writer.TryWrite(new Committed([], _flush, Close: true));
            _flush = null;
        }

        _flushAsked = false;
        if (_connection is not null)
        {
            Statements.Release(_connection);
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    /// <summary>
    /// The flusher: for all the groups committed since its last turn, one flush of each log they were
    /// committed to, then their writes are answered (or, if the flush failed, told its error).
    /// </summary>
    private async Task FlushAsync()
    {
        var groups = new List<Committed>();
        while (await _committed.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            groups.Clear();
            while (_committed.Reader.TryRead(out var group))
            {
                groups.Add(group);
            }

            ICommitFlush? flushed = null;
            Exception? error = null;
            foreach (var group in groups)
            {
                if (group.Flush != flushed && group.Ops.Length > 0)
                {
                    flushed = group.Flush;
                    try
                    {
                        group.Flush.Flush();
                        error = null;
                    }
                    catch (Exception e)
                    {
                        error = e; // not durable: none of the writes it covered is answered as done
                    }
                }

                foreach (var op in group.Ops)
                {
                    if (error is null)
                    {
                        op.Complete();
                    }
                    else
                    {
                        op.Fail(error);
                    }
                }

                if (group.Close)
                {
                    group.Flush.Dispose();
                }
            }
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
        if (_connection is null)
        {
            _connection = await _open(CancellationToken.None).ConfigureAwait(false);
            Statements.Keep(_connection);
        }

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

            if (pending[i].AnsweredEarly)
            {
                // Readers wait for this group's commit from now on, before its caller hears back.
                if (_earlyAnswered is null)
                {
                    Volatile.Write(ref _earlyAnswered, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                pending[i].Complete();
            }

            if (i == pending.Count - 1)
            {
                TakeWaiting(pending); // writes that arrived meanwhile join the open group
            }
        }

        await transaction.CommitAsync().ConfigureAwait(false);
        if (!_flushAsked)
        {
            // The first commit on this connection made sure its log file exists: now it can be opened.
            _flushAsked = true;
            _flush = _flushFor(_connection);
        }

        return -1;
    }

    /// <summary>A committed group on its way to the flusher; or, with <paramref name="Close"/>, the last use of <paramref name="Flush"/>.</summary>
    private sealed record Committed(WriteOp[] Ops, ICommitFlush Flush, bool Close = false);

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

        /// <summary>Answered as soon as it has run, its group still open (<see cref="WriteDurability.Visible"/>).</summary>
        public abstract bool AnsweredEarly { get; }
    }

    private sealed class WriteOp<T>(Func<DbConnection, DbTransaction, Task<T>> work, bool answeredEarly, CancellationToken cancellationToken) : WriteOp
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _completion.Task;

        public override async Task RunAsync(DbConnection connection, DbTransaction transaction)
        {
            _error = null;
            _result = await work(connection, transaction).ConfigureAwait(false);
        }

        public override bool AnsweredEarly => answeredEarly;

        public override bool Failed(Exception error)
        {
            _error = error;
            return true;
        }

        public override void Complete() => _completion.SetOutcome(_result!, _error);

        public override void Fail(Exception error) => _completion.TrySetException(error);

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);
    }
}

/// <summary>Makes the commits made before it durable (an fsync of the database's log), and keeps the log.</summary>
internal interface ICommitFlush : IDisposable
{
    /// <summary>On the flusher: returns once every commit that returned before this call is on disk; throws if the disk said no.</summary>
    void Flush();

    /// <summary>
    /// On the writer, after each group (no transaction open): upkeep the log needs from the writer's
    /// connection, if any; <paramref name="idle"/> when no write is waiting.
    /// </summary>
    void AfterGroup(DbConnection writer, bool idle);
}
