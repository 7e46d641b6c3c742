using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.Bench.Bare;

// The bare ASP.NET Core endpoint LuluClaw's gateway is compared with: the same request
// (POST /api/gateway/chat, bearer key, {"message", "session_id"}) parsed with source-generated
// System.Text.Json, answered with a fixed reply of the gateway's shape. No storage, no actors.
// Usage: LuluClaw.Bench.Bare --port <port> (listens on 127.0.0.1 only).
var port = args.Length == 2 && args[0] == "--port" && int.TryParse(args[1], out var p) ? p : 5090;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));

var app = builder.Build();
app.MapPost("/api/gateway/chat", ChatAsync);
app.MapGet("/health", () => "ok");
app.Run();

static async Task<IResult> ChatAsync(HttpRequest request)
{
    if (!request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.Ordinal))
    {
        return Results.Json(new ErrorReply("missing key"), BareJsonContext.Default.ErrorReply, statusCode: StatusCodes.Status401Unauthorized);
    }

    ChatRequest? body;
    try
    {
        body = await JsonSerializer.DeserializeAsync(request.Body, BareJsonContext.Default.ChatRequest, request.HttpContext.RequestAborted);
    }
    catch (JsonException)
    {
        body = null;
    }

    return string.IsNullOrEmpty(body?.Message)
        ? Results.Json(new ErrorReply("message is required"), BareJsonContext.Default.ErrorReply, statusCode: StatusCodes.Status400BadRequest)
        : Results.Json(new ChatReply("Echo: hello", body.SessionId ?? "sess_bare", 1, 99_999_999), BareJsonContext.Default.ChatReply);
}

namespace LuluClaw.Bench.Bare
{
    /// <summary>The gateway's chat request.</summary>
    internal sealed record ChatRequest(string? Message, string? SessionId, bool? Stream);

    /// <summary>The gateway's chat answer.</summary>
    internal sealed record ChatReply(string Reply, string SessionId, long CreditsUsed, long CreditsRemaining);

    /// <summary>The gateway's error shape.</summary>
    internal sealed record ErrorReply(string Error);

    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
    [JsonSerializable(typeof(ChatRequest))]
    [JsonSerializable(typeof(ChatReply))]
    [JsonSerializable(typeof(ErrorReply))]
    internal sealed partial class BareJsonContext : JsonSerializerContext;
}
