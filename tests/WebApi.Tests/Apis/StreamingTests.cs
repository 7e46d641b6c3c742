using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using LuluClaw.Tests;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>Server-sent events on the LuluClaw chat surfaces, read with the BCL's SSE parser.</summary>
public sealed class StreamingTests : IAsyncLifetime
{
    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Plans:Key:bulk:RequestsPerDay"] = "100000",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/api/gateway/chat", false)]
    [InlineData("/api/v1/chat", false)]
    [InlineData("/api/gateway/chat", true)]
    [InlineData("/api/v1/chat", true)]
    public async Task Chat_Streamed_DeltasThenDoneWithTheJsonAnswersFields(string path, bool byAcceptHeader)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        object body = byAcceptHeader ? new { message = "tell me a story", session_id = "s" } : new { message = "tell me a story", session_id = "s", stream = true };

        using var response = await PostStreamAsync(client, path, body, acceptEventStream: byAcceptHeader);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await ReadEventsAsync(response);
        Assert.Equal("done", events[^1].EventType);
        Assert.All(events[..^1], e => Assert.Equal("delta", e.EventType));
        Assert.True(events.Count >= 4, $"expected the reply in several deltas, got {events.Count - 1}");
        var text = string.Concat(events[..^1].Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("content").GetString()));
        Assert.Equal("Stub reply to: tell me a story", text);

        var done = JsonDocument.Parse(events[^1].Data).RootElement;
        Assert.Equal(["credits_remaining", "credits_used", "reply", "session_id"], done.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(text, done.GetProperty("reply").GetString());
        Assert.Equal("s", done.GetProperty("session_id").GetString());
        Assert.Equal(1, done.GetProperty("credits_used").GetInt64());
        Assert.Equal(9, done.GetProperty("credits_remaining").GetInt64());
        Assert.True(_stub.Requests[^1].Stream);
        Assert.Equal(["tell me a story", text], (await workspace.HistoryAsync("s")).Select(m => m.Content));
    }

    [Fact]
    public async Task Chat_Streamed_RefusedBeforeTheFirstByte_KeepsItsStatusAndJsonError()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 0);
        using var client = workspace.Client();

        using var response = await PostStreamAsync(client, "/api/v1/chat", new { message = "hi", stream = true });

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("credit", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());

        using var notFound = await PostStreamAsync(client, "/api/v1/chat", new { message = "hi", stream = true, bot_id = "bot_nope" });
        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        Assert.Empty(_stub.Requests);
    }

    [Fact]
    public async Task Chat_Streamed_ModelFailsAfterStreamingBegan_EndsWithErrorEvent_NotChargedNothingStored()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Llm:TimeoutSeconds"] = "0.5",
        });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.AfterFirstChunk); // one piece, then silence longer than the timeout

        using var response = await PostStreamAsync(client, "/api/gateway/chat", new { message = "hi", session_id = "s", stream = true });
        var events = await ReadEventsAsync(response);
        _stub.ReleaseReplies();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["delta", "error"], events.Select(e => e.EventType));
        Assert.Contains("did not answer within 0.5 s", JsonDocument.Parse(events[^1].Data).RootElement.GetProperty("error").GetString());
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    [Fact]
    public async Task Chat_ClientLeavesMidStream_ModelCallIsCancelled_PartialReplyStoredCutShort_SessionFreeAtOnce()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.AfterFirstChunk);

        using (var leaving = new CancellationTokenSource())
        {
            using var response = await PostStreamAsync(client, "/api/v1/chat", new { message = "a long answer please", session_id = "s", stream = true }, token: leaving.Token);
            await using var stream = await response.Content.ReadAsStreamAsync(Ct);
            await using var events = SseParser.Create(stream).EnumerateAsync(leaving.Token).GetAsyncEnumerator(leaving.Token);
            Assert.True(await events.MoveNextAsync());
            Assert.Equal("delta", events.Current.EventType);

            await leaving.CancelAsync(); // the client goes away after the first piece
        }

        // The model call was cancelled (the provider saw its client leave), with the provider still holding its answer.
        await _stub.WaitForAbandonedAsync(1, Ct);
        var next = await client.PostAsJsonAsync("/api/v1/chat", new { message = "are you there?", session_id = "s" }, Ct);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode); // answered while the first request is still held at the provider
        _stub.ReleaseReplies();

        var history = await HistoryWithFlagsAsync(workspace, "s");
        Assert.Equal(("user", "a long answer please", false), history[0]);
        Assert.Equal("assistant", history[1].Role);
        Assert.True(history[1].CutShort);
        Assert.StartsWith("Stub", history[1].Content); // what the model had produced: its first piece, not the whole reply
        Assert.DoesNotContain("please", history[1].Content);
        Assert.Equal(4, history.Count);
        Assert.False(history[3].CutShort);
        Assert.Equal(2, _stub.Requests.Count);
        Assert.Equal(["system", "user", "assistant", "user"], _stub.Requests[1].Messages.Select(m => m.Role));
        Assert.Equal(8, await workspace.CreditsAsync()); // the cut-short turn was delivered in part and is charged
    }

    [Fact]
    public async Task Chat_IdleStream_GetsKeepAliveComments()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
        {
            ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
            ["Streaming:KeepAliveSeconds"] = "0.2",
        });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.AfterFirstChunk);

        using var response = await PostStreamAsync(client, "/api/gateway/chat", new { message = "hi", stream = true });
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string? line;
        while ((line = await reader.ReadLineAsync(Ct)) is not null && line != ": keep-alive")
        {
        }

        _stub.ReleaseReplies();
        var rest = await reader.ReadToEndAsync(Ct);
        Assert.Equal(": keep-alive", line);
        Assert.Contains("event: done", rest);
    }

    [Fact]
    public async Task Chat_ThousandConcurrentStreamsOnOneProcess_AllCompleteCorrectly()
    {
        const int Streams = 1000;
        var workspace = await _app.CreateWorkspaceAsync(plan: "byok", credits: 5000, keyPlan: "bulk");
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.AfterFirstChunk);

        var streams = Enumerable.Range(0, Streams).Select(i => Task.Run(async () =>
        {
            using var response = await PostStreamAsync(client, "/api/v1/chat", new { message = $"question {i}", session_id = $"s{i}", stream = true });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await ReadEventsAsync(response);
        }, Ct)).ToArray();

        // Every stream is open at once: the provider holds all of them after their first piece.
        await _stub.WaitForRequestsAsync(Streams, Ct);
        Assert.All(streams, s => Assert.False(s.IsCompleted));
        _stub.ReleaseReplies();
        var results = await Task.WhenAll(streams);

        for (var i = 0; i < Streams; i++)
        {
            var events = results[i];
            Assert.Equal("done", events[^1].EventType);
            var done = JsonDocument.Parse(events[^1].Data).RootElement;
            Assert.Equal($"Stub reply to: question {i}", done.GetProperty("reply").GetString());
            Assert.Equal($"s{i}", done.GetProperty("session_id").GetString());
            Assert.Equal(done.GetProperty("reply").GetString(), string.Concat(events[..^1].Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("content").GetString())));
        }

        Assert.Equal(5000 - Streams, await workspace.CreditsAsync());
    }

    private static async Task<IReadOnlyList<(string Role, string Content, bool CutShort)>> HistoryWithFlagsAsync(TestWorkspace workspace, string sessionId)
    {
        using var admin = workspace.App.Admin();
        var body = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspace.Id}/sessions/{sessionId}/messages", Ct);
        return body.GetProperty("messages").EnumerateArray()
            .Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!, m.GetProperty("cut_short").GetBoolean())).ToArray();
    }
}
