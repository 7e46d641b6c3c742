using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Knowledge;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using static LuluClaw.WebApi.Tests.Apis.KnowledgeRequests;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// Sources added through the routes, ingested by the silo's knowledge ingestion: here driven one
/// source at a time (<see cref="KnowledgeIngestion.IngestNextAsync"/>), so each step is seen; the last
/// test lets the background loop do it.
/// </summary>
public sealed class KnowledgeIngestionTests : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Knowledge:RunInBackground"] = "false" });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IKnowledgeStore Store => _app.Services.GetRequiredService<IKnowledgeStore>();

    private Task<int> IngestAllAsync() => KnowledgeRequests.IngestAllAsync(_app);

    [Fact]
    public async Task EachTypeIsIngested_ReadyWithItsChunks_OrInErrorWithAReasonAPersonCanActOn()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var manual = await CreateAsync(client, Json("""
            {"type": "manual", "name": "FAQ", "entries": [{"question": "Do you ship to Mars?", "answer": "Only on Tuesdays."}, {"question": "Colours?", "answer": "Teal only."}]}
            """));
        var text = await CreateAsync(client, Upload("Notes", "notes.md", "# Care\nWash the Zorbulator in cold water.\n\n## Storage\nKeep it dry."u8.ToArray()));
        var pdf = await CreateAsync(client, Upload("Warranty", "warranty.pdf", Pdf("The Zorbulator warranty lasts seven years.", "Returns within 30 days.")));
        var scanned = await CreateAsync(client, Upload("Scan", "scan.pdf", Pdf("")));
        var website = await CreateAsync(client, Json("""{"type": "website", "name": "Site", "url": "https://help.example.com"}"""));

        Assert.Equal(5, await IngestAllAsync());

        var manualSource = await SourceAsync(client, manual);
        Assert.All(await Store.GetChunksAsync(manual, Ct), c => Assert.Equal(384, c.Embedding!.Length)); // all-MiniLM-L6-v2
        Assert.Equal(("ready", 2), (manualSource.GetProperty("status").GetString(), manualSource.GetProperty("chunk_count").GetInt32()));
        Assert.NotEqual(JsonValueKind.Null, manualSource.GetProperty("last_ingested_at").ValueKind);
        Assert.Equal(["Q: Do you ship to Mars?\nA: Only on Tuesdays.", "Q: Colours?\nA: Teal only."], (await Store.GetChunksAsync(manual, Ct)).Select(c => c.Text));
        var notes = await Store.GetChunksAsync(text, Ct);
        Assert.Equal([("Care", "Wash the Zorbulator in cold water."), ("Storage", "Keep it dry.")], notes.Select(c => (c.Heading, c.Text)));
        Assert.Equal("ready", (await SourceAsync(client, pdf)).GetProperty("status").GetString());
        Assert.Equal(["Page 1", "Page 2"], (await Store.GetChunksAsync(pdf, Ct)).Select(c => c.Heading));
        var scan = await SourceAsync(client, scanned);
        Assert.Equal("error", scan.GetProperty("status").GetString());
        Assert.Contains("no text layer", scan.GetProperty("status_reason").GetString());
        var site = await SourceAsync(client, website);
        Assert.Equal("error", site.GetProperty("status").GetString()); // help.example.com does not resolve here
        Assert.False(string.IsNullOrWhiteSpace(site.GetProperty("status_reason").GetString()));
    }

    [Fact]
    public async Task NewEntriesAndARefresh_AreIngestedAgain_AndADeleteTakesTheChunksAtOnce()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateAsync(client, Json("""{"type": "manual", "name": "FAQ", "content": "The shop opens at nine."}"""));
        await IngestAllAsync();

        await client.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("""{"content": "The shop opens at ten.\n\nIt closes at six."}"""), Ct);
        Assert.Equal("pending", (await SourceAsync(client, id)).GetProperty("status").GetString());
        Assert.Equal(1, await IngestAllAsync());
        Assert.Equal(["The shop opens at ten.\n\nIt closes at six."], (await Store.GetChunksAsync(id, Ct)).Select(c => c.Text));

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/knowledge-sources/{id}/refresh", null, Ct)).StatusCode);
        Assert.Equal(1, await IngestAllAsync());
        Assert.Equal("ready", (await SourceAsync(client, id)).GetProperty("status").GetString());
        Assert.Equal(0, await IngestAllAsync()); // nothing else is due

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Empty(await Store.GetChunksAsync(id, Ct));
    }

    [Fact]
    public async Task Retrieval_WithTheRealEmbedder_FindsTheAnsweringChunk_ByWordsAndByMeaning_InTheCallersWorkspaceOnly()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        using var otherClient = other.Client();
        var faq = await CreateAsync(client, Json("""
            {"type": "manual", "name": "Zorbulator FAQ", "entries": [
              {"question": "How long is the Zorbulator warranty?", "answer": "The warranty lasts seven years from purchase."},
              {"question": "Can I return it?", "answer": "Returns are accepted within 30 days with the receipt."},
              {"question": "Where do you deliver?", "answer": "We deliver to Mars on Tuesdays only."},
              {"question": "Which colours are there?", "answer": "It comes in teal, crimson and mustard yellow."}]}
            """));
        await CreateAsync(otherClient, Json("""{"type": "manual", "name": "Other", "content": "The Zorbulator warranty lasts one single day."}"""));
        await IngestAllAsync();
        var retriever = _app.Services.GetRequiredService<KnowledgeRetriever>();
        var id = Guid.Parse(workspace.Id);

        var warranty = await retriever.RetrieveAsync(id, "how long does the warranty last?", 3, cancellationToken: Ct);
        var byMeaning = await retriever.RetrieveAsync(id, "what shades can I get it in", 1, RetrievalMode.VectorOnly, Ct);
        var byWords = await retriever.RetrieveAsync(id, "Mars", 1, RetrievalMode.TextOnly, Ct);

        Assert.Contains("seven years", warranty[0].Chunk.Text);
        Assert.Equal(("Zorbulator FAQ", faq), (warranty[0].Chunk.SourceName, warranty[0].Chunk.SourceId));
        Assert.NotNull(warranty[0].TextRank);
        Assert.NotNull(warranty[0].VectorRank);
        Assert.DoesNotContain(warranty, h => h.Chunk.Text.Contains("one single day"));
        Assert.Contains("teal", byMeaning.Single().Chunk.Text); // no word in common: the embedding found it
        Assert.Contains("Tuesdays", byWords.Single().Chunk.Text);
        Assert.True(warranty[0].Similarity > warranty[^1].Similarity, $"cosine {warranty[0].Similarity} against {warranty[^1].Similarity}");

        await client.DeleteAsync($"/api/v1/knowledge-sources/{faq}", Ct);
        Assert.Empty(await retriever.RetrieveAsync(id, "how long does the warranty last?", 3, cancellationToken: Ct));
    }

    [Fact]
    public async Task EveryChatSurface_PutsTheWorkspacesKnowledgeInThePrompt_AfterTheSystemPrompt_AndAWorkspaceWithoutNoneGetsNone()
    {
        await using var stub = await StubModelServer.StartAsync(Ct);
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Knowledge:RunInBackground"] = "false",
            ["Llm:OpenAI:BaseUrl"] = stub.OpenAIBaseUrl.ToString(),
        });
        var workspace = await app.CreateWorkspaceAsync();
        var bare = await app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        await CreateAsync(client, Json("""
            {"type": "manual", "name": "Zorbulator FAQ", "entries": [
              {"question": "How long is the Zorbulator warranty?", "answer": "The warranty lasts seven years from purchase."},
              {"question": "Where do you deliver?", "answer": "We deliver to Mars on Tuesdays only."}]}
            """));
        await KnowledgeRequests.IngestAllAsync(app);

        await client.PostAsJsonAsync("/api/v1/chat", new { message = "How long is the Zorbulator warranty?" }, Ct);
        var developer = stub.Requests[^1].Messages;
        await client.PostAsJsonAsync("/api/gateway/chat", new { message = "Do you deliver to Mars?" }, Ct);
        var gateway = stub.Requests[^1].Messages;
        await client.PostAsJsonAsync("/v1/chat/completions", new { model = "Acme assistant", messages = new[] { new { role = "user", content = "warranty length?" } } }, Ct);
        var openAI = stub.Requests[^1].Messages;
        using var bareClient = bare.Client();
        await bareClient.PostAsJsonAsync("/api/v1/chat", new { message = "How long is the Zorbulator warranty?" }, Ct);
        var without = stub.Requests[^1].Messages;

        Assert.Equal(["system", "system", "user"], developer.Select(m => m.Role));
        Assert.StartsWith("Knowledge sources of this workspace follow.", developer[1].Content);
        Assert.Contains("[1] Zorbulator FAQ — How long is the Zorbulator warranty?", developer[1].Content);
        Assert.Contains("seven years", developer[1].Content.Split("[2]")[0]); // the best passage first
        Assert.Contains("[1] Zorbulator FAQ — Where do you deliver?", gateway[1].Content);
        Assert.Contains("seven years", openAI[1].Content);
        Assert.Equal(["system", "user"], without.Select(m => m.Role));
    }

    [Fact]
    public async Task AWebsiteOnLoopback_IsRefusedByDefault_AndCrawledPageByPage_WhenPrivateAddressesAreAllowed()
    {
        await using var site = await LocalSite.StartAsync();
        site.Page("/", """<html><head><title>Zorb help</title></head><body><nav>Menu</nav><h1>Help</h1><p>See <a href="/warranty">warranty</a>.</p></body></html>""");
        site.Page("/warranty", """<html><head><title>Warranty</title></head><body><h1>Warranty</h1><p>The Zorbulator warranty lasts seven years.</p></body></html>""");
        await using var open = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Knowledge:RunInBackground"] = "false",
            ["Knowledge:AllowPrivateAddresses"] = "true",
        });
        var workspace = await _app.CreateWorkspaceAsync();
        var openWorkspace = await open.CreateWorkspaceAsync();
        using var client = workspace.Client();
        using var openClient = openWorkspace.Client();
        var body = Json($$"""{"type": "website", "name": "Help", "url": "{{site.BaseUrl}}"}""");
        var refused = await CreateAsync(client, body);
        var crawled = await CreateAsync(openClient, Json($$"""{"type": "website", "name": "Help", "url": "{{site.BaseUrl}}"}"""));

        await IngestAllAsync();
        Assert.Empty(site.Requests); // refused before connecting: the site never saw a request
        await KnowledgeRequests.IngestAllAsync(open);

        var refusedSource = await SourceAsync(client, refused);
        Assert.Equal("error", refusedSource.GetProperty("status").GetString());
        Assert.Contains("an address LuluClaw does not connect to", refusedSource.GetProperty("status_reason").GetString());
        var crawledSource = await SourceAsync(openClient, crawled);
        Assert.Equal(("ready", 2), (crawledSource.GetProperty("status").GetString(), crawledSource.GetProperty("chunk_count").GetInt32()));
        var chunks = await open.Services.GetRequiredService<IKnowledgeStore>().GetChunksAsync(crawled, Ct);
        Assert.Equal([$"{site.BaseUrl}", $"{site.BaseUrl}warranty"], chunks.Select(c => c.PageKey));
        Assert.Contains("seven years", chunks[1].Text);
        Assert.DoesNotContain(chunks, c => c.Text.Contains("Menu"));
    }

    [Fact]
    public async Task ARecrawlOfAnUnchangedSite_KeepsEveryPagesChunks()
    {
        await using var site = await LocalSite.StartAsync();
        site.Page("/", """<html><head><title>Zorb help</title></head><body><h1>Help</h1><p>See <a href="/warranty">warranty</a> and <a href="/returns">returns</a>.</p></body></html>""");
        site.Page("/warranty", """<html><head><title>Warranty</title></head><body><h1>Warranty</h1><p>The Zorbulator warranty lasts seven years.</p></body></html>""");
        site.Page("/returns", """<html><head><title>Returns</title></head><body><h1>Returns</h1><p>Returns are accepted within 30 days.</p></body></html>""");
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Knowledge:RunInBackground"] = "false",
            ["Knowledge:AllowPrivateAddresses"] = "true",
        });
        var workspace = await app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var ingestion = app.Services.GetRequiredService<KnowledgeIngestion>();
        var store = app.Services.GetRequiredService<IKnowledgeStore>();
        var id = await CreateAsync(client, Json($$"""{"type": "website", "name": "Help", "url": "{{site.BaseUrl}}"}"""));
        Assert.True(await ingestion.IngestNextAsync(Ct));
        var first = await store.GetChunksAsync(id, Ct);

        // The home page has not changed (its ETag still matches), yet the pages it links to are crawled again, not dropped as gone.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/knowledge-sources/{id}/refresh", null, Ct)).StatusCode);
        var before = site.Requests.Count;
        Assert.True(await ingestion.IngestNextAsync(Ct));

        Assert.Equal(["/robots.txt", "/", "/warranty", "/returns"], site.Requests.Skip(before));
        var source = await SourceAsync(client, id);
        Assert.Equal(("ready", 3), (source.GetProperty("status").GetString(), source.GetProperty("chunk_count").GetInt32()));
        var again = await store.GetChunksAsync(id, Ct);
        Assert.Equal(first.Select(c => (c.PageKey, c.Text)), again.Select(c => (c.PageKey, c.Text)));
    }

    [Fact]
    public async Task InTheBackground_ANewSourceReachesReady_WithoutAnyoneAsking()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite);
        var workspace = await app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = await CreateAsync(client, Json("""{"type": "manual", "name": "FAQ", "content": "Parking is free after six."}"""));

        // Waits for a state, not for a time: the loop is woken by the create and ingests within its first pass.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(60));
        string? status;
        while ((status = (await SourceAsync(client, id)).GetProperty("status").GetString()) is "pending" or "crawling")
        {
            await Task.Delay(50, deadline.Token);
        }

        Assert.Equal("ready", status);
        Assert.Equal(1, (await SourceAsync(client, id)).GetProperty("chunk_count").GetInt32());
    }
}
