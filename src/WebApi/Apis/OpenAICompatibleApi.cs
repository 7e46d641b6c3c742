using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
using System.ComponentModel.DataAnnotations;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// An OpenAI-compatible chat endpoint, so that every OpenAI SDK can talk to a LuluClaw bot:
/// <c>POST /v1/chat/completions</c> (whole or streamed, the OpenAI wire format) and
/// <c>GET /v1/models</c> (the workspace's bots). <c>model</c> names a bot by id or name. Requests are
/// stateless, as OpenAI's are (the request carries the conversation), unless they send
/// <c>X-Session-Id</c>: then the session owns the history and only the last user message is new.
/// Same keys, plans and credits as the other chat surfaces.
/// </summary>
internal static class OpenAICompatibleApi
{
    /// <summary>The header that turns a request into a turn of a stored session.</summary>
    public const string SessionHeader = "X-Session-Id";

    /// <summary>Maps <c>/v1/chat/completions</c> and <c>/v1/models</c>.</summary>
    public static IEndpointRouteBuilder MapOpenAICompatibleApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapSurface("/v1", Errors).WithTags("OpenAI-compatible").ValidatesRequests().WithMetadata(TurnWindowHeaders.OpenAI);
        group.MapPost("/chat/completions", CompleteAsync).WithName("OpenAIChatCompletions")
            .WithSummary("Create a chat completion with a bot as the model (streamed as chat.completion.chunk events with \"stream\": true)")
            .RequireApiKey(ApiScopes.Chat).RunsChatTurn()
            .Produces<OpenAICompletion>(StatusCodes.Status200OK, "application/json", "text/event-stream");
        group.MapGet("/models", ListModelsAsync).WithName("OpenAIModels").WithSummary("List the workspace's bots as models").RequireApiKey(ApiScopes.Chat)
            .Produces<OpenAIModelList>();
        group.MapGet("/models/{model}", ModelAsync).WithName("OpenAIModel").WithSummary("One of the workspace's bots as a model, by id or name")
            .RequireApiKey(ApiScopes.Chat).Produces<OpenAIModel>().ProducesErrors(StatusCodes.Status404NotFound);
        return app;
    }

    /// <summary>OpenAI's error shape: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    internal static ErrorShape Errors { get; } = new OpenAIErrorShape();

    private static IResult Error(int statusCode, string message) => Errors.Result(statusCode, message);

    private sealed class OpenAIErrorShape : ErrorShape
    {
        public override Type BodyType => typeof(OpenAIErrorBody);

        /// <summary>
        /// The longest wait OpenAI's SDKs sleep through before retrying a 429 by themselves: past it (or where waiting
        /// cannot help, 402) the answer says <c>x-should-retry: false</c>, so that they do not retry into a closed window.
        /// </summary>
        private const long LongestRetryWait = 60;

        public override IResult Result(int statusCode, string message, long? retryAfter = null, string? field = null)
        {
            var body = TypedResults.Json(new OpenAIErrorBody(new OpenAIError(message, ErrorType(statusCode), field is { Length: > 0 } ? field : null, ErrorCode(statusCode, field))),
                OpenAIJsonContext.Web.OpenAIErrorBody, statusCode: statusCode);
            return statusCode == StatusCodes.Status402PaymentRequired || statusCode == StatusCodes.Status429TooManyRequests && retryAfter > LongestRetryWait
                ? new NoRetry(body)
                : body;
        }

        private sealed class NoRetry(IResult inner) : IResult
        {
            public Task ExecuteAsync(HttpContext httpContext)
            {
                httpContext.Response.Headers["x-should-retry"] = "false";
                return inner.ExecuteAsync(httpContext);
            }
        }
    }

    private static async Task<IResult> ListModelsAsync(HttpContext http, IGrainFactory grains)
    {
        var bots = await grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D")).ListBotsAsync(http.RequestAborted);
        var models = bots.Select(b => new OpenAIModel(b.Id, "model", b.CreatedAt.ToUnixTimeSeconds(), "luluclaw", b.Name)).ToArray();
        return TypedResults.Json(new OpenAIModelList("list", models), OpenAIJsonContext.Web.OpenAIModelList);
    }

    private static async Task<IResult> ModelAsync(string model, HttpContext http, IGrainFactory grains) =>
        await ResolveBotAsync(grains, http.GetCaller().WorkspaceId, model, http.RequestAborted) is { } bot
            ? TypedResults.Json(new OpenAIModel(bot.Id, "model", bot.CreatedAt.ToUnixTimeSeconds(), "luluclaw", bot.Name), OpenAIJsonContext.Web.OpenAIModel)
            : ModelNotFound(model);

    private static async Task<IResult> CompleteAsync(OpenAIChatRequest body, HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var sessionId = http.Request.Headers[SessionHeader].ToString();
        if (sessionId.Length > ChatTurns.MaxSessionIdLength || sessionId.Any(char.IsControl))
        {
            return Errors.Result(StatusCodes.Status400BadRequest,
                $"'{SessionHeader}' must be at most {ChatTurns.MaxSessionIdLength} characters without control characters", field: SessionHeader);
        }

        if (ReadMessages(body.Messages, out var invalid, out var field) is not { } messages)
        {
            return Errors.Result(StatusCodes.Status400BadRequest, invalid!, field: field);
        }

        var stateful = sessionId.Length > 0;
        if (stateful && (body.Tools is { Count: > 0 } || messages[^1].Role == "tool"))
        {
            // A stored session keeps user and assistant text; a tool call's round trip lives in the caller's transcript.
            return Errors.Result(StatusCodes.Status400BadRequest,
                $"tool calling is stateless: send 'tools' and 'tool' messages without '{SessionHeader}', with the whole conversation in 'messages'",
                field: body.Tools is { Count: > 0 } ? "tools" : "messages");
        }

        var bot = await ResolveBotAsync(grains, caller.WorkspaceId, body.Model, http.RequestAborted);
        if (bot is null)
        {
            return ModelNotFound(body.Model);
        }

        // Stateless: the request's messages are the conversation, in a one-off session. With a session id: the session's history is.
        // A conversation that ends in tool results has no new user text: the model answers the results.
        var last = messages[^1];
        var request = last.Role == "tool"
            ? new ChatTurnRequest("", caller.Key.Id, "openai", bot.Id, messages, body.Options())
            : new ChatTurnRequest(last.Content, caller.Key.Id, "openai", bot.Id, stateful ? null : messages[..^1], body.Options());
        var session = grains.Session(caller, stateful ? sessionId : $"oai_{Guid.CreateVersion7():N}");
        var answers = new Answers($"chatcmpl-{Guid.CreateVersion7():N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), bot.Id, body.StreamOptions?.IncludeUsage == true);
        return await ChatTurns.RunAsync(http, session, request, body.Stream == true, answers);
    }

    internal static IResult ModelNotFound(string model) => Errors.Result(StatusCodes.Status404NotFound,
        $"The model '{model}' does not exist: name one of this workspace's bots by id or name (GET /v1/models)", field: "model");

    /// <summary>
    /// The bot <paramref name="model"/> names: by id straight from its grain (the usual case, one
    /// call), else by name among the workspace's bots. Another workspace's bot is not found.
    /// </summary>
    internal static async Task<BotInfo?> ResolveBotAsync(IGrainFactory grains, Guid workspaceId, string model, CancellationToken cancellationToken)
    {
        if (await grains.GetGrain<IBotGrain>(model).GetAsync(cancellationToken) is { } byId && byId.WorkspaceId == workspaceId)
        {
            return byId;
        }

        var bots = await grains.GetGrain<IWorkspaceGrain>(workspaceId.ToString("D")).ListBotsAsync(cancellationToken);
        return bots.FirstOrDefault(b => string.Equals(b.Name, model, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>OpenAI's chat completion, whole or as <c>chat.completion.chunk</c> events ending in <c>[DONE]</c>.</summary>
    private sealed class Answers(string id, long created, string model, bool includeUsage) : TurnAnswers
    {
        /// <summary>How many tool calls the stream has sent: each call's <c>index</c> counts across chunks.</summary>
        private int _calls;

        public override IResult Whole(ChatTurnResult result) => TypedResults.Json(
            new OpenAICompletion(id, "chat.completion", created, model,
                [new OpenAIChoice(0, new OpenAIMessage("assistant", result is { Reply: "", ToolCalls: not null } ? null : result.Reply!, Calls(result.ToolCalls)),
                    result.FinishReason ?? "stop")],
                Usage(result.Usage)),
            OpenAIJsonContext.Web.OpenAICompletion);

        public override IEnumerable<SseEvent> Prologue => [Chunk(new OpenAIDelta("assistant", ""), null)];

        public override IEnumerable<SseEvent> Epilogue => [new SseEvent(null, "[DONE]")];

        public override IEnumerable<SseEvent> Events(ChatTurnEvent turnEvent)
        {
            switch (turnEvent)
            {
                case { Delta: { } text }:
                    yield return Chunk(new OpenAIDelta(null, text), null);
                    break;
                case { ToolCalls: { } calls }:
                    // Each call whole in one fragment (id, name and all its arguments): a client joins fragments by index, and this is the one.
                    yield return Chunk(new OpenAIDelta(null, null, [.. calls.Select(c => new OpenAIToolCallDelta(_calls++, c.Id, "function", new OpenAIFunctionCall(c.Name, c.Arguments)))]), null);
                    break;
                case { Result: { Status: ChatTurnStatus.Ok } ok }:
                    yield return Chunk(new OpenAIDelta(null, null), ok.FinishReason ?? "stop");
                    if (includeUsage)
                    {
                        yield return Chunk(new OpenAIDelta(null, null), null, Usage(ok.Usage), noChoices: true);
                    }

                    break;
                case { Result: { } failed }:
                    yield return new SseEvent(null, JsonSerializer.Serialize(
                        new OpenAIErrorBody(new OpenAIError(failed.Error!, "server_error", null, "model_unavailable")), OpenAIJsonContext.Web.OpenAIErrorBody));
                    break;
            }
        }

        private SseEvent Chunk(OpenAIDelta delta, string? finish, OpenAIUsage? usage = null, bool noChoices = false) => new(null, JsonSerializer.Serialize(
            new OpenAIChunk(id, "chat.completion.chunk", created, model, noChoices ? [] : [new OpenAIChunkChoice(0, delta, finish)], usage),
            OpenAIJsonContext.Web.OpenAIChunk));
    }

    private static IReadOnlyList<OpenAIToolCall>? Calls(IReadOnlyList<ToolCall>? calls) =>
        calls is null ? null : [.. calls.Select(c => new OpenAIToolCall(c.Id, "function", new OpenAIFunctionCall(c.Name, c.Arguments)))];

    /// <summary>
    /// The request's messages; the last must be the user's new message, or the results of the tool calls
    /// before it. Null with the 400's message and field otherwise.
    /// </summary>
    private static SessionMessage[]? ReadMessages(IReadOnlyList<OpenAIRequestMessage> given, out string? error, out string? field)
    {
        (error, field) = (null, "messages");
        if (given.Count == 0)
        {
            error = "'messages' must be a non-empty array";
            return null;
        }

        var messages = new List<SessionMessage>(given.Count);
        var calledIds = new HashSet<string>(StringComparer.Ordinal);
        for (var index = 0; index < given.Count; index++)
        {
            var message = given[index];
            if (message?.Role is not ("system" or "developer" or "user" or "assistant" or "tool"))
            {
                (error, field) = ($"'messages[{index}].role' must be 'system', 'developer', 'user', 'assistant' or 'tool'", $"messages[{index}].role");
                return null;
            }

            if (Text(message.Content) is not { } content)
            {
                (error, field) = ($"'messages[{index}].content' must be a string or an array of text parts", $"messages[{index}].content");
                return null;
            }

            IReadOnlyList<ToolCall>? calls = null;
            if (message.ToolCalls is { Count: > 0 })
            {
                if (message.Role != "assistant")
                {
                    (error, field) = ($"'messages[{index}].tool_calls' belongs to an 'assistant' message", $"messages[{index}].tool_calls");
                    return null;
                }

                if (ReadToolCalls(message.ToolCalls, $"messages[{index}].tool_calls", out error, out field) is not { } read)
                {
                    return null;
                }

                calls = read;
                calledIds.UnionWith(read.Select(c => c.Id));
            }

            if (message.Role == "tool" && (message.ToolCallId is not { Length: > 0 } callId || !calledIds.Contains(callId)))
            {
                (error, field) = ($"'messages[{index}].tool_call_id' must name a call in the 'tool_calls' of an earlier 'assistant' message", $"messages[{index}].tool_call_id");
                return null;
            }

            messages.Add(new SessionMessage(index + 1, message.Role == "developer" ? "system" : message.Role, content, DateTimeOffset.UnixEpoch,
                ToolCalls: calls, ToolCallId: message.Role == "tool" ? message.ToolCallId : null));
        }

        if (messages[^1] is { Role: "tool" })
        {
            return [.. messages];
        }

        if (messages[^1] is not { Role: "user" } last || string.IsNullOrWhiteSpace(last.Content))
        {
            error = "the last of 'messages' must be a non-empty 'user' message, or 'tool' results";
            return null;
        }

        if (ChatTurns.IsTooLong(last.Content))
        {
            error = $"the last user message must be at most {ChatTurns.MaxMessageLength} characters";
            return null;
        }

        return [.. messages];
    }

    /// <summary>An assistant message's <c>tool_calls</c>, each a function call with JSON object arguments; null with the 400 otherwise.</summary>
    private static List<ToolCall>? ReadToolCalls(IReadOnlyList<OpenAIToolCall?> given, string path, out string? error, out string? field)
    {
        (error, field) = (null, null);
        var calls = new List<ToolCall>(given.Count);
        for (var index = 0; index < given.Count; index++)
        {
            var at = $"{path}[{index}]";
            switch (given[index])
            {
                case not { Id.Length: > 0 }:
                    (error, field) = ($"'{at}.id' is required", $"{at}.id");
                    return null;
                case not { Type: "function" }:
                    (error, field) = ($"'{at}.type' must be 'function'", $"{at}.type");
                    return null;
                case not { Function.Name.Length: > 0 }:
                    (error, field) = ($"'{at}.function.name' is required", $"{at}.function.name");
                    return null;
                case { Function: var function } call when IsJsonObject(function.Arguments):
                    calls.Add(new ToolCall(call.Id, function.Name, function.Arguments));
                    break;
                default:
                    (error, field) = ($"'{at}.function.arguments' must be a JSON object in a string", $"{at}.function.arguments");
                    return null;
            }
        }

        return calls;
    }

    private static bool IsJsonObject(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return false;
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string? Text(JsonElement? content) => content switch
    {
        null => "",
        { ValueKind: JsonValueKind.String } text => text.GetString(),
        { ValueKind: JsonValueKind.Null } => "",
        { ValueKind: JsonValueKind.Array } parts when parts.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            => string.Concat(parts.EnumerateArray().Select(p => p.GetProperty("text").GetString())),
        _ => null,
    };

    private static OpenAIUsage? Usage(TokenUsage? usage) =>
        usage is null ? null : new OpenAIUsage(usage.InputTokens, usage.OutputTokens, usage.InputTokens + usage.OutputTokens);

    private static string ErrorType(int status) => status switch
    {
        400 or 404 or 409 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        402 => "insufficient_quota",
        429 => "rate_limit_exceeded",
        < 500 => "invalid_request_error",
        _ => "server_error",
    };

    private static string? ErrorCode(int status, string? field) => status switch
    {
        401 => "invalid_api_key",
        404 => field switch { "model" => "model_not_found", "previous_response_id" => "previous_response_not_found", null or "" => "unknown_url", _ => null },
        429 => "rate_limit_exceeded",
        402 => "insufficient_quota",
        _ => null,
    };
}

/// <summary><c>POST /v1/chat/completions</c>: OpenAI's request, the parameters LuluClaw passes to the model.</summary>
/// <param name="Model">The bot, by id or name.</param>
/// <param name="N">How many choices: LuluClaw answers one.</param>
/// <param name="MaxTokens">The most tokens the answer may have (older name of <paramref name="MaxCompletionTokens"/>).</param>
/// <param name="Stop">A stop sequence, or up to four.</param>
/// <param name="User">The caller's end user, accepted and not used.</param>
internal sealed partial record OpenAIChatRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Model,
    [property: Required] IReadOnlyList<OpenAIRequestMessage> Messages,
    bool? Stream = null,
    OpenAIStreamOptions? StreamOptions = null,
    int? N = null,
    [property: Range(0.0, 2.0)] float? Temperature = null,
    [property: Range(0.0, 1.0)] float? TopP = null,
    [property: Range(1, 1_000_000)] int? MaxTokens = null,
    [property: Range(1, 1_000_000)] int? MaxCompletionTokens = null,
    JsonElement? Stop = null,
    long? Seed = null,
    [property: Range(-2.0, 2.0)] float? FrequencyPenalty = null,
    [property: Range(-2.0, 2.0)] float? PresencePenalty = null,
    OpenAIResponseFormat? ResponseFormat = null,
    [property: MaxLength(128)] IReadOnlyList<OpenAITool?>? Tools = null,
    JsonElement? ToolChoice = null,
    bool? ParallelToolCalls = null,
    [property: StringLength(256)] string? User = null) : IRequestBody
{
    /// <summary>Parameters this surface does not know: refused by name rather than dropped.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() =>
        N is not (null or 1) ? "'n' must be 1: LuluClaw answers with one choice per request"
        : StopSequences() is null ? "'stop' must be a string or an array of at most 4 non-empty strings"
        : ResponseFormat?.Check() ?? CheckTools();

    /// <summary>What the model is asked, in the turn's terms.</summary>
    public ChatTurnOptions Options() => new(
        Temperature, TopP, MaxCompletionTokens ?? MaxTokens, StopSequences() is { Count: > 0 } stop ? stop : null, Seed, FrequencyPenalty, PresencePenalty,
        ResponseFormat?.Type, ResponseFormat?.JsonSchema?.Schema?.GetRawText(), ResponseFormat?.JsonSchema?.Name,
        Tools is { Count: > 0 } tools ? [.. tools.Select(t => new ChatTurnTool(t!.Function!.Name!, t.Function.Description, t.Function.Parameters?.GetRawText(), t.Function.Strict))] : null,
        Choice(), ParallelToolCalls);

    /// <summary>The 400 message for <c>tools</c> or <c>tool_choice</c> that cannot be passed on, or null.</summary>
    private string? CheckTools()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var index = 0; index < (Tools?.Count ?? 0); index++)
        {
            var at = $"tools[{index}]";
            var message = Tools![index] switch
            {
                not { Type: "function" } => $"'{at}.type' must be 'function'",
                not { Function: not null } => $"'{at}.function' is required",
                { Function.Name: var name } when name is null || !ToolName().IsMatch(name)
                    => $"'{at}.function.name' must be 1 to 64 letters, digits, underscores or dashes",
                { Function.Parameters: { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) } } => $"'{at}.function.parameters' must be a JSON schema object",
                { Function.Description.Length: > 4096 } => $"'{at}.function.description' must be at most 4096 characters",
                { Function.Name: var name } when !names.Add(name!) => $"'{at}.function.name' repeats the tool '{name}'",
                _ => null,
            };
            if (message is not null)
            {
                return message;
            }
        }

        return ToolChoice switch
        {
            null or { ValueKind: JsonValueKind.Null } => null,
            _ when Choice() is not { } choice => "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}",
            { ValueKind: JsonValueKind.String } when Tools is not { Count: > 0 } && ToolChoice.Value.GetString() != "none" => "'tool_choice' needs 'tools'",
            { ValueKind: JsonValueKind.Object } when !names.Contains(Choice()!.FunctionName!) => $"'tool_choice.function.name' must name one of 'tools' ('{Choice()!.FunctionName}' is not)",
            _ => null,
        };
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial System.Text.RegularExpressions.Regex ToolName();

    /// <summary><c>tool_choice</c> in the turn's terms; null for none given or one that is not well formed.</summary>
    private ChatTurnToolChoice? Choice() => ToolChoice switch
    {
        { ValueKind: JsonValueKind.String } mode when mode.GetString() is "none" or "auto" or "required" => new ChatTurnToolChoice(mode.GetString()!),
        { ValueKind: JsonValueKind.Object } named
            when named.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "function"
            && named.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String && name.GetString() is { Length: > 0 } chosen
            => new ChatTurnToolChoice("required", chosen),
        _ => null,
    };

    private IReadOnlyList<string>? StopSequences() => Stop switch
    {
        null or { ValueKind: JsonValueKind.Null } => [],
        { ValueKind: JsonValueKind.String } one when one.GetString() is { Length: > 0 } text => [text],
        { ValueKind: JsonValueKind.Array } many when many.GetArrayLength() <= 4
            && many.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String && s.GetString()!.Length > 0)
            => many.EnumerateArray().Select(s => s.GetString()!).ToArray(),
        _ => null,
    };
}

