using System.Buffers.Binary;
using System.Buffers.Text;
using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Orleans;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// OpenAI's Responses API on the OpenAI-compatible surface: <c>POST /v1/responses</c> (whole or streamed)
/// and <c>GET /v1/responses/{id}</c>. Every response is one chat turn of a stored LuluClaw session (channel
/// <c>openai</c>), admitted, charged and stored like every turn; <c>previous_response_id</c> continues that
/// response's session. With <c>"store": false</c> the request carries the whole conversation, as a chat
/// completion does, and nothing is stored.
/// </summary>
/// <remarks>
/// <para>A response id is <c>resp_</c> and, base64url-encoded, the session's 16 bytes, the reply's
/// <see cref="SessionMessage.Seq"/> (8 bytes, big-endian) and the bot's id: it finds the session and its
/// reply without a table of its own, and means something only in the caller's workspace (the session's
/// grain key is the workspace's), so another workspace's id is a 404.</para>
/// <para>What <c>input</c> may hold:</para>
/// 1. a string, or an array of message items (<c>{"type"?: "message", "role", "content"}</c>, the content a
///    string or text parts) whose last item is the user's new message;
/// 2. stored (the default): earlier <c>system</c> or <c>developer</c> items are instructions for this turn,
///    like <c>instructions</c>; earlier <c>user</c> or <c>assistant</c> items are a 400, since the thread's
///    history is the session's (continue it with <c>previous_response_id</c>);
/// 3. with <c>"store": false</c>: earlier items of any role are the conversation the model sees, and nothing
///    is kept (the id it answers with is not found later, and cannot be continued).
/// </remarks>
internal static class OpenAIResponsesApi
{
    /// <summary>Maps <c>POST /v1/responses</c> and <c>GET /v1/responses/{id}</c>.</summary>
    public static IEndpointRouteBuilder MapOpenAIResponsesApi(this IEndpointRouteBuilder app)
    {
        // The /v1 prefix and its error shape are registered by MapOpenAICompatibleApi (MapSurface); this is the same surface.
        var group = app.MapGroup("/v1").WithErrorShape(OpenAICompatibleApi.Errors).WithTags("OpenAI-compatible").ValidatesRequests();
        group.MapPost("/responses", CreateAsync).WithName("OpenAIResponses")
            .WithSummary("Create a response with a bot as the model: one turn of a stored thread, continued with previous_response_id (streamed as response.* events with \"stream\": true)")
            .RequireApiKey(ApiScopes.Chat).RunsChatTurn().WithMetadata(TurnWindowHeaders.OpenAI)
            .Produces<OpenAIResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream");
        group.MapGet("/responses/{id}", GetAsync).WithName("OpenAIResponse")
            .WithSummary("A stored response: the bot's reply of one turn, by the id it was created with")
            .RequireApiKey(ApiScopes.Chat).Produces<OpenAIResponse>().ProducesErrors(StatusCodes.Status404NotFound);
        return app;
    }

    private static IResult BadRequest(string message, string field) => OpenAICompatibleApi.Errors.Result(StatusCodes.Status400BadRequest, message, field: field);

    private static IResult PreviousNotFound(string id) => OpenAICompatibleApi.Errors.Result(StatusCodes.Status404NotFound,
        $"Previous response with id '{id}' not found.", field: "previous_response_id");

