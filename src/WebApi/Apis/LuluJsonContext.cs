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
public sealed record KeyResponse(string Id, string Key, string Prefix, IReadOnlyList<string> Scopes, string Plan);

/// <summary>A bot: configuration, lifecycle and channels.</summary>
/// <param name="Status"><c>starting</c>, <c>running</c>, <c>reloading</c>, <c>restarting</c> or <c>error</c>.</param>
/// <param name="StatusReason">Why the bot is in <c>error</c>; null otherwise.</param>
/// <param name="Channels">The channel types the bot is connected to: <c>telegram</c>, <c>discord</c>, <c>slack</c>.</param>
public sealed record BotResponse(
    string Id,
    string Name,
    string SystemPrompt,
    string Model,
    IReadOnlyList<string> Channels,
    string Status,
    string? StatusReason,
    long RestartCount,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastRestartedAt);

/// <summary>A stored provider key: only its masked hint is ever shown.</summary>
public sealed record ProviderKeyResponse(string Provider, string Hint, DateTimeOffset UpdatedAt);

/// <summary><c>POST /api/gateway/chat</c> (documents the body; it is read field by field).</summary>
/// <param name="Message">The user message (1 to 4,000 characters).</param>
/// <param name="SessionId">The thread (at most 128 characters); omit to start a new one.</param>
public sealed record GatewayChatRequest([property: JsonRequired] string Message, string? SessionId);

/// <summary><c>POST /api/v1/chat</c>.</summary>
/// <param name="Message">The user message (1 to 4,000 characters).</param>
/// <param name="SessionId">The thread (at most 128 characters); omit to start a new one.</param>
/// <param name="BotId">The bot to answer; defaults to the workspace's primary bot. A session stays with the bot it started with.</param>
public sealed record DeveloperChatRequest([property: JsonRequired] string Message, string? SessionId, string? BotId);

/// <summary><c>POST /api/v1/bots</c>.</summary>
/// <param name="Model">LLM model identifier; defaults to <c>gpt-4o-mini</c>. <c>claude-*</c> models use Anthropic.</param>
/// <param name="Channels">Channel types: <c>telegram</c>, <c>discord</c>, <c>slack</c>.</param>
public sealed record CreateBotBody(
    [property: JsonRequired] string Name, [property: JsonRequired] string SystemPrompt, string? Model, IReadOnlyList<string>? Channels);

/// <summary><c>PATCH /api/v1/bots/{bot_id}</c>: only the fields given change, and the bot reloads.</summary>
public sealed record UpdateBotBody(string? Name, string? SystemPrompt, string? Model, IReadOnlyList<string>? Channels);

/// <summary><c>PUT /api/v1/provider-keys/{provider}</c>.</summary>
/// <param name="ApiKey">The workspace's own key for the provider; stored encrypted, never shown again.</param>
public sealed record ProviderKeyBody([property: JsonRequired] string ApiKey);

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
[JsonSerializable(typeof(BotResponse))]
[JsonSerializable(typeof(BotResponse[]))]
[JsonSerializable(typeof(ProviderKeyResponse))]
[JsonSerializable(typeof(ProviderKeyResponse[]))]
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
