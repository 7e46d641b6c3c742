using Dapper;
using LuluClaw.Silo.Storage;

namespace LuluClaw.Silo.Tests.Storage;

/// <summary>
/// The group-commit writer's early answer (a turn's admission): answered while its group is still
/// open, never visible to anyone else before that group commits, and decided the same way if the
/// group has to run again.
/// </summary>
public sealed class GroupCommitWriterTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-groupcommit-").FullName;
    private SqlStore _store = null!;
    private GroupCommitWriter _writer = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _store = StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(_folder, "test.db")}");
        await new SchemaMigrator(_store).MigrateAsync(Ct);
        await using (var connection = await _store.OpenWriterAsync(Ct))
        {
            await connection.ExecuteAsync("CREATE TABLE t (id INTEGER PRIMARY KEY)");
        }

        _writer = new GroupCommitWriter(_store.OpenWriterAsync);
    }

    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync();
        await _store.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task AnswerBeforeCommit_AnsweredWhileItsGroupIsOpen_SeenByOthersOnlyAfterTheCommit()
    {
        // :: Step 1: hold the writer in a first write, so that the next two join its group.
        var first = new TaskCompletionSource();
        var holdFirst = _writer.WriteAsync(async (_, _) => { await first.Task; return 0; }, Ct);
        var early = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct, answerBeforeCommit: true);
        var last = new TaskCompletionSource();
        var holdLast = _writer.WriteAsync(async (c, tx) => { await last.Task; return await InsertAndCountAsync(c, tx, 2); }, Ct);
        first.SetResult();

        // :: Step 2: the early write is answered while the group is held open by the last write...
        Assert.Equal(1, await early.WaitAsync(TimeSpan.FromMinutes(1), Ct)); // a hang guard, not a timing: it answers at once
        Assert.False(holdFirst.IsCompleted); // a plain write of the group waits for its commit

        // ...and nobody else sees its row until the group commits.
        Assert.Equal(0, await CountCommittedAsync());
        last.SetResult();
        Assert.Equal(2, await holdLast);
        await holdFirst;
        Assert.Equal(2, await CountCommittedAsync());
    }

    [Fact]
    public async Task AnswerBeforeCommit_GroupRunAgainAfterAnotherWriteFails_SameAnswerAndStoredOnce()
    {
        await _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 7), Ct);
        var first = new TaskCompletionSource();
        var holdFirst = _writer.WriteAsync(async (_, _) => { await first.Task; return 0; }, Ct);
        var early = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 1), Ct, answerBeforeCommit: true);
        var duplicate = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 7), Ct); // fails: rolls the group back
        var after = _writer.WriteAsync((c, tx) => InsertAndCountAsync(c, tx, 2), Ct);
        first.SetResult();

        Assert.Equal(2, await early.WaitAsync(Ct));
        await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => duplicate);
        Assert.Equal(3, await after); // the run again without the duplicate: 7, 1, then 2
        Assert.Equal(3, await CountCommittedAsync());
    }

    private static async Task<int> InsertAndCountAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, int id)
    {
        await c.ExecuteAsync("INSERT INTO t (id) VALUES (@Id)", new { Id = id }, tx);
        return await c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM t", transaction: tx);
    }

    private async Task<int> CountCommittedAsync()
    {
        await using var reader = await _store.OpenAsync(Ct);
        return await reader.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM t");
    }
}
