using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// The OpenClaw-compatible API under <c>/openclaw/api/v1</c>: a client written against OpenClaw's
/// document works by changing only its base URL. Tokens are workspace keys; their scopes are
/// OpenClaw's permissions (<c>chat</c>, <c>sessions</c>). camelCase JSON, OpenClaw's error shape,
/// per-token request limits with <c>X-RateLimit-*</c> headers on every authenticated response.
/// </summary>
public static class OpenClawApi
{
    /// <summary>Where the surface lives (OpenClaw's own <c>/api/v1</c> is the Developer API's here).</summary>
    public const string BasePath = "/openclaw/api/v1";

    private const string ChatBucket = "openclaw-chat";
    private const string ReadBucket = "openclaw-read";
    private static readonly long StartedAt = Environment.TickCount64;
    private static readonly string Version =
        typeof(OpenClawApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "1.0.0";

    /// <summary>Maps the surface.</summary>
    public static IEndpointRouteBuilder MapOpenClawApi(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetService(typeof(IConfiguration)) as IConfiguration;
        var chatLimit = limits?.GetValue("OpenClaw:ChatRequestsPerMinute", 100) ?? 100;
        var readLimit = limits?.GetValue("OpenClaw:ReadRequestsPerMinute", 1000) ?? 1000;

        var api = app.MapGroup(BasePath).WithTags("OpenClaw-compatible").ExcludeFromDescription();
        api.MapPost("/chat", ChatAsync).WithName("OpenClawChat").AddEndpointFilter(Guard(ApiScopes.Chat, ChatBucket, chatLimit));
        api.MapPost("/chat/stream", ChatStreamAsync).WithName("OpenClawChatStream").AddEndpointFilter(Guard(ApiScopes.Chat, ChatBucket, chatLimit));
        api.MapGet("/sessions", ListSessionsAsync).WithName("OpenClawSessions").AddEndpointFilter(Guard(ApiScopes.Sessions, ReadBucket, readLimit));
        api.MapGet("/sessions/{key}/history", HistoryAsync).WithName("OpenClawHistory").AddEndpointFilter(Guard(ApiScopes.Sessions, ReadBucket, readLimit));
        api.MapDelete("/sessions/{key}", DeleteSessionAsync).WithName("OpenClawDeleteSession").AddEndpointFilter(Guard(ApiScopes.Sessions, ReadBucket, readLimit));
        api.MapGet("/status", StatusAsync).WithName("OpenClawStatus").AddEndpointFilter(Guard(null, ReadBucket, readLimit));
        return app;
    }

    /// <summary>OpenClaw's error shape, <c>{"error": {"code", "message", "retryAfter"?}}</c>, with the code of <paramref name="statusCode"/>.</summary>
    public static IResult Error(int statusCode, string message, long? retryAfter = null) => TypedResults.Json(
        new OpenClawErrorBody(new OpenClawError(Code(statusCode), message, retryAfter)), OpenClawJsonContext.Web.OpenClawErrorBody, statusCode: statusCode);

    /// <summary>
    /// Authenticates (401), counts the request against the token's per-minute limit of its bucket
    /// (headers on every answer from here on; 429 past the limit), then checks the permission (403).
    /// </summary>
    private static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Guard(string? permission, string bucket, int limit) =>
        async (invocation, next) =>
        {
            var http = invocation.HttpContext;
            var (key, refusal) = await ApiKeyAuthentication.AuthenticateAsync(http);
            if (key is null)
            {
                return Error(StatusCodes.Status401Unauthorized, refusal!);
            }

            var grains = (IGrainFactory)http.RequestServices.GetService(typeof(IGrainFactory))!;
            var quota = await grains.GetGrain<IApiKeyGrain>(http.GetCaller().KeyHash).TakeRequestAsync(bucket, limit, http.RequestAborted);
            var reset = quota.ResetAt.ToUnixTimeSeconds();
            http.Response.Headers["X-RateLimit-Limit"] = quota.Limit.ToString(CultureInfo.InvariantCulture);
            http.Response.Headers["X-RateLimit-Remaining"] = quota.Remaining.ToString(CultureInfo.InvariantCulture);
            http.Response.Headers["X-RateLimit-Reset"] = reset.ToString(CultureInfo.InvariantCulture);
            if (!quota.Allowed)
            {
                var now = ((TimeProvider?)http.RequestServices.GetService(typeof(TimeProvider)) ?? TimeProvider.System).GetUtcNow();
                var retryAfter = Math.Max(1, reset - now.ToUnixTimeSeconds());
                http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
                return Error(StatusCodes.Status429TooManyRequests, $"Too many requests: this token may make {limit} such requests per minute.", retryAfter);
            }

            if (permission is not null && !key.HasScope(permission))
            {
                return Error(StatusCodes.Status403Forbidden, $"This token lacks the '{permission}' permission.");
            }

            return await next(invocation);
        };

    // ---- chat ----

    private static Task<IResult> ChatAsync(HttpContext http, IGrainFactory grains) => TurnAsync(http, grains, forceStream: false);

    private static Task<IResult> ChatStreamAsync(HttpContext http, IGrainFactory grains) => TurnAsync(http, grains, forceStream: true);

    private static async Task<IResult> TurnAsync(HttpContext http, IGrainFactory grains, bool forceStream)
    {
        var caller = http.GetCaller();
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return Error(StatusCodes.Status400BadRequest, error!);
            }

            var message = body.String("message", required: true, 1, GatewayApi.MaxMessageLength);
            var sessionKey = body.String("sessionKey", required: false, 1, GatewayApi.MaxSessionIdLength);
            var stream = body.Boolean("stream", required: false) ?? false;
            if (body.Error is { } invalid)
            {
                return Error(StatusCodes.Status400BadRequest, invalid);
            }

            sessionKey ??= GatewayApi.NewSessionId();
            var session = grains.GetGrain<ISessionGrain>(SessionKey.Of(caller.WorkspaceId, sessionKey));
            var request = new ChatTurnRequest(message!, caller.Key.Id, "openclaw");
            var id = $"msg_{Guid.CreateVersion7():N}";
            if (!(forceStream || stream))
            {
                var result = await session.SendAsync(request, http.RequestAborted);
                return result.Status != ChatTurnStatus.Ok
                    ? Refusal(http, result)
                    : TypedResults.Json(
                        new OpenClawChatResponse(id, result.Reply!, sessionKey, result.Model ?? "", Usage(result.Usage), DateTimeOffset.UtcNow),
                        OpenClawJsonContext.Web.OpenClawChatResponse);
            }

            return await StreamAsync(http, session.StreamAsync(request, http.RequestAborted), id);
        }
    }

    private static Task<IResult> StreamAsync(HttpContext http, IAsyncEnumerable<ChatTurnEvent> turn, string id) =>
        TurnStream.RespondAsync(http, turn, refused => Refusal(http, refused), e => [e switch
        {
            { Delta: { } text } => new SseEvent("delta", JsonSerializer.Serialize(new OpenClawDelta(text), OpenClawJsonContext.Web.OpenClawDelta)),
            { Result: { Status: ChatTurnStatus.Ok } ok } => new SseEvent("done", JsonSerializer.Serialize(new OpenClawDone(Usage(ok.Usage)), OpenClawJsonContext.Web.OpenClawDone)),
            { Result: { } failed } => new SseEvent("error", JsonSerializer.Serialize(
                new OpenClawErrorBody(new OpenClawError("MODEL_ERROR", failed.Error!, null)), OpenClawJsonContext.Web.OpenClawErrorBody)),
            _ => throw new InvalidOperationException("A turn event carries neither text nor an outcome."),
        }],
        prologue: [new SseEvent("start", JsonSerializer.Serialize(new OpenClawStart(id), OpenClawJsonContext.Web.OpenClawStart))]);

    // ---- sessions ----

    private static async Task<IResult> ListSessionsAsync(HttpContext http, IGrainFactory grains)
    {
        var sessions = await grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D")).ListSessionsAsync(http.RequestAborted);
        return TypedResults.Json(
            new OpenClawSessions(sessions.Select(s => new OpenClawSession(s.SessionId, s.Channel, s.CreatedAt, s.LastActivity, s.MessageCount)).ToArray()),
            OpenClawJsonContext.Web.OpenClawSessions);
    }

    private static async Task<IResult> HistoryAsync(string key, HttpContext http, IGrainFactory grains)
    {
        var limitText = http.Request.Query["limit"].ToString();
        var limit = 50;
        if (limitText.Length > 0 && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 1000))
        {
            return Error(StatusCodes.Status400BadRequest, "'limit' must be a whole number from 1 to 1000");
        }

        var history = key.Length <= GatewayApi.MaxSessionIdLength
            ? await grains.GetGrain<ISessionGrain>(SessionKey.Of(http.GetCaller().WorkspaceId, key)).GetHistoryAsync(http.RequestAborted)
            : [];
        if (history.Count == 0)
        {
            return Error(StatusCodes.Status404NotFound, $"Session '{key}' not found.");
        }

        var newest = history.Skip(Math.Max(0, history.Count - limit)).Select(m => new OpenClawMessage(m.Role, m.Content, m.CreatedAt)).ToArray();
        return TypedResults.Json(new OpenClawHistory(newest), OpenClawJsonContext.Web.OpenClawHistory);
    }

    private static async Task<IResult> DeleteSessionAsync(string key, HttpContext http, IGrainFactory grains) =>
        key.Length <= GatewayApi.MaxSessionIdLength
        && await grains.GetGrain<ISessionGrain>(SessionKey.Of(http.GetCaller().WorkspaceId, key)).DeleteAsync(http.RequestAborted)
            ? TypedResults.NoContent()
            : Error(StatusCodes.Status404NotFound, $"Session '{key}' not found.");

    // ---- status ----

    private static async Task<IResult> StatusAsync(HttpContext http, IGrainFactory grains)
    {
        var workspace = grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D"));
        var sessions = await workspace.ListSessionsAsync(http.RequestAborted);
        var primary = (await workspace.GetAsync(http.RequestAborted))?.PrimaryBotId is { Length: > 0 } id
            ? await grains.GetGrain<IBotGrain>(id).GetAsync(http.RequestAborted)
            : null;
        var status = primary is null || primary.Status == BotStatus.Error ? "degraded" : "healthy";
        return TypedResults.Json(
            new OpenClawStatus(status, Version, (Environment.TickCount64 - StartedAt) / 1000, sessions.Count,
                new OpenClawModel(primary?.Provider ?? "none", primary?.Model ?? "none")),
            OpenClawJsonContext.Web.OpenClawStatus);
    }

    // ---- helpers ----

    private static IResult Refusal(HttpContext http, ChatTurnResult result) =>
        Error(TurnRefusal.StatusCode(result.Status, modelFailure: StatusCodes.Status502BadGateway), result.Error ?? "unexpected turn outcome",
            TurnRefusal.SetRetryAfter(http, result));

    private static OpenClawUsage Usage(TokenUsage? usage) => new(usage?.InputTokens ?? 0, usage?.OutputTokens ?? 0);

    private static string Code(int status) => status switch
    {
        400 => "INVALID_REQUEST",
        401 => "UNAUTHORIZED",
        402 => "INSUFFICIENT_CREDITS",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        429 => "RATE_LIMITED",
        502 => "MODEL_ERROR",
        503 => "SERVICE_UNAVAILABLE",
        < 500 => "INVALID_REQUEST",
        _ => "INTERNAL_ERROR",
    };
}

