using LuluClaw.Grains.Storage;

namespace LuluClaw.Grains;

/// <summary>Resolves one key hash to its workspace and scopes, caching the answer while active.</summary>
/// <remarks>
/// One activation per key in the cluster, so a revocation (<see cref="InvalidateAsync"/>) reaches
/// the only copy of the answer. The database still decides: a turn admitted with a key revoked a
/// moment before is refused by the ledger's own check of the key row.
/// </remarks>
public sealed class ApiKeyGrain(ITenantStore tenants, IRequestCounter counter, TimeProvider time) : Grain, IApiKeyGrain
{
    private ApiKeyInfo? _key;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var record = await tenants.FindApiKeyByHashAsync(this.GetPrimaryKeyString(), cancellationToken);
        if (record is null || record.RevokedAt is not null)
        {
            return; // answered as unknown, then collected (ResolveAsync)
        }

        _key = new ApiKeyInfo(record.Id, record.WorkspaceId, record.Scopes, record.Plan);
    }

    public Task<ApiKeyInfo?> ResolveAsync(CancellationToken cancellationToken)
    {
        if (_key is null)
        {
            // Unknown and revoked keys are not kept in memory: a flood of made-up keys must not fill the silo.
            DeactivateOnIdle();
        }

        return Task.FromResult(_key);
    }

    public Task InvalidateAsync(CancellationToken cancellationToken)
    {
        _key = null;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public async Task<RequestQuota> TakeRequestAsync(string bucket, int limitPerMinute, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var windowStart = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / 60 * 60);
        var resetAt = windowStart.AddMinutes(1);
        if (_key is null)
        {
            return new RequestQuota(false, limitPerMinute, 0, resetAt);
        }

        var count = await counter.CountAsync(_key.Id, bucket, windowStart, cancellationToken);
        return new RequestQuota(count <= limitPerMinute, limitPerMinute, (int)Math.Max(0, limitPerMinute - count), resetAt);
    }
}