/// <summary>One message of the request.</summary>
/// <param name="Content">A string, an array of text parts, or null.</param>
/// <param name="ToolCalls">An assistant message's function calls.</param>
/// <param name="ToolCallId">A <c>tool</c> message's call, the one whose result it is.</param>
internal sealed record OpenAIRequestMessage(
    string Role, JsonElement? Content = null, string? Name = null, IReadOnlyList<OpenAIToolCall?>? ToolCalls = null, string? ToolCallId = null);

/// <summary>A tool of the request: a function the model may call.</summary>
internal sealed record OpenAITool(string? Type = null, OpenAIFunctionDefinition? Function = null);

/// <summary>A function the model may call.</summary>
/// <param name="Parameters">The JSON schema of its arguments.</param>
/// <param name="Strict">Whether the arguments must follow the schema exactly.</param>
internal sealed record OpenAIFunctionDefinition(string? Name = null, string? Description = null, JsonElement? Parameters = null, bool? Strict = null);

/// <summary>A function call, in an assistant message (the request's) or a completion (the answer's).</summary>
internal sealed record OpenAIToolCall(string Id, string Type, OpenAIFunctionCall Function);

/// <summary>The function a call names and its arguments, JSON object text.</summary>
internal sealed record OpenAIFunctionCall(string Name, string Arguments);

