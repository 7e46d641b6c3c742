using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
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
        var group = app.MapSurface("/v1", Errors).WithTags("OpenAI-compatible").ValidatesRequests();
        group.MapPost("/chat/completions", CompleteAsync).WithName("OpenAIChatCompletions")
            .WithSummary("Create a chat completion with a bot as the model (streamed as chat.completion.chunk events with \"stream\": true)")
            .RequireApiKey(ApiScopes.Chat).RunsChatTurn()
            .Produces<OpenAICompletion>(StatusCodes.Status200OK, "application/json", "text/event-stream").ProducesErrors(StatusCodes.Status400BadRequest);
        group.MapGet("/models", ListModelsAsync).WithName("OpenAIModels").WithSummary("List the workspace's bots as models").RequireApiKey(ApiScopes.Chat)
            .Produces<OpenAIModelList>();
        return app;
    }

    /// <summary>OpenAI's error shape: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    internal static ErrorShape Errors { get; } = new OpenAIErrorShape();

    private static IResult Error(int statusCode, string message) => Errors.Result(statusCode, message);

    private sealed class OpenAIErrorShape : ErrorShape
    {
        public override Type BodyType => typeof(OpenAIErrorBody);

        public override IResult Result(int statusCode, string message, long? retryAfter = null, string? field = null) =>
            TypedResults.Json(new OpenAIErrorBody(new OpenAIError(message, ErrorType(statusCode), field is { Length: > 0 } ? field : null, ErrorCode(statusCode))),
                OpenAIJsonContext.Web.OpenAIErrorBody, statusCode: statusCode);
    }

    private static async Task<IResult> ListModelsAsync(HttpContext http, IGrainFactory grains)
    {
        var bots = await grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D")).ListBotsAsync(http.RequestAborted);
        var models = bots.Select(b => new OpenAIModel(b.Id, "model", b.CreatedAt.ToUnixTimeSeconds(), "luluclaw", b.Name)).ToArray();
        return TypedResults.Json(new OpenAIModelList("list", models), OpenAIJsonContext.Web.OpenAIModelList);
    }

    private static async Task<IResult> CompleteAsync(HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return Error(StatusCodes.Status400BadRequest, error!);
            }

            var model = body.String("model", required: true, 1, 200);
            var stream = body.Boolean("stream", required: false) ?? false;
            var include = body.Object("stream_options") is { } options && options.TryGetProperty("include_usage", out var given) ? given : default;
            if (include.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False))
            {
                return Error(StatusCodes.Status400BadRequest, "'stream_options.include_usage' must be true or false");
            }

            var includeUsage = include.ValueKind == JsonValueKind.True;
            var messages = body.Error is null ? ReadMessages(body, out error) : null;
            if ((body.Error ?? error) is { } invalid)
            {
                return Error(StatusCodes.Status400BadRequest, invalid);
            }

            var sessionId = http.Request.Headers[SessionHeader].ToString();
            if (sessionId.Length > ChatTurns.MaxSessionIdLength || sessionId.Any(char.IsControl))
            {
                return Error(StatusCodes.Status400BadRequest, $"'{SessionHeader}' must be at most {ChatTurns.MaxSessionIdLength} characters without control characters");
            }

            var bot = await ResolveBotAsync(grains, caller.WorkspaceId, model!, http.RequestAborted);
            if (bot is null)
            {
                return Error(StatusCodes.Status404NotFound, $"The model '{model}' does not exist: name one of this workspace's bots by id or name (GET /v1/models)");
            }

            // Stateless: the request's messages are the conversation, in a one-off session. With a session id: the session's history is.
            var last = messages![^1];
            var stateful = sessionId.Length > 0;
            var request = new ChatTurnRequest(last.Content, caller.Key.Id, "openai", bot.Id, stateful ? null : messages[..^1]);
            var session = grains.GetGrain<ISessionGrain>(SessionKey.Of(caller.WorkspaceId, stateful ? sessionId : $"oai_{Guid.CreateVersion7():N}"));
            var id = $"chatcmpl-{Guid.CreateVersion7():N}";
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            return stream
                ? await StreamAsync(http, session.StreamAsync(request, http.RequestAborted), id, created, bot.Id, includeUsage)
                : Completion(http, await session.SendAsync(request, http.RequestAborted), id, created, bot.Id);
        }
    }

    /// <summary>
    /// The bot <paramref name="model"/> names: by id straight from its grain (the usual case, one
    /// call), else by name among the workspace's bots. Another workspace's bot is not found.
    /// </summary>
    private static async Task<BotInfo?> ResolveBotAsync(IGrainFactory grains, Guid workspaceId, string model, CancellationToken cancellationToken)
    {
        if (await grains.GetGrain<IBotGrain>(model).GetAsync(cancellationToken) is { } byId && byId.WorkspaceId == workspaceId)
        {
            return byId;
        }

        var bots = await grains.GetGrain<IWorkspaceGrain>(workspaceId.ToString("D")).ListBotsAsync(cancellationToken);
        return bots.FirstOrDefault(b => string.Equals(b.Name, model, StringComparison.OrdinalIgnoreCase));
    }

    private static IResult Completion(HttpContext http, ChatTurnResult result, string id, long created, string model)
    {
        if (result.Status != ChatTurnStatus.Ok)
        {
            return Refusal(http, result);
        }

        var usage = Usage(result.Usage);
        return TypedResults.Json(
            new OpenAICompletion(id, "chat.completion", created, model, [new OpenAIChoice(0, new OpenAIMessage("assistant", result.Reply!), "stop")], usage),
            OpenAIJsonContext.Web.OpenAICompletion);
    }

    private static Task<IResult> StreamAsync(
        HttpContext http, IAsyncEnumerable<ChatTurnEvent> turn, string id, long created, string model, bool includeUsage)
    {
        SseEvent Chunk(OpenAIDelta delta, string? finish, OpenAIUsage? usage = null, bool noChoices = false) => new(null, JsonSerializer.Serialize(
            new OpenAIChunk(id, "chat.completion.chunk", created, model, noChoices ? [] : [new OpenAIChunkChoice(0, delta, finish)], usage),
            OpenAIJsonContext.Web.OpenAIChunk));

        IEnumerable<SseEvent> Map(ChatTurnEvent e)
        {
            switch (e)
            {
                case { Delta: { } text }:
                    yield return Chunk(new OpenAIDelta(null, text), null);
                    break;
                case { Result: { Status: ChatTurnStatus.Ok } ok }:
                    yield return Chunk(new OpenAIDelta(null, null), "stop");
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

        return TurnStream.RespondAsync(http, turn, refused => Refusal(http, refused), Map,
            prologue: [Chunk(new OpenAIDelta("assistant", ""), null)], epilogue: [new SseEvent(null, "[DONE]")]);
    }

    private static IResult Refusal(HttpContext http, ChatTurnResult result) => ChatTurns.Refusal(http, result);

    /// <summary>The request's messages; the last must be the user's new message.</summary>
    private static SessionMessage[]? ReadMessages(JsonBody body, out string? error)
    {
        error = null;
        if (body.Array("messages") is not { } array || array.GetArrayLength() == 0)
        {
            error = "'messages' must be a non-empty array";
            return null;
        }

        var messages = new List<SessionMessage>();
        var index = 0;
        foreach (var message in array.EnumerateArray())
        {
            var role = message.ValueKind == JsonValueKind.Object && message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (role is not ("system" or "developer" or "user" or "assistant"))
            {
                error = $"'messages[{index}].role' must be 'system', 'developer', 'user' or 'assistant'";
                return null;
            }

            if (Text(message) is not { } content)
            {
                error = $"'messages[{index}].content' must be a string or an array of text parts";
                return null;
            }

            messages.Add(new SessionMessage(++index, role == "developer" ? "system" : role, content, DateTimeOffset.UnixEpoch));
        }

        if (messages[^1] is not { Role: "user" } last || string.IsNullOrWhiteSpace(last.Content))
        {
            error = "the last of 'messages' must be a non-empty 'user' message";
            return null;
        }

        if (last.Content.EnumerateRunes().Count() > ChatTurns.MaxMessageLength)
        {
            error = $"the last user message must be at most {ChatTurns.MaxMessageLength} characters";
            return null;
        }

        return [.. messages];
    }

    private static string? Text(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content))
        {
            return null;
        }

        return content.ValueKind switch
        {
            JsonValueKind.String => content.GetString(),
            JsonValueKind.Null => "",
            JsonValueKind.Array when content.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                => string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString())),
            _ => null,
        };
    }

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

    private static string? ErrorCode(int status) => status switch
    {
        401 => "invalid_api_key",
        404 => "model_not_found",
        429 => "rate_limit_exceeded",
        402 => "insufficient_quota",
        _ => null,
    };
}