/// <summary>OpenClaw's error body.</summary>
public sealed record OpenClawErrorBody(OpenClawError Error);

/// <summary>OpenClaw's error.</summary>
public sealed record OpenClawError(
    string Code, string Message, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? RetryAfter);

/// <summary>The answer to <c>POST /chat</c>.</summary>
public sealed record OpenClawChatResponse(string Id, string Content, string SessionKey, string Model, OpenClawUsage Usage, DateTimeOffset CreatedAt);

/// <summary>Token counts.</summary>
public sealed record OpenClawUsage(long InputTokens, long OutputTokens);

/// <summary>The <c>start</c> event.</summary>
public sealed record OpenClawStart(string Id);

/// <summary>A <c>delta</c> event.</summary>
public sealed record OpenClawDelta(string Content);

/// <summary>The <c>done</c> event.</summary>
public sealed record OpenClawDone(OpenClawUsage Usage);

/// <summary>The session list.</summary>
public sealed record OpenClawSessions(IReadOnlyList<OpenClawSession> Sessions);

/// <summary>One session.</summary>
public sealed record OpenClawSession(string Key, string Channel, DateTimeOffset CreatedAt, DateTimeOffset LastActivity, long MessageCount);

/// <summary>A session's history.</summary>
public sealed record OpenClawHistory(IReadOnlyList<OpenClawMessage> Messages);

/// <summary>One message.</summary>
public sealed record OpenClawMessage(string Role, string Content, DateTimeOffset Timestamp);

/// <summary>The gateway status.</summary>
public sealed record OpenClawStatus(string Status, string Version, long Uptime, long ActiveSessions, OpenClawModel Model);

/// <summary>The model in the status.</summary>
public sealed record OpenClawModel(string Provider, string Model);

/// <summary>Source-generated camelCase JSON of the OpenClaw-compatible surface.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(OpenClawErrorBody))]
[JsonSerializable(typeof(OpenClawChatResponse))]
[JsonSerializable(typeof(OpenClawStart))]
[JsonSerializable(typeof(OpenClawDelta))]
[JsonSerializable(typeof(OpenClawDone))]
[JsonSerializable(typeof(OpenClawSessions))]
[JsonSerializable(typeof(OpenClawHistory))]
[JsonSerializable(typeof(OpenClawStatus))]
public sealed partial class OpenClawJsonContext : JsonSerializerContext
{
    /// <summary>The context every response of this surface uses.</summary>
    public static OpenClawJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.CamelCase));
}
