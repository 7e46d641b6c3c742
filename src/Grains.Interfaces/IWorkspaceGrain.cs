namespace LuluClaw;

/// <summary>
/// A tenant, keyed by its id (<see cref="Guid"/> "D" format): its plan, credits, keys, bots and
/// provider keys. Its turns are admitted against its plan's windows and debited by the ledger, in one
/// database transaction each, so the invariants hold across silos.
/// </summary>
[Alias("luluclaw.IWorkspaceGrain")]
public interface IWorkspaceGrain : IGrainWithStringKey
{
    /// <summary>Creates the workspace and its primary bot. Fails if it exists already.</summary>
    [Alias("CreateAsync")]
    Task<WorkspaceInfo> CreateAsync(CreateWorkspaceRequest request, CancellationToken cancellationToken);

    /// <summary>The workspace, or null if there is none with this id.</summary>
    [Alias("GetAsync")]
    Task<WorkspaceInfo?> GetAsync(CancellationToken cancellationToken);

    /// <summary>Changes the plan; null if the workspace does not exist.</summary>
    [Alias("ChangePlanAsync")]
    Task<WorkspaceInfo?> ChangePlanAsync(string plan, CancellationToken cancellationToken);

    /// <summary>Adds credits and returns the new balance; null if the workspace does not exist.</summary>
    [Alias("AddCreditsAsync")]
    Task<long?> AddCreditsAsync(long amount, CancellationToken cancellationToken);

    /// <summary>Mints an API key; its plaintext is in the result and nowhere else. Null if the workspace does not exist.</summary>
    [Alias("CreateKeyAsync")]
    Task<CreatedApiKey?> CreateKeyAsync(CreateApiKeyRequest request, CancellationToken cancellationToken);

    /// <summary>Revokes a key of this workspace; false if there is no such key.</summary>
    [Alias("RevokeKeyAsync")]
    Task<bool> RevokeKeyAsync(string keyId, CancellationToken cancellationToken);

    /// <summary>Every session of the workspace, whichever surface started it, most recently active first.</summary>
    [Alias("ListSessionsAsync")]
    Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(CancellationToken cancellationToken);

    /// <summary>The workspace's bots, oldest first, with their live status.</summary>
    [Alias("ListBotsAsync")]
    Task<IReadOnlyList<BotInfo>> ListBotsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores (or replaces) the workspace's own key for a model provider (BYOK), encrypted; its bots
    /// use it instead of the platform's from their next turn. Null if the workspace does not exist.
    /// </summary>
    [Alias("SetProviderKeyAsync")]
    Task<ProviderKeyInfo?> SetProviderKeyAsync(string provider, string apiKey, CancellationToken cancellationToken);

    /// <summary>The workspace's stored provider keys, as masked hints only.</summary>
    [Alias("ListProviderKeysAsync")]
    Task<IReadOnlyList<ProviderKeyInfo>> ListProviderKeysAsync(CancellationToken cancellationToken);

    /// <summary>Removes the workspace's key for <paramref name="provider"/>; false if there was none.</summary>
    [Alias("DeleteProviderKeyAsync")]
    Task<bool> DeleteProviderKeyAsync(string provider, CancellationToken cancellationToken);
}

/// <summary>A stored provider key as anyone may see it: never the key, only a masked hint.</summary>
/// <param name="Hint">Like <c>sk-…abcd</c>.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.ProviderKeyInfo")]
public sealed record ProviderKeyInfo(
    [property: Id(0)] string Provider,
    [property: Id(1)] string Hint,
    [property: Id(2)] DateTimeOffset UpdatedAt);

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
[GenerateSerializer, Immutable, Alias("luluclaw.CreateWorkspaceRequest")]
public sealed record CreateWorkspaceRequest(
    [property: Id(0)] string Name,
    [property: Id(1)] string Plan,
    [property: Id(2)] long Credits);

