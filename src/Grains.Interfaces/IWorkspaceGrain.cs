using LuluClaw.Actors;

namespace LuluClaw;

/// <summary>
/// A tenant, keyed by its id (<see cref="Guid"/> "D" format). It admits turns against the rolling
/// one-hour window of its plan and debits its credits; the database decides, so the invariants hold
/// across processes.
/// </summary>
public interface IWorkspaceGrain : IGrainWithStringKey
{
    /// <summary>Creates the workspace and its primary bot. Fails if it exists already.</summary>
    Task<WorkspaceInfo> CreateAsync(CreateWorkspaceRequest request, CancellationToken cancellationToken);

    /// <summary>The workspace, or null if there is none with this id.</summary>
    Task<WorkspaceInfo?> GetAsync(CancellationToken cancellationToken);

    /// <summary>Changes the plan; null if the workspace does not exist.</summary>
    Task<WorkspaceInfo?> ChangePlanAsync(string plan, CancellationToken cancellationToken);

    /// <summary>Adds credits and returns the new balance; null if the workspace does not exist.</summary>
    Task<long?> AddCreditsAsync(long amount, CancellationToken cancellationToken);

    /// <summary>Admits one turn (window and credits, atomically) or says why not. The database serialises admissions, so they interleave.</summary>
    [AlwaysInterleave]
    Task<AdmissionResult> AdmitTurnAsync(AdmitTurnRequest request, CancellationToken cancellationToken);

    /// <summary>Gives back a turn whose model call failed: it leaves the window and its credits return.</summary>
    [AlwaysInterleave]
    Task RefundTurnAsync(string turnId, CancellationToken cancellationToken);

    /// <summary>
    /// Tells the store an admitted turn is still streaming, so it is not taken for abandoned; false
    /// if the turn is no longer pending.
    /// </summary>
    [AlwaysInterleave]
    Task<bool> KeepTurnAliveAsync(string turnId, CancellationToken cancellationToken);

    /// <summary>Mints an API key; its plaintext is in the result and nowhere else. Null if the workspace does not exist.</summary>
    Task<CreatedApiKey?> CreateKeyAsync(CreateApiKeyRequest request, CancellationToken cancellationToken);

    /// <summary>Revokes a key of this workspace; false if there is no such key.</summary>
    Task<bool> RevokeKeyAsync(string keyId, CancellationToken cancellationToken);

    /// <summary>Every session of the workspace, whichever surface started it, most recently active first.</summary>
    Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(CancellationToken cancellationToken);

    /// <summary>The workspace's bots, oldest first, with their live status.</summary>
    Task<IReadOnlyList<BotInfo>> ListBotsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores (or replaces) the workspace's own key for a model provider (BYOK), encrypted; its bots
    /// use it instead of the platform's from their next turn. Null if the workspace does not exist.
    /// </summary>
    Task<ProviderKeyInfo?> SetProviderKeyAsync(string provider, string apiKey, CancellationToken cancellationToken);

    /// <summary>The workspace's stored provider keys, as masked hints only.</summary>
    Task<IReadOnlyList<ProviderKeyInfo>> ListProviderKeysAsync(CancellationToken cancellationToken);

    /// <summary>Removes the workspace's key for <paramref name="provider"/>; false if there was none.</summary>
    Task<bool> DeleteProviderKeyAsync(string provider, CancellationToken cancellationToken);
}

/// <summary>A stored provider key as anyone may see it: never the key, only a masked hint.</summary>
/// <param name="Hint">Like <c>sk-…abcd</c>.</param>
public sealed record ProviderKeyInfo(string Provider, string Hint, DateTimeOffset UpdatedAt);

/// <summary>The model providers a workspace can bring its own key for.</summary>
public static class ModelProviders
{
    /// <summary>OpenAI and OpenAI-compatible servers.</summary>
    public const string OpenAI = "openai";
    /// <summary>Anthropic.</summary>
    public const string Anthropic = "anthropic";

    /// <summary>Every provider that takes a workspace key.</summary>
    public static readonly IReadOnlyList<string> WithKeys = [OpenAI, Anthropic];
}

/// <summary>What an operator gives to create a workspace.</summary>
public sealed record CreateWorkspaceRequest(string Name, string Plan, long Credits);

/// <summary>A workspace as callers see it.</summary>
public sealed record WorkspaceInfo(Guid Id, string Name, string Plan, long CreditsRemaining, string PrimaryBotId, DateTimeOffset CreatedAt);

/// <summary>A turn asking to be admitted.</summary>
public sealed record AdmitTurnRequest(string TurnId, string? KeyId, string SessionId);

/// <summary>How an admission ended.</summary>
public enum AdmissionStatus
{
    /// <summary>Counted in the window and debited.</summary>
    Admitted,
    /// <summary>A rolling window (the workspace's or the key's) is full.</summary>
    RateLimited,
    /// <summary>Not enough credits.</summary>
    InsufficientCredits,
    /// <summary>No such workspace.</summary>
    NotFound,
    /// <summary>The key the turn came with is unknown or was revoked (perhaps on another node).</summary>
    KeyRevoked,
}

/// <summary>The answer to <see cref="IWorkspaceGrain.AdmitTurnAsync"/>.</summary>
/// <param name="CreditsUsed">Credits debited (0 unless admitted).</param>
/// <param name="CreditsRemaining">The balance after this admission.</param>
/// <param name="RetryAfter">For <see cref="AdmissionStatus.RateLimited"/>: until every full window has room again.</param>
/// <param name="Detail">For <see cref="AdmissionStatus.RateLimited"/>: which window refused, in words.</param>
/// <param name="SessionLastSeq">
/// For <see cref="AdmissionStatus.Admitted"/>: the last sequence number stored in the session, as the
/// admission's transaction saw it (0 for none), so a session activation can tell that another node
/// has written the thread since it read it.
/// </param>
public sealed record AdmissionResult(
    AdmissionStatus Status, long CreditsUsed, long CreditsRemaining, TimeSpan? RetryAfter = null, string? Detail = null, long SessionLastSeq = 0);

/// <summary>
/// What to mint a key with. Null or empty scopes mean the defaults (<c>chat</c> and <c>bots</c>); a
/// null plan means the configured default key plan.
/// </summary>
public sealed record CreateApiKeyRequest(IReadOnlyList<string>? Scopes, string? Plan = null);

/// <summary>A key just minted. <see cref="Key"/> is the only copy of its plaintext.</summary>
public sealed record CreatedApiKey(string Id, string Key, string Prefix, IReadOnlyList<string> Scopes, string Plan);