    private static async Task<IResult> CreateAsync(OpenAIResponseRequest body, HttpContext http, IGrainFactory grains, TimeProvider time)
    {
        var caller = http.GetCaller();
        var stored = body.Store != false;
        if (ReadInput(body.Input!.Value, stored, out var invalid, out var field) is not { } input)
        {
            return BadRequest(invalid!, field!);
        }

        var bot = await OpenAICompatibleApi.ResolveBotAsync(grains, caller.WorkspaceId, body.Model, http.RequestAborted);
        if (bot is null)
        {
            return OpenAICompatibleApi.ModelNotFound(body.Model);
        }

        // A new thread (seq 0), or the thread of previous_response_id, which must be at that response still.
        var (thread, after) = (Guid.CreateVersion7(), 0L);
        if (body.PreviousResponseId is { } previousId)
        {
            if (ResponseId.Parse(previousId) is not { } previous)
            {
                return PreviousNotFound(previousId);
            }

            var history = await grains.Session(caller, previous.SessionId).GetHistoryAsync(http.RequestAborted);
            if (!history.Any(m => m.Seq == previous.Seq && m.Role == "assistant"))
            {
                return PreviousNotFound(previousId);
            }

            if (history.LastOrDefault(m => m.Role == "assistant") is { } latest && latest.Seq != previous.Seq)
            {
                return OpenAICompatibleApi.Errors.Result(StatusCodes.Status409Conflict,
                    $"Response '{previousId}' is not the latest of its thread: continue from '{new ResponseId(previous.Thread, latest.Seq, previous.BotId)}' (a thread has one line of turns).",
                    field: "previous_response_id");
            }

            (thread, after) = (previous.Thread, previous.Seq);
        }

        var instructions = string.Join("\n\n", new[] { body.Instructions }.Concat(input.Instructions).Where(i => !string.IsNullOrWhiteSpace(i)));
        var request = new ChatTurnRequest(input.Message, caller.Key.Id, "openai", bot.Id, stored ? null : input.Before, body.Options(),
            instructions.Length > 0 ? instructions : null, stored ? after : null);
        var session = grains.Session(caller, ResponseId.SessionOf(thread));
        // The reply will be the turn's second message after `after` (the grain refuses the turn if the thread has moved on),
        // so a stream can name its response before the model answers. A stateless reply has no seq: its id finds nothing.
        var answers = new Answers(new ResponseId(thread, stored ? after + 2 : 0, bot.Id), body, time.GetUtcNow().ToUnixTimeSeconds());
        return await ChatTurns.RunAsync(http, session, request, body.Stream == true, answers);
    }

    private static async Task<IResult> GetAsync(string id, HttpContext http, IGrainFactory grains)
    {
        var notFound = OpenAICompatibleApi.Errors.Result(StatusCodes.Status404NotFound, $"Response with id '{id}' not found.", field: "response_id");
        if (ResponseId.Parse(id) is not { } response)
        {
            return notFound;
        }

        var history = await grains.Session(http.GetCaller(), response.SessionId).GetHistoryAsync(http.RequestAborted);
        var index = history.ToList().FindIndex(m => m.Seq == response.Seq && m.Role == "assistant");
        if (index < 0)
        {
            return notFound;
        }

        var reply = history[index];
        var previous = history.Take(index).LastOrDefault(m => m.Role == "assistant");
        var status = reply.CutShort ? "incomplete" : "completed";
        return TypedResults.Json(
            ResponseOf(response, reply.CreatedAt.ToUnixTimeSeconds(), status, [ItemOf(response, status, [OpenAIOutputText.Of(reply.Content)])], null, null,
                previous is null ? null : (response with { Seq = previous.Seq }).ToString()),
            OpenAIResponsesJsonContext.Web.OpenAIResponse);
    }

    /// <summary>
    /// The Response object of <paramref name="id"/>: what <paramref name="request"/> asked echoed back (on <c>GET</c>, no request: it was not kept),
    /// and OpenAI's fields for what LuluClaw does not do (no tools, no truncation, no background).
    /// </summary>
    private static OpenAIResponse ResponseOf(
        ResponseId id, long createdAt, string status, IReadOnlyList<OpenAIOutputMessage> output, OpenAIResponseUsage? usage, OpenAIResponseRequest? request, string? previousResponseId) => new(
        id.ToString(), "response", createdAt, status, Error: null, IncompleteDetails: null, request?.Instructions, request?.MaxOutputTokens, id.BotId, output,
        ParallelToolCalls: false, previousResponseId, request?.Temperature, request?.TopP, ToolChoice: "auto", Tools: [], Truncation: "disabled", usage, request?.User,
        request?.Metadata ?? new Dictionary<string, string>(), Store: request?.Store != false, Background: false,
        request?.Text?.Format is { } format ? new OpenAIResponseTextOptions(format) : OpenAIResponseTextOptions.Plain);

