using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Responses;
using Orleans;

#pragma warning disable OPENAI001 // the SDK marks its Responses client as experimental; the wire format it speaks is OpenAI's stable one

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary><c>POST /v1/responses</c> and <c>GET /v1/responses/{id}</c>, driven by the official OpenAI .NET SDK.</summary>
public sealed class OpenAIResponsesApiTests : IAsyncLifetime
{
    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ResponsesClient Responses(LuluClawApp app, string key) => app.OpenAISdk(key).GetResponsesClient();

    private Task<LuluClawApp> StubbedAppAsync() =>
        LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });

    private static Task<string> PrimaryBotAsync(TestWorkspace workspace) => workspace.PrimaryBotIdAsync();

    /// <summary>The workspace's sessions, as its grain lists them.</summary>
    private static Task<IReadOnlyList<SessionSummary>> SessionsAsync(LuluClawApp app, TestWorkspace workspace) =>
        app.Services.GetRequiredService<IGrainFactory>().GetGrain<IWorkspaceGrain>(workspace.Id).ListSessionsAsync(Ct);

    /// <summary>The id of the workspace's one session, which must be an OpenAI one.</summary>
    private static async Task<string> SessionOfAsync(LuluClawApp app, TestWorkspace workspace)
    {
        var session = Assert.Single(await SessionsAsync(app, workspace));
        Assert.Equal("openai", session.Channel);
        return session.SessionId;
    }

    private static CreateResponseOptions Options(string model, string text, string? previous = null)
    {
        var options = new CreateResponseOptions { Model = model, PreviousResponseId = previous };
        options.InputItems.Add(ResponseItem.CreateUserMessageItem(text));
        return options;
    }

    [Fact]
    public async Task Sdk_CreateResponse_AnswersAsTheBot_InAStoredThread_AndChargesOneTurn()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);

        ResponseResult response = await Responses(_app, workspace.Key).CreateResponseAsync(bot, "Hello there", cancellationToken: Ct);

        Assert.Equal("Echo: Hello there", response.GetOutputText());
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.StartsWith("resp_", response.Id);
        Assert.Equal(bot, response.Model);
        Assert.Null(response.PreviousResponseId);
        Assert.True(response.Usage.OutputTokenCount > 0);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);
        var message = Assert.IsType<MessageResponseItem>(Assert.Single(response.OutputItems), exactMatch: false);
        Assert.Equal(MessageRole.Assistant, message.Role);
        Assert.StartsWith("msg_", message.Id);
        Assert.Equal(9, await workspace.CreditsAsync());
        var session = await SessionOfAsync(_app, workspace);
        Assert.Equal([(1L, "user", "Hello there"), (2L, "assistant", "Echo: Hello there")], await workspace.HistoryAsync(session));
    }

    [Fact]
    public async Task Sdk_CreateResponseStreaming_SendsOpenAIsEventsInOrder_DeltasMakeTheReply_AndTheIdIsTheStoredOne()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var client = Responses(_app, workspace.Key);

        var updates = new List<StreamingResponseUpdate>();
        await foreach (var update in await client.CreateResponseStreamingAsync(bot, "stream this please", cancellationToken: Ct))
        {
            updates.Add(update);
        }

        var deltas = updates.OfType<StreamingResponseOutputTextDeltaUpdate>().ToArray();
        Assert.True(deltas.Length >= 3);
        Assert.Equal("Echo: stream this please", string.Concat(deltas.Select(d => d.Delta)));
        Assert.IsType<StreamingResponseCreatedUpdate>(updates[0]);
        Assert.IsType<StreamingResponseInProgressUpdate>(updates[1]);
        Assert.IsType<StreamingResponseOutputItemAddedUpdate>(updates[2]);
        Assert.IsType<StreamingResponseContentPartAddedUpdate>(updates[3]);
        Assert.All(updates[4..(4 + deltas.Length)], u => Assert.IsType<StreamingResponseOutputTextDeltaUpdate>(u));
        Assert.Equal("Echo: stream this please", Assert.IsType<StreamingResponseOutputTextDoneUpdate>(updates[^4]).Text);
        Assert.IsType<StreamingResponseContentPartDoneUpdate>(updates[^3]);
        Assert.IsType<StreamingResponseOutputItemDoneUpdate>(updates[^2]);
        var completed = Assert.IsType<StreamingResponseCompletedUpdate>(updates[^1]);
        Assert.Equal(updates.Count, 8 + deltas.Length);
        Assert.Equal(Enumerable.Range(0, updates.Count), updates.Select(u => u.SequenceNumber));
        Assert.Equal(ResponseStatus.Completed, completed.Response.Status);
        Assert.Equal("Echo: stream this please", completed.Response.GetOutputText());
        Assert.Equal(((StreamingResponseCreatedUpdate)updates[0]).Response.Id, completed.Response.Id);
        Assert.Equal(9, await workspace.CreditsAsync());
        Assert.Equal("Echo: stream this please", (await client.GetResponseAsync(completed.Response.Id, Ct)).Value.GetOutputText());
    }

    [Fact]
    public async Task Streamed_WireFormat_NamedEvents_EachDataCarryingItsTypeAndSequenceNumber()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses")
        {
            Content = JsonContent.Create(new { model = bot, stream = true, input = "one two" }),
        };

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var events = new List<(string Name, JsonElement Data)>();
        await foreach (var item in System.Net.ServerSentEvents.SseParser.Create(stream).EnumerateAsync(Ct))
        {
            events.Add((item.EventType, JsonDocument.Parse(item.Data).RootElement));
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.All(events, e => Assert.Equal(e.Name, e.Data.GetProperty("type").GetString()));
        Assert.Equal(
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"],
            events.Take(4).Select(e => e.Name));
        Assert.Equal(
            ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"],
            events.TakeLast(4).Select(e => e.Name));
        Assert.Equal("Echo: one two", string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString())));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()));
        var done = events[^1].Data.GetProperty("response");
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(3, done.GetProperty("usage").GetProperty("output_tokens").GetInt64());
        Assert.Equal(events[2].Data.GetProperty("item").GetProperty("id").GetString(), done.GetProperty("output")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Sdk_PreviousResponseId_ContinuesTheSameThread_TheModelSeesTheFirstExchange()
    {
        await using var app = await StubbedAppAsync();
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var client = Responses(app, workspace.Key);

        ResponseResult first = await client.CreateResponseAsync("Acme assistant", "first", cancellationToken: Ct); // by name
        ResponseResult second = await client.CreateResponseAsync("Acme assistant", "second", previousResponseId: first.Id, cancellationToken: Ct);

        Assert.Equal("Stub reply to: second", second.GetOutputText());
        Assert.Equal(first.Id, second.PreviousResponseId);
        Assert.NotEqual(first.Id, second.Id);
        Assert.Equal(
            [("system", "You are a helpful assistant."), ("user", "first"), ("assistant", "Stub reply to: first"), ("user", "second")],
            _stub.Requests[^1].Messages.Select(m => (m.Role, m.Content)));
        var session = await SessionOfAsync(app, workspace); // one thread, not two
        Assert.Equal(["first", "Stub reply to: first", "second", "Stub reply to: second"], (await workspace.HistoryAsync(session)).Select(m => m.Content));
        Assert.Equal(8, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Instructions_AndSystemItemsOfInput_FollowTheBotsSystemPrompt_ForThisTurnOnly()
    {
        await using var app = await StubbedAppAsync();
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();

        var first = await client.PostAsJsonAsync("/v1/responses", new
        {
            model = "Acme assistant",
            instructions = "Answer in French.",
            input = new object[] { new { role = "developer", content = "Be brief." }, new { type = "message", role = "user", content = new[] { new { type = "input_text", text = "hi" } } } },
        }, Ct);
        var firstPrompt = _stub.Requests[^1].Messages.Select(m => (m.Role, m.Content)).ToArray();
        var body = await first.Content.ReadFromJsonAsync<JsonElement>(Ct);
        await client.PostAsJsonAsync("/v1/responses", new { model = "Acme assistant", input = "again", previous_response_id = body.GetProperty("id").GetString() }, Ct);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("Answer in French.", body.GetProperty("instructions").GetString());
        Assert.Equal([("system", "You are a helpful assistant."), ("system", "Answer in French.\n\nBe brief."), ("user", "hi")], firstPrompt);
        Assert.Equal(["system", "user", "assistant", "user"], _stub.Requests[^1].Messages.Select(m => m.Role)); // not carried over
    }

    [Fact]
    public async Task StoreFalse_TheInputIsTheConversation_NothingIsStored_AndItsIdIsNotFound()
    {
        await using var app = await StubbedAppAsync();
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var client = Responses(app, workspace.Key);
        var options = new CreateResponseOptions { Model = "Acme assistant", StoredOutputEnabled = false };
        options.InputItems.Add(ResponseItem.CreateUserMessageItem("q1"));
        options.InputItems.Add(ResponseItem.CreateAssistantMessageItem("a1"));
        options.InputItems.Add(ResponseItem.CreateUserMessageItem("q2"));

        ResponseResult response = await client.CreateResponseAsync(options, Ct);
        var lookup = await Assert.ThrowsAsync<ClientResultException>(() => client.GetResponseAsync(response.Id, Ct));

        Assert.Equal("Stub reply to: q2", response.GetOutputText());
        Assert.Equal([("system", "You are a helpful assistant."), ("user", "q1"), ("assistant", "a1"), ("user", "q2")], _stub.Requests[^1].Messages.Select(m => (m.Role, m.Content)));
        Assert.Equal(404, lookup.Status);
        Assert.Equal(9, await workspace.CreditsAsync());
        Assert.Empty(await SessionsAsync(app, workspace));
    }

    [Fact]
    public async Task Sdk_GetResponse_IsTheStoredReply_WithItsPreviousResponse()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var client = Responses(_app, workspace.Key);
        ResponseResult first = await client.CreateResponseAsync(bot, "one", cancellationToken: Ct);
        ResponseResult second = await client.CreateResponseAsync(bot, "two", previousResponseId: first.Id, cancellationToken: Ct);

        ResponseResult gotFirst = await client.GetResponseAsync(first.Id, Ct);
        ResponseResult gotSecond = await client.GetResponseAsync(second.Id, Ct);

        Assert.Equal([first.Id, second.Id], [gotFirst.Id, gotSecond.Id]);
        Assert.Equal(["Echo: one", "Echo: two"], [gotFirst.GetOutputText(), gotSecond.GetOutputText()]);
        Assert.Equal(ResponseStatus.Completed, gotSecond.Status);
        Assert.Equal(bot, gotSecond.Model);
        Assert.Null(gotFirst.PreviousResponseId);
        Assert.Equal(first.Id, gotSecond.PreviousResponseId);
        Assert.Equal(8, await workspace.CreditsAsync()); // reading charges nothing
    }

    [Fact]
    public async Task Sdk_MaxOutputTokens_CutIsAnIncompleteResponse_WholeAndStreamed()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var options = Options(await PrimaryBotAsync(workspace), "one two three four");
        options.MaxOutputTokenCount = 2;

        var client = Responses(_app, workspace.Key);

        ResponseResult response = await client.CreateResponseAsync(options, Ct);
        options.StreamingEnabled = true;
        var updates = new List<StreamingResponseUpdate>();
        await foreach (var update in await client.CreateResponseStreamingAsync(options, Ct))
        {
            updates.Add(update);
        }

        var incomplete = Assert.IsType<StreamingResponseIncompleteUpdate>(updates[^1]);
        Assert.Equal("Echo: one", response.GetOutputText());
        Assert.Equal(ResponseStatus.Incomplete, response.Status);
        Assert.Equal(ResponseIncompleteStatusReason.MaxOutputTokens, response.IncompleteStatusDetails.Reason);
        Assert.Equal("Echo: one", incomplete.Response.GetOutputText());
        Assert.Equal(ResponseStatus.Incomplete, incomplete.Response.Status);
        Assert.Empty(updates.OfType<StreamingResponseCompletedUpdate>());
    }

    [Fact]
    public async Task Sdk_SamplingParameters_ReachTheProvider_AndTheAnswerEchoesTheRequest()
    {
        await using var app = await StubbedAppAsync();
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var options = Options("Acme assistant", "hi");
        (options.Temperature, options.TopP, options.MaxOutputTokenCount) = (0.25f, 0.5f, 42);
        options.Metadata["order"] = "42";
        options.TextOptions = new ResponseTextOptions
        {
            TextFormat = ResponseTextFormat.CreateJsonSchemaFormat("answer", BinaryData.FromString("""{"type":"object","properties":{"a":{"type":"string"}}}""")),
        };
        options.EndUserId = "user-7";

        ResponseResult response = await Responses(app, workspace.Key).CreateResponseAsync(options, Ct);

        var sent = JsonDocument.Parse(_stub.Requests[^1].Body!).RootElement;
        Assert.Equal(0.25, sent.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal(0.5, sent.GetProperty("top_p").GetDouble(), 3);
        Assert.Equal(42, _stub.Requests[^1].MaxTokens);
        Assert.Equal("json_schema", sent.GetProperty("response_format").GetProperty("type").GetString());
        Assert.Equal("answer", sent.GetProperty("response_format").GetProperty("json_schema").GetProperty("name").GetString());
        Assert.Equal(0.25f, response.Temperature);
        Assert.Equal(42, response.MaxOutputTokenCount);
        Assert.Equal("42", response.Metadata["order"]);
        Assert.Equal("user-7", response.EndUserId);
    }

    [Fact]
    public async Task Streamed_ModelFailureAfterAdmission_IsAResponseFailedEvent_AndChargesNothing()
    {
        await using var app = await StubbedAppAsync();
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        _stub.FailAll(500);

        var updates = new List<StreamingResponseUpdate>();
        await foreach (var update in await Responses(app, workspace.Key).CreateResponseStreamingAsync("Acme assistant", "hi", cancellationToken: Ct))
        {
            updates.Add(update);
        }

        Assert.IsType<StreamingResponseCreatedUpdate>(updates[0]);
        var failed = Assert.IsType<StreamingResponseFailedUpdate>(updates[^1]);
        Assert.Equal(ResponseStatus.Failed, failed.Response.Status);
        Assert.False(string.IsNullOrEmpty(failed.Response.Error.Message));
        Assert.Empty(updates.OfType<StreamingResponseCompletedUpdate>());
        Assert.Equal(10, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Sdk_GetsTypedErrors_UnknownModel404_NoCredits402_RateLimited429_AndRefusalsChargeNothing()
    {
        var rich = await _app.CreateWorkspaceAsync(plan: "starter", credits: 100);
        var broke = await _app.CreateWorkspaceAsync(credits: 0);
        var bot = await PrimaryBotAsync(rich);
        var client = Responses(_app, rich.Key);
        for (var i = 0; i < 15; i++)
        {
            await client.CreateResponseAsync(bot, "hi", cancellationToken: Ct); // Starter: 15 turns an hour
        }

        async Task<ClientResultException> Refused(Func<Task> call) => await Assert.ThrowsAsync<ClientResultException>(call);
        var noModel = await Refused(() => client.CreateResponseAsync("no-such-bot", "hi", cancellationToken: Ct));
        var noCredits = await Refused(async () => await Responses(_app, broke.Key).CreateResponseAsync(await PrimaryBotAsync(broke), "hi", cancellationToken: Ct));
        var limited = await Refused(() => client.CreateResponseAsync(bot, "hi", cancellationToken: Ct));
        var limitedStream = await Refused(async () =>
        {
            await foreach (var _ in await client.CreateResponseStreamingAsync(bot, "hi", cancellationToken: Ct))
            {
            }
        });

        Assert.Equal([404, 402, 429, 429], [noModel.Status, noCredits.Status, limited.Status, limitedStream.Status]);
        Assert.Contains("no-such-bot", noModel.Message);
        Assert.Equal("model_not_found", Error(noModel).GetProperty("code").GetString());
        Assert.Equal("insufficient_quota", Error(noCredits).GetProperty("code").GetString());
        Assert.Equal("rate_limit_exceeded", Error(limited).GetProperty("code").GetString());
        Assert.Equal(85, await rich.CreditsAsync());
        Assert.Equal(0, await broke.CreditsAsync());
    }

    [Theory]
    [InlineData("""{"tools": [{"type": "function", "name": "f", "parameters": {}}]}""", "'tools' are not supported yet")]
    [InlineData("""{"background": true}""", "'background' is not supported")]
    [InlineData("""{"reasoning": {"effort": "low"}}""", "unknown field 'reasoning'")]
    [InlineData("""{"include": ["reasoning.encrypted_content"]}""", "'include' is not supported")]
    [InlineData("""{"truncation": "auto"}""", "'truncation' must be 'disabled'")]
    [InlineData("""{"temperature": 3}""", "'temperature' must be between 0 and 2")]
    [InlineData("""{"metadata": {"k": null}}""", "'metadata' keys must be at most 64 characters and values strings of at most 512")]
    [InlineData("""{"store": false, "previous_response_id": "resp_x"}""", "'previous_response_id' cannot be used with \"store\": false")]
    [InlineData("""{"input": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]}""", "'input[0]' is a 'user' message")]
    [InlineData("""{"input": [{"role": "assistant", "content": "hi"}]}""", "the last item of 'input' must be the user's new message")]
    [InlineData("""{"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}""", "'input[0].type' must be 'message'")]
    [InlineData("""{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}""", "'input[0].content' must be a string or an array of text parts")]
    [InlineData("""{"input": ""}""", "the user's new message in 'input' must not be empty")]
    public async Task Parameters_ThatCannotBeHonoured_Are400NamingThem_AndChargeNothing(string extra, string message)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();
        var fields = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(extra)!;
        var body = new Dictionary<string, JsonElement> { ["model"] = JsonSerializer.SerializeToElement(bot), ["input"] = JsonSerializer.SerializeToElement("hi") };
        foreach (var (name, value) in fields)
        {
            body[name] = value;
        }

        var response = await client.PostAsJsonAsync("/v1/responses", body, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.StartsWith(message, error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(10, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Sdk_PreviousResponseId_ThatIsNotTheLatest_Is409NamingTheLatest_AndChargesNothing()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var client = Responses(_app, workspace.Key);
        ResponseResult first = await client.CreateResponseAsync(bot, "one", cancellationToken: Ct);
        ResponseResult second = await client.CreateResponseAsync(bot, "two", previousResponseId: first.Id, cancellationToken: Ct);

        var forked = await Assert.ThrowsAsync<ClientResultException>(() => client.CreateResponseAsync(bot, "fork", previousResponseId: first.Id, cancellationToken: Ct));
        var forkedStream = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in await client.CreateResponseStreamingAsync(bot, "fork", previousResponseId: first.Id, cancellationToken: Ct))
            {
            }
        });

        Assert.Equal([409, 409], [forked.Status, forkedStream.Status]);
        Assert.Contains(second.Id, forked.Message);
        Assert.Equal("previous_response_id", Error(forked).GetProperty("param").GetString());
        Assert.Equal(8, await workspace.CreditsAsync());
        Assert.Equal(4, (await workspace.HistoryAsync(await SessionOfAsync(_app, workspace))).Count);
    }

    [Fact]
    public async Task PreviousResponseId_OvertakenBetweenTheCheckAndTheTurn_TheSessionRefusesTheTurn_AndChargesNothing()
    {
        // The handler's 409 reads the history first; a turn that lands in between is caught by the session grain itself,
        // which holds its turn gate while it compares AfterSeq with the thread's last message.
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        await Responses(_app, workspace.Key).CreateResponseAsync(bot, "one", cancellationToken: Ct);
        var key = SessionKey.Of(Guid.Parse(workspace.Id), await SessionOfAsync(_app, workspace));
        var session = _app.Services.GetRequiredService<IGrainFactory>().GetGrain<ISessionGrain>(key);

        var stale = await session.SendAsync(new ChatTurnRequest("fork", workspace.KeyId, "openai", bot, AfterSeq: 0), Ct);
        var current = await session.SendAsync(new ChatTurnRequest("two", workspace.KeyId, "openai", bot, AfterSeq: 2), Ct);

        Assert.Equal(ChatTurnStatus.Conflict, stale.Status);
        Assert.Null(stale.ReplySeq);
        Assert.Equal((ChatTurnStatus.Ok, 4L), (current.Status, current.ReplySeq));
        Assert.Equal(8, await workspace.CreditsAsync());
        Assert.Equal(["one", "Echo: one", "two", "Echo: two"], (await workspace.HistoryAsync(key[(key.IndexOf('/') + 1)..])).Select(m => m.Content));
    }

    [Fact]
    public async Task AnotherWorkspacesResponseId_IsNotFound_ToGetAndToPreviousResponseId_AsIsAMadeUpOne()
    {
        var owner = await _app.CreateWorkspaceAsync(credits: 10);
        var other = await _app.CreateWorkspaceAsync(credits: 10);
        ResponseResult mine = await Responses(_app, owner.Key).CreateResponseAsync(await PrimaryBotAsync(owner), "secret", cancellationToken: Ct);
        var theirs = Responses(_app, other.Key);
        var otherBot = await PrimaryBotAsync(other);

        var get = await Assert.ThrowsAsync<ClientResultException>(() => theirs.GetResponseAsync(mine.Id, Ct));
        var continued = await Assert.ThrowsAsync<ClientResultException>(() => theirs.CreateResponseAsync(otherBot, "hi", previousResponseId: mine.Id, cancellationToken: Ct));
        var madeUp = await Assert.ThrowsAsync<ClientResultException>(() => theirs.GetResponseAsync("resp_not-a-real-id", Ct));
        var madeUpPrevious = await Assert.ThrowsAsync<ClientResultException>(() => theirs.CreateResponseAsync(otherBot, "hi", previousResponseId: "resp_%%", cancellationToken: Ct));

        Assert.Equal([404, 404, 404, 404], [get.Status, continued.Status, madeUp.Status, madeUpPrevious.Status]);
        Assert.DoesNotContain("secret", get.Message);
        Assert.Equal("previous_response_id", Error(continued).GetProperty("param").GetString());
        Assert.Equal("previous_response_not_found", Error(continued).GetProperty("code").GetString());
        Assert.Equal(10, await other.CreditsAsync());
        Assert.Equal("Echo: secret", (await Responses(_app, owner.Key).GetResponseAsync(mine.Id, Ct)).Value.GetOutputText());
    }

    private static JsonElement Error(ClientResultException refused) =>
        JsonDocument.Parse(refused.GetRawResponse()!.Content).RootElement.GetProperty("error");
}
