using LuluClaw.Grains.Storage;
using Orleans.Concurrency;

namespace LuluClaw.Grains.Knowledge;

/// <summary>
/// A workspace's knowledge sources, over <see cref="IKnowledgeStore"/>: every call names the
/// workspace (the grain's key) to the store, so another workspace's source is not found. Stateless:
/// the database holds the sources, so each silo runs its own activation.
/// </summary>
[StatelessWorker]
public sealed class KnowledgeGrain(IKnowledgeStore store, TimeProvider time, IKnowledgeIngestionSignal? ingestion = null) : Grain, IKnowledgeGrain
{
    private Guid WorkspaceId => Guid.Parse(this.GetPrimaryKeyString());

    public async Task<KnowledgeSourceInfo> CreateAsync(NewKnowledgeSource source, CancellationToken cancellationToken)
    {
        var now = time.GetStoredNow();
        var settings = source.Type switch
        {
            KnowledgeTypes.Website => new KnowledgeSettings(source.MaxPages, source.MaxDepth), // null: the defaults, applied when crawled
            KnowledgeTypes.Manual => new KnowledgeSettings(Entries: source.Entries, Content: source.Content),
            _ => new KnowledgeSettings(),
        };
        var record = new KnowledgeSourceRecord(
            Ids.New("ks"), WorkspaceId, source.Name, source.Type, source.Type == KnowledgeTypes.Website ? source.Url : null, KnowledgeStatus.Pending, null, 0,
            settings.ToJson(), 1, now, now, null, null);
        var file = source is { Type: KnowledgeTypes.Document, File: { } bytes } ? new KnowledgeFile(source.FileName ?? "document", source.MediaType ?? "text/plain", bytes) : null;
        await store.InsertSourceAsync(record, file, cancellationToken);
        ingestion?.Wake();
        return record.ToInfo();
    }

    public async Task<KnowledgeSourcePage> ListAsync(int offset, int limit, CancellationToken cancellationToken)
    {
        var (sources, total) = await store.ListSourcesAsync(WorkspaceId, offset, limit, cancellationToken);
        return new KnowledgeSourcePage([.. sources.Select(s => s.ToInfo())], total);
    }

    public async Task<KnowledgeSourceInfo?> GetAsync(string sourceId, CancellationToken cancellationToken) =>
        (await store.GetSourceAsync(WorkspaceId, sourceId, cancellationToken))?.ToInfo();

    public async Task<KnowledgeSourceInfo?> UpdateAsync(string sourceId, KnowledgeSourceChanges changes, CancellationToken cancellationToken)
    {
        string? settings = null;
        if (changes.Entries is not null || changes.Content is not null)
        {
            // New entries or text replace the old (entries or text, not both), and are ingested again.
            settings = new KnowledgeSettings(Entries: changes.Entries, Content: changes.Entries is null ? changes.Content : null).ToJson();
        }

        var updated = await store.UpdateSourceAsync(WorkspaceId, sourceId, changes.Name, settings, time.GetStoredNow(), cancellationToken);
        if (updated is not null && settings is not null)
        {
            ingestion?.Wake();
        }

        return updated?.ToInfo();
    }

    public Task<bool> DeleteAsync(string sourceId, CancellationToken cancellationToken) => store.DeleteSourceAsync(WorkspaceId, sourceId, cancellationToken);

    public async Task<KnowledgeSourceInfo?> RefreshAsync(string sourceId, CancellationToken cancellationToken)
    {
        var refreshed = await store.RequestIngestionAsync(WorkspaceId, sourceId, time.GetStoredNow(), cancellationToken);
        if (refreshed is not null)
        {
            ingestion?.Wake();
        }

        return refreshed?.ToInfo();
    }
}
