using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.Options;

namespace LuluClaw.Grains;

/// <summary>
/// A tenant's management: creating it, its plan and credits, its keys, bots and provider keys. Its
/// turns are admitted by <see cref="WorkspaceTurns"/>, which the session grain calls directly.
/// </summary>
/// <remarks>
/// It holds no state: every call reads or writes the database, which serialises what must be
/// serialised (versioned plan changes, credits changed by SQL deltas). So it is a
/// <see cref="StatelessWorkerAttribute">stateless worker</see>: each silo runs its own activation,
/// and a call never leaves the silo it was made on. Being reentrant, one activation per silo serves
/// every call at once instead of Orleans adding more under load.
/// </remarks>
[StatelessWorker(1)]
[Reentrant]
public sealed class WorkspaceGrain(
    ITenantStore tenants,
    IOptionsMonitor<PlanOptions> plans,
    IProviderKeyProtector protector,
    IConversationStore conversations,
    IChatClientProvider models,
    TimeProvider time)
    : Grain, IWorkspaceGrain
{
    private Guid _id;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _id = Guid.Parse(this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public async Task<WorkspaceInfo> CreateAsync(CreateWorkspaceRequest request, CancellationToken cancellationToken)
    {
        var now = time.GetStoredNow();
        var bot = new BotRecord(
            BotIds.New(), _id, $"{request.Name} assistant", "You are a helpful assistant.", BotDefaults.Model, [], 1, 0, now, now, null);
        var workspace = new WorkspaceRecord(_id, request.Name, request.Plan.ToLowerInvariant(), request.Credits, bot.Id, 1, now, now);
        await tenants.CreateWorkspaceAsync(workspace, bot, cancellationToken);
        return workspace.ToInfo();
    }

    public async Task<WorkspaceInfo?> GetAsync(CancellationToken cancellationToken) =>
        (await tenants.GetWorkspaceAsync(_id, cancellationToken))?.ToInfo();

    public async Task<WorkspaceInfo?> ChangePlanAsync(string plan, CancellationToken cancellationToken)
    {
        // A versioned read-modify-write: if another node wrote in between, read again and re-apply.
        for (var attempt = 0; ; attempt++)
        {
            var current = await tenants.GetWorkspaceAsync(_id, cancellationToken);
            if (current is null)
            {
                return null;
            }

            try
            {
                var changed = current with { Plan = plan.ToLowerInvariant(), UpdatedAt = time.GetStoredNow() };
                return (await tenants.UpdateWorkspaceAsync(changed, current.Version, cancellationToken)).ToInfo();
            }
            catch (StaleStateException) when (attempt < 3)
            {
            }
        }
    }

    public Task<long?> AddCreditsAsync(long amount, CancellationToken cancellationToken) =>
        tenants.AddCreditsAsync(_id, amount, time.GetStoredNow(), cancellationToken);

    public async Task<CreatedApiKey?> CreateKeyAsync(CreateApiKeyRequest request, CancellationToken cancellationToken)
    {
        if (await tenants.GetWorkspaceAsync(_id, cancellationToken) is null)
        {
            return null;
        }

        var scopes = request.Scopes is { Count: > 0 } given ? given.Distinct(StringComparer.Ordinal).ToArray() : [.. ApiScopes.Default];
        var plan = (request.Plan ?? plans.CurrentValue.DefaultKeyPlan).ToLowerInvariant();
        var key = ApiKeys.Mint();
        var record = new ApiKeyRecord(Ids.New("key"), _id, ApiKeys.Hash(key), ApiKeys.DisplayPrefix(key), scopes, plan, time.GetStoredNow(), null);
        await tenants.InsertApiKeyAsync(record, cancellationToken);
        return new CreatedApiKey(record.Id, key, record.Prefix, scopes, plan);
    }

    public async Task<bool> RevokeKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        var hash = await tenants.RevokeApiKeyAsync(_id, keyId, time.GetStoredNow(), cancellationToken);
        if (hash is null)
        {
            return false;
        }

        // The key's resolver activation may hold it as valid: make it read the database again.
        await GrainFactory.GetGrain<IApiKeyGrain>(hash).InvalidateAsync(cancellationToken);
        return true;
    }

    public Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(CancellationToken cancellationToken) =>
        conversations.ListSessionsAsync(_id, cancellationToken);

    public async Task<IReadOnlyList<BotInfo>> ListBotsAsync(CancellationToken cancellationToken)
    {
        // Each bot's status lives in its activation; ask them all at once.
        var ids = await tenants.ListBotIdsAsync(_id, cancellationToken);
        var bots = await Task.WhenAll(ids.Select(id => GrainFactory.GetGrain<IBotGrain>(id).GetAsync(cancellationToken)));
        return [.. bots.OfType<BotInfo>().Where(b => b.WorkspaceId == _id)];
    }

    public async Task<ProviderKeyInfo?> SetProviderKeyAsync(string provider, string apiKey, CancellationToken cancellationToken)
    {
        if (await tenants.GetWorkspaceAsync(_id, cancellationToken) is null)
        {
            return null;
        }

        var record = new ProviderKeyRecord(_id, provider, protector.Protect(_id, apiKey), IProviderKeyProtector.Hint(apiKey), time.GetStoredNow());
        await tenants.PutProviderKeyAsync(record, cancellationToken);
        models.EvictWorkspace(_id);
        return new ProviderKeyInfo(record.Provider, record.Hint, record.UpdatedAt);
    }

    public async Task<IReadOnlyList<ProviderKeyInfo>> ListProviderKeysAsync(CancellationToken cancellationToken) =>
        [.. (await tenants.ListProviderKeysAsync(_id, cancellationToken)).Select(k => new ProviderKeyInfo(k.Provider, k.Hint, k.UpdatedAt))];

    public async Task<bool> DeleteProviderKeyAsync(string provider, CancellationToken cancellationToken)
    {
        var deleted = await tenants.DeleteProviderKeyAsync(_id, provider, cancellationToken);
        models.EvictWorkspace(_id);
        return deleted;
    }
}