    /// <summary>The response's one output item: the assistant's message.</summary>
    private static OpenAIOutputMessage ItemOf(ResponseId id, string status, IReadOnlyList<OpenAIOutputText> content) =>
        new("message", id.MessageId, status, "assistant", content);

    /// <summary>What <c>input</c> says: the new user message, instructions for this turn, and (stateless) the conversation before it.</summary>
    private sealed record Input(string Message, IReadOnlyList<string> Instructions, IReadOnlyList<SessionMessage> Before);

    /// <summary>Reads <c>input</c> by the rules in the class's remarks; null with the 400's message and field otherwise.</summary>
    private static Input? ReadInput(JsonElement input, bool stored, out string? error, out string? field)
    {
        (error, field) = (null, "input");
        if (input.ValueKind == JsonValueKind.String)
        {
            return Last(input.GetString()!, [], [], out error);
        }

        if (input.ValueKind != JsonValueKind.Array || input.GetArrayLength() == 0)
        {
            error = "'input' must be a non-empty string or a non-empty array of message items";
            return null;
        }

        var messages = new List<SessionMessage>();
        var index = 0;
        foreach (var item in input.EnumerateArray())
        {
            field = $"input[{index}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                error = $"'{field}' must be a message item: {{\"role\": ..., \"content\": ...}}";
                return null;
            }

            if (item.TryGetProperty("type", out var type) && !(type.ValueKind == JsonValueKind.String && type.GetString() == "message"))
            {
                error = $"'{field}.type' must be 'message': LuluClaw takes text messages only (no tool calls, files or item references)";
                return null;
            }

            var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            if (role is not ("user" or "assistant" or "system" or "developer"))
            {
                (error, field) = ($"'{field}.role' must be 'user', 'assistant', 'system' or 'developer'", $"{field}.role");
                return null;
            }

            if (!item.TryGetProperty("content", out var content) || Text(content) is not { } text)
            {
                (error, field) = ($"'{field}.content' must be a string or an array of text parts ({{\"type\": \"input_text\" or \"output_text\", \"text\": ...}})", $"{field}.content");
                return null;
            }

            messages.Add(new SessionMessage(index + 1, role == "developer" ? "system" : role, text, DateTimeOffset.UnixEpoch));
            index++;
        }

        field = $"input[{messages.Count - 1}]";
        if (messages[^1].Role != "user")
        {
            error = "the last item of 'input' must be the user's new message";
            return null;
        }

        var before = messages[..^1];
        if (stored && before.FindIndex(m => m.Role != "system") is var stray and >= 0)
        {
            field = $"input[{stray}]";
            error = $"'{field}' is a '{before[stray].Role}' message: a stored response's thread is kept by LuluClaw, so 'input' holds only " +
                "the new user message (and system or developer instructions); continue a thread with 'previous_response_id', " +
                "or send the whole conversation with \"store\": false";
            return null;
        }

        return stored
            ? Last(messages[^1].Content, before.Select(m => m.Content).ToArray(), [], out error)
            : Last(messages[^1].Content, [], before, out error);
    }

    private static Input? Last(string message, IReadOnlyList<string> instructions, IReadOnlyList<SessionMessage> before, out string? error)
    {
        error = string.IsNullOrWhiteSpace(message) ? "the user's new message in 'input' must not be empty"
            : ChatTurns.IsTooLong(message) ? $"the user's new message in 'input' must be at most {ChatTurns.MaxMessageLength} characters"
            : null;
        return error is null ? new Input(message, instructions, before) : null;
    }

    /// <summary>A message's text: a string, or the concatenated text of <c>input_text</c>/<c>output_text</c> parts; null for anything else.</summary>
    private static string? Text(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString(),
        JsonValueKind.Array when content.EnumerateArray().All(IsTextPart) => string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString())),
        _ => null,
    };

    private static bool IsTextPart(JsonElement part) =>
        part.ValueKind == JsonValueKind.Object
        && part.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() is "input_text" or "output_text"
        && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String;

    /// <summary>OpenAI's Response object, whole or as the <c>response.*</c> events of a stream, for one turn.</summary>
    private sealed class Answers(ResponseId id, OpenAIResponseRequest request, long createdAt) : TurnAnswers
    {
        private readonly StringBuilder _text = new();
        private long _sequence;

        public override IResult Whole(ChatTurnResult result) => TypedResults.Json(Completed(result, result.ReplySeq is { } seq ? id with { Seq = seq } : id),
            OpenAIResponsesJsonContext.Web.OpenAIResponse);

        public override IEnumerable<SseEvent> Prologue
        {
            get
            {
                yield return Event("response.created", new OpenAIResponseEvent("response.created", Next(), Response(id, "in_progress", [], null)));
                yield return Event("response.in_progress", new OpenAIResponseEvent("response.in_progress", Next(), Response(id, "in_progress", [], null)));
                yield return Event("response.output_item.added", new OpenAIOutputItemEvent("response.output_item.added", Next(), 0, ItemOf(id, "in_progress", [])));
                yield return Event("response.content_part.added", new OpenAIContentPartEvent("response.content_part.added", Next(), id.MessageId, 0, 0, OpenAIOutputText.Of("")));
            }
        }

        public override IEnumerable<SseEvent> Events(ChatTurnEvent turnEvent)
        {
            switch (turnEvent)
            {
                case { Delta: { } delta }:
                    _text.Append(delta);
                    yield return Event("response.output_text.delta", new OpenAITextDeltaEvent("response.output_text.delta", Next(), id.MessageId, 0, 0, delta, []));
                    break;
                case { Result: { Status: ChatTurnStatus.Ok } ok }:
                    var done = Completed(ok, id);
                    var part = OpenAIOutputText.Of(ok.Reply ?? _text.ToString());
                    yield return Event("response.output_text.done", new OpenAITextDoneEvent("response.output_text.done", Next(), id.MessageId, 0, 0, part.Text, []));
                    yield return Event("response.content_part.done", new OpenAIContentPartEvent("response.content_part.done", Next(), id.MessageId, 0, 0, part));
                    yield return Event("response.output_item.done", new OpenAIOutputItemEvent("response.output_item.done", Next(), 0, done.Output[0]));
                    var name = done.Status == "completed" ? "response.completed" : "response.incomplete";
                    yield return Event(name, new OpenAIResponseEvent(name, Next(), done));
                    break;
                case { Result: { } failed }:
                    var response = Response(id, "failed", [], null) with { Error = new OpenAIResponseError("server_error", failed.Error ?? "the model could not answer") };
                    yield return Event("response.failed", new OpenAIResponseEvent("response.failed", Next(), response));
                    break;
            }
        }

        private long Next() => _sequence++;

        /// <summary>The finished response of a turn that succeeded: <c>incomplete</c> if the model hit <c>max_output_tokens</c> or a filter.</summary>
        private OpenAIResponse Completed(ChatTurnResult result, ResponseId answered)
        {
            var incomplete = result.FinishReason switch { "length" => "max_output_tokens", "content_filter" => "content_filter", _ => null };
            var status = incomplete is null ? "completed" : "incomplete";
            return Response(answered, status, [ItemOf(answered, status, [OpenAIOutputText.Of(result.Reply ?? "")])], Usage(result.Usage)) with
            {
                IncompleteDetails = incomplete is null ? null : new OpenAIIncompleteDetails(incomplete),
            };
        }

        private OpenAIResponse Response(ResponseId answered, string status, IReadOnlyList<OpenAIOutputMessage> output, OpenAIResponseUsage? usage) =>
            ResponseOf(answered, createdAt, status, output, usage, request, request.PreviousResponseId);

        private static OpenAIResponseUsage? Usage(TokenUsage? usage) => usage is null ? null : new OpenAIResponseUsage(
            usage.InputTokens, new OpenAIInputTokensDetails(0), usage.OutputTokens, new OpenAIOutputTokensDetails(0), usage.InputTokens + usage.OutputTokens);

        private static SseEvent Event<T>(string name, T data)
            where T : notnull => new(name, JsonSerializer.Serialize(data, typeof(T), OpenAIResponsesJsonContext.Web));
    }

    /// <summary>A response's id: the session (a thread of its own, <see cref="SessionOf"/>), the reply's seq and the bot that answered.</summary>
    internal sealed record ResponseId(Guid Thread, long Seq, string BotId)
    {
        private const string Prefix = "resp_";

        /// <summary>Longest bot id an id can carry, in UTF-8 bytes (bot ids are far shorter).</summary>
        private const int MaxBotIdBytes = 128;

        /// <summary>The session id of thread <paramref name="thread"/>.</summary>
        public static string SessionOf(Guid thread) => $"resp_{thread:N}";

        /// <summary>The session this response is a turn of.</summary>
        public string SessionId => SessionOf(Thread);

        /// <summary>The id of the response's one output message.</summary>
        public string MessageId => "msg_" + ToString()[Prefix.Length..];

        public override string ToString()
        {
            var bot = Encoding.UTF8.GetBytes(BotId);
            var bytes = new byte[24 + bot.Length];
            Thread.TryWriteBytes(bytes.AsSpan(0, 16), bigEndian: true, out _);
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(16, 8), Seq);
            bot.CopyTo(bytes, 24);
            return Prefix + Base64Url.EncodeToString(bytes);
        }

        /// <summary>The id <paramref name="text"/> spells, or null if it is not one this surface made (only the canonical spelling counts).</summary>
        public static ResponseId? Parse(string text)
        {
            if (!text.StartsWith(Prefix, StringComparison.Ordinal) || text.Length > Prefix.Length + 4 * (24 + MaxBotIdBytes) / 3 + 2)
            {
                return null;
            }

            var encoded = text.AsSpan(Prefix.Length);
            foreach (var c in encoded)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_'))
                {
                    return null;
                }
            }

            var bytes = new byte[Base64Url.GetMaxDecodedLength(encoded.Length)];
            if (Base64Url.DecodeFromChars(encoded, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written <= 24)
            {
                return null;
            }

            string bot;
            try
            {
                bot = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 24, written - 24);
            }
            catch (DecoderFallbackException)
            {
                return null;
            }

            var id = new ResponseId(new Guid(bytes.AsSpan(0, 16), bigEndian: true), BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(16, 8)), bot);
            return id.Seq > 0 && !bot.Any(char.IsControl) && id.ToString() == text ? id : null;
        }
    }
}

