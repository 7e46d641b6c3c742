using LuluClaw.Actors;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Grains;

/// <summary>A bot's configuration, loaded on activation.</summary>
public sealed class BotGrain(IGrainContext context, ITenantStore tenants) : IBotGrain, IGrainBase
{
    private BotRecord? _bot;

    public async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _bot = await tenants.GetBotAsync(context.Key, cancellationToken);
        if (_bot is null)
        {
            context.DeactivateOnIdle();
        }
    }

    public Task OnDeactivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<BotInfo?> GetAsync(CancellationToken cancellationToken) =>
        Task.FromResult(_bot is null ? null : new BotInfo(_bot.Id, _bot.WorkspaceId, _bot.Name, _bot.SystemPrompt, _bot.Model));
}
