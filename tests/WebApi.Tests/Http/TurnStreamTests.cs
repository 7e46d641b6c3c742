using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Tests;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests.Http;

/// <summary>
/// When a streamed turn's first bytes leave (<c>Http/TurnStream</c>): once the turn is admitted, not
/// with the model's first token. The model is the stub provider, held before it answers anything, so
/// each test reads what the client has while the model has not said a word, then lets it go.
/// </summary>
public sealed class TurnStreamTests : IAsyncLifetime
{
    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
    }

    public async ValueTask DisposeAsync()
    {
        _stub.ReleaseReplies();
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public enum Surface
    {
        Gateway,
        OpenAICompatible,
        OpenClaw,
    }

    [Theory]
    [InlineData(Surface.Gateway)]
    [InlineData(Surface.OpenAICompatible)]
    [InlineData(Surface.OpenClaw)]
    public async Task Stream_ModelHeldBeforeItsFirstToken_StatusHeadersAndFirstEventArriveFirst_ThenDeltasAndDone(Surface surface)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10, scopes: ["chat"]);
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.BeforeReply); // the model says nothing, not even its status line, until released

        // :: The headers and the surface's first event, with the model holding the turn's request.
        using var response = await PostStreamAsync(client, Path(surface), Body(surface, "tell me a story"))
            .WaitAsync(TimeSpan.FromSeconds(30), Ct); // bounds a failure only: before the fix this waited for the model's first token, forever here
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(body, Encoding.UTF8);
        var first = await NextBlockAsync(reader);
        await _stub.WaitForRequestsAsync(1, Ct); // the model call is made, and held: no token has been written
        switch (surface)
        {
            case Surface.Gateway:
                Assert.Equal(new Block(null, null, TurnStreamComment), first);
                break;
            case Surface.OpenAICompatible:
                Assert.Null(first.Event);
                Assert.Equal("assistant", JsonDocument.Parse(first.Data!).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
                break;
            case Surface.OpenClaw:
                Assert.Equal("start", first.Event);
                Assert.StartsWith("msg_", JsonDocument.Parse(first.Data!).RootElement.GetProperty("id").GetString());
                break;
        }

        // :: Released: the reply in pieces, then the end.
        _stub.ReleaseReplies();
        var rest = new List<Block>();
        while (await NextBlockAsync(reader) is { } block && block != End)
        {
            rest.Add(block);
        }

        var (pieces, last) = surface switch
        {
            Surface.OpenAICompatible => (rest.SkipLast(2), rest[^2]),
            _ => (rest.SkipLast(1), rest[^1]),
        };
        Assert.Equal("Stub reply to: tell me a story", string.Concat(pieces.Select(b => Content(surface, b))));
        switch (surface)
        {
            case Surface.Gateway:
                Assert.Equal("done", last.Event);
                Assert.Equal("Stub reply to: tell me a story", JsonDocument.Parse(last.Data!).RootElement.GetProperty("reply").GetString());
                break;
            case Surface.OpenAICompatible:
                Assert.Equal("stop", JsonDocument.Parse(last.Data!).RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
                Assert.Equal("[DONE]", rest[^1].Data);
                break;
            case Surface.OpenClaw:
                Assert.Equal("done", last.Event);
                break;
        }

        Assert.Equal(9, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Stream_RefusedBeforeAdmission_KeepsItsStatusCode_AndTheModelIsNotCalled()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 0, scopes: ["chat"]);
        using var client = workspace.Client();
        _stub.HoldReplies(StubHold.BeforeReply);

        foreach (var surface in Enum.GetValues<Surface>())
        {
            using var response = await PostStreamAsync(client, Path(surface), Body(surface, "hi"));
            Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Empty(_stub.Requests);
    }

    [Fact]
    public async Task Stream_ModelFailsBeforeItsFirstToken_IsAnErrorEventAfterTheOpeningComment_NotCharged()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10, scopes: ["chat"]);
        using var client = workspace.Client();
        _stub.FailNext(500);

        using var response = await PostStreamAsync(client, "/api/gateway/chat", new { message = "hi", session_id = "s", stream = true });
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(body, Encoding.UTF8);
        var first = await NextBlockAsync(reader);
        var second = await NextBlockAsync(reader);

        // Admitted, so the stream had begun: the failure is its last event, and the turn is refunded.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(TurnStreamComment, first.Comment);
        Assert.Equal("error", second.Event);
        Assert.Contains("500", JsonDocument.Parse(second.Data!).RootElement.GetProperty("error").GetString());
        Assert.Equal(End, await NextBlockAsync(reader));
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(await workspace.HistoryAsync("s"));
    }

    private const string TurnStreamComment = "ok";

    /// <summary>The end of the stream.</summary>
    private static readonly Block End = new(null, null, null);

    private static string Path(Surface surface) => surface switch
    {
        Surface.Gateway => "/api/gateway/chat",
        Surface.OpenAICompatible => "/v1/chat/completions",
        _ => "/openclaw/api/v1/chat/stream",
    };

    private static object Body(Surface surface, string message) => surface switch
    {
        Surface.Gateway => new { message, stream = true },
        Surface.OpenAICompatible => new { model = "Acme assistant", stream = true, messages = new[] { new { role = "user", content = message } } },
        _ => (object)new { message },
    };

    private static string? Content(Surface surface, Block block)
    {
        var data = JsonDocument.Parse(block.Data!).RootElement;
        return surface == Surface.OpenAICompatible
            ? data.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()
            : data.GetProperty("content").GetString();
    }

    /// <summary>One block of a server-sent-events stream: an event (its name and data) or a comment.</summary>
    private sealed record Block(string? Event, string? Data, string? Comment);

    /// <summary>The next block, read line by line up to its blank line; keep-alive comments are skipped; <see cref="End"/> at the end of the stream.</summary>
    private static async Task<Block> NextBlockAsync(StreamReader reader)
    {
        while (true)
        {
            string? name = null, data = null, comment = null;
            string? line;
            var any = false;
            while ((line = await reader.ReadLineAsync(Ct)) is { Length: > 0 })
            {
                any = true;
                if (line.StartsWith(':'))
                {
                    comment = line[1..].TrimStart();
                }
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line["event: ".Length..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data = line["data: ".Length..];
                }
            }

            if (!any && line is null)
            {
                return End;
            }

            if (any && !(comment == "keep-alive" && name is null && data is null))
            {
                return new Block(name, data, comment);
            }
        }
    }
}
