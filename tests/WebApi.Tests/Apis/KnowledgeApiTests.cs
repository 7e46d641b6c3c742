using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>The knowledge-source routes of the Developer API: what they store and refuse (ingestion has its own tests).</summary>
public sealed class KnowledgeApiTests : IAsyncLifetime
{
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync() =>
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Knowledge:MaxDocumentBytes"] = "4096" });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response) => await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

    private static MultipartFormDataContent Upload(string name, string fileName, byte[] content, string contentType = "application/octet-stream", string type = "document")
    {
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        return new MultipartFormDataContent { { new StringContent(type), "type" }, { new StringContent(name), "name" }, { file, "file", fileName } };
    }

    [Fact]
    public async Task Create_AnswersTheSourceInTheInsightsShape_Pending_AndItCanBeReadListedRenamedAndDeleted()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var created = await client.PostAsync("/api/v1/knowledge-sources",
            Json("""{"type": "manual", "name": "FAQ", "entries": [{"question": "Do you ship to Mars?", "answer": "Only on Tuesdays."}]}"""), Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var source = await BodyAsync(created);
        var id = source.GetProperty("id").GetString()!;
        Assert.StartsWith("ks_", id);
        Assert.Equal($"/api/v1/knowledge-sources/{id}", created.Headers.Location!.OriginalString);
        Assert.Equal(workspace.Id, source.GetProperty("workspace_id").GetString());
        Assert.Equal(("FAQ", "manual", "pending", 0), (source.GetProperty("name").GetString(), source.GetProperty("type").GetString(),
            source.GetProperty("status").GetString(), source.GetProperty("chunk_count").GetInt32()));
        Assert.Equal(JsonValueKind.Null, source.GetProperty("url").ValueKind);
        Assert.Equal(JsonValueKind.Null, source.GetProperty("last_ingested_at").ValueKind);
        foreach (var field in new[] { "created_at", "updated_at", "status_reason" })
        {
            Assert.True(source.TryGetProperty(field, out _), field);
        }

        var website = await BodyAsync(await client.PostAsync("/api/v1/knowledge-sources",
            Json("""{"type": "website", "name": "Help centre", "url": "https://help.example.com/start", "max_pages": 5}"""), Ct));
        Assert.Equal("https://help.example.com/start", website.GetProperty("url").GetString());

        var listed = await BodyAsync(await client.GetAsync("/api/v1/knowledge-sources", Ct));
        Assert.Equal([website.GetProperty("id").GetString(), id], listed.GetProperty("data").EnumerateArray().Select(s => s.GetProperty("id").GetString()));
        Assert.Equal((2, 1, 20), (listed.GetProperty("meta").GetProperty("total").GetInt32(), listed.GetProperty("meta").GetProperty("page").GetInt32(),
            listed.GetProperty("meta").GetProperty("limit").GetInt32()));
        var second = await BodyAsync(await client.GetAsync("/api/v1/knowledge-sources?page=2&limit=1", Ct));
        Assert.Equal([id], second.GetProperty("data").EnumerateArray().Select(s => s.GetProperty("id").GetString()));

        var renamed = await client.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("""{"name": "Shipping FAQ"}"""), Ct);
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        Assert.Equal("Shipping FAQ", (await BodyAsync(await client.GetAsync($"/api/v1/knowledge-sources/{id}", Ct))).GetProperty("name").GetString());

