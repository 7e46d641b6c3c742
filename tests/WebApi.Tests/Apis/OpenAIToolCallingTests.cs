using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LuluClaw.Tests;
using OpenAI;
using OpenAI.Chat;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>
/// Tool calling on <c>/v1/chat/completions</c>, driven by the official OpenAI .NET SDK against the
/// OpenAI-format stub: the tools reach the provider, the model's calls come back whole and streamed,
/// and the caller's tool results go back to the model in order.
/// </summary>
public sealed class OpenAIToolCallingTests : IAsyncLifetime
{
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""";

    private StubModelServer _stub = null!;
    private LuluClawApp _app = null!;

    public async ValueTask InitializeAsync()
    {
        _stub = await StubModelServer.StartAsync(Ct);
        _app = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString() });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stub.DisposeAsync();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ChatClient Chat(TestWorkspace workspace, string? sessionId = null) => _app.OpenAISdk(workspace.Key, sessionId).GetChatClient("Acme assistant");

    private static ChatTool Weather() =>
        ChatTool.CreateFunctionTool("get_weather", "The weather in a city now", BinaryData.FromString(WeatherSchema), functionSchemaIsStrict: true);

    private JsonElement LastSent => JsonDocument.Parse(_stub.Requests[^1].Body!).RootElement;

    [Fact]
    public async Task Tools_ReachTheProvider_AndTheModelsCallComesBackWhole_ForTheCallerToRun()
    {
        _stub.ToolCalls = request => request.Body!.Contains("get_weather") ? [new StubToolCall("call_w1", "get_weather", """{"city":"Paris"}""")] : null;
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var options = new ChatCompletionOptions { ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather"), AllowParallelToolCalls = false };
        options.Tools.Add(Weather());

        ChatCompletion completion = await Chat(workspace).CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options, Ct);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal(("call_w1", "get_weather"), (call.Id, call.FunctionName));
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
        Assert.Empty(completion.Content);

        var sent = LastSent;
        var tool = Assert.Single(sent.GetProperty("tools").EnumerateArray());
        Assert.Equal("function", tool.GetProperty("type").GetString());
        Assert.Equal("get_weather", tool.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("The weather in a city now", tool.GetProperty("function").GetProperty("description").GetString());
        Assert.True(tool.GetProperty("function").GetProperty("strict").GetBoolean());
        Assert.Equal("string", tool.GetProperty("function").GetProperty("parameters").GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
        Assert.Equal("get_weather", sent.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
        Assert.False(sent.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.Equal(9, await workspace.CreditsAsync()); // a turn that calls a tool is a turn
    }

    [Fact]
    public async Task ToolResults_AreForwardedInOrder_AfterTheAssistantsCalls_AndTheModelAnswersThem()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var options = new ChatCompletionOptions { ToolChoice = ChatToolChoice.CreateAutoChoice() };
        options.Tools.Add(Weather());
        List<ChatMessage> conversation =
        [
            new UserChatMessage("Weather in Paris and Oslo?"),
            new AssistantChatMessage([
                ChatToolCall.CreateFunctionToolCall("call_p", "get_weather", BinaryData.FromString("""{"city":"Paris"}""")),
                ChatToolCall.CreateFunctionToolCall("call_o", "get_weather", BinaryData.FromString("""{"city":"Oslo"}""")),
            ]),
            new ToolChatMessage("call_p", "18 C, sunny"),
            new ToolChatMessage("call_o", "-3 C, snow"),
        ];

        ChatCompletion completion = await Chat(workspace).CompleteChatAsync(conversation, options, Ct);

        Assert.Equal("Stub reply to: Weather in Paris and Oslo?", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        var messages = LastSent.GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(["system", "user", "assistant", "tool", "tool"], messages.Select(m => m.GetProperty("role").GetString()));
        var calls = messages[2].GetProperty("tool_calls").EnumerateArray().ToArray();
        Assert.Equal(["call_p", "call_o"], calls.Select(c => c.GetProperty("id").GetString()));
        Assert.Equal(["Paris", "Oslo"], calls.Select(c => JsonDocument.Parse(c.GetProperty("function").GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString()));
        Assert.Equal(["call_p", "call_o"], messages[3..].Select(m => m.GetProperty("tool_call_id").GetString()));
        Assert.Equal(["18 C, sunny", "-3 C, snow"], messages[3..].Select(m => ToolText(m.GetProperty("content"))));
        Assert.Equal("auto", LastSent.GetProperty("tool_choice").GetString());
        Assert.Equal(9, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task Streamed_TheModelsCallsArriveAsDeltaToolCalls_ByIndex_WithFinishReasonToolCalls()
    {
        _stub.ToolCalls = _ => [new StubToolCall("call_a", "get_weather", """{"city":"Lima"}"""), new StubToolCall("call_b", "get_weather", """{"city":"Quito"}""")];
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var options = new ChatCompletionOptions { ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        options.Tools.Add(Weather());

        var ids = new Dictionary<int, string>();
        var names = new Dictionary<int, string>();
        var arguments = new Dictionary<int, System.Text.StringBuilder>();
        ChatFinishReason? finish = null;
        var text = new System.Text.StringBuilder();
        await foreach (var update in Chat(workspace).CompleteChatStreamingAsync([new UserChatMessage("Lima and Quito?")], options, Ct))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(p => p.Text)));
            foreach (var call in update.ToolCallUpdates)
            {
                if (call.ToolCallId is { } id)
                {
                    ids[call.Index] = id;
                }

                if (call.FunctionName is { } name)
                {
                    names[call.Index] = name;
                }

                (arguments.TryGetValue(call.Index, out var sb) ? sb : arguments[call.Index] = new()).Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish = update.FinishReason ?? finish;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("", text.ToString());
        Assert.Equal(["call_a", "call_b"], ids.OrderBy(p => p.Key).Select(p => p.Value));
        Assert.Equal(["get_weather", "get_weather"], names.OrderBy(p => p.Key).Select(p => p.Value));
        Assert.Equal(["Lima", "Quito"], arguments.OrderBy(p => p.Key).Select(p => JsonDocument.Parse(p.Value.ToString()).RootElement.GetProperty("city").GetString()));
        Assert.True(_stub.Requests[^1].Stream);
        Assert.Equal("required", LastSent.GetProperty("tool_choice").GetString());
        Assert.Equal(9, await workspace.CreditsAsync());
    }

    [Fact]
    public async Task ToolCalling_InAStoredSession_IsA400_AndChargesNothing()
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        var options = new ChatCompletionOptions();
        options.Tools.Add(Weather());

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Chat(workspace, sessionId: "stored").CompleteChatAsync([new UserChatMessage("hi")], options, Ct));

        Assert.Equal(400, refused.Status);
        Assert.Contains("tool calling is stateless", refused.Message);
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(_stub.Requests);
    }

    [Theory]
    [InlineData("""[{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "call_x", "content": "r"}]""", "messages[1].tool_call_id")]
    [InlineData("""[{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}]""", "messages[1].tool_calls[0].function.arguments")]
    [InlineData("""[{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "web", "function": {"name": "f", "arguments": "{}"}}]}]""", "messages[1].tool_calls[0].type")]
    [InlineData("""[{"role": "user", "content": "q", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]""", "messages[0].tool_calls")]
    [InlineData("""[{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}]""", "messages[1].tool_calls[0].id")]
    public async Task MalformedToolMessages_Are400NamingTheField_AndChargeNothing(string messages, string field)
    {
        var workspace = await _app.CreateWorkspaceAsync(credits: 10);
        using var client = workspace.Client();
        var body = $$"""{"model": "Acme assistant", "messages": {{messages}}}""";

        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Contains($"'{field}'", error.GetProperty("message").GetString());
        Assert.Equal(10, await workspace.CreditsAsync());
        Assert.Empty(_stub.Requests);
    }

    private static string ToolText(JsonElement content) => content.ValueKind == JsonValueKind.String
        ? content.GetString()!
        : string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString()));
}
