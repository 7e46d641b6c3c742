using System.ComponentModel.DataAnnotations;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.WebApi.Http;

namespace LuluClaw.WebApi.Apis;

/// <summary>The chat response of the Gateway: exactly its documented fields.</summary>
internal sealed record ChatResponse(string Reply, string SessionId, long CreditsUsed, long? CreditsRemaining);

/// <summary>The chat response of the Developer API: the Gateway's fields, and the knowledge sources the reply was given, if any.</summary>
/// <param name="Sources">The knowledge sources the reply was given (one per source and page, in the order the prompt showed them); absent when none was.</param>
internal sealed record DeveloperChatResponse(
    string Reply, string SessionId, long CreditsUsed, long? CreditsRemaining,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SourceResponse>? Sources = null);

/// <summary>A knowledge source a reply used.</summary>
/// <param name="Id">The source (<c>ks_…</c>).</param>
/// <param name="Url">The page of a website the passages came from; null for a document or a manual source.</param>
internal sealed record SourceResponse(string Id, string Name, string? Url)
{
    /// <summary>The sources of a reply as the surfaces show them; null for none.</summary>
    public static SourceResponse[]? Of(IReadOnlyList<MessageSource>? sources) => sources?.Select(s => new SourceResponse(s.Id, s.Name, s.Url)).ToArray();
}

/// <summary>The data of a streamed <c>delta</c> event: the next piece of the reply.</summary>
internal sealed record DeltaEvent(string Content);

/// <summary>A workspace as the admin API shows it.</summary>
internal sealed record WorkspaceResponse(Guid Id, string Name, string Plan, long CreditsRemaining, string PrimaryBotId, DateTimeOffset CreatedAt);

/// <summary>One page of workspaces, newest first (<c>GET /api/admin/workspaces</c>).</summary>
/// <param name="Total">How many workspaces there are in all.</param>
internal sealed record WorkspaceListResponse(IReadOnlyList<WorkspaceResponse> Workspaces, int Page, int Limit, long Total);

/// <summary>A balance after a top-up.</summary>
internal sealed record CreditsResponse(long CreditsRemaining);

/// <summary>A key just minted: the only time its plaintext is shown.</summary>
internal sealed record KeyResponse(string Id, string Key, string Prefix, IReadOnlyList<string> Scopes, string Plan);

/// <summary>A bot: configuration, lifecycle and channels.</summary>
/// <param name="Status"><c>starting</c>, <c>running</c>, <c>reloading</c>, <c>restarting</c> or <c>error</c>.</param>
/// <param name="StatusReason">Why the bot is in <c>error</c>; null otherwise.</param>
/// <param name="Channels">The channel types the bot is connected to: <c>telegram</c>, <c>discord</c>, <c>slack</c>.</param>
/// <param name="Knowledge">Whether its turns answer from the workspace's knowledge sources.</param>
/// <param name="KnowledgeThreshold">Its evidence gate (0 to 1); null: the server's default (<c>Knowledge:EvidenceThreshold</c>).</param>
/// <param name="KnowledgeFallback">What it says when the gate holds; null: the server's default (<c>Knowledge:FallbackAnswer</c>).</param>
internal sealed record BotResponse(
    string Id,
    string Name,
    string SystemPrompt,
    string Model,
    [property: AllowedValues("telegram", "discord", "slack")] IReadOnlyList<string> Channels,
    [property: AllowedValues("starting", "running", "reloading", "restarting", "error")] string Status,
    string? StatusReason,
    long RestartCount,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastRestartedAt,
    bool Knowledge,
    double? KnowledgeThreshold,
    string? KnowledgeFallback);

/// <summary>A stored provider key: only its masked hint is ever shown.</summary>
internal sealed record ProviderKeyResponse(string Provider, string Hint, DateTimeOffset UpdatedAt);

/// <summary>One message of a thread.</summary>
/// <param name="CutShort">A streamed reply the client left before it ended.</param>
/// <param name="Sources">For a reply that was given knowledge: its sources; absent otherwise.</param>
internal sealed record MessageResponse(
    long Seq, string Role, string Content, DateTimeOffset CreatedAt, bool CutShort,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SourceResponse>? Sources = null);

/// <summary>A thread's history.</summary>
/// <param name="Silo">The Orleans silo the session's activation lives on now (admin only), for operators following a conversation through the cluster.</param>
internal sealed record HistoryResponse(string SessionId, IReadOnlyList<MessageResponse> Messages, string? Silo = null);

/// <summary>The cluster, for operators (<c>GET /api/admin/cluster</c>).</summary>
internal sealed record ClusterResponse(IReadOnlyList<SiloResponse> Silos, IReadOnlyList<GrainActivationsResponse> Activations);

/// <summary>A silo as Orleans' membership table has it.</summary>
/// <param name="Address">Orleans' address of the silo (<c>ip:port@generation</c>).</param>
/// <param name="Status"><c>active</c>, <c>joining</c>, <c>shuttingdown</c>, <c>dead</c>, …</param>
/// <param name="IAmAliveAt">When the silo last wrote that it is alive.</param>
internal sealed record SiloResponse(string Address, string Name, string Status, DateTimeOffset StartedAt, DateTimeOffset IAmAliveAt);

/// <summary>How many activations of one grain type live in the cluster, and on which silos.</summary>
internal sealed record GrainActivationsResponse(string GrainType, int Count, IReadOnlyDictionary<string, int> BySilo);

/// <summary>Source-generated snake_case JSON of the LuluClaw surfaces (Gateway, Developer API, admin).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(ChatResponse))]
[JsonSerializable(typeof(DeveloperChatResponse))]
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
[JsonSerializable(typeof(KnowledgeSourceResponse))]
[JsonSerializable(typeof(KnowledgeSourceListResponse))]
internal sealed partial class LuluJsonContext : JsonSerializerContext
{
    /// <summary>The context every response uses: snake_case (see <see cref="SurfaceJson"/>).</summary>
    public static LuluJsonContext Web { get; } = new(SurfaceJson.Options(JsonNamingPolicy.SnakeCaseLower));
}

/// <summary>The serializer options every surface's source-generated context is built with.</summary>
internal static class SurfaceJson
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
