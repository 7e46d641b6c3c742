using LuluClaw.Actors;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Grains;

/// <summary>Resolves one key hash to its workspace and scopes, caching the answer while active.</summary>
public sealed class ApiKeyGrain(IGrainContext context, ITenantStore tenants, IRequestCounter counter, TimeProvider time) : IApiKeyGrain, IGrainBase
{
    private ApiKeyInfo? _key;

    public async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var record = await tenants.FindApiKeyByHashAsync(context.Key, cancellationToken);
        if (record is null || record.RevokedAt is not null)
        {
            // Unknown and revoked keys are not kept in memory: a flood of made-up keys must not fill the table.
            context.DeactivateOnIdle();
            return;
        }

        _key = new ApiKeyInfo(record.Id, record.WorkspaceId, record.Scopes, record.Plan);
    }

    public Task OnDeactivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<ApiKeyInfo?> ResolveAsync(CancellationToken cancellationToken) => Task.FromResult(_key);

    public Task InvalidateAsync(CancellationToken cancellationToken)
    {
        _key = null;
        context.DeactivateOnIdle();
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
