using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.WebApi.Http;

namespace LuluClaw.WebApi.Apis;

/// <summary>The chat response of the Gateway and the Developer API.</summary>
public sealed record ChatResponse(string Reply, string SessionId, long CreditsUsed, long? CreditsRemaining);

/// <summary>The data of a streamed <c>delta</c> event: the next piece of the reply.</summary>
public sealed record DeltaEvent(string Content);

/// <summary>A workspace as the admin API shows it.</summary>
public sealed record WorkspaceResponse(Guid Id, string Name, string Plan, long CreditsRemaining, string PrimaryBotId, DateTimeOffset CreatedAt);

/// <summary>One page of workspaces, newest first (<c>GET /api/admin/workspaces</c>).</summary>
/// <param name="Total">How many workspaces there are in all.</param>
public sealed record WorkspaceListResponse(IReadOnlyList<WorkspaceResponse> Workspaces, int Page, int Limit, long Total);

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

// Request bodies are read field by field (JsonBody), so each 400 can name its field; these types
// only describe them in the OpenAPI document. Properties without `required` are optional.

/// <summary><c>POST /api/gateway/chat</c>.</summary>
public sealed class GatewayChatRequest
{
    /// <summary>The user message (1 to 4,000 characters).</summary>
    public required string Message { get; init; }

    /// <summary>The thread (at most 128 characters); omit to start a new one.</summary>
    public string? SessionId { get; init; }

    /// <summary>Stream the reply as server-sent events (also chosen by <c>Accept: text/event-stream</c>).</summary>
    public bool? Stream { get; init; }
}

/// <summary><c>POST /api/v1/chat</c>.</summary>
public sealed class DeveloperChatRequest
{
    /// <summary>The user message (1 to 4,000 characters).</summary>
    public required string Message { get; init; }

    /// <summary>The thread (at most 128 characters); omit to start a new one.</summary>
    public string? SessionId { get; init; }

    /// <summary>The bot to answer; defaults to the workspace's primary bot. A session stays with the bot it started with.</summary>
    public string? BotId { get; init; }

    /// <summary>Stream the reply as server-sent events (also chosen by <c>Accept: text/event-stream</c>).</summary>
    public bool? Stream { get; init; }
}

/// <summary><c>POST /api/v1/bots</c>.</summary>
public sealed class CreateBotBody
{
    /// <summary>Display name.</summary>
    public required string Name { get; init; }

    /// <summary>The system prompt that defines the bot's behaviour.</summary>
    public required string SystemPrompt { get; init; }

    /// <summary>LLM model identifier; defaults to <c>gpt-4o-mini</c>. <c>claude-*</c> models use Anthropic.</summary>
    public string? Model { get; init; }

    /// <summary>Channel types: <c>telegram</c>, <c>discord</c>, <c>slack</c>.</summary>
    public IReadOnlyList<string>? Channels { get; init; }
}

/// <summary><c>PATCH /api/v1/bots/{bot_id}</c>: only the fields given change, and the bot reloads.</summary>
public sealed class UpdateBotBody
{
    /// <summary>Display name.</summary>
    public string? Name { get; init; }

    /// <summary>The system prompt.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>LLM model identifier.</summary>
    public string? Model { get; init; }

    /// <summary>Channel types.</summary>
    public IReadOnlyList<string>? Channels { get; init; }
}

/// <summary><c>PUT /api/v1/provider-keys/{provider}</c>.</summary>
public sealed class ProviderKeyBody
{
    /// <summary>The workspace's own key for the provider; stored encrypted, never shown again.</summary>
    public required string ApiKey { get; init; }
}

/// <summary>One message of a thread.</summary>
/// <param name="CutShort">A streamed reply the client left before it ended.</param>
public sealed record MessageResponse(long Seq, string Role, string Content, DateTimeOffset CreatedAt, bool CutShort);

/// <summary>A thread's history.</summary>
/// <param name="Silo">The Orleans silo the session's activation lives on now (admin only), for operators following a conversation through the cluster.</param>
public sealed record HistoryResponse(string SessionId, IReadOnlyList<MessageResponse> Messages, string? Silo = null);

/// <summary>The cluster, for operators (<c>GET /api/admin/cluster</c>).</summary>
public sealed record ClusterResponse(IReadOnlyList<SiloResponse> Silos, IReadOnlyList<GrainActivationsResponse> Activations);

/// <summary>A silo as Orleans' membership table has it.</summary>
/// <param name="Address">Orleans' address of the silo (<c>ip:port@generation</c>).</param>
/// <param name="Status"><c>active</c>, <c>joining</c>, <c>shuttingdown</c>, <c>dead</c>, …</param>
/// <param name="IAmAliveAt">When the silo last wrote that it is alive.</param>
public sealed record SiloResponse(string Address, string Name, string Status, DateTimeOffset StartedAt, DateTimeOffset IAmAliveAt);

/// <summary>How many activations of one grain type live in the cluster, and on which silos.</summary>
public sealed record GrainActivationsResponse(string GrainType, int Count, IReadOnlyDictionary<string, int> BySilo);

/// <summary>Source-generated snake_case JSON of the LuluClaw surfaces (Gateway, Developer API, admin).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(ChatResponse))]
[JsonSerializable(typeof(DeltaEvent))]
[JsonSerializable(typeof(WorkspaceResponse))]
[JsonSerializable(typeof(WorkspaceListResponse))]
[JsonSerializable(typeof(CreditsResponse))]
[JsonSerializable(typeof(KeyResponse))]
[JsonSerializable(typeof(HistoryResponse))]
[JsonSerializable(typeof(BotResponse))]
[JsonSerializable(typeof(BotResponse[]))]
[JsonSerializable(typeof(ProviderKeyResponse))]
[JsonSerializable(typeof(ProviderKeyResponse[]))]
[JsonSerializable(typeof(ClusterResponse))]
public sealed partial class LuluJsonContext : JsonSerializerContext
{
    /// <summary>The context every response uses: snake_case (see <see cref="SurfaceJson"/>).</summary>
    public static LuluJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.SnakeCaseLower));
}

/// <summary>The serializer options every surface's source-generated context is built with.</summary>
public static class SurfaceJson
{
    /// <summary>
    /// Web defaults with the surface's property naming, and only the escaping JSON needs (an API body
    /// is not HTML, so quotes in error messages stay readable).
    /// </summary>
    public static JsonSerializerOptions Options(JsonNamingPolicy naming) => new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = naming,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
