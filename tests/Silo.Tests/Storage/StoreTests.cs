using Dapper;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;

namespace LuluClaw.Silo.Tests.Storage;

/// <summary>The storage contract, run once per provider by the two classes below.</summary>
public abstract class StoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    protected SqlStore Store { get; private set; } = null!;

    protected abstract Task<SqlStore> CreateStoreAsync();

    public async ValueTask InitializeAsync()
    {
        Store = await CreateStoreAsync();
        await new SchemaMigrator(Store).MigrateAsync(CancellationToken.None);
    }

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<WorkspaceRecord> NewWorkspaceAsync(string plan = "starter", long credits = 100)
    {
        var id = Guid.NewGuid();
        var bot = new BotRecord($"bot_{id:N}", id, "Bot", "Be brief.", "echo", 1, T0, T0);
        var workspace = new WorkspaceRecord(id, "Acme", plan, credits, bot.Id, 1, T0, T0);
        await Store.CreateWorkspaceAsync(workspace, bot, Ct);
        return workspace;
    }

    private static TurnAdmission Admission(WorkspaceRecord ws, DateTimeOffset now, int? limit = 15, long cost = 1, string? turnId = null) =>
        new(ws.Id, turnId ?? Guid.NewGuid().ToString("N"), "key_1", "s1", cost, now, _ => limit);

    [Fact]
    public async Task Migrate_Twice_AppliesNothingTheSecondTime()
    {
        Assert.Equal(0, await new SchemaMigrator(Store).MigrateAsync(Ct));
    }

    [Fact]
    public async Task CreateWorkspace_ReadsBackWithPrimaryBot_AndDuplicateIsRejected()
    {
        var workspace = await NewWorkspaceAsync();

        Assert.Equal(workspace, await Store.GetWorkspaceAsync(workspace.Id, Ct));
        var bot = await Store.GetBotAsync(workspace.PrimaryBotId, Ct);
        Assert.Equal(workspace.Id, bot!.WorkspaceId);
        await Assert.ThrowsAsync<DuplicateException>(() => Store.CreateWorkspaceAsync(workspace, bot with { Id = "bot_other" }, Ct));
        Assert.Null(await Store.GetWorkspaceAsync(Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task UpdateWorkspace_StaleVersion_IsRejected_AndKeepsTheWinner()
    {
        var workspace = await NewWorkspaceAsync();

        var first = await Store.UpdateWorkspaceAsync(workspace with { Plan = "pro" }, expectedVersion: 1, Ct);
        Assert.Equal(2, first.Version);
        await Assert.ThrowsAsync<StaleStateException>(() => Store.UpdateWorkspaceAsync(workspace with { Plan = "premium" }, expectedVersion: 1, Ct));

        Assert.Equal("pro", (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Plan);
    }

    [Fact]
    public async Task TryAdmit_WindowFull_RefusesWithRetryAfterOfOldestTurn()
    {
        var workspace = await NewWorkspaceAsync();
        for (var i = 0; i < 3; i++)
        {
            var ok = await Store.TryAdmitAsync(Admission(workspace, T0.AddMinutes(i * 10), limit: 3), Ct);
            Assert.Equal(AdmissionStatus.Admitted, ok.Status);
            Assert.Equal(100 - (i + 1), ok.CreditsRemaining);
        }

        var refused = await Store.TryAdmitAsync(Admission(workspace, T0.AddMinutes(25), limit: 3), Ct);
        Assert.Equal(AdmissionStatus.RateLimited, refused.Status);
        Assert.Equal(TimeSpan.FromMinutes(35), refused.RetryAfter); // the turn at T0 leaves the window at T0+60
        Assert.Equal(97, refused.CreditsRemaining);

        // Once the oldest turn has left the rolling hour, one more fits.
        var later = await Store.TryAdmitAsync(Admission(workspace, T0.AddMinutes(60).AddMilliseconds(1), limit: 3), Ct);
        Assert.Equal(AdmissionStatus.Admitted, later.Status);
    }

    [Fact]
    public async Task TryAdmit_Unlimited_NeverRateLimits_ButCreditsStillCount()
    {
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 2);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct)).Status);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct)).Status);

        var third = await Store.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct);
        Assert.Equal(AdmissionStatus.InsufficientCredits, third.Status);
        Assert.Equal(0, third.CreditsRemaining);
    }

    [Fact]
    public async Task TryAdmit_UnknownWorkspace_IsNotFound()
    {
        var result = await Store.TryAdmitAsync(new TurnAdmission(Guid.NewGuid(), "t", null, "s", 1, T0, _ => 15), Ct);
        Assert.Equal(AdmissionStatus.NotFound, result.Status);
    }

    [Fact]
    public async Task TryAdmit_FiftyConcurrent_AdmitsExactlyTheLimit()
    {
        // Straight to the store, many connections at once: the database alone keeps the count.
        var workspace = await NewWorkspaceAsync(credits: 1000);
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => Store.TryAdmitAsync(Admission(workspace, T0), Ct))));

        Assert.Equal(15, results.Count(r => r.Status == AdmissionStatus.Admitted));
        Assert.Equal(35, results.Count(r => r.Status == AdmissionStatus.RateLimited));
        Assert.Equal(985, (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task Refund_ReturnsCreditsAndFreesTheWindow_Once()
    {
        var workspace = await NewWorkspaceAsync(credits: 1);
        var admission = Admission(workspace, T0, limit: 1);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(admission, Ct)).Status);

        await Store.RefundAsync(admission.TurnId, Ct);
        await Store.RefundAsync(admission.TurnId, Ct); // a second refund changes nothing

        Assert.Equal(1, (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(Admission(workspace, T0, limit: 1), Ct)).Status);
    }

    [Fact]
    public async Task RefundAbandoned_RefundsOnlyOldPendingTurns()
    {
        var workspace = await NewWorkspaceAsync(credits: 10);
        var abandoned = Admission(workspace, T0, limit: 3);
        var committed = Admission(workspace, T0, limit: 3);
        var recent = Admission(workspace, T0.AddMinutes(5), limit: 3);
        foreach (var admission in new[] { abandoned, committed, recent })
        {
            Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(admission, Ct)).Status);
        }

        await Store.CommitTurnAsync(Turn(workspace, committed.TurnId, newSession: true, 1), T0, Ct);

        Assert.Equal(1, await Store.RefundAbandonedAsync(T0.AddMinutes(1), Ct));
        Assert.Equal(0, await Store.RefundAbandonedAsync(T0.AddMinutes(1), Ct));
        Assert.Equal(8, (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        // The abandoned turn left the window: one more fits beside the two that remain.
        Assert.Equal(AdmissionStatus.Admitted, (await Store.TryAdmitAsync(Admission(workspace, T0.AddMinutes(6), limit: 3), Ct)).Status);
        await Assert.ThrowsAsync<StaleStateException>(() => Store.CommitTurnAsync(Turn(workspace, abandoned.TurnId, newSession: false, 3), T0, Ct));
    }

    [Fact]
    public async Task CommitTurn_AppendsInOrder_SettlesTurn_AndRefundAfterwardsChangesNothing()
    {
        var workspace = await NewWorkspaceAsync();
        var first = Admission(workspace, T0);
        await Store.TryAdmitAsync(first, Ct);
        await Store.CommitTurnAsync(Turn(workspace, first.TurnId, newSession: true, 1), T0, Ct);
        var second = Admission(workspace, T0);
        await Store.TryAdmitAsync(second, Ct);
        await Store.CommitTurnAsync(Turn(workspace, second.TurnId, newSession: false, 3), T0, Ct);
        await Store.RefundAsync(first.TurnId, Ct);

        var messages = await Store.GetMessagesAsync(workspace.Id, "s1", Ct);
        Assert.Equal([1L, 2, 3, 4], messages.Select(m => m.Seq));
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => m.Role));
        Assert.Equal(98, (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        var session = await Store.GetSessionAsync(workspace.Id, "s1", Ct);
        Assert.Equal(workspace.PrimaryBotId, session!.BotId);
    }

    [Fact]
    public async Task CommitTurn_SequenceTaken_FailsWholeTurn_AndStoresNothing()
    {
        var workspace = await NewWorkspaceAsync();
        var first = Admission(workspace, T0);
        await Store.TryAdmitAsync(first, Ct);
        await Store.CommitTurnAsync(Turn(workspace, first.TurnId, newSession: true, 1), T0, Ct);
        var racing = Admission(workspace, T0);
        await Store.TryAdmitAsync(racing, Ct);

        await Assert.ThrowsAsync<StaleStateException>(() => Store.CommitTurnAsync(Turn(workspace, racing.TurnId, newSession: false, 1), T0, Ct));

        var messages = await Store.GetMessagesAsync(workspace.Id, "s1", Ct);
        Assert.Equal(2, messages.Count);
        Assert.Equal("hello 1", messages[0].Content);
    }

    [Fact]
    public async Task CommitTurn_OfRefundedTurn_IsRejected()
    {
        var workspace = await NewWorkspaceAsync();
        var admission = Admission(workspace, T0);
        await Store.TryAdmitAsync(admission, Ct);
        await Store.RefundAsync(admission.TurnId, Ct);

        await Assert.ThrowsAsync<StaleStateException>(() => Store.CommitTurnAsync(Turn(workspace, admission.TurnId, newSession: true, 1), T0, Ct));
        Assert.Empty(await Store.GetMessagesAsync(workspace.Id, "s1", Ct));
    }

    [Fact]
    public async Task ApiKeys_StoredAsHash_RevokedOnce()
    {
        var workspace = await NewWorkspaceAsync();
        var key = new ApiKeyRecord("key_1", workspace.Id, ApiKeys.Hash("lulu_sk_x"), "lulu_sk_xxxx", ["chat", "bots"], null, T0, null);
        await Store.InsertApiKeyAsync(key, Ct);

        Assert.Equal(["chat", "bots"], (await Store.FindApiKeyByHashAsync(key.KeyHash, Ct))!.Scopes);
        Assert.Null(await Store.RevokeApiKeyAsync(Guid.NewGuid(), "key_1", T0, Ct)); // another workspace cannot revoke it
        Assert.Equal(key.KeyHash, await Store.RevokeApiKeyAsync(workspace.Id, "key_1", T0, Ct));
        Assert.Null(await Store.RevokeApiKeyAsync(workspace.Id, "key_1", T0, Ct));
        Assert.NotNull((await Store.FindApiKeyByHashAsync(key.KeyHash, Ct))!.RevokedAt);
    }

    [Fact]
    public async Task AddCredits_AddsAtomically_UnknownWorkspaceIsNull()
    {
        var workspace = await NewWorkspaceAsync(credits: 0);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => Store.AddCreditsAsync(workspace.Id, 5, T0, Ct))));

        Assert.Equal(100, (await Store.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.Null(await Store.AddCreditsAsync(Guid.NewGuid(), 5, T0, Ct));
    }

    private static CommittedTurn Turn(WorkspaceRecord ws, string turnId, bool newSession, long seq) =>
        new(ws.Id, "s1", ws.PrimaryBotId, "gateway", turnId, newSession,
            [new SessionMessage(seq, "user", $"hello {seq}", T0), new SessionMessage(seq + 1, "assistant", $"Echo: hello {seq}", T0)]);
}

public sealed class SqliteStoreTests : StoreTests
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-store-").FullName;

    protected override Task<SqlStore> CreateStoreAsync() =>
        Task.FromResult(StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(_folder, "test.db")}"));

    [Fact]
    public async Task Database_IsInWalMode()
    {
        await using var connection = await Store.OpenAsync(TestContext.Current.CancellationToken);
        Assert.Equal("wal", await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
    }

    public override ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
        return ValueTask.CompletedTask;
    }
}

public sealed class PostgresStoreTests : StoreTests
{
    private TestPostgres? _database;

    protected override async Task<SqlStore> CreateStoreAsync()
    {
        _database = await TestPostgres.CreateAsync();
        return StorageServiceCollectionExtensions.CreatePostgres(_database.ConnectionString);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
