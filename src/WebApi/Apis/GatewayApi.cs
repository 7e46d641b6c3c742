using System.Globalization;
using LuluClaw.Actors;
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

    /// <summary>Maps <c>POST /api/gateway/chat</c>.</summary>
    public static IEndpointRouteBuilder MapGatewayApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/gateway").WithTags("Gateway");
        group.MapPost("/chat", ChatAsync).WithName("GatewayChat").WithSummary("Send a message in a thread of the workspace's primary bot").RequireApiKey(ApiScopes.Chat, Error)
            .Accepts<GatewayChatRequest>("application/json").Produces<ChatResponse>()
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
            if (body.Error is { } invalid)
            {
                return Error(StatusCodes.Status400BadRequest, invalid);
            }

            return await SendTurnAsync(http, grains, caller, new ChatTurnRequest(message!, caller.Key.Id, "gateway"), sessionId);
        }
    }

    /// <summary>Runs one turn in the caller's session (a new one when <paramref name="sessionId"/> is null) and shapes the answer.</summary>
    public static async Task<IResult> SendTurnAsync(HttpContext http, IGrainFactory grains, Caller caller, ChatTurnRequest request, string? sessionId)
    {
        sessionId ??= NewSessionId();
        var result = await grains.Get<ISessionGrain>(SessionKey.Of(caller.WorkspaceId, sessionId)).SendAsync(request, http.RequestAborted);
        if (result.RetryAfter is { } retryAfter)
        {
            var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        return result.Status switch
        {
            ChatTurnStatus.Ok => TypedResults.Json(
                new ChatResponse(result.Reply!, result.SessionId, result.CreditsUsed, result.CreditsRemaining), LuluJsonContext.Web.ChatResponse),
            ChatTurnStatus.RateLimited => Error(StatusCodes.Status429TooManyRequests, result.Error!),
            ChatTurnStatus.InsufficientCredits => Error(StatusCodes.Status402PaymentRequired, result.Error!),
            ChatTurnStatus.ModelUnavailable => Error(StatusCodes.Status503ServiceUnavailable, result.Error!),
            ChatTurnStatus.NotFound => Error(StatusCodes.Status404NotFound, result.Error!),
            ChatTurnStatus.Conflict => Error(StatusCodes.Status409Conflict, result.Error!),
            ChatTurnStatus.Unauthorized => Error(StatusCodes.Status401Unauthorized, result.Error!),
            _ => Error(StatusCodes.Status500InternalServerError, "unexpected turn outcome"),
        };
    }

    /// <summary>A server-made session id.</summary>
    public static string NewSessionId() => $"sess_{Guid.CreateVersion7():N}";
}
