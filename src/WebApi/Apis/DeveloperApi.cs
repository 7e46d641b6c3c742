using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Orleans;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// The LuluClaw Developer API: chat by bot, bot management with its reload and restart lifecycle,
/// and the workspace's own model provider keys (BYOK).
/// </summary>
internal static partial class DeveloperApi
{
    /// <summary>Longest bot name.</summary>
    public const int MaxNameLength = 200;

    /// <summary>Longest system prompt.</summary>
    public const int MaxSystemPromptLength = 20_000;

    /// <summary>Longest model name.</summary>
    public const int MaxModelLength = 200;

    /// <summary>Longest bot id a request may name.</summary>
    public const int MaxBotIdLength = 128;

    /// <summary>Longest evidence-gate answer.</summary>
    public const int MaxKnowledgeFallbackLength = 2_000;

    /// <summary>Longest provider key.</summary>
    public const int MaxProviderKeyLength = 1_000;

    /// <summary>Maps <c>/api/v1/chat</c>, <c>/api/v1/bots…</c> and <c>/api/v1/provider-keys…</c>.</summary>
    public static IEndpointRouteBuilder MapDeveloperApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapSurface("/api/v1", ErrorShapes.Lulu).ValidatesRequests();

        api.MapPost("/chat", ChatAsync).WithName("DeveloperChat")
            .WithSummary("Send a message to a bot (the workspace's primary bot unless bot_id names another)")
            .WithDescription(LuluChat.StreamingNote).WithTags("Developer API: chat")
            .RequireApiKey(ApiScopes.Chat).RunsChatTurn()
            .Produces<DeveloperChatResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream");

        var bots = api.MapGroup("/bots").WithTags("Developer API: bots").RequireApiKey(ApiScopes.Bots);
        bots.MapPost("/", CreateBotAsync).WithName("CreateBot").WithSummary("Create a bot; it is 'starting', then 'running'");
        bots.MapGet("/", ListBotsAsync).WithName("ListBots").WithSummary("List the workspace's bots with status, configuration and channels");
        bots.MapGet("/{botId}", GetBotAsync).WithName("GetBot").WithSummary("Get one bot");
        bots.MapPatch("/{botId}", UpdateBotAsync).WithName("UpdateBot")
            .WithSummary("Change the given fields; the bot reloads ('reloading', then 'running') and the next turn uses them");
        bots.MapPost("/{botId}/restart", RestartBotAsync).WithName("RestartBot")
            .WithSummary("Force a restart: the bot's activation and model client are rebuilt; its threads survive");
        bots.MapDelete("/{botId}", DeleteBotAsync).WithName("DeleteBot").WithSummary("Delete a bot for good and disconnect its channels");