/// <summary>A workspace as callers see it.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.WorkspaceInfo")]
public sealed record WorkspaceInfo(
    [property: Id(0)] Guid Id,
    [property: Id(1)] string Name,
    [property: Id(2)] string Plan,
    [property: Id(3)] long CreditsRemaining,
    [property: Id(4)] string PrimaryBotId,
    [property: Id(5)] DateTimeOffset CreatedAt);

/// <summary>A turn asking to be admitted.</summary>
/// <param name="BotId">The bot that is to answer, whose row's version the admission reads.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.AdmitTurnRequest")]
public sealed record AdmitTurnRequest(
    [property: Id(0)] string TurnId,
    [property: Id(1)] string? KeyId,
    [property: Id(2)] string SessionId,
    [property: Id(3)] string? BotId = null);

/// <summary>How an admission ended.</summary>
[GenerateSerializer, Alias("luluclaw.AdmissionStatus")]
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

/// <summary>The answer to an admission.</summary>
/// <param name="CreditsUsed">Credits debited (0 unless admitted).</param>
/// <param name="CreditsRemaining">The balance after this admission.</param>
/// <param name="RetryAfter">For <see cref="AdmissionStatus.RateLimited"/>: until every full window has room again.</param>
/// <param name="Detail">For <see cref="AdmissionStatus.RateLimited"/>: which window refused, in words.</param>
/// <param name="SessionLastSeq">
/// For <see cref="AdmissionStatus.Admitted"/>: the last sequence number stored in the session, as the
/// admission's transaction saw it (0 for none), so a session activation can tell that another node
/// has written the thread since it read it.
/// </param>
/// <param name="BotVersion">
/// For <see cref="AdmissionStatus.Admitted"/>: the version of the bot row named by
/// <see cref="AdmitTurnRequest.BotId"/> as the admission's transaction saw it (0 if there is none), so
/// a session can tell whether the bot it remembers is still the bot.
/// </param>
/// <param name="Window">
/// Where the tightest rolling window stands after this admission (for a refusal, the full window
/// that frees up last); null when no window counts the turn (an unlimited plan, or no window checked).
/// </param>
[GenerateSerializer, Immutable, Alias("luluclaw.AdmissionResult")]
public sealed record AdmissionResult(
    [property: Id(0)] AdmissionStatus Status,
    [property: Id(1)] long CreditsUsed,
    [property: Id(2)] long CreditsRemaining,
    [property: Id(3)] TimeSpan? RetryAfter = null,
    [property: Id(4)] string? Detail = null,
    [property: Id(5)] long SessionLastSeq = 0,
    [property: Id(6)] long BotVersion = 0,
    [property: Id(7)] WindowStanding? Window = null);

/// <summary>
/// Where one rolling window stands for a caller, as rate-limit headers report it: the window of the
/// workspace's and key's plans with the fewest turns left.
/// </summary>
/// <param name="Limit">Turns the window allows.</param>
/// <param name="Remaining">Turns left in it now.</param>
/// <param name="ResetAfter">How long until it has a turn more than now (its oldest turn ages out).</param>
[GenerateSerializer, Immutable, Alias("luluclaw.WindowStanding")]
public sealed record WindowStanding([property: Id(0)] int Limit, [property: Id(1)] int Remaining, [property: Id(2)] TimeSpan ResetAfter);

/// <summary>
/// What to mint a key with. Null or empty scopes mean the defaults (<c>chat</c> and <c>bots</c>); a
/// null plan means the configured default key plan.
/// </summary>
[GenerateSerializer, Immutable, Alias("luluclaw.CreateApiKeyRequest")]
public sealed record CreateApiKeyRequest(
    [property: Id(0)] IReadOnlyList<string>? Scopes,
    [property: Id(1)] string? Plan = null);

/// <summary>A key just minted. <see cref="Key"/> is the only copy of its plaintext.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.CreatedApiKey")]
public sealed record CreatedApiKey(
    [property: Id(0)] string Id,
    [property: Id(1)] string Key,
    [property: Id(2)] string Prefix,
    [property: Id(3)] IReadOnlyList<string> Scopes,
    [property: Id(4)] string Plan);
