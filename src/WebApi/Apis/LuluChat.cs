using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Apis;

/// <summary>The chat answers of the LuluClaw Gateway and Developer APIs, which share one document family and one wire shape.</summary>
internal sealed class LuluChat : TurnAnswers
{
    /// <summary>How the chat routes stream, for the OpenAPI document.</summary>
    public const string StreamingNote =
        "With \"stream\": true or Accept: text/event-stream the 200 answer is server-sent events, started as soon as the turn " +
        "is admitted with an SSE comment (': ok'): 'delta' events ({\"content\": \"...\"}) as the model writes, then 'done' with " +
        "the JSON answer's fields, or 'error' ({\"error\": \"...\"}) if the model fails. Refusals (401, 402, 404, 409, 429, ...) " +
        "come before the stream starts and keep their status codes.";

    /// <summary>The Gateway's answers: exactly its documented fields.</summary>
    public static readonly LuluChat Gateway = new(sources: false);

    /// <summary>The Developer API's answers: the Gateway's fields and the knowledge sources used.</summary>
    public static readonly LuluChat Developer = new(sources: true);

    private readonly bool _sources;

    private LuluChat(bool sources) => _sources = sources;

    /// <inheritdoc />
    public override IResult Whole(ChatTurnResult result) => _sources
        ? TypedResults.Json(DeveloperAnswer(result), LuluJsonContext.Web.DeveloperChatResponse)
        : TypedResults.Json(GatewayAnswer(result), LuluJsonContext.Web.ChatResponse);

    /// <inheritdoc />
    public override IEnumerable<SseEvent> Events(ChatTurnEvent turnEvent) => [turnEvent switch
    {
        { Delta: { } text } => new SseEvent("delta", JsonSerializer.Serialize(new DeltaEvent(text), LuluJsonContext.Web.DeltaEvent)),
        { Result: { Status: ChatTurnStatus.Ok } ok } => new SseEvent("done", Answer(ok)),
        { Result: { } failed } => new SseEvent("error", JsonSerializer.Serialize(new ErrorBody(failed.Error!), LuluJsonContext.Web.ErrorBody)),
        _ => throw new InvalidOperationException("A turn event carries neither text nor an outcome."),
    }];

    /// <summary>The answer's JSON, as a stream's <c>done</c> event carries it.</summary>
    private string Answer(ChatTurnResult result) => _sources
        ? JsonSerializer.Serialize(DeveloperAnswer(result), LuluJsonContext.Web.DeveloperChatResponse)
        : JsonSerializer.Serialize(GatewayAnswer(result), LuluJsonContext.Web.ChatResponse);

    private static ChatResponse GatewayAnswer(ChatTurnResult result) => new(result.Reply!, result.SessionId, result.CreditsUsed, result.CreditsRemaining);

    private static DeveloperChatResponse DeveloperAnswer(ChatTurnResult result) =>
        new(result.Reply!, result.SessionId, result.CreditsUsed, result.CreditsRemaining, SourceResponse.Of(result.Sources));
}

/// <summary><c>POST /api/gateway/chat</c>.</summary>
/// <param name="Message">The user message (1 to 4,000 characters).</param>
/// <param name="SessionId">The thread (at most 128 characters); omit to start a new one.</param>
/// <param name="Stream">Stream the reply as server-sent events (also chosen by <c>Accept: text/event-stream</c>).</param>
internal sealed record GatewayChatRequest(
    [property: Required, StringLength(ChatTurns.MaxMessageLength, MinimumLength = 1), Description("The user message.")] string Message,
    [property: StringLength(ChatTurns.MaxSessionIdLength, MinimumLength = 1), Description("The thread; omit to start a new one.")] string? SessionId = null,
    [property: Description("Stream the reply as server-sent events (also chosen by Accept: text/event-stream).")] bool? Stream = null) : IRequestBody;

/// <summary><c>POST /api/v1/chat</c>.</summary>
/// <param name="BotId">The bot to answer; defaults to the workspace's primary bot. A session stays with the bot it started with.</param>
internal sealed record DeveloperChatRequest(
    [property: Required, StringLength(ChatTurns.MaxMessageLength, MinimumLength = 1), Description("The user message.")] string Message,
    [property: StringLength(ChatTurns.MaxSessionIdLength, MinimumLength = 1), Description("The thread; omit to start a new one.")] string? SessionId = null,
    [property: StringLength(DeveloperApi.MaxBotIdLength, MinimumLength = 1), Description("The bot to answer; defaults to the workspace's primary bot.")] string? BotId = null,
    [property: Description("Stream the reply as server-sent events (also chosen by Accept: text/event-stream).")] bool? Stream = null) : IRequestBody;