        var keys = api.MapGroup("/provider-keys").WithTags("Developer API: provider keys").RequireApiKey(ApiScopes.Bots);
        keys.MapGet("/", ListProviderKeysAsync).WithName("ListProviderKeys").WithSummary("List the workspace's own provider keys (masked hints only)");
        keys.MapPut("/{provider}", PutProviderKeyAsync).WithName("PutProviderKey")
            .WithSummary("Store the workspace's own key for 'openai' or 'anthropic' (BYOK); encrypted, never returned");
        keys.MapDelete("/{provider}", DeleteProviderKeyAsync).WithName("DeleteProviderKey")
            .WithSummary("Remove the workspace's key; its bots go back to the platform's");
        return app;
    }

    // ---- chat ----

    private static Task<IResult> ChatAsync(DeveloperChatRequest body, HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var session = grains.Session(caller, body.SessionId ?? ChatTurns.NewSessionId());
        return ChatTurns.RunAsync(
            http, session, new ChatTurnRequest(body.Message, caller.Key.Id, "api", body.BotId), SseResponse.IsWanted(http.Request, body.Stream), LuluChat.Developer);
    }

    // ---- bots ----

    private static async Task<Created<BotResponse>> CreateBotAsync(CreateBotBody body, HttpContext http, IGrainFactory grains)
    {
        var id = BotIds.New();
        var bot = await grains.GetGrain<IBotGrain>(id).CreateAsync(
            new CreateBotRequest(
                http.GetCaller().WorkspaceId, body.Name.Trim(), body.SystemPrompt, body.Model?.Trim() ?? BotDefaults.Model, Normalize(body.Channels) ?? [],
                new BotKnowledge(body.Knowledge ?? true, body.KnowledgeThreshold, body.KnowledgeFallback?.Trim())),
            http.RequestAborted);
        return TypedResults.Created($"/api/v1/bots/{id}", ToResponse(bot));
    }

    private static async Task<Ok<BotResponse[]>> ListBotsAsync(HttpContext http, IGrainFactory grains)
    {
        var bots = await Workspace(http, grains).ListBotsAsync(http.RequestAborted);
        return TypedResults.Ok(bots.Select(ToResponse).ToArray());
    }

    private static async Task<Results<Ok<BotResponse>, NotFound<ErrorBody>>> GetBotAsync(string botId, HttpContext http, IGrainFactory grains)
    {
        var bot = await grains.GetGrain<IBotGrain>(botId).GetAsync(http.RequestAborted);
        return bot is not null && bot.WorkspaceId == http.GetCaller().WorkspaceId ? TypedResults.Ok(ToResponse(bot)) : BotNotFound(botId);
    }

    private static async Task<Results<Ok<BotResponse>, NotFound<ErrorBody>>> UpdateBotAsync(string botId, UpdateBotBody body, HttpContext http, IGrainFactory grains)
    {
        var bot = await grains.GetGrain<IBotGrain>(botId).UpdateAsync(
            http.GetCaller().WorkspaceId,
            new BotChanges(body.Name?.Trim(), body.SystemPrompt, body.Model?.Trim(), Normalize(body.Channels), body.Knowledge, body.KnowledgeThreshold, body.KnowledgeFallback?.Trim()),
            http.RequestAborted);
        return bot is null ? BotNotFound(botId) : TypedResults.Ok(ToResponse(bot));
    }

    private static async Task<Results<Ok<BotResponse>, NotFound<ErrorBody>>> RestartBotAsync(string botId, HttpContext http, IGrainFactory grains) =>
        await grains.GetGrain<IBotGrain>(botId).RestartAsync(http.GetCaller().WorkspaceId, http.RequestAborted) is { } bot
            ? TypedResults.Ok(ToResponse(bot))
            : BotNotFound(botId);

    private static async Task<Results<NoContent, NotFound<ErrorBody>>> DeleteBotAsync(string botId, HttpContext http, IGrainFactory grains) =>
        await grains.GetGrain<IBotGrain>(botId).DeleteAsync(http.GetCaller().WorkspaceId, http.RequestAborted) ? TypedResults.NoContent() : BotNotFound(botId);

    // ---- provider keys ----

    private static async Task<Ok<ProviderKeyResponse[]>> ListProviderKeysAsync(HttpContext http, IGrainFactory grains)
    {
        var keys = await Workspace(http, grains).ListProviderKeysAsync(http.RequestAborted);
        return TypedResults.Ok(keys.Select(k => new ProviderKeyResponse(k.Provider, k.Hint, k.UpdatedAt)).ToArray());
    }

    private static async Task<Results<Ok<ProviderKeyResponse>, NotFound<ErrorBody>>> PutProviderKeyAsync(
        string provider, ProviderKeyBody body, HttpContext http, IGrainFactory grains)
    {
        if (UnknownProvider(provider) is { } unknown)
        {
            return unknown;
        }

        var stored = await Workspace(http, grains).SetProviderKeyAsync(provider.ToLowerInvariant(), body.ApiKey.Trim(), http.RequestAborted);
        return stored is null
            ? TypedResults.NotFound(new ErrorBody("workspace not found"))
            : TypedResults.Ok(new ProviderKeyResponse(stored.Provider, stored.Hint, stored.UpdatedAt));
    }

    private static async Task<Results<NoContent, NotFound<ErrorBody>>> DeleteProviderKeyAsync(string provider, HttpContext http, IGrainFactory grains)
    {
        if (UnknownProvider(provider) is { } unknown)
        {
            return unknown;
        }

        return await Workspace(http, grains).DeleteProviderKeyAsync(provider.ToLowerInvariant(), http.RequestAborted)
            ? TypedResults.NoContent()
            : TypedResults.NotFound(new ErrorBody($"no {provider.ToLowerInvariant()} key is stored for this workspace"));
    }

    // ---- helpers ----

    private static IWorkspaceGrain Workspace(HttpContext http, IGrainFactory grains) =>
        grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D"));

    private static NotFound<ErrorBody> BotNotFound(string botId) => TypedResults.NotFound(new ErrorBody($"bot '{botId}' not found"));

    private static NotFound<ErrorBody>? UnknownProvider(string provider) =>
        ModelProviders.WithKeys.Contains(provider.ToLowerInvariant())
            ? null
            : TypedResults.NotFound(new ErrorBody(
                $"unknown provider '{provider}'; keys can be stored for {string.Join(", ", ModelProviders.WithKeys.Select(p => $"'{p}'"))}"));

    /// <summary>The 400 message for a model name with characters a model id never has, or null.</summary>
    internal static string? CheckModel(string? model) =>
        model is null || ModelName().IsMatch(model.Trim()) ? null : "'model' may contain only letters, digits and . _ : / -";

    /// <summary>The 400 message for a channel that is not one of <see cref="BotChannels.All"/>, or null.</summary>
    internal static string? CheckChannels(IReadOnlyList<string>? channels) =>
        channels?.FirstOrDefault(c => !BotChannels.All.Contains(c.Trim().ToLowerInvariant())) is { } unknown
            ? $"'channels' may contain {string.Join(", ", BotChannels.All.Select(c => $"'{c}'"))} (got '{unknown}')"
            : null;

    private static string[]? Normalize(IReadOnlyList<string>? channels) =>
        channels?.Select(c => c.Trim().ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToArray();

    private static BotResponse ToResponse(BotInfo b) => new(
        b.Id, b.Name, b.SystemPrompt, b.Model, b.Channels, b.Status.ToString().ToLowerInvariant(), b.StatusReason, b.RestartCount,
        b.CreatedAt, b.UpdatedAt, b.LastRestartedAt, b.Knowledge?.Enabled ?? true, b.Knowledge?.Threshold, b.Knowledge?.Fallback);

    [GeneratedRegex("^[A-Za-z0-9._:/-]+$")]
    private static partial Regex ModelName();
}

