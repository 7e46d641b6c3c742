using System.Text.Json;
using Orleans;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LuluClaw.WebApi.Apis;

/// <summary>The LuluClaw Gateway API: one chat endpoint, per-workspace rolling-hour plans, credits.</summary>
public static class GatewayApi
{
    /// <summary>Longest user message, in characters.</summary>
    public const int MaxMessageLength = 4000;

    /// <summary>Longest session id, in characters.</summary>
    public const int MaxSessionIdLength = 128;

    /// <summary>How the chat routes stream, for the OpenAPI document.</summary>
    public const string StreamingNote =
        "With \"stream\": true or Accept: text/event-stream the 200 answer is server-sent events, started as soon as the turn " +
        "is admitted with an SSE comment (': ok'): 'delta' events ({\"content\": \"...\"}) as the model writes, then 'done' with " +
        "the JSON answer's fields, or 'error' ({\"error\": \"...\"}) if the model fails. Refusals (401, 402, 404, 409, 429, ...) " +
        "come before the stream starts and keep their status codes.";

    /// <summary>Maps <c>POST /api/gateway/chat</c>.</summary>
    public static IEndpointRouteBuilder MapGatewayApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/gateway").WithTags("Gateway");
        group.MapPost("/chat", ChatAsync).WithName("GatewayChat").WithSummary("Send a message in a thread of the workspace's primary bot")
            .WithDescription(StreamingNote).RequireApiKey(ApiScopes.Chat, Error, turn: true)
            .Accepts<GatewayChatRequest>("application/json").Produces<ChatResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesErrors(400, 401, 402, 403, 404, 409, 429, 503);
        return app;
    }

    /// <summary>The surface's error shape.</summary>
    public static IResult Error(int statusCode, string message) =>
        TypedResults.Json(new ErrorBody(message), LuluJsonContext.Web.ErrorBody, statusCode: statusCode);

    private static async Task<IResult> ChatAsync(HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return Error(StatusCodes.Status400BadRequest, error!);
            }

            var message = body.String("message", required: true, 1, MaxMessageLength);
            var sessionId = body.String("session_id", required: false, 1, MaxSessionIdLength);
            var stream = body.Boolean("stream", required: false);
            if (body.Error is { } invalid)
            {
                return Error(StatusCodes.Status400BadRequest, invalid);
            }

            return await SendTurnAsync(
                http, grains, caller, new ChatTurnRequest(message!, caller.Key.Id, "gateway"), sessionId, SseResponse.IsWanted(http.Request, stream));
        }
    }

    /// <summary>
    /// Runs one turn in the caller's session (a new one when <paramref name="sessionId"/> is null)
    /// and shapes the answer: JSON, or with <paramref name="stream"/> server-sent events
    /// (<c>delta</c> events as the model writes, then <c>done</c> with the JSON answer's fields, or
    /// <c>error</c>). A refusal found before the first byte keeps its status code either way.
    /// </summary>
    public static async Task<IResult> SendTurnAsync(
        HttpContext http, IGrainFactory grains, Caller caller, ChatTurnRequest request, string? sessionId, bool stream = false)
    {
        var session = grains.GetGrain<ISessionGrain>(SessionKey.Of(caller.WorkspaceId, sessionId ?? NewSessionId()));
        if (!stream)
        {
            return Outcome(http, await session.SendAsync(request, http.RequestAborted));
        }

        return await TurnStream.RespondAsync(http, session.StreamAsync(request, http.RequestAborted), refused => Outcome(http, refused), e => [e switch
        {
            { Delta: { } text } => new SseEvent("delta", JsonSerializer.Serialize(new DeltaEvent(text), LuluJsonContext.Web.DeltaEvent)),
            { Result: { Status: ChatTurnStatus.Ok } ok } => new SseEvent("done", JsonSerializer.Serialize(Answer(ok), LuluJsonContext.Web.ChatResponse)),
            { Result: { } failed } => new SseEvent("error", JsonSerializer.Serialize(new ErrorBody(failed.Error!), LuluJsonContext.Web.ErrorBody)),
            _ => throw new InvalidOperationException("A turn event carries neither text nor an outcome."),
        }]);
    }

    private static ChatResponse Answer(ChatTurnResult result) => new(result.Reply!, result.SessionId, result.CreditsUsed, result.CreditsRemaining);

    /// <summary>A turn's outcome as this surface's JSON and status code, with <c>Retry-After</c> when there is one.</summary>
    private static IResult Outcome(HttpContext http, ChatTurnResult result)
    {
        TurnRefusal.SetRetryAfter(http, result);
        return result.Status == ChatTurnStatus.Ok
            ? TypedResults.Json(Answer(result), LuluJsonContext.Web.ChatResponse)
            : Error(TurnRefusal.StatusCode(result.Status), result.Error ?? "unexpected turn outcome");
    }

    /// <summary>A server-made session id.</summary>
    public static string NewSessionId() => $"sess_{Guid.CreateVersion7():N}";
}
