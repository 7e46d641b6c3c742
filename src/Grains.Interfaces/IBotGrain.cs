using LuluClaw.Actors;

namespace LuluClaw;

/// <summary>A hosted assistant, keyed by its id (<c>bot_…</c>): its configuration and lifecycle.</summary>
public interface IBotGrain : IGrainWithStringKey
{
    /// <summary>The bot's current configuration, or null if it does not exist.</summary>
    Task<BotInfo?> GetAsync(CancellationToken cancellationToken);
}

/// <summary>A bot's configuration.</summary>
public sealed record BotInfo(string Id, Guid WorkspaceId, string Name, string SystemPrompt, string Model);
