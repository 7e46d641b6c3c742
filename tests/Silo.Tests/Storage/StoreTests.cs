using Dapper;
using LuluClaw.Grains;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;

namespace LuluClaw.Silo.Tests.Storage;

/// <summary>The storage contract, run once per provider by the two classes below.</summary>
public abstract class StoreTests : IAsyncLifetime
{
    protected static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    protected LuluStorage Store { get; private set; } = null!;

    protected abstract Task<LuluStorage> CreateStoreAsync();

    public async ValueTask InitializeAsync()
    {
        Store = await CreateStoreAsync();
        await new SchemaMigrator(Store.Database).MigrateAsync(CancellationToken.None);
    }

    public virtual ValueTask DisposeAsync() => Store.DisposeAsync();

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected async Task<WorkspaceRecord> NewWorkspaceAsync(string plan = "starter", long credits = 100)
    {
        var id = Guid.NewGuid();
        var bot = Bot($"bot_{id:N}", id, T0);
        var workspace = new WorkspaceRecord(id, "Acme", plan, credits, bot.Id, 1, T0, T0);
        await Store.Tenants.CreateWorkspaceAsync(workspace, bot, Ct);
        return workspace;
    }

    private static BotRecord Bot(string id, Guid workspaceId, DateTimeOffset createdAt) =>
        new(id, workspaceId, "Bot", "Be brief.", "echo", ["telegram"], 1, 0, createdAt, createdAt, null);

    private static TurnAdmission Admission(
        WorkspaceRecord ws, DateTimeOffset now, int? limit = 15, long cost = 1, string? turnId = null, string? keyId = null,
        IReadOnlyList<RateWindow>? keyWindows = null) =>
        new(ws.Id, turnId ?? Guid.NewGuid().ToString("N"), keyId, "s1", cost, now, Limits(ws.Plan, limit, keyWindows ?? []));

    /// <summary>Limits where the workspace's plan has <paramref name="limit"/> turns an hour (null: unlimited) and every key plan has <paramref name="keyWindows"/>.</summary>
    private static PlanLimits Limits(string plan, int? limit, IReadOnlyList<RateWindow> keyWindows) =>
        new(
            new Dictionary<string, IReadOnlyList<RateWindow>>
            {
                [plan] = limit is { } l ? [new RateWindow(TimeSpan.FromHours(1), l, $"rolling-hour turn limit of the workspace's plan '{plan}' ({l} turns)")] : [],
            },
            new Dictionary<string, IReadOnlyList<RateWindow>> { ["standard"] = keyWindows, ["byok"] = keyWindows, ["priority"] = keyWindows },
            "standard");

    /// <summary>
    /// An admission may answer before its group commits (SQLite); a write after it completes only once
    /// it has. A test writes once after its admissions before reading what they left.
    /// </summary>
    private Task AdmissionsCommittedAsync() => Store.Ledger.RefundAsync("no-such-turn", Ct);

    private async Task<string> NewKeyAsync(WorkspaceRecord ws, string plan = "standard")
    {
        var id = $"key_{Guid.NewGuid():N}";
        await Store.Tenants.InsertApiKeyAsync(new ApiKeyRecord(id, ws.Id, ApiKeys.Hash(id), "lulu_sk_xxxx", ["chat"], plan, T0, null), Ct);
        return id;
    }