/// <summary>A function call in a streamed chunk: whole, at <paramref name="Index"/> among the answer's calls.</summary>
internal sealed record OpenAIToolCallDelta(int Index, string Id, string Type, OpenAIFunctionCall Function);

/// <summary><c>stream_options</c>.</summary>
internal sealed record OpenAIStreamOptions(bool? IncludeUsage = null);

/// <summary><c>response_format</c>: <c>text</c>, <c>json_object</c> or <c>json_schema</c>.</summary>
internal sealed record OpenAIResponseFormat([property: Required, AllowedValues("text", "json_object", "json_schema")] string Type, OpenAIJsonSchema? JsonSchema = null)
{
    /// <summary>The 400 message for a format that cannot be passed on, or null.</summary>
    public string? Check() =>
        Type is not ("text" or "json_object" or "json_schema") ? "'response_format.type' must be 'text', 'json_object' or 'json_schema'"
        : Type == "json_schema" && JsonSchema?.Schema is not { ValueKind: JsonValueKind.Object } ? "'response_format.json_schema.schema' must be a JSON schema object"
        : null;
}

/// <summary><c>response_format.json_schema</c>.</summary>
internal sealed record OpenAIJsonSchema(string? Name = null, JsonElement? Schema = null, bool? Strict = null);

/// <summary>OpenAI's error body.</summary>
internal sealed record OpenAIErrorBody(OpenAIError Error);

