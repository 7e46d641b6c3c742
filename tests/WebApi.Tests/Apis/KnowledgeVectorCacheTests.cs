using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Knowledge;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// A silo's in-memory vectors (<see cref="KnowledgeVectorCache"/>) follow the database at once: on
/// PostgreSQL two nodes share one database, one changes the sources and the other's cached workspace
/// sees each change in its very next retrieval; on SQLite one app, with nothing in between telling the
/// cache (there is no such signal: it reads the sources' stamps every time).
/// </summary>
public sealed class KnowledgeVectorCacheTests
{
    private static readonly Dictionary<string, string?> Settings = new() { ["Knowledge:RunInBackground"] = "false" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<string> CreateAsync(HttpClient client, string body)
    {
        var response = await client.PostAsync("/api/v1/knowledge-sources", Json(body), Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
    }

    private static async Task IngestAllAsync(LuluClawApp app)
    {
        var ingestion = app.Services.GetRequiredService<KnowledgeIngestion>();
        while (await ingestion.IngestNextAsync(Ct))
        {
        }
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task CachedWorkspace_SeesANewSource_AReingestedSource_AndADeletedSource_InItsNextRetrieval(Provider provider)
    {
        await using var writer = await LuluClawApp.StartAsync(provider, Settings);
        await using var other = provider == Provider.Postgres ? writer.AnotherNode(Settings) : null;
        var reader = other ?? writer;
        var workspace = await writer.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = Guid.Parse(workspace.Id);
        var cache = reader.Services.GetRequiredService<KnowledgeVectorCache>();
        var retriever = reader.Services.GetRequiredService<KnowledgeRetriever>();
        var store = reader.Services.GetRequiredService<IKnowledgeStore>();

        var warranty = await CreateAsync(client, """{"type": "manual", "name": "Warranty", "content": "The Zorbulator warranty lasts seven years from purchase."}""");
        await IngestAllAsync(writer);
        var first = await retriever.RetrieveAsync(id, "how long is the guarantee", 1, RetrievalMode.VectorOnly, Ct);
        Assert.Contains("seven years", first.Single().Chunk.Text);
        var cached = await cache.GetAsync(id, Ct);
        Assert.Equal(1, cached.Count);
        Assert.True(cache.Bytes > 0, "the reader's silo holds the workspace's vectors");

        // A new source: in the reader's next retrieval, by its vector (the text side is off).
        var delivery = await CreateAsync(client, """{"type": "manual", "name": "Delivery", "content": "Parcels to Mars are shipped on Tuesdays only."}""");
        await IngestAllAsync(writer);
        var byMeaning = await retriever.RetrieveAsync(id, "which weekday do you send packages to the red planet", 1, RetrievalMode.VectorOnly, Ct);
        Assert.Equal(delivery, byMeaning.Single().Chunk.SourceId);
        var withDelivery = await cache.GetAsync(id, Ct);
        Assert.Equal(2, withDelivery.Count);

        // Re-ingested with new text: its new chunk ids come from the vectors (the old ones are gone from the database).
        Assert.Equal(HttpStatusCode.OK, (await client.PatchAsync($"/api/v1/knowledge-sources/{warranty}",
            Json("""{"content": "The Zorbulator guarantee covers three weeks after purchase."}"""), Ct)).StatusCode);
        var whileIngesting = await cache.GetAsync(id, Ct);
        Assert.Equal(2, whileIngesting.Count); // pending again: it answers from its last ingestion until the new one settles
        await IngestAllAsync(writer);
        var reingested = await retriever.RetrieveAsync(id, "how long is the guarantee", 2, RetrievalMode.VectorOnly, Ct);
        Assert.Contains("three weeks", reingested[0].Chunk.Text);
        Assert.DoesNotContain(reingested, h => h.Chunk.Text.Contains("seven years"));
        var newChunk = reingested[0].Chunk.ChunkId;
        Assert.NotEqual(first.Single().Chunk.ChunkId, newChunk);

        // Deleted: out of the vectors themselves, not only filtered when the chunks are read.
        var deliveryChunks = (await cache.GetAsync(id, Ct)).Score(new float[384]).Top(50);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/knowledge-sources/{delivery}", Ct)).StatusCode);
        var afterDelete = await cache.GetAsync(id, Ct);
        Assert.Equal(1, afterDelete.Count);
        Assert.Equal([newChunk], afterDelete.Score(new float[384]).Top(50));
        Assert.Contains(deliveryChunks, c => c != newChunk);
        Assert.DoesNotContain(await retriever.RetrieveAsync(id, "parcels to Mars on Tuesdays", 5, cancellationToken: Ct), h => h.Chunk.SourceId == delivery);
        Assert.Empty(await store.GetSourceEmbeddingsAsync(delivery, Ct));
    }

    [Fact]
    public async Task UnchangedWorkspace_IsNotReloaded_AndTheCap_DropsTheLeastRecentlyUsedWorkspace()
    {
        // A cap below one workspace's vectors: only the workspace retrieved last stays.
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>(Settings) { ["Knowledge:VectorCacheMegabytes"] = "0.0001" });
        var first = await app.CreateWorkspaceAsync();
        var second = await app.CreateWorkspaceAsync();
        using var firstClient = first.Client();
        using var secondClient = second.Client();
        await CreateAsync(firstClient, """{"type": "manual", "name": "A", "content": "Opening hours are nine to five on weekdays."}""");
        await CreateAsync(secondClient, """{"type": "manual", "name": "B", "content": "The cafe serves oat milk and soy milk."}""");
        await IngestAllAsync(app);
        var cache = app.Services.GetRequiredService<KnowledgeVectorCache>();

        var a1 = await cache.GetAsync(Guid.Parse(first.Id), Ct);
        Assert.Same(a1, await cache.GetAsync(Guid.Parse(first.Id), Ct)); // nothing changed: the same vectors, not reloaded
        var held = cache.Bytes;
        var b = await cache.GetAsync(Guid.Parse(second.Id), Ct);

        Assert.Equal(b.Bytes, cache.Bytes); // the first workspace was dropped
        Assert.Equal(a1.Bytes, held);
        Assert.NotSame(a1, await cache.GetAsync(Guid.Parse(first.Id), Ct)); // and is loaded again when asked for
        Assert.Equal(a1.Bytes, cache.Bytes);
    }
}
