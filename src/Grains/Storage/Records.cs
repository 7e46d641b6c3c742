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
    DateTimeOffset? LastRestartedAt);

/// <summary>A workspace's own provider key, as stored: encrypted, with a masked hint.</summary>
public sealed record ProviderKeyRecord(Guid WorkspaceId, string Provider, string Ciphertext, string Hint, DateTimeOffset UpdatedAt);

/// <summary>An API key row: only the hash of the key is stored.</summary>
public sealed record ApiKeyRecord(
    string Id, Guid WorkspaceId, string KeyHash, string Prefix, IReadOnlyList<string> Scopes, string? Plan, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>A session row: which workspace and bot a thread belongs to.</summary>
public sealed record SessionRecord(Guid WorkspaceId, string SessionId, string BotId, string Channel, DateTimeOffset CreatedAt, DateTimeOffset LastActivity);

/// <summary>One turn to admit into a workspace's rolling window.</summary>
/// <param name="TurnsPerHour">The limit of the workspace's plan as read inside the admitting transaction; null is unlimited.</param>
/// <param name="KeyWindows">The windows of the key's plan as read inside the admitting transaction (null: the default plan).</param>
/// <param name="BotId">The bot that is to answer: its row's version comes back with the admission (<see cref="AdmissionResult.BotVersion"/>).</param>
public sealed record TurnAdmission(
    Guid WorkspaceId,
    string TurnId,
    string? KeyId,
    string SessionId,
    long Cost,
    DateTimeOffset Now,
    Func<string, int?> TurnsPerHour,
    Func<string?, IReadOnlyList<RateWindow>> KeyWindows,
    string? BotId = null);

/// <summary>A finished turn to store: its messages and the admission it settles.</summary>
public sealed record CommittedTurn(
    Guid WorkspaceId, string SessionId, string BotId, string Channel, string TurnId, bool NewSession, IReadOnlyList<SessionMessage> Messages);

/// <summary>A write named a version that is no longer current: someone else wrote first.</summary>
public sealed class StaleStateException(string message) : Exception(message);

/// <summary>A row that must be unique exists already.</summary>
public sealed class DuplicateException(string message) : Exception(message);