/// <summary>OpenAI's error.</summary>
internal sealed record OpenAIError(string Message, string Type, string? Param, string? Code);

/// <summary>A chat completion.</summary>
internal sealed record OpenAICompletion(string Id, string Object, long Created, string Model, IReadOnlyList<OpenAIChoice> Choices, OpenAIUsage? Usage);

/// <summary>One choice of a completion.</summary>
internal sealed record OpenAIChoice(int Index, OpenAIMessage Message, string FinishReason);

/// <summary>A message of a completion.</summary>
/// <param name="Content">The reply; null when the model only called tools.</param>
/// <param name="ToolCalls">The functions the model called, for the caller to run.</param>
internal sealed record OpenAIMessage(
    string Role,
    string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<OpenAIToolCall>? ToolCalls = null);

/// <summary>Token counts.</summary>
internal sealed record OpenAIUsage(long PromptTokens, long CompletionTokens, long TotalTokens);

/// <summary>A streamed chunk.</summary>
internal sealed record OpenAIChunk(string Id, string Object, long Created, string Model, IReadOnlyList<OpenAIChunkChoice> Choices, OpenAIUsage? Usage);

/// <summary>One choice of a chunk.</summary>
internal sealed record OpenAIChunkChoice(int Index, OpenAIDelta Delta, string? FinishReason);

/// <summary>What a chunk adds.</summary>
internal sealed record OpenAIDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<OpenAIToolCallDelta>? ToolCalls = null);

/// <summary>The model list.</summary>
internal sealed record OpenAIModelList(string Object, IReadOnlyList<OpenAIModel> Data);

/// <summary>A bot as a model.</summary>
/// <param name="Name">The bot's name, which <c>model</c> may also use.</param>
internal sealed record OpenAIModel(string Id, string Object, long Created, string OwnedBy, string Name);

/// <summary>Source-generated JSON of the OpenAI-compatible surface (OpenAI's snake_case).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(OpenAIErrorBody))]
[JsonSerializable(typeof(OpenAICompletion))]
[JsonSerializable(typeof(OpenAIChunk))]
[JsonSerializable(typeof(OpenAIModelList))]
[JsonSerializable(typeof(OpenAIModel))]
internal sealed partial class OpenAIJsonContext : JsonSerializerContext
{
    /// <summary>The context every response of this surface uses.</summary>
    public static OpenAIJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.SnakeCaseLower));
}