/// <summary>OpenAI's error body.</summary>
internal sealed record OpenAIErrorBody(OpenAIError Error);

/// <summary>OpenAI's error.</summary>
internal sealed record OpenAIError(string Message, string Type, string? Param, string? Code);

/// <summary>A chat completion.</summary>
internal sealed record OpenAICompletion(string Id, string Object, long Created, string Model, IReadOnlyList<OpenAIChoice> Choices, OpenAIUsage? Usage);

/// <summary>One choice of a completion.</summary>
internal sealed record OpenAIChoice(int Index, OpenAIMessage Message, string FinishReason);

/// <summary>A message of a completion.</summary>
internal sealed record OpenAIMessage(string Role, string Content);

/// <summary>Token counts.</summary>
internal sealed record OpenAIUsage(long PromptTokens, long CompletionTokens, long TotalTokens);

/// <summary>A streamed chunk.</summary>
internal sealed record OpenAIChunk(string Id, string Object, long Created, string Model, IReadOnlyList<OpenAIChunkChoice> Choices, OpenAIUsage? Usage);

/// <summary>One choice of a chunk.</summary>
internal sealed record OpenAIChunkChoice(int Index, OpenAIDelta Delta, string? FinishReason);

/// <summary>What a chunk adds.</summary>
internal sealed record OpenAIDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

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
internal sealed partial class OpenAIJsonContext : JsonSerializerContext
{
    /// <summary>The context every response of this surface uses.</summary>
    public static OpenAIJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.SnakeCaseLower));
}
