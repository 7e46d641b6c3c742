using System.Diagnostics;
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
using Microsoft.Extensions.DependencyInjection;
using System.ComponentModel.DataAnnotations;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// The OpenClaw-compatible API under <c>/openclaw/api/v1</c>: a client written against OpenClaw's
/// document works by changing only its base URL. Tokens are workspace keys; their scopes are
/// OpenClaw's permissions (<c>chat</c>, <c>sessions</c>). camelCase JSON, OpenClaw's error shape,
/// per-token request limits with <c>X-RateLimit-*</c> headers on every authenticated response.
/// </summary>
internal static class OpenClawApi
{
    /// <summary>Where the surface lives (OpenClaw's own <c>/api/v1</c> is the Developer API's here).</summary>
    public const string BasePath = "/openclaw/api/v1";

    private const string ChatBucket = "openclaw-chat";
    private const string ReadBucket = "openclaw-read";
    private static readonly string Version =
        typeof(OpenClawApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "1.0.0";

    /// <summary>Maps the surface.</summary>
    public static IEndpointRouteBuilder MapOpenClawApi(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetService(typeof(IConfiguration)) as IConfiguration;
        var chatLimit = limits?.GetValue("OpenClaw:ChatRequestsPerMinute", 100) ?? 100;
        var readLimit = limits?.GetValue("OpenClaw:ReadRequestsPerMinute", 1000) ?? 1000;

        var api = app.MapSurface(BasePath, Errors).WithTags("OpenClaw-compatible").ValidatesRequests()
            .WithMetadata(OpenApiMetadata.CountsRequests.Instance).ProducesErrors(StatusCodes.Status429TooManyRequests);
        api.MapPost("/chat", ChatAsync).WithName("OpenClawChat").WithSummary("Send a message (streamed as server-sent events with \"stream\": true)")
            .Produces<OpenClawChatResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream").RequireApiKey(ApiScopes.Chat).RunsChatTurn().AddEndpointFilter(Quota(ChatBucket, chatLimit));
        api.MapPost("/chat/stream", ChatStreamAsync).WithName("OpenClawChatStream")
            .WithSummary("Send a message and stream the reply: 'start', 'delta' events, then 'done' (or 'error')").Produces(StatusCodes.Status200OK, contentType: "text/event-stream").RequireApiKey(ApiScopes.Chat).RunsChatTurn()
            .AddEndpointFilter(Quota(ChatBucket, chatLimit));
        api.MapGet("/sessions", ListSessionsAsync).WithName("OpenClawSessions").WithSummary("List the workspace's sessions").Produces<OpenClawSessions>().RequireApiKey(ApiScopes.Sessions).AddEndpointFilter(Quota(ReadBucket, readLimit));
        api.MapGet("/sessions/{key}/history", HistoryAsync).WithName("OpenClawHistory").WithSummary("A session's newest messages, oldest first")
            .Produces<OpenClawHistory>().ProducesErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound).RequireApiKey(ApiScopes.Sessions)
            .AddEndpointFilter(Quota(ReadBucket, readLimit));
        api.MapDelete("/sessions/{key}", DeleteSessionAsync).WithName("OpenClawDeleteSession").WithSummary("Delete a session and its history")
            .Produces(StatusCodes.Status204NoContent).ProducesErrors(StatusCodes.Status404NotFound).RequireApiKey(ApiScopes.Sessions)
            .AddEndpointFilter(Quota(ReadBucket, readLimit));
        api.MapGet("/status", StatusAsync).WithName("OpenClawStatus").WithSummary("Gateway status: health, version, uptime, sessions, model").Produces<OpenClawStatus>().RequireApiKey(null).AddEndpointFilter(Quota(ReadBucket, readLimit));
        return app;
    }

    /// <summary>OpenClaw's error shape, <c>{"error": {"code", "message", "retryAfter"?}}</c>, with the code of the status.</summary>
    internal static ErrorShape Errors { get; } = new OpenClawErrorShape();

    private static IResult Error(int statusCode, string message) => Errors.Result(statusCode, message);