/// <summary><c>POST /v1/responses</c>: OpenAI's request, the parts LuluClaw can honour.</summary>
/// <param name="Model">The bot, by id or name.</param>
/// <param name="Input">The user's new message: a string, or message items ending with it (see the API's rules).</param>
/// <param name="Instructions">System instructions for this turn, after the bot's system prompt; not carried over by <paramref name="PreviousResponseId"/>.</param>
/// <param name="PreviousResponseId">The response to continue: the new turn goes on its thread, which must not have moved past it.</param>
/// <param name="Store">False: a stateless turn, the request's <paramref name="Input"/> is the whole conversation and nothing is kept.</param>
/// <param name="Metadata">Up to 16 pairs, echoed in the answer, not stored.</param>
/// <param name="User">The caller's end user, accepted and not used.</param>
internal sealed record OpenAIResponseRequest(
    [property: Required, StringLength(200, MinimumLength = 1)] string Model,
    [property: Required] JsonElement? Input,
    [property: StringLength(DeveloperApi.MaxSystemPromptLength)] string? Instructions = null,
    bool? Stream = null,
    [property: StringLength(200)] string? PreviousResponseId = null,
    bool? Store = null,
    [property: Range(0.0, 2.0)] float? Temperature = null,
    [property: Range(0.0, 1.0)] float? TopP = null,
    [property: Range(1, 1_000_000)] int? MaxOutputTokens = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    [property: StringLength(256)] string? User = null,
    OpenAIResponseTextOptions? Text = null,
    JsonElement? Tools = null,
    JsonElement? ToolChoice = null,
    bool? ParallelToolCalls = null,
    bool? Background = null,
    string? Truncation = null,
    IReadOnlyList<string>? Include = null) : IRequestBody
{
    /// <summary>Parameters this surface does not know: refused by name rather than dropped.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() =>
        Tools is { ValueKind: not JsonValueKind.Null } tools && !(tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() == 0)
            ? "'tools' are not supported yet: tool calling does not reach the model"
        : ToolChoice is { ValueKind: not JsonValueKind.Null } choice && !(choice.ValueKind == JsonValueKind.String && choice.GetString() is "auto" or "none")
            ? "'tool_choice' must be 'auto' or 'none': tool calling does not reach the model"
        : Background == true ? "'background' is not supported: a response is answered within its request"
        : Truncation is not (null or "disabled") ? "'truncation' must be 'disabled': LuluClaw sends the model the whole thread"
        : Include is { Count: > 0 } ? "'include' is not supported: a response's output is its message only"
        : Store == false && PreviousResponseId is not null
            ? "'previous_response_id' cannot be used with \"store\": false: a stateless request carries the whole conversation in 'input'"
        : Metadata is { Count: > 16 } ? "'metadata' may have at most 16 pairs"
        : Metadata?.FirstOrDefault(p => p.Key.Length > 64 || p.Value is null || p.Value.Length > 512) is { Key: { } key }
            ? $"'metadata' keys must be at most 64 characters and values strings of at most 512 ('{key}')"
        : Text?.Check();

    /// <summary>What the model is asked, in the turn's terms.</summary>
    public ChatTurnOptions Options() => new(
        Temperature, TopP, MaxOutputTokens, ResponseFormat: Text?.Format?.Type, JsonSchema: Text?.Format?.Schema?.GetRawText(), JsonSchemaName: Text?.Format?.Name);
}

