namespace LuluClaw.Grains.Storage;

/// <summary>Workspaces, their bots and their keys.</summary>
public interface ITenantStore
{
    /// <summary>Whether any workspace exists (first-start seeding).</summary>
    Task<bool> AnyWorkspaceAsync(CancellationToken cancellationToken);

    /// <summary>How many workspaces there are.</summary>
    Task<long> CountWorkspacesAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="limit"/> workspaces, newest first (by creation time, then id), after skipping
    /// the <paramref name="offset"/> newer ones; empty past the last.
    /// </summary>
    Task<IReadOnlyList<WorkspaceRecord>> ListWorkspacesAsync(long offset, int limit, CancellationToken cancellationToken);

    /// <summary>Inserts a workspace and its primary bot together. Throws <see cref="DuplicateException"/> if the id is taken.</summary>
    Task CreateWorkspaceAsync(WorkspaceRecord workspace, BotRecord primaryBot, CancellationToken cancellationToken);

    /// <summary>The workspace, or null.</summary>
    Task<WorkspaceRecord?> GetWorkspaceAsync(Guid id, CancellationToken cancellationToken);

    /// <summary>
    /// Writes name and plan if the row is still at <paramref name="expectedVersion"/>, and returns the new row.
    /// Throws <see cref="StaleStateException"/> if another writer got there first.
    /// </summary>
    Task<WorkspaceRecord> UpdateWorkspaceAsync(WorkspaceRecord workspace, long expectedVersion, CancellationToken cancellationToken);

    /// <summary>Adds credits atomically and returns the new balance, or null if there is no such workspace.</summary>
    Task<long?> AddCreditsAsync(Guid id, long amount, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The bot, or null.</summary>
    Task<BotRecord?> GetBotAsync(string id, CancellationToken cancellationToken);

    /// <summary>The ids of the workspace's bots, oldest first.</summary>
    Task<IReadOnlyList<string>> ListBotIdsAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>Stores a new bot. Throws <see cref="DuplicateException"/> if the id is taken.</summary>
    Task InsertBotAsync(BotRecord bot, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the bot's configuration and restart fields if the row is still at
    /// <paramref name="expectedVersion"/>, and returns the new row (version + 1). Throws
    /// <see cref="StaleStateException"/> if another writer got there first or the bot is gone.
    /// </summary>
    Task<BotRecord> UpdateBotAsync(BotRecord bot, long expectedVersion, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the bot of the workspace; if it was the workspace's primary bot, the oldest remaining
    /// bot becomes primary. False if there was no such bot.
    /// </summary>
    Task<bool> DeleteBotAsync(Guid workspaceId, string botId, CancellationToken cancellationToken);

    /// <summary>Stores or replaces the workspace's key for a provider.</summary>
    Task PutProviderKeyAsync(ProviderKeyRecord key, CancellationToken cancellationToken);

    /// <summary>The workspace's key for <paramref name="provider"/>, or null.</summary>
    Task<ProviderKeyRecord?> GetProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken);

    /// <summary>The workspace's provider keys, by provider.</summary>
    Task<IReadOnlyList<ProviderKeyRecord>> ListProviderKeysAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>Deletes the workspace's key for <paramref name="provider"/>; false if there was none.</summary>
    Task<bool> DeleteProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken);

    /// <summary>Stores a new key (its hash only).</summary>
    Task InsertApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken);

    /// <summary>The key with this hash, revoked or not, or null.</summary>
    Task<ApiKeyRecord?> FindApiKeyByHashAsync(string keyHash, CancellationToken cancellationToken);

    /// <summary>Revokes a key of the workspace and returns its hash, or null if there is no such live key.</summary>
    Task<string?> RevokeApiKeyAsync(Guid workspaceId, string keyId, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>The rolling-window and credit ledger. Each call is one database transaction.</summary>
public interface ITurnLedger
{
    /// <summary>
    /// Checks the key (live, and its plan's windows: <see cref="TurnAdmission.Limits"/>), the
    /// workspace's credits and windows, and if all allow, records the turn as pending and debits its
    /// cost, atomically under the workspace's lock. When it answers, the admission is visible to every
    /// reader; it becomes durable with the turn's own <see cref="IConversationStore.CommitTurnAsync"/>
    /// or <see cref="RefundAsync"/>, so a crash before either forgets a turn nobody was told of.
    /// </summary>
    Task<AdmissionResult> TryAdmitAsync(TurnAdmission admission, CancellationToken cancellationToken);

    /// <summary>Removes a pending turn and returns its credits. Does nothing for a settled or unknown turn.</summary>
    Task RefundAsync(string turnId, CancellationToken cancellationToken);

    /// <summary>
    /// Records that a pending turn is still being worked on (a long streamed reply), so that
    /// <see cref="RefundAbandonedAsync"/> leaves it alone. False if the turn is no longer pending.
    /// </summary>
    Task<bool> KeepAliveAsync(string turnId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Refunds every turn still pending whose last sign of life (its admission, or its latest
    /// <see cref="KeepAliveAsync"/>) is before <paramref name="silentSince"/>: turns whose process died
    /// between admission and commit. Returns how many.
    /// </summary>
    Task<int> RefundAbandonedAsync(DateTimeOffset silentSince, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the settled turns admitted before <paramref name="admittedBefore"/> (older than every
    /// rate window, which count turns by admission time), a batch per transaction. Returns how many.
    /// </summary>
    Task<int> ForgetSettledAsync(DateTimeOffset admittedBefore, CancellationToken cancellationToken);
}

/// <summary>Threads and their append-only messages.</summary>
public interface IConversationStore
{
    /// <summary>The session row, or null.</summary>
    Task<SessionRecord?> GetSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken);

    /// <summary>All messages of the session, by sequence number.</summary>
    Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken);

    /// <summary>
    /// Appends the turn's messages, creates the session row if new and marks the turn settled, in one
    /// transaction. A sequence number taken already fails the whole write.
    /// </summary>
    Task CommitTurnAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Every session of the workspace, most recently active first.</summary>
    Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>Deletes the session and its messages; false if there was no such session.</summary>
    Task<bool> DeleteSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken);
}

/// <summary>Per-key request counters in fixed windows, decided by the database.</summary>
public interface IRequestCounter
{
    /// <summary>Counts one request of <paramref name="keyId"/> in <paramref name="bucket"/>'s window starting at <paramref name="windowStart"/> and returns the count, this one included.</summary>
    Task<long> CountAsync(string keyId, string bucket, DateTimeOffset windowStart, CancellationToken cancellationToken);
}