    /// <summary>
    /// Counts the request against the token's per-minute limit of its bucket: the <c>X-RateLimit-*</c>
    /// headers on every answer from here on, 429 past the limit. Authentication and the permission check
    /// have run before (a refused request is not counted).
    /// </summary>
    private static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Quota(string bucket, int limit) =>
        async (invocation, next) =>
        {
            var http = invocation.HttpContext;
            var grains = http.RequestServices.GetRequiredService<IGrainFactory>();
            var quota = await grains.GetGrain<IApiKeyGrain>(http.GetCaller().KeyHash).TakeRequestAsync(bucket, limit, http.RequestAborted);
            var reset = quota.ResetAt.ToUnixTimeSeconds();
            http.Response.Headers["X-RateLimit-Limit"] = quota.Limit.ToString(CultureInfo.InvariantCulture);
            http.Response.Headers["X-RateLimit-Remaining"] = quota.Remaining.ToString(CultureInfo.InvariantCulture);
            http.Response.Headers["X-RateLimit-Reset"] = reset.ToString(CultureInfo.InvariantCulture);
            if (!quota.Allowed)
            {
                var now = (http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
                var retryAfter = Math.Max(1, reset - now.ToUnixTimeSeconds());
                http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
                return Errors.Result(StatusCodes.Status429TooManyRequests, $"Too many requests: this token may make {limit} such requests per minute.", retryAfter);
            }

            return await next(invocation);
        };

    // ---- chat ----

    private static Task<IResult> ChatAsync(OpenClawChatRequest body, HttpContext http, IGrainFactory grains) => TurnAsync(body, http, grains, forceStream: false);

    private static Task<IResult> ChatStreamAsync(OpenClawChatRequest body, HttpContext http, IGrainFactory grains) => TurnAsync(body, http, grains, forceStream: true);

    private static Task<IResult> TurnAsync(OpenClawChatRequest body, HttpContext http, IGrainFactory grains, bool forceStream)
    {
        var caller = http.GetCaller();
        var sessionKey = body.SessionKey ?? ChatTurns.NewSessionId();
        var request = new ChatTurnRequest(body.Message, caller.Key.Id, "openclaw");
        return ChatTurns.RunAsync(http, grains.Session(caller, sessionKey), request, forceStream || body.Stream == true,
            new Answers($"msg_{Guid.CreateVersion7():N}", sessionKey));
    }

    /// <summary>OpenClaw's chat answers: the JSON message, or <c>start</c>, <c>delta</c>…, <c>done</c> events.</summary>
    private sealed class Answers(string id, string sessionKey) : TurnAnswers
    {
        public override IResult Whole(ChatTurnResult result) => TypedResults.Json(
            new OpenClawChatResponse(id, result.Reply!, sessionKey, result.Model ?? "", Usage(result.Usage), DateTimeOffset.UtcNow),
            OpenClawJsonContext.Web.OpenClawChatResponse);

        public override IEnumerable<SseEvent> Prologue =>
            [new SseEvent("start", JsonSerializer.Serialize(new OpenClawStart(id, sessionKey), OpenClawJsonContext.Web.OpenClawStart))];

        public override IEnumerable<SseEvent> Events(ChatTurnEvent turnEvent) => [turnEvent switch
        {
            { Delta: { } text } => new SseEvent("delta", JsonSerializer.Serialize(new OpenClawDelta(text), OpenClawJsonContext.Web.OpenClawDelta)),
            { Result: { Status: ChatTurnStatus.Ok } ok } => new SseEvent("done", JsonSerializer.Serialize(new OpenClawDone(Usage(ok.Usage), sessionKey), OpenClawJsonContext.Web.OpenClawDone)),
            { Result: { } failed } => new SseEvent("error", JsonSerializer.Serialize(
                new OpenClawErrorBody(new OpenClawError("MODEL_ERROR", failed.Error!, null)), OpenClawJsonContext.Web.OpenClawErrorBody)),
            _ => throw new InvalidOperationException("A turn event carries neither text nor an outcome."),
        }];
    }

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

        var history = key.Length <= ChatTurns.MaxSessionIdLength
            ? await grains.GetGrain<ISessionGrain>(SessionKey.Of(http.GetCaller().WorkspaceId, key)).GetHistoryAsync(http.RequestAborted)
            : [];
        if (history.Count == 0)
        {
            return Error(StatusCodes.Status404NotFound, $"Session '{key}' not found.");
        }

        var newest = history.Skip(Math.Max(0, history.Count - limit)).Select(m => new OpenClawMessage(m.Role, m.Content, m.CreatedAt, SourceResponse.Of(m.Sources))).ToArray();
        return TypedResults.Json(new OpenClawHistory(newest), OpenClawJsonContext.Web.OpenClawHistory);
    }

    private static async Task<IResult> DeleteSessionAsync(string key, HttpContext http, IGrainFactory grains) =>
        key.Length <= ChatTurns.MaxSessionIdLength
        && await grains.GetGrain<ISessionGrain>(SessionKey.Of(http.GetCaller().WorkspaceId, key)).DeleteAsync(http.RequestAborted)
            ? TypedResults.NoContent()
            : Error(StatusCodes.Status404NotFound, $"Session '{key}' not found.");

    // ---- status ----

