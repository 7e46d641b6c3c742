using System.Buffers.Text;
using System.Security.Cryptography;

namespace LuluClaw;

/// <summary>
/// A hosted assistant, keyed by its id (<c>bot_…</c>): its configuration and its lifecycle
/// (<see cref="BotStatus"/>). The activation is the running bot: it builds the bot's model client
/// when it starts, rebuilds it on a reload, and is torn down and started afresh on a restart.
/// </summary>
/// <remarks>
/// Calls that manage a bot name the caller's workspace; a bot of another workspace answers as if it
/// did not exist, so existence never leaks across tenants.
/// </remarks>
[Alias("luluclaw.IBotGrain")]
public interface IBotGrain : IGrainWithStringKey
{
    /// <summary>Creates the bot (status <see cref="BotStatus.Starting"/>); it starts by itself right after.</summary>
    [Alias("CreateAsync")]
    Task<BotInfo> CreateAsync(CreateBotRequest request, CancellationToken cancellationToken);

    /// <summary>The bot's configuration and status, or null if it does not exist.</summary>
    [Alias("GetAsync")]
    Task<BotInfo?> GetAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Changes the given fields and reloads (<see cref="BotStatus.Reloading"/>, then running): the
    /// next turn uses the new configuration. Null if the bot is not in <paramref name="workspaceId"/>.
    /// </summary>
    [Alias("UpdateAsync")]
    Task<BotInfo?> UpdateAsync(Guid workspaceId, BotChanges changes, CancellationToken cancellationToken);

    /// <summary>
    /// Restarts the bot (<see cref="BotStatus.Restarting"/>): this activation and its model client are
    /// torn down and the next call starts a new one. Null if the bot is not in <paramref name="workspaceId"/>.
    /// </summary>
    [Alias("RestartAsync")]
    Task<BotInfo?> RestartAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>Deletes the bot for good and disconnects its channels; false if it is not in <paramref name="workspaceId"/>.</summary>
    [Alias("DeleteAsync")]
    Task<bool> DeleteAsync(Guid workspaceId, CancellationToken cancellationToken);

    /// <summary>
    /// Finishes a pending transition (starting, reloading): builds the model client and becomes
    /// running, or error with the reason. The bot sends this to itself after each transition, so it
    /// runs before any call that arrives later; calling it again does nothing.
    /// </summary>
    [Alias("CompleteTransitionAsync")]
    [OneWay]
    Task CompleteTransitionAsync(CancellationToken cancellationToken);
}

/// <summary>Where a bot is in its lifecycle.</summary>
[GenerateSerializer, Alias("luluclaw.BotStatus")]
public enum BotStatus
{
    /// <summary>Created; its model client is being built.</summary>
    Starting,
    /// <summary>Serving turns.</summary>
    Running,
    /// <summary>Its configuration changed; the model client is being rebuilt.</summary>
    Reloading,
    /// <summary>Forced restart: the activation is being torn down and started again.</summary>
    Restarting,
    /// <summary>Its model provider is missing or misconfigured; see <see cref="BotInfo.StatusReason"/>.</summary>
    Error,
}

/// <summary>What a bot gets when nothing else is said.</summary>
public static class BotDefaults
{
    /// <summary>The Developer API's documented default model.</summary>
    public const string Model = "gpt-4o-mini";
}

/// <summary>Bot identifiers.</summary>
public static class BotIds
{
    /// <summary>A new bot id: <c>bot_</c> and 12 random bytes in base64url.</summary>
    public static string New() => $"bot_{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(12))}";
}

/// <summary>The channel types a bot can be connected to.</summary>
public static class BotChannels
{
    /// <summary>Every channel type, as the Developer API names them.</summary>
    public static readonly IReadOnlyList<string> All = ["telegram", "discord", "slack"];
}

/// <summary>What a new bot is made of.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.CreateBotRequest")]
public sealed record CreateBotRequest(
    [property: Id(0)] Guid WorkspaceId,
    [property: Id(1)] string Name,
    [property: Id(2)] string SystemPrompt,
    [property: Id(3)] string Model,
    [property: Id(4)] IReadOnlyList<string> Channels,
    [property: Id(5)] BotKnowledge? Knowledge = null);

/// <summary>
/// How a bot uses its workspace's knowledge sources: whether at all, the evidence it needs before it
/// answers from them, and what it says when the evidence is too weak.
/// </summary>
/// <param name="Enabled">Whether turns retrieve from the workspace's <c>ready</c> sources.</param>
/// <param name="Threshold">
/// The evidence gate: the least cosine similarity (0 to 1) between the question and the best passage
/// found for the bot to answer; below it, the bot answers <see cref="Fallback"/> instead of calling the
/// model. Null: the configured default (<c>Knowledge:EvidenceThreshold</c>).
/// </param>
/// <param name="Fallback">What the bot says when the gate holds; null: the configured default (<c>Knowledge:FallbackAnswer</c>).</param>
[GenerateSerializer, Immutable, Alias("luluclaw.BotKnowledge")]
public sealed record BotKnowledge(
    [property: Id(0)] bool Enabled = true,
    [property: Id(1)] double? Threshold = null,
    [property: Id(2)] string? Fallback = null)
{
    /// <summary>What a bot has when nothing was said: knowledge on, the default gate and words.</summary>
    public static BotKnowledge Default { get; } = new();
}

/// <summary>The fields a PATCH changes; null leaves a field as it is.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.BotChanges")]
public sealed record BotChanges(
    [property: Id(0)] string? Name = null,
    [property: Id(1)] string? SystemPrompt = null,
    [property: Id(2)] string? Model = null,
    [property: Id(3)] IReadOnlyList<string>? Channels = null,
    [property: Id(4)] bool? Knowledge = null,
    [property: Id(5)] double? KnowledgeThreshold = null,
    [property: Id(6)] string? KnowledgeFallback = null);

/// <summary>A bot: configuration, lifecycle and channel connections.</summary>
/// <param name="Version">Grows with every configuration change and restart; a model client is built for one version.</param>
/// <param name="StatusReason">Why the bot is in <see cref="BotStatus.Error"/>; null otherwise.</param>
/// <param name="Provider">The provider its model client talks to (<c>openai</c>, <c>anthropic</c>, <c>echo</c>); null until built.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.BotInfo")]
public sealed record BotInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] Guid WorkspaceId,
    [property: Id(2)] string Name,
    [property: Id(3)] string SystemPrompt,
    [property: Id(4)] string Model,
    [property: Id(5)] IReadOnlyList<string> Channels,
    [property: Id(6)] BotStatus Status,
    [property: Id(7)] string? StatusReason,
    [property: Id(8)] long Version,
    [property: Id(9)] long RestartCount,
    [property: Id(10)] DateTimeOffset CreatedAt,
    [property: Id(11)] DateTimeOffset UpdatedAt,
    [property: Id(12)] DateTimeOffset? LastRestartedAt,
    [property: Id(13)] string? Provider = null,
    [property: Id(14)] BotKnowledge? Knowledge = null);