        var reentered = await BodyAsync(await client.PatchAsync($"/api/v1/knowledge-sources/{id}",
            Json("""{"entries": [{"question": "Do you ship to Venus?", "answer": "Never."}]}"""), Ct));
        Assert.Equal("pending", reentered.GetProperty("status").GetString()); // new entries are ingested again
        var refreshed = await client.PostAsync($"/api/v1/knowledge-sources/{website.GetProperty("id").GetString()}/refresh", null, Ct);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.Equal("pending", (await BodyAsync(refreshed)).GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Equal(1, (await BodyAsync(await client.GetAsync("/api/v1/knowledge-sources", Ct))).GetProperty("meta").GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task AnotherWorkspacesSource_IsNotFound_OnEveryRoute_AndStaysAsItWas()
    {
        var owner = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        using var ownerClient = owner.Client();
        using var otherClient = other.Client();
        var id = (await BodyAsync(await ownerClient.PostAsync("/api/v1/knowledge-sources", Json("""{"type": "manual", "name": "Secret", "content": "The vault code is 1234."}"""), Ct)))
            .GetProperty("id").GetString();

        Assert.Equal(HttpStatusCode.NotFound, (await otherClient.GetAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherClient.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("""{"name": "Mine"}"""), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherClient.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("""{"content": "Mine now"}"""), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherClient.PostAsync($"/api/v1/knowledge-sources/{id}/refresh", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherClient.DeleteAsync($"/api/v1/knowledge-sources/{id}", Ct)).StatusCode);
        Assert.Equal(0, (await BodyAsync(await otherClient.GetAsync("/api/v1/knowledge-sources", Ct))).GetProperty("meta").GetProperty("total").GetInt32());
        Assert.Equal("Secret", (await BodyAsync(await ownerClient.GetAsync($"/api/v1/knowledge-sources/{id}", Ct))).GetProperty("name").GetString());
    }

    [Theory]
    [InlineData("""{"type": "video", "name": "x"}""", "'type'")]
    [InlineData("""{"type": "website", "name": "x"}""", "'url' is required for a website")]
    [InlineData("""{"type": "website", "name": "x", "url": "file:///etc/passwd"}""", "'url' must be http or https, not 'file'")]
    [InlineData("""{"type": "website", "name": "x", "url": "http://admin:pw@example.com/"}""", "'url' must not carry a user name or password")]
    [InlineData("""{"type": "website", "name": "x", "url": "/relative"}""", "'url' must be an absolute http or https URL")]
    [InlineData("""{"type": "website", "name": "x", "url": "https://example.com", "max_pages": 0}""", "'max_pages' must be between 1 and 1000")]
    [InlineData("""{"type": "manual", "name": "x"}""", "a manual source has either 'entries' or 'content'")]
    [InlineData("""{"type": "manual", "name": "x", "entries": [], "content": "y"}""", "a manual source has either 'entries' or 'content'")]
    [InlineData("""{"type": "manual", "name": "x", "entries": [{"question": " ", "answer": "a"}]}""", "'entries[0].question' must not be empty")]
    [InlineData("""{"type": "manual", "name": "x", "entries": [{"question": "q", "answer": "a"}, null]}""", "'entries[1]' must be an object")]
    [InlineData("""{"type": "manual", "name": "x", "content": "y", "url": "https://example.com"}""", "'url', 'max_pages' and 'max_depth' belong to a website")]
    [InlineData("""{"type": "document", "name": "x"}""", "a document is uploaded as multipart/form-data")]
    [InlineData("""{"type": "manual", "name": "", "content": "y"}""", "'name' must not be empty")]
    [InlineData("""{"type": "manual", "name": "x", "content": "y", "colour": "red"}""", "unknown field 'colour'")]
    public async Task Create_RefusesWhatCannotBeIngested_With400NamingIt_AndStoresNothing(string body, string message)
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var response = await client.PostAsync("/api/v1/knowledge-sources", Json(body), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, (await BodyAsync(response)).GetProperty("error").GetString());
        Assert.Equal(0, (await BodyAsync(await client.GetAsync("/api/v1/knowledge-sources", Ct))).GetProperty("meta").GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Patch_RefusesEntriesForAWebsite_AndAnEmptyChange()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();
        var id = (await BodyAsync(await client.PostAsync("/api/v1/knowledge-sources", Json("""{"type": "website", "name": "w", "url": "https://example.com"}"""), Ct)))
            .GetProperty("id").GetString();

        var entries = await client.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("""{"content": "text"}"""), Ct);
        var nothing = await client.PatchAsync($"/api/v1/knowledge-sources/{id}", Json("{}"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, entries.StatusCode);
        Assert.Contains("belong to a manual source; this one is a website", (await BodyAsync(entries)).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, nothing.StatusCode);
        Assert.Contains("nothing to change", (await BodyAsync(nothing)).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("page=0")]
    [InlineData("page=-1")]
    [InlineData("page=1.5")]
    [InlineData("limit=101")]
    [InlineData("limit=1e2")]
    [InlineData("limit=%2B5")]
    public async Task List_RefusesPagesAndLimitsThatAreNotWholeNumbersInRange(string query)
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var response = await client.GetAsync($"/api/v1/knowledge-sources?{query}", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("must be a whole number", (await BodyAsync(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Upload_TakesPdfTextMarkdownAndHtml_AndRefusesOtherTypes415_AndTooLarge413()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        using var client = workspace.Client();

        var pdf = await client.PostAsync("/api/v1/knowledge-sources", Upload("Manual", "manual.bin", "%PDF-1.4\n..."u8.ToArray()), Ct);
        var markdown = await client.PostAsync("/api/v1/knowledge-sources", Upload("Guide", "guide.md", "# Guide\nHello"u8.ToArray(), "text/markdown"), Ct);
        var png = await client.PostAsync("/api/v1/knowledge-sources", Upload("Logo", "logo.png", [0x89, 0x50, 0x4E, 0x47], "image/png"), Ct);
        var binaryText = await client.PostAsync("/api/v1/knowledge-sources", Upload("Bin", "notes.txt", [0x41, 0x00, 0xFF]), Ct);
        var large = await client.PostAsync("/api/v1/knowledge-sources", Upload("Big", "big.txt", Encoding.UTF8.GetBytes(new string('a', 5000))), Ct);
        var wrongType = await client.PostAsync("/api/v1/knowledge-sources", Upload("Site", "a.txt", "hi"u8.ToArray(), type: "website"), Ct);

        Assert.Equal(HttpStatusCode.Created, pdf.StatusCode);
        var document = await BodyAsync(pdf);
        Assert.Equal(("document", "pending"), (document.GetProperty("type").GetString(), document.GetProperty("status").GetString()));
        Assert.Equal(HttpStatusCode.Created, markdown.StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, png.StatusCode);
        Assert.Contains("upload a PDF, plain text (.txt), Markdown (.md) or HTML (.html) file", (await BodyAsync(png)).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, binaryText.StatusCode);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        Assert.Contains("Knowledge:MaxDocumentBytes", (await BodyAsync(large)).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Equal(2, (await BodyAsync(await client.GetAsync("/api/v1/knowledge-sources", Ct))).GetProperty("meta").GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Routes_NeedTheKnowledgeScope_WhichDefaultKeysCarry()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var chatOnly = await workspace.WithKeyAsync(scopes: ["chat"]);
        using var client = chatOnly.Client();

        var refused = await client.GetAsync("/api/v1/knowledge-sources", Ct);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("knowledge", (await BodyAsync(refused)).GetProperty("error").GetString());
        using var full = workspace.Client();
        Assert.Equal(HttpStatusCode.OK, (await full.GetAsync("/api/v1/knowledge-sources", Ct)).StatusCode);
    }
}
