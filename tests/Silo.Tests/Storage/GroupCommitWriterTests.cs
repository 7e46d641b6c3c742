using Dapper;
using LuluClaw.Silo.Storage;

namespace LuluClaw.Silo.Tests.Storage;

/// <summary>
/// The group-commit writer: one transaction for many writes, each as if alone; a visible write (a
/// turn's admission) answered at its group's commit, before the flush, and decided the same way if
/// the group has to run again; durable ones only after a flush begun after their commit.
/// </summary>
public sealed class GroupCommitWriterTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-groupcommit-").FullName;
    private LuluStorage _store = null!;
    private GroupCommitWriter _writer = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _store = StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(_folder, "test.db")}");
        await new SchemaMigrator(_store.Database).MigrateAsync(Ct);
        await using (var connection = await _store.Database.OpenWriterAsync(Ct))
        {
            await connection.ExecuteAsync("CREATE TABLE t (id INTEGER PRIMARY KEY)");
        }

        _writer = new GroupCommitWriter(_store.Database.OpenWriterAsync);
    }

    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync();
        await _store.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Visible_AnsweredWhileItsGroupIsOpen_ReadersWaitForTheGroupsCommit()
    {
        // :: Step 1: hold the writer in a first write, so that the next two join its group.
        var first = new TaskCompletionSource();
        var holdFirst = _writer.WriteAsync(async (_, _) => { await first.Task; return 0; }, Ct);
        var visible = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct, WriteDurability.Visible);
        var last = new TaskCompletionSource();
        var holdLast = _writer.WriteAsync(async (c, tx) => { await last.Task; return await InsertAndCountAsync(c, tx, 2); }, Ct);
        first.SetResult();

        // :: Step 2: the visible write is answered while the group is held open by the last write...
        Assert.Equal(1, await visible.WaitAsync(TimeSpan.FromMinutes(1), Ct)); // a hang guard, not a timing: it answers at once
        Assert.False(holdFirst.IsCompleted); // a durable write of the group waits for its commit

        // ...no connection sees its row before the group commits, so readers are told to wait for it.
        var readers = _writer.AnsweredWritesCommitted;
        Assert.False(readers.IsCompleted);
        Assert.Equal(0, await CountCommittedAsync());

        // :: Step 3: the group commits: the readers' wait ends, and they see both rows.
        last.SetResult();
        await readers.WaitAsync(TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(2, await CountCommittedAsync());
        Assert.Equal(2, await holdLast);
        await holdFirst;
        Assert.True(_writer.AnsweredWritesCommitted.IsCompleted);
    }

    [Fact]
    public async Task Database_ReadAfterAVisibleWrite_SeesIt_ThoughItsGroupWasStillOpen()
    {
        // Through the stores' discipline: a read never misses a write already answered.
        var first = new TaskCompletionSource();
        var hold = _store.Database.WriteAsync(async (_, _) => { await first.Task; return 0; }, Ct);
        var visible = _store.Database.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct, WriteDurability.Visible);
        var last = new TaskCompletionSource();
        var holdLast = _store.Database.WriteAsync(async (_, _) => { await last.Task; return 0; }, Ct);
        first.SetResult();
        Assert.Equal(1, await visible.WaitAsync(TimeSpan.FromMinutes(1), Ct));

        var read = _store.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t"), Ct);
        Assert.False(read.IsCompleted); // waits for the group the answer came from
        last.SetResult();
        Assert.Equal(1, await read.WaitAsync(TimeSpan.FromMinutes(1), Ct));
        await Task.WhenAll(hold, holdLast);
    }

    [Fact]
    public async Task Visible_GroupRunAgainAfterAnotherWriteFails_SameAnswerAndStoredOnce()
    {
        await _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 7), Ct);
        var first = new TaskCompletionSource();
        var holdFirst = _writer.WriteAsync(async (_, _) => { await first.Task; return 0; }, Ct);
        var early = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct, WriteDurability.Visible);
        var duplicate = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 7), Ct); // fails: rolls the group back
        var after = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 2), Ct);
        first.SetResult();

        Assert.Equal(2, await early.WaitAsync(Ct));
        await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => duplicate);
        Assert.Equal(3, await after); // the run again without the duplicate: 7, 1, then 2
        Assert.Equal(3, await CountCommittedAsync());
    }

    [Fact]
    public async Task Flush_WriteAnsweredOnlyAfterAFlushBegunAfterItsCommit_NextGroupCommitsMeanwhile()
    {
        using var flush = new HeldFlush();
        await using var writer = new GroupCommitWriter(_store.Database.OpenWriterAsync, _ => flush);

        // :: Step 1: the first write commits, and the flusher holds its flush.
        var first = writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct);
        await flush.Entered.WaitAsync(TimeSpan.FromMinutes(1), Ct); // a hang guard, not a timing
        Assert.Equal(1, await CountCommittedAsync()); // committed...
        Assert.False(first.IsCompleted); // ...but not answered before its flush returns

        // :: Step 2: the writer is free meanwhile: the next write runs and commits, and waits for a flush of its own.
        var second = writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 2), Ct);
        for (var reads = 0; await CountCommittedAsync() < 2; reads++)
        {
            Assert.True(reads < 1_000_000, "the writer did not commit the second write while the first flush was held");
            await Task.Yield();
        }

        Assert.False(second.IsCompleted);

        // :: Step 3: the first flush returns: only the first write is answered; the second needs the next flush.
        flush.Release();
        Assert.Equal(1, await first);
        await flush.Entered.WaitAsync(TimeSpan.FromMinutes(1), Ct);
        Assert.False(second.IsCompleted);
        flush.Release();
        Assert.Equal(2, await second);
        Assert.Equal(2, flush.Calls);
    }

    [Fact]
    public async Task Flush_Fails_TheWritesItCoveredGetTheError()
    {
        using var flush = new HeldFlush { Error = new IOException("the disk said no") };
        await using var writer = new GroupCommitWriter(_store.Database.OpenWriterAsync, _ => flush);
        var write = writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct);
        await flush.Entered.WaitAsync(TimeSpan.FromMinutes(1), Ct);
        flush.Release();

        var error = await Assert.ThrowsAsync<IOException>(() => write);
        Assert.Equal("the disk said no", error.Message);
    }

    [Theory]
    [InlineData("FULL", 1, true)] // lowered to NORMAL: the group-commit writer syncs the log itself
    [InlineData("EXTRA", 1, true)]
    [InlineData("NORMAL", 1, false)]
    [InlineData("OFF", 0, false)]
    public async Task SqliteWriter_InWalMode_SyncsItsLogItselfOnlyWhenFullDurabilityIsAsked(string synchronous, long level, bool flushes)
    {
        await using var store = StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(_folder, "test.db")}", synchronous);
        await using var connection = await store.Database.OpenWriterAsync(Ct);
        Assert.Equal(level, await connection.ExecuteScalarAsync<long>("PRAGMA synchronous"));

        await connection.ExecuteAsync("INSERT INTO t (id) VALUES (1)");
        using var flush = store.Database.Dialect.OpenCommitFlush(connection);
        Assert.Equal(flushes, flush is not null);
        flush?.Flush();
    }

    [Fact]
    public async Task SqliteLog_CheckpointedBetweenGroups_StaysSmallThoughTheWriterMakesNoCheckpointOfItsOwn()
    {
        // Held open to the end: when the last connection to a database closes, SQLite checkpoints and
        // deletes its log, and another test class may clear every pool (ClearAllPools) at any moment.
        await using var keepsTheLog = await _store.Database.OpenAsync(Ct);
        await using (var writer = new GroupCommitWriter(_store.Database.OpenWriterAsync, _store.Database.Dialect.OpenCommitFlush))
        {
            for (var id = 1; id <= 600; id++)
            {
                await writer.WriteAsync((c, tx) => c.ExecuteAsync("INSERT INTO t (id) VALUES (@Id)", new { Id = id }, tx), Ct);
            }

            await writer.WriteAsync(async (c, _) =>
            {
                Assert.Equal(0, await c.ExecuteScalarAsync<long>("PRAGMA wal_autocheckpoint")); // SQLite's own are off on the writer
                return 0;
            }, Ct);
        }

        // 600 commits leave a log of more than 2.5 MB if nothing checkpoints it
        // and starts it over; the checkpoints after every 32 groups keep it to a few dozen commits' worth.
        var log = new FileInfo(Path.Combine(_folder, "test.db-wal")).Length;
        Assert.InRange(log, 1, 1024 * 1024);
        Assert.Equal(600, await CountCommittedAsync());
    }

    private static async Task<int> InsertAndCountAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, int id)
    {
        await c.ExecuteAsync("INSERT INTO t (id) VALUES (@Id)", new { Id = id }, tx);
        return await c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM t", transaction: tx);
    }

    private async Task<int> CountCommittedAsync()
    {
        await using var reader = await _store.Database.OpenAsync(Ct);
        return await reader.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM t");
    }

    /// <summary>A log flush the test holds until it releases it, counting its calls.</summary>
    private sealed class HeldFlush : ICommitFlush
    {
        private readonly SemaphoreSlim _release = new(0);

        public SemaphoreSlim Entered { get; } = new(0);

        public Exception? Error { get; init; }

        public int Calls { get; private set; }

        public void Flush()
        {
            Calls++;
            Entered.Release();
            _release.Wait(TimeSpan.FromMinutes(1)); // the flusher's own thread: a hang guard
            if (Error is not null)
            {
                throw Error;
            }
        }

        public void Release() => _release.Release();

        public void AfterGroup(System.Data.Common.DbConnection writer, bool idle)
        {
        }

        public void Dispose()
        {
            _release.Dispose();
            Entered.Dispose();
        }
    }
}
