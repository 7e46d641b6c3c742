namespace LuluClaw;

/// <summary>
/// Resolves one API key, keyed by the lowercase hex SHA-256 of its plaintext. The plaintext never
/// reaches an actor or the database.
/// </summary>
[Alias("luluclaw.IApiKeyGrain")]
public interface IApiKeyGrain : IGrainWithStringKey
{
    /// <summary>The key's workspace and scopes, or null if the key is unknown or revoked.</summary>
    [Alias("ResolveAsync")]
    [AlwaysInterleave]
    Task<ApiKeyInfo?> ResolveAsync(CancellationToken cancellationToken);

    /// <summary>Drops what the activation knows, so the next call reads the database again.</summary>
    [Alias("InvalidateAsync")]
    Task InvalidateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Counts one request of this key against <paramref name="limitPerMinute"/> in
    /// <paramref name="bucket"/> (fixed one-minute windows, counted by the database, so exact across
    /// nodes) and says whether it may go ahead.
    /// </summary>
    [Alias("TakeRequestAsync")]
    [AlwaysInterleave]
    Task<RequestQuota> TakeRequestAsync(string bucket, int limitPerMinute, CancellationToken cancellationToken);
}

/// <summary>A key's request quota after one request: what the <c>X-RateLimit-*</c> headers say.</summary>
/// <param name="ResetAt">When the current window ends and the count starts again.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.RequestQuota")]
public sealed record RequestQuota(
    [property: Id(0)] bool Allowed,
    [property: Id(1)] int Limit,
    [property: Id(2)] int Remaining,
    [property: Id(3)] DateTimeOffset ResetAt);

/// <summary>What a key grants.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.ApiKeyInfo")]
public sealed record ApiKeyInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] Guid WorkspaceId,
    [property: Id(2)] IReadOnlyList<string> Scopes,
    [property: Id(3)] string? Plan)
{
    /// <summary>Whether the key carries <paramref name="scope"/>.</summary>
    public bool HasScope(string scope) => Scopes.Contains(scope, StringComparer.Ordinal);
}

/// <summary>The scopes a key can carry.</summary>
public static class ApiScopes
{
    /// <summary>Chat routes.</summary>
    public const string Chat = "chat";
    /// <summary>Bot management.</summary>
    public const string Bots = "bots";
    /// <summary>Session listing and history.</summary>
    public const string Sessions = "sessions";
    /// <summary>Knowledge sources: adding, changing and removing what bots answer from.</summary>
    public const string Knowledge = "knowledge";

    /// <summary>Every scope a key may be minted with.</summary>
    public static readonly IReadOnlyList<string> All = [Chat, Bots, Sessions, Knowledge];

    /// <summary>What a key minted without scopes gets (keys minted before <see cref="Knowledge"/> existed got it with <see cref="Bots"/>, by migration).</summary>
    public static readonly IReadOnlyList<string> Default = [Chat, Bots, Knowledge];
}