/// <summary><c>text</c>: the answer's format.</summary>
internal sealed record OpenAIResponseTextOptions(OpenAIResponseTextFormat? Format = null)
{
    /// <summary>Plain text, the default.</summary>
    public static OpenAIResponseTextOptions Plain { get; } = new(new OpenAIResponseTextFormat("text"));

    /// <summary>The 400 message for a format that cannot be passed on, or null.</summary>
    public string? Check() => Format?.Check();
}

/// <summary><c>text.format</c>: <c>text</c>, <c>json_object</c>, or <c>json_schema</c> with its <c>name</c> and <c>schema</c>.</summary>
internal sealed record OpenAIResponseTextFormat(
    [property: Required, AllowedValues("text", "json_object", "json_schema")] string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Schema = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Strict = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Description = null)
{
    /// <summary>The 400 message for a format that cannot be passed on, or null.</summary>
    public string? Check() =>
        Type is not ("text" or "json_object" or "json_schema") ? "'text.format.type' must be 'text', 'json_object' or 'json_schema'"
        : Type == "json_schema" && Schema is not { ValueKind: JsonValueKind.Object } ? "'text.format.schema' must be a JSON schema object"
        : null;
}

/// <summary>OpenAI's Response object.</summary>
/// <param name="Status"><c>in_progress</c>, <c>completed</c>, <c>incomplete</c> or <c>failed</c>.</param>
/// <param name="Model">The bot that answered.</param>
/// <param name="Usage">Token counts, when the model reported them (not kept: null on <c>GET</c>).</param>
internal sealed record OpenAIResponse(
    string Id,
    string Object,
    long CreatedAt,
    [property: AllowedValues("in_progress", "completed", "incomplete", "failed")] string Status,
    OpenAIResponseError? Error,
    OpenAIIncompleteDetails? IncompleteDetails,
    string? Instructions,
    int? MaxOutputTokens,
    string Model,
    IReadOnlyList<OpenAIOutputMessage> Output,
    bool ParallelToolCalls,
    string? PreviousResponseId,
    float? Temperature,
    float? TopP,
    string ToolChoice,
    IReadOnlyList<JsonElement> Tools,
    string Truncation,
    OpenAIResponseUsage? Usage,
    string? User,
    IReadOnlyDictionary<string, string> Metadata,
    bool Store,
    bool Background,
    OpenAIResponseTextOptions Text);

