namespace LuluClaw.Grains.Storage;

/// <summary>A workspace row. <see cref="Version"/> is its ETag: every write names the version it read.</summary>
public sealed record WorkspaceRecord(
    Guid Id, string Name, string Plan, long Credits, string PrimaryBotId, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    /// <summary>The public view.</summary>
    public WorkspaceInfo ToInfo() => new(Id, Name, Plan, Credits, PrimaryBotId, CreatedAt);
}

/// <summary>A bot row. <see cref="Version"/> is its ETag: configuration changes and restarts name the version they read.</summary>
public sealed record BotRecord(
    string Id,
    Guid WorkspaceId,
    string Name,
    string SystemPrompt,
    string Model,
    IReadOnlyList<string> Channels,
    long Version,
    long RestartCount,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastRestartedAt,
    BotKnowledge? Knowledge = null);

/// <summary>A workspace's own provider key, as stored: encrypted, with a masked hint.</summary>
public sealed record ProviderKeyRecord(Guid WorkspaceId, string Provider, string Ciphertext, string Hint, DateTimeOffset UpdatedAt);

/// <summary>An API key row: only the hash of the key is stored.</summary>
public sealed record ApiKeyRecord(
    string Id, Guid WorkspaceId, string KeyHash, string Prefix, IReadOnlyList<string> Scopes, string? Plan, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>A session row: which workspace and bot a thread belongs to.</summary>
public sealed record SessionRecord(Guid WorkspaceId, string SessionId, string BotId, string Channel, DateTimeOffset CreatedAt, DateTimeOffset LastActivity);

/// <summary>One turn to admit into a workspace's rolling windows.</summary>
/// <param name="Limits">The windows of every plan: the ledger applies those of the workspace's and the key's plans as it reads them inside the admitting transaction.</param>
/// <param name="BotId">The bot that is to answer: its row's version comes back with the admission (<see cref="AdmissionResult.BotVersion"/>).</param>
public sealed record TurnAdmission(
    Guid WorkspaceId,
    string TurnId,
    string? KeyId,
    string SessionId,
    long Cost,
    DateTimeOffset Now,
    PlanLimits Limits,
    string? BotId = null);

/// <summary>
/// The rolling windows of every workspace plan and key plan, by plan name: what the turn ledger
/// counts, as data. A plan that is not here admits nothing (it was removed from configuration).
/// </summary>
public sealed class PlanLimits(
    IReadOnlyDictionary<string, IReadOnlyList<RateWindow>> workspacePlans,
    IReadOnlyDictionary<string, IReadOnlyList<RateWindow>> keyPlans,
    string defaultKeyPlan)
{
    /// <summary>The windows a workspace on <paramref name="plan"/> is held to.</summary>
    public IReadOnlyList<RateWindow> ForWorkspace(string plan) =>
        workspacePlans.TryGetValue(plan, out var windows) ? windows : [Closed(TimeSpan.FromHours(1), $"workspace plan '{plan}' is not configured")];

    /// <summary>The windows a key on <paramref name="plan"/> (null: the default key plan) is held to.</summary>
    public IReadOnlyList<RateWindow> ForKey(string? plan)
    {
        var name = string.IsNullOrEmpty(plan) ? defaultKeyPlan : plan;
        return keyPlans.TryGetValue(name, out var windows) ? windows : [Closed(TimeSpan.FromDays(1), $"key plan '{name}' is not configured")];
    }

    private static RateWindow Closed(TimeSpan length, string description) => new(length, 0, description);
}

/// <summary>A finished turn to store: its messages and the admission it settles.</summary>
public sealed record CommittedTurn(
    Guid WorkspaceId, string SessionId, string BotId, string Channel, string TurnId, bool NewSession, IReadOnlyList<SessionMessage> Messages);

/// <summary>A write named a version that is no longer current: someone else wrote first.</summary>
public sealed class StaleStateException(string message) : Exception(message);

/// <summary>A row that must be unique exists already.</summary>
public sealed class DuplicateException(string message) : Exception(message);
