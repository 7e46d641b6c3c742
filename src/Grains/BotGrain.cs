using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Grains;

/// <summary>
/// A running bot: its configuration, loaded on activation, and its lifecycle. The activation builds
/// the bot's model client when it starts; a reload rebuilds the client in place; a restart tears the
/// activation down so that the next call starts a fresh one.
/// </summary>
/// <remarks>
/// Transitions answer first and finish as the next call in the bot's own mailbox
/// (<see cref="CompleteTransitionAsync"/>), so every call that arrives afterwards, a chat turn
/// included, sees the bot running on its new configuration (or in error, with the reason).
/// </remarks>
public sealed partial class BotGrain(
    ITenantStore tenants, IChatClientProvider models, TimeProvider time, ILogger<BotGrain> logger)
    : Grain, IBotGrain
{
    private BotRecord? _bot;

    /// <summary>The bot's id: the grain's key.</summary>
    private string Id => this.GetPrimaryKeyString();
    private BotStatus _status = BotStatus.Starting;
    private string? _reason;
    private string? _provider;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _bot = await tenants.GetBotAsync(Id, cancellationToken);
        if (_bot is not null)
        {
            await StartModelAsync(cancellationToken);
        }
    }

    public async Task<BotInfo> CreateAsync(CreateBotRequest request, CancellationToken cancellationToken)
    {
        if (_bot is not null)
        {
            throw new DuplicateException($"bot {Id} exists already");
        }

        var now = time.GetStoredNow();
        var bot = new BotRecord(Id, request.WorkspaceId, request.Name, request.SystemPrompt, request.Model, request.Channels, 1, 0, now, now, null,
            request.Knowledge ?? BotKnowledge.Default);
        await tenants.InsertBotAsync(bot, cancellationToken);
        _bot = bot;
        return BeginTransition(BotStatus.Starting);
    }

    public async Task<BotInfo?> GetAsync(CancellationToken cancellationToken)
    {
        if (_bot is null)
        {
            // Unknown ids are not kept in memory: a flood of made-up ids must not fill the table.
            DeactivateOnIdle();
            return null;
        }

        if (_status != BotStatus.Running)
        {
            // In error (or a transition that could not finish): try again, so a fixed configuration heals the bot.
            await StartModelAsync(cancellationToken);
        }

        return Info();
    }

    public async Task<BotInfo?> UpdateAsync(Guid workspaceId, BotChanges changes, CancellationToken cancellationToken)
    {
        if (!Owns(workspaceId))
        {
            return null;
        }

        var updated = await WriteAsync(b => b with
        {
            Name = changes.Name ?? b.Name,
            SystemPrompt = changes.SystemPrompt ?? b.SystemPrompt,
            Model = changes.Model ?? b.Model,
            Channels = changes.Channels ?? b.Channels,
            Knowledge = Changed(b.Knowledge ?? BotKnowledge.Default, changes),
        }, cancellationToken);
        return updated ? BeginTransition(BotStatus.Reloading) : null;
    }

    public async Task<BotInfo?> RestartAsync(Guid workspaceId, CancellationToken cancellationToken)
    {
        if (!Owns(workspaceId))
        {
            return null;
        }

        var now = time.GetStoredNow();
        if (!await WriteAsync(b => b with { RestartCount = b.RestartCount + 1, LastRestartedAt = now }, cancellationToken))
        {
            return null;
        }

        // Tear down: the model client now, this activation when this call ends. The next call starts a new one.
        models.Evict(Id);
        _status = BotStatus.Restarting;
        DeactivateOnIdle();
        Log.Restarted(logger, Id, _bot!.RestartCount);
        return Info();
    }

    public async Task<bool> DeleteAsync(Guid workspaceId, CancellationToken cancellationToken)
    {
        if (!Owns(workspaceId) || !await tenants.DeleteBotAsync(workspaceId, Id, cancellationToken))
        {
            return false;
        }

        // Its channels are columns of its row and went with it; its client and activation go now.
        _bot = null;
        models.Evict(Id);
        DeactivateOnIdle();
        return true;
    }

    public async Task CompleteTransitionAsync(CancellationToken cancellationToken)
    {
        if (_bot is not null && _status is BotStatus.Starting or BotStatus.Reloading)
        {
            await StartModelAsync(cancellationToken);
        }
    }

    private bool Owns(Guid workspaceId)
    {
        if (_bot is null)
        {
            DeactivateOnIdle();
        }

        return _bot?.WorkspaceId == workspaceId;
    }

    /// <summary>A versioned write of the bot row; on a lost race, reads again and re-applies. False if the bot is gone.</summary>
    private async Task<bool> WriteAsync(Func<BotRecord, BotRecord> change, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = _bot!;
            try
            {
                _bot = await tenants.UpdateBotAsync(change(current) with { UpdatedAt = time.GetStoredNow() }, current.Version, cancellationToken);
                return true;
            }
            catch (StaleStateException) when (attempt < 3)
            {
                _bot = await tenants.GetBotAsync(Id, cancellationToken);
                if (_bot is null)
                {
                    DeactivateOnIdle();
                    return false;
                }
            }
        }
    }

    /// <summary>Enters a transition and sends the bot the call that finishes it.</summary>
    private BotInfo BeginTransition(BotStatus status)
    {
        models.Evict(Id);
        _status = status;
        _reason = null;
        // One-way: queued behind this call, it runs before any call that arrives after this one.
        this.AsReference<IBotGrain>().CompleteTransitionAsync(CancellationToken.None).Ignore();
        return Info();
    }

    /// <summary>Builds the model client for the current configuration: running, or error with the reason.</summary>
    private async Task StartModelAsync(CancellationToken cancellationToken)
    {
        try
        {
            var client = await models.GetClientAsync(Info(), cancellationToken);
            _provider = client.GetService<ChatClientMetadata>()?.ProviderName;
            _status = BotStatus.Running;
            _reason = null;
        }
        catch (ModelUnavailableException e)
        {
            if (_status != BotStatus.Error || _reason != e.Message)
            {
                Log.ModelUnavailable(logger, Id, _bot!.Model, e.Message);
            }

            _status = BotStatus.Error;
            _reason = e.Message;
        }
    }

    private BotInfo Info()
    {
        var b = _bot!;
        return new BotInfo(
            b.Id, b.WorkspaceId, b.Name, b.SystemPrompt, b.Model, b.Channels, _status, _reason, b.Version, b.RestartCount, b.CreatedAt, b.UpdatedAt,
            b.LastRestartedAt, _provider, b.Knowledge ?? BotKnowledge.Default);
    }

    private static BotKnowledge Changed(BotKnowledge knowledge, BotChanges changes) => knowledge with
    {
        Enabled = changes.Knowledge ?? knowledge.Enabled,
        Threshold = changes.KnowledgeThreshold ?? knowledge.Threshold,
        Fallback = changes.KnowledgeFallback ?? knowledge.Fallback,
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Bot {BotId} (model {Model}) cannot start: {Reason}")]
        public static partial void ModelUnavailable(ILogger logger, string botId, string model, string reason);

        [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Bot {BotId} restarted (restart {RestartCount})")]
        public static partial void Restarted(ILogger logger, string botId, long restartCount);
    }
}