/// <summary>Why a response failed.</summary>
internal sealed record OpenAIResponseError(string Code, string Message);

/// <summary>Why a response is incomplete: <c>max_output_tokens</c> or <c>content_filter</c>.</summary>
internal sealed record OpenAIIncompleteDetails(string Reason);

/// <summary>The assistant's message, a response's one output item.</summary>
internal sealed record OpenAIOutputMessage(string Type, string Id, string Status, string Role, IReadOnlyList<OpenAIOutputText> Content);

/// <summary>An <c>output_text</c> content part.</summary>
internal sealed record OpenAIOutputText(string Type, string Text, IReadOnlyList<JsonElement> Annotations)
{
    /// <summary>The part holding <paramref name="text"/>.</summary>
    public static OpenAIOutputText Of(string text) => new("output_text", text, []);
}

/// <summary>A response's token counts.</summary>
internal sealed record OpenAIResponseUsage(long InputTokens, OpenAIInputTokensDetails InputTokensDetails, long OutputTokens, OpenAIOutputTokensDetails OutputTokensDetails, long TotalTokens);

/// <summary>Cached input tokens (LuluClaw reports none).</summary>
internal sealed record OpenAIInputTokensDetails(long CachedTokens);

/// <summary>Reasoning output tokens (LuluClaw reports none).</summary>
internal sealed record OpenAIOutputTokensDetails(long ReasoningTokens);

