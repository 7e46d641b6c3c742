using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using OpenAI;
using OpenAI.Chat;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary><c>/v1/chat/completions</c> and <c>/v1/models</c>, driven by the official OpenAI .NET SDK.</summary>
public sealed class OpenAICompatibleApiTests : IAsyncLifetime
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

    private static OpenAIClient Sdk(LuluClawApp app, string key, string? sessionId = null) => app.OpenAISdk(key, sessionId);

    private static Task<string> PrimaryBotAsync(TestWorkspace workspace) => workspace.PrimaryBotIdAsync();

    [Fact]
    public async Task Sdk_CompleteChat_AnswersAsTheBot_AndChargesOneTurn()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var chat = Sdk(_app, workspace.Key).GetChatClient(bot);

        ChatCompletion completion = await chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Hello there")], cancellationToken: Ct);

        Assert.Equal("Echo: Hello there", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(bot, completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.True(completion.Usage.OutputTokenCount > 0);
        Assert.Equal(9, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Sdk_CompleteChatStreaming_YieldsTheReplyInPieces_ThenUsage()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var chat = Sdk(_app, workspace.Key).GetChatClient(bot);

        var pieces = new List<string>();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream this please")], cancellationToken: Ct))
        {
            pieces.AddRange(update.ContentUpdate.Select(p => p.Text));
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.True(pieces.Count(p => p.Length > 0) >= 3);
        Assert.Equal("Echo: stream this please", string.Concat(pieces));
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.Equal(9, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Streamed_WireFormat_RoleChunkDeltasStopUsageThenDone()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = bot, stream = true, stream_options = new { include_usage = true }, messages = new[] { new { role = "user", content = "one two" } } }),
        };

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var data = new List<string>();
        await foreach (var item in System.Net.ServerSentEvents.SseParser.Create(stream).EnumerateAsync(Ct))
        {
            data.Add(item.Data);
        }

        Assert.Equal("[DONE]", data[^1]);
        var chunks = data[..^1].Select(d => JsonDocument.Parse(d).RootElement).ToArray();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var text = string.Concat(chunks[1..^2].Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()));
        Assert.Equal("Echo: one two", text);
        Assert.Equal("stop", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(3, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt64());
    }

    [Fact]
    public async Task Stateless_TheRequestsConversationReachesTheModel_AndNothingIsStored()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var chat = Sdk(app, workspace.Key).GetChatClient("Acme assistant"); // by name, case as given

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage("Client rules."), new UserChatMessage("q1"), new AssistantChatMessage("a1"), new UserChatMessage("q2")], cancellationToken: Ct);

        Assert.Equal("Stub reply to: q2", completion.Content[0].Text);
        Assert.Equal(
            [("system", "You are a helpful assistant."), ("system", "Client rules."), ("user", "q1"), ("assistant", "a1"), ("user", "q2")],
            _stub.Requests[^1].Messages.Select(m => (m.Role, m.Content)));
        Assert.Equal(9, await workspace.CreditsAsync());
        Assert.Equal(0, await CountStoredMessagesAsync(app, workspace));
    }

    [Fact]
    public async Task WithSessionHeader_TheSessionOwnsTheHistory()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        var chat = Sdk(app, workspace.Key, sessionId: "oai-thread").GetChatClient(bot);

        await chat.CompleteChatAsync([new UserChatMessage("first")], cancellationToken: Ct);
        await chat.CompleteChatAsync([new UserChatMessage("ignored earlier text"), new UserChatMessage("second")], cancellationToken: Ct);

        Assert.Equal(["system", "user", "assistant", "user"], _stub.Requests[^1].Messages.Select(m => m.Role));
        Assert.Equal("second", _stub.Requests[^1].Messages[^1].Content);
        Assert.Equal(["first", "Stub reply to: first", "second", "Stub reply to: second"], (await workspace.HistoryAsync("oai-thread")).Select(m => m.Content));
    }

    [Fact]
    public async Task Sdk_SamplingAndOutputParameters_ReachTheProvider()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var chat = Sdk(app, workspace.Key).GetChatClient("Acme assistant");
        var options = new ChatCompletionOptions
        {
            Temperature = 0.25f,
            TopP = 0.5f,
            MaxOutputTokenCount = 42,
#pragma warning disable OPENAI001 // seed is marked for evaluation in the SDK; the wire field is stable
            Seed = 7,
#pragma warning restore OPENAI001
            FrequencyPenalty = 0.5f,
            PresencePenalty = -0.5f,
            ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat(),
        };
        options.StopSequences.Add("END");

        await chat.CompleteChatAsync([new UserChatMessage("hi")], options, Ct);

        var sent = JsonDocument.Parse(_stub.Requests[^1].Body!).RootElement;
        Assert.Equal(0.25, sent.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal(0.5, sent.GetProperty("top_p").GetDouble(), 3);
        Assert.Equal(42, _stub.Requests[^1].MaxTokens);
        Assert.Equal(7, sent.GetProperty("seed").GetInt64());
        Assert.Equal(0.5, sent.GetProperty("frequency_penalty").GetDouble(), 3);
        Assert.Equal(-0.5, sent.GetProperty("presence_penalty").GetDouble(), 3);
        Assert.Equal("END", sent.GetProperty("stop")[0].GetString());
        Assert.Equal("json_object", sent.GetProperty("response_format").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Sdk_EchoHonoursMaxTokensAndStop_WholeAndStreamed()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var chat = Sdk(_app, workspace.Key).GetChatClient(await PrimaryBotAsync(workspace));

        ChatCompletion cut = await chat.CompleteChatAsync([new UserChatMessage("one two three four")], new ChatCompletionOptions { MaxOutputTokenCount = 2 }, Ct);
        var stop = new ChatCompletionOptions();
        stop.StopSequences.Add(" three");
        ChatCompletion stopped = await chat.CompleteChatAsync([new UserChatMessage("one two three four")], stop, Ct);
        var streamed = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("one two three four")], new ChatCompletionOptions { MaxOutputTokenCount = 3 }, Ct))
        {
            streamed.Append(string.Concat(update.ContentUpdate.Select(p => p.Text)));
            finish = update.FinishReason ?? finish;
        }

        Assert.Equal("Echo: one", cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, cut.FinishReason);
        Assert.Equal("Echo: one two", stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.Equal("Echo: one two", streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
    }

    [Theory]
    [InlineData("""{"n": 2}""", "'n' must be 1: LuluClaw answers with one choice per request")]
    [InlineData("""{"temperature": 3}""", "'temperature' must be between 0 and 2")]
    [InlineData("""{"logprobs": true}""", "unknown field 'logprobs'")]
    [InlineData("""{"stop": [1]}""", "'stop' must be a string or an array of at most 4 non-empty strings")]
    [InlineData("""{"response_format": {"type": "json_schema"}}""", "'response_format.json_schema.schema' must be a JSON schema object")]
    [InlineData("""{"tools": [{"type": "code_interpreter"}]}""", "'tools[0].type' must be 'function'")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "no spaces"}}]}""", "'tools[0].function.name' must be 1 to 64 letters")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]}""", "'tools[0].function.parameters' must be a JSON schema object")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}""", "'tools[1].function.name' repeats the tool 'f'")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}""", "'tool_choice.function.name' must name one of 'tools'")]
    [InlineData("""{"tool_choice": "sometimes"}""", "'tool_choice' must be 'none', 'auto', 'required' or")]
    [InlineData("""{"tool_choice": "required"}""", "'tool_choice' needs 'tools'")]
    public async Task Parameters_ThatCannotBeHonoured_Are400NamingThem_AndChargeNothing(string extra, string message)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();
        var body = $$"""{"model": "{{bot}}", "messages": [{"role": "user", "content": "hi"}], {{extra[1..]}}""";

        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.StartsWith(message, error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(10, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task ProviderRefusingTheRequest_IsA400WithItsMessage_NotA503_AndChargesNothing()
    {
        await using var app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
        var workspace = await app.CreateWorkspaceAsync(credits: 10);
        var chat = Sdk(app, workspace.Key).GetChatClient("Acme assistant");
        _stub.FailNext(400);

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));

        Assert.Equal(400, refused.Status);
        Assert.Contains("stub failure 400", refused.Message);
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Equal("Stub reply to: again", (await chat.CompleteChatAsync([new UserChatMessage("again")], cancellationToken: Ct)).Value.Content[0].Text);
    }

    [Fact]
    public async Task Sdk_GetsTypedErrors_For400_401_402_404_And429()
    {
        var rich = await _app.CreateWorkspaceAsync(plan: "starter", credits: 100);
        var broke = await _app.CreateWorkspaceAsync(credits: 0);
        var bot = await PrimaryBotAsync(rich);
        var chat = Sdk(_app, rich.Key).GetChatClient(bot);
        for (var i = 0; i < 15; i++)
        {
            await chat.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct); // Starter: 15 turns an hour
        }

        async Task<ClientResultException> Refused(Func<Task> call) => await Assert.ThrowsAsync<ClientResultException>(call);
        var invalid = await Refused(() => chat.CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 3 }, Ct));
        var badKey = await Refused(() => Sdk(_app, "lulu_sk_" + new string('x', 43)).GetChatClient(bot).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        var noCredits = await Refused(async () => await Sdk(_app, broke.Key).GetChatClient(await PrimaryBotAsync(broke)).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        var noModel = await Refused(() => Sdk(_app, rich.Key).GetChatClient("no-such-bot").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        var limited = await Refused(() => chat.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));

        Assert.Equal([400, 401, 402, 404, 429], [invalid.Status, badKey.Status, noCredits.Status, noModel.Status, limited.Status]);
        Assert.Contains("'temperature' must be between 0 and 2", invalid.Message);
        Assert.Equal("false", limited.GetRawResponse()!.Headers.TryGetValue("x-should-retry", out var retry) ? retry : null);
        Assert.Equal(85, await rich.CreditsAsync()); // the refused calls charged nothing
    }

    [Fact]
    public async Task Sdk_GetModel_ByIdOrName_AndAnotherWorkspacesBotIsNotFound()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var other = await _app.CreateWorkspaceAsync();
        var bot = await PrimaryBotAsync(workspace);
        var models = Sdk(_app, workspace.Key).GetOpenAIModelClient();

        var byId = (await models.GetModelAsync(bot, Ct)).Value;
        var foreign = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(_app, other.Key).GetOpenAIModelClient().GetModelAsync(bot, Ct));

        Assert.Equal(bot, byId.Id);
        Assert.Equal("luluclaw", byId.OwnedBy);
        Assert.Equal(404, foreign.Status);
    }

    [Fact]
    public async Task RateLimitHeaders_CountDownEveryTurn_WholeAndStreamed_AndTheLong429TellsTheSdkNotToRetry()
    {
        var workspace = await _app.CreateWorkspaceAsync(plan: "starter", credits: 100);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();
        var remaining = new List<string>();
        HttpResponseMessage last;
        var turns = 0;
        do
        {
            // Every other turn streamed: its headers leave before the reply does, and say the same.
            var stream = turns % 2 == 1;
            last = await client.PostAsJsonAsync("/v1/chat/completions",
                new { model = bot, stream, messages = new[] { new { role = "user", content = "hi" } } }, Ct);
            turns++;
            if (last.StatusCode == HttpStatusCode.OK)
            {
                Assert.Equal("15", last.Headers.GetValues("x-ratelimit-limit-requests").Single()); // Starter's 15 an hour binds before the key's 30 a minute
                Assert.Matches("^(1h0m0s|59m[0-9]+s)$", last.Headers.GetValues("x-ratelimit-reset-requests").Single());
                remaining.Add(last.Headers.GetValues("x-ratelimit-remaining-requests").Single());
            }
        }
        while (last.StatusCode == HttpStatusCode.OK && turns < 20);

        Assert.Equal(16, turns);
        Assert.Equal(Enumerable.Range(0, 15).Select(i => (14 - i).ToString(System.Globalization.CultureInfo.InvariantCulture)), remaining);
        Assert.Equal(HttpStatusCode.TooManyRequests, last.StatusCode);
        Assert.True(last.Headers.RetryAfter!.Delta > TimeSpan.FromMinutes(1));
        Assert.Equal("false", last.Headers.GetValues("x-should-retry").Single());
        Assert.Equal(["15", "0"], [last.Headers.GetValues("x-ratelimit-limit-requests").Single(), last.Headers.GetValues("x-ratelimit-remaining-requests").Single()]);
        Assert.Matches("^(1h0m0s|59m[0-9]+s)$", last.Headers.GetValues("x-ratelimit-reset-requests").Single());
    }

    [Fact]
    public async Task RateLimitHeaders_ReportTheKeysWindow_WhenTheWorkspacePlanHasNone_AndOnlyOnTheOpenAISurface()
    {
        // A byok workspace has no turn window; its standard key has 30 a minute and 30 an hour: as many left in
        // each, the hour binds (it takes longer to give a turn back).
        var workspace = await _app.CreateWorkspaceAsync(plan: "byok", credits: 100);
        var bot = await PrimaryBotAsync(workspace);
        using var client = workspace.Client();

        using var answer = await client.PostAsJsonAsync("/v1/chat/completions", new { model = bot, messages = new[] { new { role = "user", content = "hi" } } }, Ct);
        using var gateway = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "hi" }, Ct);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("30", answer.Headers.GetValues("x-ratelimit-limit-requests").Single());
        Assert.Equal("29", answer.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.Equal("1h0m0s", answer.Headers.GetValues("x-ratelimit-reset-requests").Single());
        Assert.Equal(HttpStatusCode.OK, gateway.StatusCode);
        Assert.False(gateway.Headers.Contains("x-ratelimit-limit-requests"));
    }

    [Fact]
    public async Task Sdk_ListModels_AreTheWorkspacesBots()
    {
        var workspace = await _app.CreateWorkspaceAsync();
        var bot = await PrimaryBotAsync(workspace);

        var models = (await Sdk(_app, workspace.Key).GetOpenAIModelClient().GetModelsAsync(Ct)).Value;

        Assert.Equal([bot], models.Select(m => m.Id));
        Assert.Equal("luluclaw", models[0].OwnedBy);
    }

    [Fact]
    public async Task Errors_AreInOpenAIsShape_WithTheRightStatus()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 0);
        var bot = await PrimaryBotAsync(workspace);
        var sdk = Sdk(_app, workspace.Key);

        var unknown = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetChatClient("no-such-bot").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        var broke = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetChatClient(bot).CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));
        var badKey = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(_app, "lulu_sk_" + new string('x', 43)).GetChatClient("m").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));

        Assert.Equal(404, unknown.Status);
        Assert.Equal(402, broke.Status);
        Assert.Equal(401, badKey.Status);
        using var client = workspace.Client();
        var invalid = await client.PostAsJsonAsync("/v1/chat/completions", new { model = "x", messages = new[] { new { role = "assistant", content = "hi" } } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var error = (await invalid.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("the last of 'messages' must be a non-empty 'user' message, or 'tool' results", error.GetProperty("message").GetString());
        var noModel = (await (await client.GetAsync("/v1/models/no-such-bot", Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        var noRoute = (await (await client.GetAsync("/v1/no-such-route", Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal("model_not_found", noModel.GetProperty("code").GetString());
        Assert.Equal("model", noModel.GetProperty("param").GetString());
        Assert.Equal("unknown_url", noRoute.GetProperty("code").GetString());
    }

    private static async Task<long> CountStoredMessagesAsync(LuluClawApp app, TestWorkspace workspace)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={app.SqliteFile}");
        await connection.OpenAsync(Ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM messages WHERE workspace_id = $id";
        command.Parameters.AddWithValue("$id", workspace.Id);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