/// <summary><c>POST /api/v1/bots</c>.</summary>
internal sealed record CreateBotBody(
    [property: Required, StringLength(DeveloperApi.MaxNameLength, MinimumLength = 1), Description("Display name.")] string Name,
    [property: Required, StringLength(DeveloperApi.MaxSystemPromptLength, MinimumLength = 1), Description("The system prompt that defines the bot's behaviour.")]
    string SystemPrompt,
    [property: StringLength(DeveloperApi.MaxModelLength, MinimumLength = 1),
        Description("LLM model identifier; defaults to gpt-4o-mini. claude-* models use Anthropic, 'echo' answers without a provider.")]
    string? Model = null,
    [property: Description("Channel types: telegram, discord, slack."), AllowedValues("telegram", "discord", "slack")] IReadOnlyList<string>? Channels = null,
    [property: Description(BotKnowledgeFields.Knowledge)] bool? Knowledge = null,
    [property: Range(0.0, 1.0), Description(BotKnowledgeFields.Threshold)] double? KnowledgeThreshold = null,
    [property: StringLength(DeveloperApi.MaxKnowledgeFallbackLength, MinimumLength = 1), Description(BotKnowledgeFields.Fallback)] string? KnowledgeFallback = null)
    : IRequestBody
{
    /// <summary>Fields the body had that this type does not know: refused.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() => DeveloperApi.CheckModel(Model) ?? DeveloperApi.CheckChannels(Channels) ?? BotKnowledgeFields.Check(KnowledgeFallback);
}

/// <summary>What the knowledge fields of a bot's create and PATCH bodies mean.</summary>
internal static class BotKnowledgeFields
{
    public const string Knowledge = "Whether the bot answers from the workspace's ready knowledge sources (default true).";

    public const string Threshold =
        "The evidence gate, 0 to 1: the least cosine similarity between the question and the closest passage found for the bot to answer " +
        "from the knowledge; below it the bot says knowledge_fallback instead of guessing. Omit for the server's default.";

    public const string Fallback = "What the bot says when the evidence gate holds. Omit for the server's default words.";

    /// <summary>The 400 message for blank fallback words, or null.</summary>
    public static string? Check(string? fallback) =>
        fallback is not null && string.IsNullOrWhiteSpace(fallback) ? "'knowledge_fallback' must not be blank" : null;
}

/// <summary><c>PATCH /api/v1/bots/{bot_id}</c>: only the fields given change, and the bot reloads.</summary>
internal sealed record UpdateBotBody(
    [property: StringLength(DeveloperApi.MaxNameLength, MinimumLength = 1), Description("Display name.")] string? Name = null,
    [property: StringLength(DeveloperApi.MaxSystemPromptLength, MinimumLength = 1), Description("The system prompt.")] string? SystemPrompt = null,
    [property: StringLength(DeveloperApi.MaxModelLength, MinimumLength = 1), Description("LLM model identifier.")] string? Model = null,
    [property: Description("Channel types: telegram, discord, slack."), AllowedValues("telegram", "discord", "slack")] IReadOnlyList<string>? Channels = null,
    [property: Description(BotKnowledgeFields.Knowledge)] bool? Knowledge = null,
    [property: Range(0.0, 1.0), Description(BotKnowledgeFields.Threshold)] double? KnowledgeThreshold = null,
    [property: StringLength(DeveloperApi.MaxKnowledgeFallbackLength, MinimumLength = 1), Description(BotKnowledgeFields.Fallback)] string? KnowledgeFallback = null)
    : IRequestBody
{
    /// <summary>Fields the body had that this type does not know: refused.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() =>
        Name is null && SystemPrompt is null && Model is null && Channels is null && Knowledge is null && KnowledgeThreshold is null && KnowledgeFallback is null
            ? "nothing to change: send at least one of 'name', 'system_prompt', 'model', 'channels', 'knowledge', 'knowledge_threshold', 'knowledge_fallback'"
            : DeveloperApi.CheckModel(Model) ?? DeveloperApi.CheckChannels(Channels) ?? BotKnowledgeFields.Check(KnowledgeFallback);
}

/// <summary><c>PUT /api/v1/provider-keys/{provider}</c>.</summary>
internal sealed record ProviderKeyBody(
    [property: Required, StringLength(DeveloperApi.MaxProviderKeyLength, MinimumLength = 1),
        Description("The workspace's own key for the provider; stored encrypted, never shown again.")]
    string ApiKey) : IRequestBody
{
    /// <summary>Fields the body had that this type does not know: refused.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() => ApiKey.Trim().Any(char.IsWhiteSpace) ? "'api_key' must not contain whitespace" : null;
}