    private static async Task<IResult> StatusAsync(HttpContext http, IGrainFactory grains, TimeProvider time)
    {
        var workspace = grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D"));
        var sessions = await workspace.ListSessionsAsync(http.RequestAborted);
        var primary = (await workspace.GetAsync(http.RequestAborted))?.PrimaryBotId is { Length: > 0 } id
            ? await grains.GetGrain<IBotGrain>(id).GetAsync(http.RequestAborted)
            : null;
        var status = primary is null || primary.Status == BotStatus.Error ? "degraded" : "healthy";
        return TypedResults.Json(
            new OpenClawStatus(status, Version, Math.Max(0, (long)(time.GetUtcNow() - ProcessStartedAt).TotalSeconds), sessions.Count,
                new OpenClawModel(primary?.Provider ?? "none", primary?.Model ?? "none")),
            OpenClawJsonContext.Web.OpenClawStatus);
    }

    // ---- helpers ----

    private static OpenClawUsage Usage(TokenUsage? usage) => new(usage?.InputTokens ?? 0, usage?.OutputTokens ?? 0);

    private sealed class OpenClawErrorShape : ErrorShape
    {
        public override Type BodyType => typeof(OpenClawErrorBody);

        public override int ModelFailureStatus => StatusCodes.Status502BadGateway;

        public override IResult Result(int statusCode, string message, long? retryAfter = null, string? field = null) => TypedResults.Json(
            new OpenClawErrorBody(new OpenClawError(Code(statusCode), message, retryAfter)), OpenClawJsonContext.Web.OpenClawErrorBody, statusCode: statusCode);

        public override string MissingScope(string scope) => $"This token lacks the '{scope}' permission.";
    }

    /// <summary>
    /// When this process started, which the uptime counts from. The operating system's record, so it does
    /// not matter when this field is first read (a clock read here would count from the first OpenClaw request).
    /// </summary>
    private static readonly DateTimeOffset ProcessStartedAt = ProcessStart();

    private static DateTimeOffset ProcessStart()
    {
        using var process = Process.GetCurrentProcess();
        return new DateTimeOffset(process.StartTime.ToUniversalTime(), TimeSpan.Zero);
    }

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

/// <summary><c>POST /chat</c> and <c>POST /chat/stream</c>.</summary>
internal sealed record OpenClawChatRequest(
    [property: Required, StringLength(ChatTurns.MaxMessageLength, MinimumLength = 1)] string Message,
    [property: JsonPropertyName("sessionKey"), StringLength(ChatTurns.MaxSessionIdLength, MinimumLength = 1)] string? SessionKey = null,
    bool? Stream = null) : IRequestBody;

/// <summary>OpenClaw's error body.</summary>
internal sealed record OpenClawErrorBody(OpenClawError Error);

/// <summary>OpenClaw's error.</summary>
internal sealed record OpenClawError(
    string Code, string Message, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? RetryAfter);

/// <summary>The answer to <c>POST /chat</c>.</summary>
internal sealed record OpenClawChatResponse(string Id, string Content, string SessionKey, string Model, OpenClawUsage Usage, DateTimeOffset CreatedAt);

/// <summary>Token counts.</summary>
internal sealed record OpenClawUsage(long InputTokens, long OutputTokens);

/// <summary>The <c>start</c> event; <paramref name="SessionKey"/> is the thread's key, the server's own when the request named none.</summary>
internal sealed record OpenClawStart(string Id, string SessionKey);

/// <summary>A <c>delta</c> event.</summary>
internal sealed record OpenClawDelta(string Content);

/// <summary>The <c>done</c> event, with the thread's key as in <see cref="OpenClawStart"/>.</summary>
internal sealed record OpenClawDone(OpenClawUsage Usage, string SessionKey);


/// <summary>The session list.</summary>
internal sealed record OpenClawSessions(IReadOnlyList<OpenClawSession> Sessions);

/// <summary>One session.</summary>
internal sealed record OpenClawSession(string Key, string Channel, DateTimeOffset CreatedAt, DateTimeOffset LastActivity, long MessageCount);

/// <summary>A session's history.</summary>
internal sealed record OpenClawHistory(IReadOnlyList<OpenClawMessage> Messages);

/// <summary>One message.</summary>
/// <param name="Sources">For a reply that was given knowledge: its sources (LuluClaw's addition); absent otherwise.</param>
internal sealed record OpenClawMessage(
    string Role, string Content, DateTimeOffset Timestamp,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SourceResponse>? Sources = null);

/// <summary>The gateway status.</summary>
internal sealed record OpenClawStatus([property: AllowedValues("healthy", "degraded")] string Status, string Version, long Uptime, long ActiveSessions, OpenClawModel Model);

/// <summary>The model in the status.</summary>
internal sealed record OpenClawModel(string Provider, string Model);

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
internal sealed partial class OpenClawJsonContext : JsonSerializerContext
{
    /// <summary>The context every response of this surface uses.</summary>
    public static OpenClawJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.CamelCase));
}