    [Fact]
    public async Task ConcurrentWrites_SomeFailing_EachFailsAloneAndTheOthersCommit()
    {
        // On SQLite these share group commits: a write that fails must undo only itself.
        var ws = await NewWorkspaceAsync();
        var taken = Bot($"bot_taken_{Guid.NewGuid():N}", ws.Id, T0);
        await Store.Tenants.InsertBotAsync(taken, Ct);
        var fresh = Enumerable.Range(0, 40).Select(i => Bot($"bot_{i}_{Guid.NewGuid():N}", ws.Id, T0)).ToArray();

        var writes = fresh.Select(b => (Bot: b, Task: Store.Tenants.InsertBotAsync(b, Ct)))
            .Concat(Enumerable.Range(0, 40).Select(_ => (Bot: taken, Task: Store.Tenants.InsertBotAsync(taken, Ct))))
            .ToArray();
        await Task.WhenAll(writes.Select(w => w.Task.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.All(writes.Where(w => w.Bot == taken), w => Assert.IsType<DuplicateException>(w.Task.Exception?.InnerException));
        Assert.All(writes.Where(w => w.Bot != taken), w => Assert.True(w.Task.IsCompletedSuccessfully));
        Assert.Equal(42, (await Store.Tenants.ListBotIdsAsync(ws.Id, Ct)).Count); // the primary bot, the taken one and the 40 new ones
    }

    [Fact]
    public async Task Migrate_Twice_AppliesNothingTheSecondTime()
    {
        Assert.Equal(0, await new SchemaMigrator(Store.Database).MigrateAsync(Ct));
    }

    [Fact]
    public async Task ListWorkspaces_NewestFirstThenById_PagedByOffsetAndLimit_AndCounted()
    {
        Assert.Equal(0, await Store.Tenants.CountWorkspacesAsync(Ct));
        Assert.Empty(await Store.Tenants.ListWorkspacesAsync(0, 10, Ct));
        var created = new List<WorkspaceRecord>();
        foreach (var at in new[] { T0, T0.AddSeconds(1), T0.AddSeconds(1), T0.AddSeconds(2) })
        {
            var id = Guid.NewGuid();
            var bot = Bot($"bot_{id:N}", id, at);
            var workspace = new WorkspaceRecord(id, $"Acme {created.Count}", "starter", 10, bot.Id, 1, at, at);
            await Store.Tenants.CreateWorkspaceAsync(workspace, bot, Ct);
            created.Add(workspace);
        }

        // Newest first; the two created in the same millisecond by id, descending.
        WorkspaceRecord[] expected =
        [
            created[3], .. created.Skip(1).Take(2).OrderByDescending(w => w.Id.ToString("D"), StringComparer.Ordinal), created[0],
        ];
        Assert.Equal(4, await Store.Tenants.CountWorkspacesAsync(Ct));
        Assert.Equal(expected, await Store.Tenants.ListWorkspacesAsync(0, 10, Ct));
        Assert.Equal(expected[1..3], await Store.Tenants.ListWorkspacesAsync(1, 2, Ct));
        Assert.Equal(expected[3..], await Store.Tenants.ListWorkspacesAsync(3, 2, Ct));
        Assert.Empty(await Store.Tenants.ListWorkspacesAsync(4, 2, Ct));
    }

    [Fact]
    public async Task CreateWorkspace_ReadsBackWithPrimaryBot_AndDuplicateIsRejected()
    {
        var workspace = await NewWorkspaceAsync();

        Assert.Equal(workspace, await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct));
        var bot = await Store.Tenants.GetBotAsync(workspace.PrimaryBotId, Ct);
        Assert.Equal(workspace.Id, bot!.WorkspaceId);
        await Assert.ThrowsAsync<DuplicateException>(() => Store.Tenants.CreateWorkspaceAsync(workspace, bot with { Id = "bot_other" }, Ct));
        Assert.Null(await Store.Tenants.GetWorkspaceAsync(Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task UpdateWorkspace_StaleVersion_IsRejected_AndKeepsTheWinner()
    {
        var workspace = await NewWorkspaceAsync();

        var first = await Store.Tenants.UpdateWorkspaceAsync(workspace with { Plan = "pro" }, expectedVersion: 1, Ct);
        Assert.Equal(2, first.Version);
        await Assert.ThrowsAsync<StaleStateException>(() => Store.Tenants.UpdateWorkspaceAsync(workspace with { Plan = "premium" }, expectedVersion: 1, Ct));

        Assert.Equal("pro", (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Plan);
    }

    [Fact]
    public async Task TryAdmit_WindowFull_RefusesWithRetryAfterOfOldestTurn()
    {
        var workspace = await NewWorkspaceAsync();
        for (var i = 0; i < 3; i++)
        {
            var ok = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddMinutes(i * 10), limit: 3), Ct);
            Assert.Equal(AdmissionStatus.Admitted, ok.Status);
            Assert.Equal(100 - (i + 1), ok.CreditsRemaining);
        }

        var refused = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddMinutes(25), limit: 3), Ct);
        Assert.Equal(AdmissionStatus.RateLimited, refused.Status);
        Assert.Equal(TimeSpan.FromMinutes(35), refused.RetryAfter); // the turn at T0 leaves the window at T0+60
        Assert.Equal(97, refused.CreditsRemaining);

        // Once the oldest turn has left the rolling hour, one more fits.
        var later = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddMinutes(60).AddMilliseconds(1), limit: 3), Ct);
        Assert.Equal(AdmissionStatus.Admitted, later.Status);
    }

    [Fact]
    public async Task TryAdmit_Unlimited_NeverRateLimits_ButCreditsStillCount()
    {
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 2);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct)).Status);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct)).Status);

        var third = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct);
        Assert.Equal(AdmissionStatus.InsufficientCredits, third.Status);
        Assert.Equal(0, third.CreditsRemaining);
    }

    [Fact]
    public async Task TryAdmit_WorkspacePlanNotConfigured_IsRateLimitedByItsClosedWindow_AndDebitsNothing()
    {
        var workspace = await NewWorkspaceAsync(plan: "starter", credits: 10);
        var onlyPro = new TurnAdmission(workspace.Id, "t", null, "s", 1, T0, Limits("pro", 15, []));

        var refused = await Store.Ledger.TryAdmitAsync(onlyPro, Ct);

        Assert.Equal(AdmissionStatus.RateLimited, refused.Status);
        Assert.Equal("workspace plan 'starter' is not configured reached", refused.Detail);
        Assert.Equal(new WindowStanding(0, 0, TimeSpan.FromHours(1)), refused.Window);
        Assert.Equal(10, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task TryAdmit_UnknownWorkspace_IsNotFound()
    {
        var result = await Store.Ledger.TryAdmitAsync(new TurnAdmission(Guid.NewGuid(), "t", null, "s", 1, T0, Limits("starter", 15, [])), Ct);
        Assert.Equal(AdmissionStatus.NotFound, result.Status);
    }

    [Fact]
    public async Task TryAdmit_FiftyConcurrent_AdmitsExactlyTheLimit()
    {
        // Straight to the store, many connections at once: the database alone keeps the count.
        var workspace = await NewWorkspaceAsync(credits: 1000);
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => Store.Ledger.TryAdmitAsync(Admission(workspace, T0), Ct))));

        Assert.Equal(15, results.Count(r => r.Status == AdmissionStatus.Admitted));
        Assert.Equal(35, results.Count(r => r.Status == AdmissionStatus.RateLimited));
        Assert.Equal(985, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task TryAdmit_ConcurrentWithAKeyOfSeveralWindows_AdmitsExactlyTheKeysLimit()
    {
        // A key held to a minute, an hour and a day of 4 turns each: admissions decided together (one
        // PostgreSQL batch) must count each admitted turn once in the key's times, not once per window.
        var workspace = await NewWorkspaceAsync(credits: 1000);
        RateWindow[] keyWindows =
        [
            new(TimeSpan.FromMinutes(1), 4, "per-key limit of 4 requests per minute"),
            new(TimeSpan.FromHours(1), 4, "per-key limit of 4 requests per hour"),
            new(TimeSpan.FromDays(1), 4, "per-key limit of 4 requests per day"),
        ];
        var key = await NewKeyAsync(workspace);
        var results = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ =>
            Task.Run(() => Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: 100, keyId: key, keyWindows: keyWindows), Ct))));

        Assert.Equal(4, results.Count(r => r.Status == AdmissionStatus.Admitted));
        Assert.Equal(36, results.Count(r => r.Status == AdmissionStatus.RateLimited));
        Assert.Equal(996, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task TryAdmit_ConcurrentOnSeveralWorkspaces_AdmitsEachLimitExactly_AndLeavesNoQueueBehind()
    {
        var workspaces = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => NewWorkspaceAsync(credits: 1000)));
        var results = await Task.WhenAll(workspaces.SelectMany(ws => Enumerable.Range(0, 25)
            .Select(_ => Task.Run(() => Store.Ledger.TryAdmitAsync(Admission(ws, T0), Ct)))));

        Assert.Equal(6 * 15, results.Count(r => r.Status == AdmissionStatus.Admitted));
        Assert.Equal(6 * 10, results.Count(r => r.Status == AdmissionStatus.RateLimited));
        foreach (var ws in workspaces)
        {
            Assert.Equal(985, (await Store.Tenants.GetWorkspaceAsync(ws.Id, Ct))!.Credits);
        }

        // A workspace whose queue has left is served by a new one.
        Assert.Equal(AdmissionStatus.RateLimited, (await Store.Ledger.TryAdmitAsync(Admission(workspaces[0], T0), Ct)).Status);
    }

    [Fact]
    public async Task TryAdmit_KeyWindows_RefuseAtEachLimit_WithRetryAfterOfTheWindowThatRefused()
    {
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 100);
        var key = await NewKeyAsync(workspace);
        RateWindow[] windows = [new(TimeSpan.FromMinutes(1), 2, "per minute"), new(TimeSpan.FromHours(1), 3, "per hour")];
        Task<AdmissionResult> AdmitAsync(DateTimeOffset at) =>
            Store.Ledger.TryAdmitAsync(Admission(workspace, at, limit: null, keyId: key, keyWindows: windows), Ct);

        Assert.Equal(AdmissionStatus.Admitted, (await AdmitAsync(T0)).Status);
        Assert.Equal(AdmissionStatus.Admitted, (await AdmitAsync(T0.AddSeconds(10))).Status);

        var minute = await AdmitAsync(T0.AddSeconds(20));
        Assert.Equal(AdmissionStatus.RateLimited, minute.Status);
        Assert.Equal(TimeSpan.FromSeconds(40), minute.RetryAfter); // the turn at T0 leaves the minute at T0+60 s
        Assert.Equal("per minute reached", minute.Detail);

        Assert.Equal(AdmissionStatus.Admitted, (await AdmitAsync(T0.AddSeconds(61))).Status);
        var hour = await AdmitAsync(T0.AddSeconds(200));
        Assert.Equal(AdmissionStatus.RateLimited, hour.Status);
        Assert.Equal(TimeSpan.FromSeconds(3400), hour.RetryAfter); // the turn at T0 leaves the hour at T0+3600 s
        Assert.Equal("per hour reached", hour.Detail);

        // Another key of the same workspace has windows of its own.
        var other = await NewKeyAsync(workspace);
        var admitted = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddSeconds(200), limit: null, keyId: other, keyWindows: windows), Ct);
        Assert.Equal(AdmissionStatus.Admitted, admitted.Status);
    }

    [Fact]
    public async Task TryAdmit_ReportsTheWindowWithFewestTurnsLeft_AndTheFullOneWhenRefused()
    {
        // A key of 2 a minute in a workspace of 3 an hour: the minute binds first, then the hour.
        var workspace = await NewWorkspaceAsync(credits: 100);
        var key = await NewKeyAsync(workspace);
        RateWindow[] windows = [new(TimeSpan.FromMinutes(1), 2, "per minute")];
        Task<AdmissionResult> AdmitAsync(DateTimeOffset at) =>
            Store.Ledger.TryAdmitAsync(Admission(workspace, at, limit: 3, keyId: key, keyWindows: windows), Ct);

        var first = await AdmitAsync(T0);
        Assert.Equal(new WindowStanding(2, 1, TimeSpan.FromMinutes(1)), first.Window); // both have a turn in them; the minute has fewer left

        var second = await AdmitAsync(T0.AddSeconds(15));
        Assert.Equal(new WindowStanding(2, 0, TimeSpan.FromSeconds(45)), second.Window); // the minute is full until the turn at T0 leaves it

        var refused = await AdmitAsync(T0.AddSeconds(30));
        Assert.Equal(AdmissionStatus.RateLimited, refused.Status);
        Assert.Equal(new WindowStanding(2, 0, TimeSpan.FromSeconds(30)), refused.Window);

        var third = await AdmitAsync(T0.AddSeconds(90));
        Assert.Equal(new WindowStanding(3, 0, TimeSpan.FromSeconds(3510)), third.Window); // now the hour has fewest left: 0, until T0 + 1 h

        var unlimited = await NewWorkspaceAsync(plan: "byok");
        Assert.Null((await Store.Ledger.TryAdmitAsync(Admission(unlimited, T0, limit: null), Ct)).Window);
    }

    [Fact]
    public async Task TryAdmit_KeyAndWorkspaceBothFull_WaitsForTheLaterOne()
    {
        var workspace = await NewWorkspaceAsync(credits: 100);
        var key = await NewKeyAsync(workspace);
        RateWindow[] windows = [new(TimeSpan.FromMinutes(1), 1, "per minute")];
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: 1, keyId: key, keyWindows: windows), Ct)).Status);

        var refused = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddSeconds(30), limit: 1, keyId: key, keyWindows: windows), Ct);

        Assert.Equal(AdmissionStatus.RateLimited, refused.Status);
        Assert.Equal(TimeSpan.FromSeconds(3570), refused.RetryAfter);
        Assert.StartsWith("rolling-hour turn limit of the workspace's plan 'starter'", refused.Detail);
    }

    [Fact]
    public async Task TryAdmit_RevokedOrForeignKey_IsRefused_AndNothingIsDebited()
    {
        var workspace = await NewWorkspaceAsync(credits: 10);
        var key = await NewKeyAsync(workspace);
        var stranger = await NewWorkspaceAsync(credits: 10);
        var foreign = await Store.Ledger.TryAdmitAsync(Admission(stranger, T0, keyId: key), Ct);
        await Store.Tenants.RevokeApiKeyAsync(workspace.Id, key, T0, Ct);

        var revoked = await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, keyId: key), Ct);

        Assert.Equal(AdmissionStatus.KeyRevoked, foreign.Status);
        Assert.Equal(AdmissionStatus.KeyRevoked, revoked.Status);
        Assert.Equal(10, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.Equal(10, (await Store.Tenants.GetWorkspaceAsync(stranger.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task TryAdmit_FiftyConcurrentOnOneKey_AdmitsExactlyTheKeyLimit()
    {
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 1000);
        var key = await NewKeyAsync(workspace);
        RateWindow[] windows = [new(TimeSpan.FromMinutes(1), 7, "per minute")];
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() =>
            Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: null, keyId: key, keyWindows: windows), Ct))));

        Assert.Equal(7, results.Count(r => r.Status == AdmissionStatus.Admitted));
        Assert.Equal(43, results.Count(r => r.Status == AdmissionStatus.RateLimited));
        Assert.Equal(993, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task Bots_UpdateIsVersioned_DeleteHandsPrimaryToTheOldestLeft()
    {
        var workspace = await NewWorkspaceAsync();
        var second = Bot("bot_second", workspace.Id, T0.AddMinutes(1));
        var third = Bot("bot_third", workspace.Id, T0.AddMinutes(2));
        await Store.Tenants.InsertBotAsync(second, Ct);
        await Store.Tenants.InsertBotAsync(third, Ct);
        await Assert.ThrowsAsync<DuplicateException>(() => Store.Tenants.InsertBotAsync(third, Ct));

        var updated = await Store.Tenants.UpdateBotAsync(second with { SystemPrompt = "Be kind.", RestartCount = 1, LastRestartedAt = T0 }, 1, Ct);
        await Assert.ThrowsAsync<StaleStateException>(() => Store.Tenants.UpdateBotAsync(second with { Name = "late" }, 1, Ct));
        Assert.Equal(2, updated.Version);
        var stored = await Store.Tenants.GetBotAsync("bot_second", Ct);
        Assert.Equal(updated with { Channels = [] }, stored! with { Channels = [] }); // records compare lists by reference
        Assert.Equal(["telegram"], stored.Channels);
        Assert.Equal("Be kind.", stored.SystemPrompt);
        Assert.Equal(BotKnowledge.Default, stored.Knowledge); // never set: the defaults

        var gated = await Store.Tenants.UpdateBotAsync(stored with { Knowledge = new BotKnowledge(false, 0.42, "Ask a person.") }, 2, Ct);
        Assert.Equal(new BotKnowledge(false, 0.42, "Ask a person."), (await Store.Tenants.GetBotAsync("bot_second", Ct))!.Knowledge);
        Assert.Equal(3, gated.Version);

        Assert.False(await Store.Tenants.DeleteBotAsync(Guid.NewGuid(), workspace.PrimaryBotId, Ct)); // not another workspace's to delete
        Assert.True(await Store.Tenants.DeleteBotAsync(workspace.Id, workspace.PrimaryBotId, Ct));
        Assert.Equal("bot_second", (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.PrimaryBotId);
        Assert.Equal(["bot_second", "bot_third"], await Store.Tenants.ListBotIdsAsync(workspace.Id, Ct));
        Assert.False(await Store.Tenants.DeleteBotAsync(workspace.Id, workspace.PrimaryBotId, Ct));
    }

    [Fact]
    public async Task ProviderKeys_PutReplacesOne_PerWorkspaceAndProvider()
    {
        var workspace = await NewWorkspaceAsync();
        await Store.Tenants.PutProviderKeyAsync(new ProviderKeyRecord(workspace.Id, "openai", "c1", "sk-…0001", T0), Ct);
        await Store.Tenants.PutProviderKeyAsync(new ProviderKeyRecord(workspace.Id, "openai", "c2", "sk-…0002", T0.AddMinutes(1)), Ct);
        await Store.Tenants.PutProviderKeyAsync(new ProviderKeyRecord(workspace.Id, "anthropic", "c3", "sk-…0003", T0), Ct);

        Assert.Equal("c2", (await Store.Tenants.GetProviderKeyAsync(workspace.Id, "openai", Ct))!.Ciphertext);
        Assert.Equal(["anthropic", "openai"], (await Store.Tenants.ListProviderKeysAsync(workspace.Id, Ct)).Select(k => k.Provider));
        Assert.Null(await Store.Tenants.GetProviderKeyAsync(Guid.NewGuid(), "openai", Ct));
        Assert.True(await Store.Tenants.DeleteProviderKeyAsync(workspace.Id, "openai", Ct));
        Assert.False(await Store.Tenants.DeleteProviderKeyAsync(workspace.Id, "openai", Ct));
    }

    [Fact]
    public async Task RequestCounter_CountsPerKeyBucketAndWindow_ExactlyUnderConcurrency()
    {
        var counts = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Task.Run(() => Store.RequestCounter.CountAsync("key_a", "read", T0, Ct))));

        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), counts.Order());
        Assert.Equal(1, await Store.RequestCounter.CountAsync("key_a", "chat", T0, Ct));
        Assert.Equal(1, await Store.RequestCounter.CountAsync("key_b", "read", T0, Ct));
        Assert.Equal(1, await Store.RequestCounter.CountAsync("key_a", "read", T0.AddMinutes(1), Ct)); // a new window starts from one
    }

    [Fact]
    public async Task Sessions_ListedMostRecentFirst_DeleteRemovesSessionAndMessages()
    {
        var workspace = await NewWorkspaceAsync();
        var first = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(first, Ct);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, first.TurnId, newSession: true, 1), T0, Ct);

        var sessions = await Store.Conversations.ListSessionsAsync(workspace.Id, Ct);

        Assert.Equal([new SessionSummary("s1", workspace.PrimaryBotId, "gateway", T0, T0, 2)], sessions);
        Assert.Empty(await Store.Conversations.ListSessionsAsync(Guid.NewGuid(), Ct));
        Assert.False(await Store.Conversations.DeleteSessionAsync(Guid.NewGuid(), "s1", Ct));
        Assert.True(await Store.Conversations.DeleteSessionAsync(workspace.Id, "s1", Ct));
        Assert.Empty(await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct));
        Assert.Null(await Store.Conversations.GetSessionAsync(workspace.Id, "s1", Ct));
    }

    [Fact]
    public async Task Refund_ReturnsCreditsAndFreesTheWindow_Once()
    {
        var workspace = await NewWorkspaceAsync(credits: 1);
        var admission = Admission(workspace, T0, limit: 1);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(admission, Ct)).Status);

        await Store.Ledger.RefundAsync(admission.TurnId, Ct);
        await Store.Ledger.RefundAsync(admission.TurnId, Ct); // a second refund changes nothing

        Assert.Equal(1, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: 1), Ct)).Status);
    }

    [Fact]
    public async Task RefundAbandoned_TurnKeptAlive_IsLeftUntilItFallsSilent()
    {
        var workspace = await NewWorkspaceAsync(credits: 10);
        var streaming = Admission(workspace, T0, limit: 3);
        var committed = Admission(workspace, T0, limit: 3);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(streaming, Ct)).Status);
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(committed, Ct)).Status);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, committed.TurnId, newSession: true, 1), T0, Ct);

        // A long stream says it is alive at T0 + 5 min: a cutoff before that spares it, one after it does not.
        Assert.True(await Store.Ledger.KeepAliveAsync(streaming.TurnId, T0.AddMinutes(5), Ct));
        Assert.False(await Store.Ledger.KeepAliveAsync(committed.TurnId, T0.AddMinutes(5), Ct)); // settled: nothing to keep
        Assert.Equal(0, await Store.Ledger.RefundAbandonedAsync(T0.AddMinutes(4), Ct));
        Assert.Equal(1, await Store.Ledger.RefundAbandonedAsync(T0.AddMinutes(6), Ct));
        Assert.Equal(9, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.False(await Store.Ledger.KeepAliveAsync(streaming.TurnId, T0.AddMinutes(7), Ct)); // refunded: the stream's commit will fail
    }

    [Fact]
    public async Task ForgetSettled_DeletesOnlySettledTurnsAdmittedBefore_InBatches()
    {
        var workspace = await NewWorkspaceAsync(credits: 100);
        var pending = Admission(workspace, T0, limit: null);
        var settled = Enumerable.Range(0, 5).Select(_ => Admission(workspace, T0, limit: null)).ToArray();
        var later = Admission(workspace, T0.AddDays(2), limit: null);
        foreach (var admission in settled.Append(pending).Append(later))
        {
            Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(admission, Ct)).Status);
        }

        for (var i = 0; i < settled.Length; i++)
        {
            await Store.Conversations.CommitTurnAsync(Turn(workspace, settled[i].TurnId, newSession: i == 0, 2 * i + 1), T0, Ct);
        }

        await Store.Conversations.CommitTurnAsync(Turn(workspace, later.TurnId, newSession: false, 11), T0.AddDays(2), Ct);

        // Two a transaction: 2 + 2 + 1, and the loop stops at the short batch.
        Assert.Equal(5, await Store.Ledger.ForgetSettledAsync(T0.AddMinutes(1), batch: 2, Ct));
        Assert.Equal(0, await Store.Ledger.ForgetSettledAsync(T0.AddMinutes(1), Ct));

        // The pending turn is still there to refund, the later one still counts in its window, the history is untouched.
        Assert.Equal(1, await Store.Ledger.RefundAbandonedAsync(T0.AddMinutes(1), Ct));
        Assert.Equal(AdmissionStatus.RateLimited, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddDays(2), limit: 1), Ct)).Status);
        Assert.Equal(12, (await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct)).Count);
        Assert.Equal(1, await Store.Ledger.ForgetSettledAsync(T0.AddDays(3), Ct));
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
            Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(admission, Ct)).Status);
        }

        await Store.Conversations.CommitTurnAsync(Turn(workspace, committed.TurnId, newSession: true, 1), T0, Ct);

        Assert.Equal(1, await Store.Ledger.RefundAbandonedAsync(T0.AddMinutes(1), Ct));
        Assert.Equal(0, await Store.Ledger.RefundAbandonedAsync(T0.AddMinutes(1), Ct));
        Assert.Equal(8, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        // The abandoned turn left the window: one more fits beside the two that remain.
        Assert.Equal(AdmissionStatus.Admitted, (await Store.Ledger.TryAdmitAsync(Admission(workspace, T0.AddMinutes(6), limit: 3), Ct)).Status);
        await Assert.ThrowsAsync<StaleStateException>(() => Store.Conversations.CommitTurnAsync(Turn(workspace, abandoned.TurnId, newSession: false, 3), T0, Ct));
    }

    [Fact]
    public async Task CommitTurn_AppendsInOrder_SettlesTurn_AndRefundAfterwardsChangesNothing()
    {
        var workspace = await NewWorkspaceAsync();
        var first = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(first, Ct);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, first.TurnId, newSession: true, 1), T0, Ct);
        var second = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(second, Ct);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, second.TurnId, newSession: false, 3), T0, Ct);
        await Store.Ledger.RefundAsync(first.TurnId, Ct);

        var messages = await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct);
        Assert.Equal([1L, 2, 3, 4], messages.Select(m => m.Seq));
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => m.Role));
        Assert.Equal(98, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        var session = await Store.Conversations.GetSessionAsync(workspace.Id, "s1", Ct);
        Assert.Equal(workspace.PrimaryBotId, session!.BotId);
    }

    [Fact]
    public async Task CommitTurn_KeepsTheKnowledgeSourcesOfAReply_AndNoneForMessagesWithout()
    {
        var workspace = await NewWorkspaceAsync();
        var admission = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(admission, Ct);
        MessageSource[] sources = [new("ks_a", "Help site", "https://help.example.com/boiling", [12, 14]), new("ks_b", "Warranty", null, [3])];
        var turn = Turn(workspace, admission.TurnId, newSession: true, 1);
        await Store.Conversations.CommitTurnAsync(turn with { Messages = [turn.Messages[0], turn.Messages[1] with { Sources = sources }] }, T0, Ct);

        var messages = await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct);
        Assert.Null(messages[0].Sources);
        Assert.Equal(
            [("ks_a", "Help site", "https://help.example.com/boiling", "12 14"), ("ks_b", "Warranty", null, "3")],
            messages[1].Sources!.Select(s => (s.Id, s.Name, s.Url, string.Join(' ', s.ChunkIds))));
    }

    [Fact]
    public async Task CommitTurn_SequenceTaken_FailsWholeTurn_AndStoresNothing()
    {
        var workspace = await NewWorkspaceAsync();
        var first = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(first, Ct);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, first.TurnId, newSession: true, 1), T0, Ct);
        var racing = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(racing, Ct);

        await Assert.ThrowsAsync<StaleStateException>(() => Store.Conversations.CommitTurnAsync(Turn(workspace, racing.TurnId, newSession: false, 1), T0, Ct));

        var messages = await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct);
        Assert.Equal(2, messages.Count);
        Assert.Equal("hello 1", messages[0].Content);

        // The failed statement left the writer's kept statements usable and the turn pending: it commits after the thread.
        await Store.Conversations.CommitTurnAsync(Turn(workspace, racing.TurnId, newSession: false, 3), T0, Ct);
        Assert.Equal([1L, 2L, 3L, 4L], (await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct)).Select(m => m.Seq));
    }

    [Fact]
    public async Task CommitTurn_ManyAtOnce_OneLosingItsRace_FailsAloneAndTheOthersCommit()
    {
        // On PostgreSQL commits waiting together go in one statement: the one at fault must fail alone.
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 1000);
        var existing = Admission(workspace, T0, limit: null);
        await Store.Ledger.TryAdmitAsync(existing, Ct);
        await Store.Conversations.CommitTurnAsync(Turn(workspace, existing.TurnId, newSession: true, 1) with { SessionId = "taken" }, T0, Ct);

        var admissions = Enumerable.Range(0, 24).Select(_ => Admission(workspace, T0, limit: null)).ToArray();
        await Task.WhenAll(admissions.Select(a => Store.Ledger.TryAdmitAsync(a, Ct)));
        var turns = admissions.Select((a, i) => Turn(workspace, a.TurnId, newSession: true, 1) with { SessionId = i == 7 ? "taken" : $"s{i}" }).ToArray();
        var commits = turns.Select(t => Task.Run(() => Store.Conversations.CommitTurnAsync(t, T0, Ct))).ToArray();
        await Task.WhenAll(commits.Select(c => c.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.IsType<StaleStateException>(commits[7].Exception?.InnerException);
        Assert.All(commits.Where((_, i) => i != 7), c => Assert.True(c.IsCompletedSuccessfully, c.Exception?.ToString()));
        foreach (var (turn, i) in turns.Select((t, i) => (t, i)).Where(x => x.i != 7))
        {
            Assert.Equal([1L, 2L], (await Store.Conversations.GetMessagesAsync(workspace.Id, turn.SessionId, Ct)).Select(m => m.Seq));
        }

        Assert.Equal(["hello 1"], (await Store.Conversations.GetMessagesAsync(workspace.Id, "taken", Ct)).Where(m => m.Role == "user").Select(m => m.Content));

        // The loser is still pending: its refund returns its credit (24 admitted, 23 kept, plus the first).
        await Store.Ledger.RefundAsync(turns[7].TurnId, Ct);
        Assert.Equal(1000 - 24, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task TryAdmit_ManyAtOnceOverTheirCredits_EachSeesThoseBeforeIt()
    {
        // Admissions decided together (one batch) must still debit one after another.
        var workspace = await NewWorkspaceAsync(plan: "byok", credits: 10);
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Task.Run(() => Store.Ledger.TryAdmitAsync(Admission(workspace, T0, limit: null), Ct))));

        var admitted = results.Where(r => r.Status == AdmissionStatus.Admitted).ToArray();
        Assert.Equal(10, admitted.Length);
        Assert.Equal(20, results.Count(r => r.Status == AdmissionStatus.InsufficientCredits));
        Assert.Equal(Enumerable.Range(0, 10).Select(n => (long)n), admitted.Select(r => r.CreditsRemaining).Order());
        Assert.Equal(0, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
    }

    [Fact]
    public async Task CommitTurn_OfRefundedTurn_IsRejected()
    {
        var workspace = await NewWorkspaceAsync();
        var admission = Admission(workspace, T0);
        await Store.Ledger.TryAdmitAsync(admission, Ct);
        await Store.Ledger.RefundAsync(admission.TurnId, Ct);

        await Assert.ThrowsAsync<StaleStateException>(() => Store.Conversations.CommitTurnAsync(Turn(workspace, admission.TurnId, newSession: true, 1), T0, Ct));
        Assert.Empty(await Store.Conversations.GetMessagesAsync(workspace.Id, "s1", Ct));
    }

    [Fact]
    public async Task ApiKeys_StoredAsHash_RevokedOnce()
    {
        var workspace = await NewWorkspaceAsync();
        var key = new ApiKeyRecord("key_1", workspace.Id, ApiKeys.Hash("lulu_sk_x"), "lulu_sk_xxxx", ["chat", "bots"], null, T0, null);
        await Store.Tenants.InsertApiKeyAsync(key, Ct);

        Assert.Equal(["chat", "bots"], (await Store.Tenants.FindApiKeyByHashAsync(key.KeyHash, Ct))!.Scopes);
        Assert.Null(await Store.Tenants.RevokeApiKeyAsync(Guid.NewGuid(), "key_1", T0, Ct)); // another workspace cannot revoke it
        Assert.Equal(key.KeyHash, await Store.Tenants.RevokeApiKeyAsync(workspace.Id, "key_1", T0, Ct));
        Assert.Null(await Store.Tenants.RevokeApiKeyAsync(workspace.Id, "key_1", T0, Ct));
        Assert.NotNull((await Store.Tenants.FindApiKeyByHashAsync(key.KeyHash, Ct))!.RevokedAt);
    }

    [Fact]
    public async Task AddCredits_AddsAtomically_UnknownWorkspaceIsNull()
    {
        var workspace = await NewWorkspaceAsync(credits: 0);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(() => Store.Tenants.AddCreditsAsync(workspace.Id, 5, T0, Ct))));

        Assert.Equal(100, (await Store.Tenants.GetWorkspaceAsync(workspace.Id, Ct))!.Credits);
        Assert.Null(await Store.Tenants.AddCreditsAsync(Guid.NewGuid(), 5, T0, Ct));
    }

    private static CommittedTurn Turn(WorkspaceRecord ws, string turnId, bool newSession, long seq) =>
        new(ws.Id, "s1", ws.PrimaryBotId, "gateway", turnId, newSession,
            [new SessionMessage(seq, "user", $"hello {seq}", T0), new SessionMessage(seq + 1, "assistant", $"Echo: hello {seq}", T0)]);

    // :: Knowledge sources

    protected static KnowledgeSourceRecord Source(Guid workspaceId, string id, string type = "manual") =>
        new(id, workspaceId, "FAQ", type, null, "pending", null, 0, "{}", 1, T0, T0, null, null);

    protected static KnowledgePageUpdate Page(string key, string hash, params string[] chunks) => new(
        new KnowledgePageRecord(key, $"Title of {key}", hash, $"\"{hash}\"", null),
        [.. chunks.Select((text, i) => new KnowledgeChunkRecord(key, i, text, 3, $"Title of {key}", "Heading", [i, 0.5f, -1f]))]);

    [Fact]
    public async Task Knowledge_ADueSourceIsClaimedOnce_AndClaimedAgainOnlyWhenItsLeaseRunsOut_ByWhoeverHoldsItLast()
    {
        var ws = await NewWorkspaceAsync();
        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_1"), null, Ct);

        var first = await Store.Knowledge.ClaimDueSourceAsync("silo-a", T0, T0.AddMinutes(1), Ct);
        var meanwhile = await Store.Knowledge.ClaimDueSourceAsync("silo-b", T0.AddSeconds(30), T0.AddMinutes(2), Ct);
        var afterLease = await Store.Knowledge.ClaimDueSourceAsync("silo-b", T0.AddMinutes(2), T0.AddMinutes(3), Ct);

        Assert.Equal("ks_1", first?.Source.Id);
        Assert.Null(meanwhile);
        Assert.Equal("ks_1", afterLease?.Source.Id);
        Assert.False(await Store.Knowledge.RenewLeaseAsync("ks_1", "silo-a", T0.AddMinutes(5), Ct));
        Assert.False(await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_1", 1, "silo-a", "ready", null, [Page("", "h", "stale")], null), T0.AddMinutes(2), Ct));
        Assert.True(await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_1", 1, "silo-b", "ready", null, [Page("", "h", "one", "two")], null), T0.AddMinutes(2), Ct));

        var source = await Store.Knowledge.GetSourceAsync(ws.Id, "ks_1", Ct);
        Assert.Equal(("ready", 2L, T0.AddMinutes(2)), (source!.Status, source.ChunkCount, source.LastIngestedAt));
        Assert.Equal(["one", "two"], (await Store.Knowledge.GetChunksAsync("ks_1", Ct)).Select(c => c.Text));
        Assert.Null(await Store.Knowledge.ClaimDueSourceAsync("silo-c", T0.AddDays(1), T0.AddDays(2), Ct)); // ready, and no crawl scheduled
    }

    [Fact]
    public async Task Knowledge_AReIngestionKeepsUnchangedPages_ReplacesChangedOnes_AndDropsPagesThatWent()
    {
        var ws = await NewWorkspaceAsync();
        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_site", "website"), null, Ct);
        var claim = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
        await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_site", claim!.Source.Version, "a", "ready", null,
            [Page("https://x/1", "h1", "page one"), Page("https://x/2", "h2", "page two", "more of two")], T0.AddDays(1)), T0, Ct);

        var recrawl = await Store.Knowledge.ClaimDueSourceAsync("b", T0.AddDays(1), T0.AddDays(1).AddMinutes(1), Ct);
        Assert.Equal(["https://x/1", "https://x/2"], recrawl!.Pages.Select(p => p.Key));
        Assert.Equal("\"h1\"", recrawl.Pages[0].ETag);
        var unchanged = new KnowledgePageUpdate(recrawl.Pages[0] with { ETag = "\"h1-new\"" }, null);
        await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_site", recrawl.Source.Version, "b", "ready", null,
            [unchanged, Page("https://x/3", "h3", "page three")], T0.AddDays(2)), T0.AddDays(1), Ct);

        var chunks = await Store.Knowledge.GetChunksAsync("ks_site", Ct);
        Assert.Equal(["page one", "page three"], chunks.Select(c => c.Text));
        Assert.Equal([0f, 0.5f, -1f], chunks[0].Embedding!);
        Assert.Equal(("Title of https://x/1", "Heading"), (chunks[0].Title, chunks[0].Heading));
        var source = await Store.Knowledge.GetSourceAsync(ws.Id, "ks_site", Ct);
        Assert.Equal((2L, T0.AddDays(2)), (source!.ChunkCount, source.NextCrawlAt));
        var next = await Store.Knowledge.ClaimDueSourceAsync("c", T0.AddDays(2), T0.AddDays(2).AddMinutes(1), Ct);
        Assert.Equal("\"h1-new\"", next!.Pages.Single(p => p.Key == "https://x/1").ETag);
    }

    [Fact]
    public async Task Knowledge_ARefreshOrADeleteDuringAnIngestion_WinsOverIt_AndADeleteTakesTheChunksAtOnce()
    {
        var ws = await NewWorkspaceAsync();
        var other = await NewWorkspaceAsync();
        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_doc", "document"), new KnowledgeFile("a.txt", "text/plain", [1, 2, 3]), Ct);
        var claim = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
        Assert.Equal([1, 2, 3], claim!.File!.Content);

        Assert.NotNull(await Store.Knowledge.RequestIngestionAsync(ws.Id, "ks_doc", T0, Ct));
        Assert.False(await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_doc", claim.Source.Version, "a", "ready", null, [Page("", "h", "old")], null), T0, Ct));
        var again = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
        Assert.Equal(claim.Source.Version + 1, again!.Source.Version);
        Assert.True(await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_doc", again.Source.Version, "a", "ready", null, [Page("", "h", "new")], null), T0, Ct));

        Assert.False(await Store.Knowledge.DeleteSourceAsync(other.Id, "ks_doc", Ct)); // another workspace's
        Assert.Null(await Store.Knowledge.RequestIngestionAsync(other.Id, "ks_doc", T0, Ct));
        Assert.True(await Store.Knowledge.DeleteSourceAsync(ws.Id, "ks_doc", Ct));
        Assert.Empty(await Store.Knowledge.GetChunksAsync("ks_doc", Ct));
        Assert.Null(await Store.Knowledge.GetSourceAsync(ws.Id, "ks_doc", Ct));
    }

    [Fact]
    public async Task Knowledge_FullTextSearch_FindsStemmedWordsInTheWorkspacesIngestedSourcesOnly_NotInOnesInError_AndStillWhileOneIsIngestedAgain()
    {
        var ws = await NewWorkspaceAsync();
        var other = await NewWorkspaceAsync();
        async Task IngestAsync(Guid workspaceId, string id, string status, params string[] texts)
        {
            await Store.Knowledge.InsertSourceAsync(Source(workspaceId, id), null, Ct);
            var claim = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
            Assert.Equal(id, claim!.Source.Id);
            await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome(id, claim.Source.Version, "a", status, null, [Page("", id, texts)], null), T0, Ct);
        }

        await IngestAsync(ws.Id, "ks_a", "ready", "We deliver parcels to Mars on Tuesdays.", "Returns take thirty days.");
        await IngestAsync(ws.Id, "ks_broken", "error", "Mars deliveries are cancelled.");
        await IngestAsync(other.Id, "ks_other", "ready", "Mars is delivered to daily.");

        var hits = await Store.Knowledge.SearchTextAsync(ws.Id, ["delivering", "mars"], 10, Ct);
        var chunks = await Store.Knowledge.GetRetrievedChunksAsync(ws.Id, hits, Ct);

        Assert.Equal(["We deliver parcels to Mars on Tuesdays."], chunks.Select(c => c.Text));
        Assert.Equal(("ks_a", "FAQ"), (chunks[0].SourceId, chunks[0].SourceName));
        Assert.Empty(await Store.Knowledge.SearchTextAsync(ws.Id, ["\"); DROP TABLE knowledge_chunks; --"], 10, Ct));
        Assert.Empty(await Store.Knowledge.SearchTextAsync(ws.Id, [], 10, Ct));
        Assert.Equal(["ks_a"], (await Store.Knowledge.GetAnsweringSourceStampsAsync(ws.Id, Ct)).Select(s => s.SourceId));
        Assert.Equal(2, (await Store.Knowledge.GetSourceEmbeddingsAsync("ks_a", Ct)).Count);
        Assert.Empty(await Store.Knowledge.GetRetrievedChunksAsync(other.Id, hits, Ct));

        // Refreshed (pending), then claimed (crawling): its last ingestion's chunks answer until the new one settles.
        await Store.Knowledge.RequestIngestionAsync(ws.Id, "ks_a", T0, Ct);
        Assert.Equal(hits, await Store.Knowledge.SearchTextAsync(ws.Id, ["delivering", "mars"], 10, Ct));
        Assert.Equal("ks_a", (await Store.Knowledge.ClaimDueSourceAsync("b", T0, T0.AddMinutes(1), Ct))!.Source.Id);
        Assert.Equal(hits, await Store.Knowledge.SearchTextAsync(ws.Id, ["delivering", "mars"], 10, Ct));
        Assert.Equal(chunks, await Store.Knowledge.GetRetrievedChunksAsync(ws.Id, hits, Ct));
        Assert.Equal(["ks_a"], (await Store.Knowledge.GetAnsweringSourceStampsAsync(ws.Id, Ct)).Select(s => s.SourceId));
        Assert.Equal(2, (await Store.Knowledge.GetSourceEmbeddingsAsync("ks_a", Ct)).Count);
    }

    [Fact]
    public async Task Knowledge_FullTextSearch_RanksByTheRarerTerms_WhenATermMatchesMoreThanTheRankingBudget_AndStillAnswersWhenEveryTermIsCommon()
    {
        var ws = await NewWorkspaceAsync();
        var texts = Enumerable.Range(0, KnowledgeStore.RankedMatches + 100)
            .Select(i => i % 400 == 7 ? $"Every order ships with a zorbulator manual, number {i}." : $"Every order ships within two days, number {i}.").ToArray();
        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_big"), null, Ct);
        var claim = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
        Assert.True(await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_big", claim!.Source.Version, "a", "ready", null, [Page("", "h", texts)], null), T0, Ct));

        var rare = await Store.Knowledge.GetRetrievedChunksAsync(ws.Id, await Store.Knowledge.SearchTextAsync(ws.Id, ["order", "ships", "zorbulator"], 10, Ct), Ct);
        var common = await Store.Knowledge.SearchTextAsync(ws.Id, ["order", "ships"], 10, Ct);

        Assert.Equal(3, rare.Count); // chunks 7, 407 and 807: the common words alone do not fill the list
        Assert.All(rare, c => Assert.Contains("zorbulator", c.Text));
        Assert.Equal(10, common.Count);
    }
}

public sealed class SqliteStoreTests : StoreTests
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-store-").FullName;

    protected override Task<LuluStorage> CreateStoreAsync() =>
        Task.FromResult(StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(_folder, "test.db")}"));

    [Theory]
    [InlineData(TurnLedger.SettledBefore, "turns_window")]
    public async Task Sweeps_UseAnIndex_NotAScanOfTurns(string sql, string index)
    {
        // The reaper's sweeps run every minute on a table with a row per turn of the last day.
        await using var connection = await Store.Database.OpenAsync(TestContext.Current.CancellationToken);
        var plan = string.Join(" | ", (await connection.QueryAsync($"EXPLAIN QUERY PLAN {sql}", new { Cutoff = 0L, Before = 0L, Batch = 5 }))
            .Select(row => (string)row.detail));
        Assert.Contains(index, plan);
        Assert.DoesNotContain("SCAN t", plan); // neither "SCAN turns" nor "SCAN t"
    }

    [Fact]
    public async Task Database_IsInWalMode()
    {
        await using var connection = await Store.Database.OpenAsync(TestContext.Current.CancellationToken);
        Assert.Equal("wal", await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}

public sealed class PostgresStoreTests : StoreTests
{
    private TestPostgres? _database;

    [Fact]
    public async Task Knowledge_TheWorkspacesLexemeCounts_FollowEveryIngestionReIngestionAndDelete()
    {
        var ws = await NewWorkspaceAsync();
        var other = await NewWorkspaceAsync();
        async Task<IngestionOutcome> OutcomeAsync(string id, params KnowledgePageUpdate[] pages)
        {
            var claim = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
            Assert.Equal(id, claim!.Source.Id);
            return new IngestionOutcome(id, claim.Source.Version, "a", "ready", null, pages, null);
        }

        async Task<string> CountsAsync(Guid workspaceId, string sql)
        {
            await using var connection = await Store.Database.OpenAsync(Ct);
            var rows = await connection.QueryAsync<(string Lexeme, long Chunks)>(sql, new { WorkspaceId = workspaceId.ToString() });
            return string.Join(" ", rows.OrderBy(r => r.Lexeme, StringComparer.Ordinal).Select(r => $"{r.Lexeme}:{r.Chunks}"));
        }

        Task<string> KeptAsync(Guid workspaceId) => CountsAsync(workspaceId, "SELECT lexeme, chunks FROM knowledge_terms WHERE workspace_id = @WorkspaceId");
        Task<string> RecountedAsync(Guid workspaceId) => CountsAsync(workspaceId,
            "SELECT lexeme, COUNT(*) FROM knowledge_chunks, unnest(tsvector_to_array(search)) AS lexeme WHERE workspace_id = @WorkspaceId GROUP BY lexeme");

        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_site", "website"), null, Ct);
        await Store.Knowledge.CompleteIngestionAsync(await OutcomeAsync("ks_site",
            Page("https://x/1", "h1", "Parcels ship daily.", "Returns take thirty days."), Page("https://x/2", "h2", "Parcels to Mars ship weekly.")), T0, Ct);
        await Store.Knowledge.InsertSourceAsync(Source(ws.Id, "ks_faq"), null, Ct);
        await Store.Knowledge.CompleteIngestionAsync(await OutcomeAsync("ks_faq", Page("", "f", "Mars parcels are insured.")), T0, Ct);
        await Store.Knowledge.InsertSourceAsync(Source(other.Id, "ks_other"), null, Ct);
        await Store.Knowledge.CompleteIngestionAsync(await OutcomeAsync("ks_other", Page("", "o", "Parcels everywhere.")), T0, Ct);
        Assert.Equal("daili:1 day:1 head:4 insur:1 mar:2 parcel:3 return:1 ship:2 take:1 thirti:1 week:1", await KeptAsync(ws.Id));

        // Page 1 kept, page 2 changed, page 3 new; then page 1 gone; then the FAQ deleted.
        await Store.Knowledge.RequestIngestionAsync(ws.Id, "ks_site", T0, Ct);
        var claimed = await Store.Knowledge.ClaimDueSourceAsync("a", T0, T0.AddMinutes(1), Ct);
        await Store.Knowledge.CompleteIngestionAsync(new IngestionOutcome("ks_site", claimed!.Source.Version, "a", "ready", null,
            [new KnowledgePageUpdate(claimed.Pages.Single(p => p.Key == "https://x/1"), null), Page("https://x/2", "h2b", "Mars gets parcels monthly."), Page("https://x/3", "h3", "Insured parcels cost more.")], null), T0, Ct);
        Assert.Equal(await RecountedAsync(ws.Id), await KeptAsync(ws.Id));
        await Store.Knowledge.RequestIngestionAsync(ws.Id, "ks_site", T0, Ct);
        await Store.Knowledge.CompleteIngestionAsync(await OutcomeAsync("ks_site", Page("https://x/2", "h2b", "Mars gets parcels monthly."), Page("https://x/3", "h3", "Insured parcels cost more.")), T0, Ct);
        Assert.Equal(await RecountedAsync(ws.Id), await KeptAsync(ws.Id));
        Assert.True(await Store.Knowledge.DeleteSourceAsync(ws.Id, "ks_faq", Ct));

        Assert.Equal(await RecountedAsync(ws.Id), await KeptAsync(ws.Id));
        Assert.Equal("cost:1 get:1 head:2 insur:1 mar:1 month:1 parcel:2", await KeptAsync(ws.Id));
        Assert.Equal("everywher:1 head:1 parcel:1", await KeptAsync(other.Id));
    }

    protected override async Task<LuluStorage> CreateStoreAsync()
    {
        _database = await TestPostgres.CreateAsync();
        return StorageServiceCollectionExtensions.CreatePostgres(_database.ConnectionString);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
