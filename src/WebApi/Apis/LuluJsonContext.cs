using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.WebApi.Http;

namespace LuluClaw.WebApi.Apis;

/// <summary>The chat response of the Gateway and the Developer API.</summary>
public sealed record ChatResponse(string Reply, string SessionId, long CreditsUsed, long? CreditsRemaining);

/// <summary>A workspace as the admin API shows it.</summary>
public sealed record WorkspaceResponse(Guid Id, string Name, string Plan, long CreditsRemaining, string PrimaryBotId, DateTimeOffset CreatedAt);

/// <summary>A balance after a top-up.</summary>
public sealed record CreditsResponse(long CreditsRemaining);

/// <summary>A key just minted: the only time its plaintext is shown.</summary>
public sealed record KeyResponse(string Id, string Key, string Prefix, IReadOnlyList<string> Scopes);

/// <summary>One message of a thread.</summary>
public sealed record MessageResponse(long Seq, string Role, string Content, DateTimeOffset CreatedAt);

/// <summary>A thread's history.</summary>
public sealed record HistoryResponse(string SessionId, IReadOnlyList<MessageResponse> Messages);

/// <summary>Source-generated snake_case JSON of the LuluClaw surfaces (Gateway, Developer API, admin).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(ChatResponse))]
[JsonSerializable(typeof(WorkspaceResponse))]
[JsonSerializable(typeof(CreditsResponse))]
[JsonSerializable(typeof(KeyResponse))]
[JsonSerializable(typeof(HistoryResponse))]
public sealed partial class LuluJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The context every response uses: snake_case, and only the escaping JSON needs (an API body is
    /// not HTML, so quotes in error messages stay readable).
    /// </summary>
    public static LuluJsonContext Web { get; } = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
