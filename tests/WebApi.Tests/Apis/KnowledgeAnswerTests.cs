using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Silo.Knowledge;
using LuluClaw.Tests;
using static LuluClaw.WebApi.Tests.Apis.KnowledgeRequests;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// Bots answering from a workspace's knowledge end to end: a website served on 127.0.0.1, a PDF and a
/// manual source are ingested; questions they answer reach the model (a stub that records its
/// prompts) with their passages, and the answer names its sources; questions they do not cover
/// meet the evidence gate, in the bot's words, without a model call.
/// </summary>
public sealed class KnowledgeAnswerTests : IAsyncLifetime
{
    private LocalSite _site = null!;
    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;
    private TestWorkspace _workspace = null!;
    private HttpClient _client = null!;
    private (string Website, string Pdf, string Manual) _sources;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string OffTopic = "Who won the football world cup in 1998?";

    public async ValueTask InitializeAsync()
    {
        _site = await LocalSite.StartAsync();
        _site.Page("/", """
            <html><head><title>Quillstone help</title></head><body><nav>Home | Shop | Contact</nav>
            <h1>Quillstone kettle help</h1><p>Start with <a href="/boiling">boiling</a> or <a href="/descaling">descaling</a>.</p></body></html>
            """);
        _site.Page("/boiling", """
            <html><head><title>Boiling</title></head><body><h1>Boiling water</h1>
            <p>The Quillstone kettle boils one litre of water in 94 seconds. It switches itself off when the water boils.</p></body></html>
            """);
        _site.Page("/descaling", """
            <html><head><title>Descaling</title></head><body><h1>Descaling</h1>
            <p>Descale the Quillstone every eight weeks with white vinegar: fill it halfway, boil, and leave it overnight.</p></body></html>
            """);
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Knowledge:RunInBackground"] = "false",
            ["Knowledge:AllowPrivateAddresses"] = "true",
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
        });
        _workspace = await _app.CreateWorkspaceAsync();
        _client = _workspace.Client();
        _sources = (
            await CreateAsync(_client, Json($$"""{"type": "website", "name": "Quillstone help", "url": "{{_site.BaseUrl}}"}""")),
            await CreateAsync(_client, Upload("Warranty", "warranty.pdf", Pdf(
                "Quillstone warranty\nThe heating element of the Quillstone kettle is covered for six years.",
                "Claims\nSend claims to the shop where you bought the kettle, with the receipt."))),
            await CreateAsync(_client, Json("""
                {"type": "manual", "name": "Quillstone FAQ", "entries": [
                  {"question": "Which colours does the Quillstone kettle come in?", "answer": "Slate grey, copper and forest green."},
                  {"question": "How much water does the Quillstone hold?", "answer": "Up to 1.7 litres."}]}
                """)));
        await IngestAllAsync(_app);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
        await _site.DisposeAsync();
    }

    private async Task<JsonElement> ChatAsync(string message, string? sessionId = null, string route = "/api/v1/chat")
    {
        var response = await _client.PostAsJsonAsync(route, sessionId is null ? new { message } : (object)new { message, session_id = sessionId }, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await BodyAsync(response);
    }

    private async Task<JsonElement> PatchBotAsync(string body)
    {
        var response = await _client.PatchAsync($"/api/v1/bots/{await _workspace.PrimaryBotIdAsync()}", Json(body), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await BodyAsync(response);
    }

    /// <summary>The knowledge message of the model's last prompt: the system message after the bot's own, or null.</summary>
    private string? LastKnowledgeMessage()
    {
        var messages = _stub.Requests[^1].Messages;
        return messages is [{ Role: "system" }, { Role: "system" } knowledge, ..] ? knowledge.Content : null;
    }

    [Fact]
    public async Task AWebsiteAPdfAndAManualSource_AreReady_AndEachAnswersAQuestionOnlyItCovers_WithItsSourcesInTheAnswerAndTheHistory()
    {
        foreach (var id in new[] { _sources.Website, _sources.Pdf, _sources.Manual })
        {
            Assert.Equal("ready", (await SourceAsync(_client, id)).GetProperty("status").GetString());
        }

        var boiling = await ChatAsync("How quickly does the kettle bring a litre to the boil?", "kb");
        Assert.Contains("94 seconds", LastKnowledgeMessage());
        Assert.Contains($"({_site.BaseUrl}boiling)", LastKnowledgeMessage());
        var cited = boiling.GetProperty("sources").EnumerateArray().First();
        Assert.Equal((_sources.Website, "Quillstone help", $"{_site.BaseUrl}boiling"),
            (cited.GetProperty("id").GetString(), cited.GetProperty("name").GetString(), cited.GetProperty("url").GetString()));

        var warranty = await ChatAsync("For how many years is the heating element guaranteed?", "kb");
        Assert.Contains("six years", LastKnowledgeMessage());
        var pdf = warranty.GetProperty("sources").EnumerateArray().First();
        Assert.Equal((_sources.Pdf, JsonValueKind.Null), (pdf.GetProperty("id").GetString(), pdf.GetProperty("url").ValueKind));

        // The Gateway answers from the same knowledge, with exactly its documented fields.
        var gateway = await ChatAsync("What colours can I buy the kettle in?", route: "/api/gateway/chat");
        Assert.Contains("Slate grey, copper and forest green", LastKnowledgeMessage());
        Assert.Equal(["reply", "session_id", "credits_used", "credits_remaining"], gateway.EnumerateObject().Select(p => p.Name));

        // The history shows each reply's sources (read back from the database by a new activation).
        using var admin = _app.Admin();
        var history = (await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{_workspace.Id}/sessions/kb/messages", Ct)).GetProperty("messages");
        Assert.Equal([false, true, false, true], history.EnumerateArray().Select(m => m.TryGetProperty("sources", out _)));
        Assert.Equal(_sources.Pdf, history[3].GetProperty("sources")[0].GetProperty("id").GetString());
        using var sessions = (await _workspace.WithKeyAsync(["sessions"])).Client();
        var openClaw = (await sessions.GetFromJsonAsync<JsonElement>("/openclaw/api/v1/sessions/kb/history", Ct)).GetProperty("messages");
        Assert.Equal(_sources.Website, openClaw[1].GetProperty("sources")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task AQuestionTheKnowledgeDoesNotCover_MeetsTheEvidenceGate_InTheDefaultWordsOrTheBots_WithoutAModelCall()
    {
        var calls = _stub.Requests.Count;
        var gated = await ChatAsync(OffTopic, "gate");
        Assert.Equal(KnowledgeOptions.DefaultFallbackAnswer, gated.GetProperty("reply").GetString());
        Assert.False(gated.TryGetProperty("sources", out _));

        var streamed = await _client.PostAsJsonAsync("/api/v1/chat", new { message = OffTopic, session_id = "gate", stream = true }, Ct);
        var events = await streamed.Content.ReadAsStringAsync(Ct);
        Assert.Contains($"event: delta\ndata: {{\"content\":\"{KnowledgeOptions.DefaultFallbackAnswer}\"}}", events);
        Assert.Contains("event: done", events);
        Assert.Equal(calls, _stub.Requests.Count); // the model was asked nothing

        var bot = await PatchBotAsync("""{"knowledge_fallback": "Please ask our staff about that.", "knowledge_threshold": 0.99}""");
        Assert.Equal((0.99, "Please ask our staff about that."), (bot.GetProperty("knowledge_threshold").GetDouble(), bot.GetProperty("knowledge_fallback").GetString()));
        Assert.Equal("Please ask our staff about that.", (await ChatAsync("How quickly does the kettle bring a litre to the boil?")).GetProperty("reply").GetString());
        Assert.Equal(calls, _stub.Requests.Count);
        Assert.Equal(
            ["user", "assistant", "user", "assistant"],
            (await _workspace.HistoryAsync("gate")).Select(m => m.Role)); // gated turns are turns of the thread like any other

        // A threshold of 0 lets every question through to the model, with the closest passages.
        await PatchBotAsync("""{"knowledge_threshold": 0}""");
        Assert.StartsWith("Stub reply", (await ChatAsync(OffTopic)).GetProperty("reply").GetString());
        Assert.NotNull(LastKnowledgeMessage());
    }

    [Fact]
    public async Task ABotWithKnowledgeOff_AnswersWithoutIt_AndATurnThatWantsJsonOrToolsIsNotGated()
    {
        var calls = _stub.Requests.Count;
        var json = await _client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = (await _client.GetFromJsonAsync<JsonElement>("/api/v1/bots", Ct))[0].GetProperty("name").GetString(),
            response_format = new { type = "json_object" },
            messages = new[] { new { role = "user", content = OffTopic } },
        }, Ct);
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal(calls + 1, _stub.Requests.Count); // words would not be the JSON asked for: the model answers
        Assert.Null(LastKnowledgeMessage());

        var bot = await PatchBotAsync("""{"knowledge": false}""");
        Assert.False(bot.GetProperty("knowledge").GetBoolean());
        var answer = await ChatAsync("How quickly does the kettle bring a litre to the boil?");
        Assert.Null(LastKnowledgeMessage());
        Assert.False(answer.TryGetProperty("sources", out _));
        Assert.StartsWith("Stub reply", (await ChatAsync(OffTopic)).GetProperty("reply").GetString());
        Assert.Equal(calls + 3, _stub.Requests.Count);
    }

    [Theory]
    [InlineData("""{"knowledge_threshold": 1.5}""", "knowledge_threshold")]
    [InlineData("""{"knowledge_threshold": -0.1}""", "knowledge_threshold")]
    [InlineData("""{"knowledge_fallback": "   "}""", "knowledge_fallback")]
    [InlineData("""{"knowledge": "yes"}""", "knowledge")]
    public async Task BadKnowledgeSettings_Are400_NamingTheField(string body, string field)
    {
        var response = await _client.PatchAsync($"/api/v1/bots/{await _workspace.PrimaryBotIdAsync()}", Json(body), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(field, (await BodyAsync(response)).GetProperty("error").GetString());
    }
}