/// <summary>A streamed event carrying the response: <c>response.created</c>, <c>.in_progress</c>, <c>.completed</c>, <c>.incomplete</c>, <c>.failed</c>.</summary>
internal sealed record OpenAIResponseEvent(string Type, long SequenceNumber, OpenAIResponse Response);

/// <summary><c>response.output_item.added</c> and <c>.done</c>.</summary>
internal sealed record OpenAIOutputItemEvent(string Type, long SequenceNumber, int OutputIndex, OpenAIOutputMessage Item);

/// <summary><c>response.content_part.added</c> and <c>.done</c>.</summary>
internal sealed record OpenAIContentPartEvent(string Type, long SequenceNumber, string ItemId, int OutputIndex, int ContentIndex, OpenAIOutputText Part);

/// <summary><c>response.output_text.delta</c>: the next piece of the reply.</summary>
internal sealed record OpenAITextDeltaEvent(string Type, long SequenceNumber, string ItemId, int OutputIndex, int ContentIndex, string Delta, IReadOnlyList<JsonElement> Logprobs);

/// <summary><c>response.output_text.done</c>: the whole reply.</summary>
internal sealed record OpenAITextDoneEvent(string Type, long SequenceNumber, string ItemId, int OutputIndex, int ContentIndex, string Text, IReadOnlyList<JsonElement> Logprobs);

/// <summary>Source-generated JSON of the Responses API (OpenAI's snake_case).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(OpenAIResponse))]
[JsonSerializable(typeof(OpenAIResponseEvent))]
[JsonSerializable(typeof(OpenAIOutputItemEvent))]
[JsonSerializable(typeof(OpenAIContentPartEvent))]
[JsonSerializable(typeof(OpenAITextDeltaEvent))]
[JsonSerializable(typeof(OpenAITextDoneEvent))]
internal sealed partial class OpenAIResponsesJsonContext : JsonSerializerContext
{
    /// <summary>The context every answer of the Responses API uses.</summary>
    public static OpenAIResponsesJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.SnakeCaseLower));
}
