using System.Text.RegularExpressions;
using Orleans;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// The LuluClaw Developer API: chat by bot, bot management with its reload and restart lifecycle,
/// and the workspace's own model provider keys (BYOK).
/// </summary>
public static partial class DeveloperApi
{
    private const int MaxNameLength = 200;
    private const int MaxSystemPromptLength = 20_000;
    private const int MaxModelLength = 200;
    private const int MaxBotIdLength = 128;
    private const int MaxProviderKeyLength = 1_000;

    /// <summary>Maps <c>/api/v1/chat</c>, <c>/api/v1/bots…</c> and <c>/api/v1/provider-keys…</c>.</summary>
    public static IEndpointRouteBuilder MapDeveloperApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1");

        api.MapPost("/chat", ChatAsync).WithName("DeveloperChat")
            .WithSummary("Send a message to a bot (the workspace's primary bot unless bot_id names another)")
            .WithDescription(GatewayApi.StreamingNote).WithTags("Developer API: chat")
            .RequireApiKey(ApiScopes.Chat, GatewayApi.Error, turn: true)
            .Accepts<DeveloperChatRequest>("application/json").Produces<ChatResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesErrors(400, 401, 402, 403, 404, 409, 429, 503);

        var bots = api.MapGroup("/bots").WithTags("Developer API: bots").RequireApiKey(ApiScopes.Bots, GatewayApi.Error);
        bots.MapPost("/", CreateBotAsync).WithName("CreateBot").WithSummary("Create a bot; it is 'starting', then 'running'")
            .Accepts<CreateBotBody>("application/json").Produces<BotResponse>(StatusCodes.Status201Created).ProducesErrors(400, 401, 403);
        bots.MapGet("/", ListBotsAsync).WithName("ListBots").WithSummary("List the workspace's bots with status, configuration and channels").Produces<BotResponse[]>().ProducesErrors(401, 403);
        bots.MapGet("/{botId}", GetBotAsync).WithName("GetBot").WithSummary("Get one bot").Produces<BotResponse>().ProducesErrors(401, 403, 404);
        bots.MapPatch("/{botId}", UpdateBotAsync).WithName("UpdateBot")
            .WithSummary("Change the given fields; the bot reloads ('reloading', then 'running') and the next turn uses them")
            .Accepts<UpdateBotBody>("application/json").Produces<BotResponse>().ProducesErrors(400, 401, 403, 404);
        bots.MapPost("/{botId}/restart", RestartBotAsync).WithName("RestartBot")
            .WithSummary("Force a restart: the bot's activation and model client are rebuilt; its threads survive").Produces<BotResponse>().ProducesErrors(401, 403, 404);
        bots.MapDelete("/{botId}", DeleteBotAsync).WithName("DeleteBot").WithSummary("Delete a bot for good and disconnect its channels").Produces(StatusCodes.Status204NoContent).ProducesErrors(401, 403, 404);

        var keys = api.MapGroup("/provider-keys").WithTags("Developer API: provider keys").RequireApiKey(ApiScopes.Bots, GatewayApi.Error);
        keys.MapGet("/", ListProviderKeysAsync).WithName("ListProviderKeys").WithSummary("List the workspace's own provider keys (masked hints only)").Produces<ProviderKeyResponse[]>().ProducesErrors(401, 403);
        keys.MapPut("/{provider}", PutProviderKeyAsync).WithName("PutProviderKey")
            .WithSummary("Store the workspace's own key for 'openai' or 'anthropic' (BYOK); encrypted, never returned")
            .Accepts<ProviderKeyBody>("application/json").Produces<ProviderKeyResponse>().ProducesErrors(400, 401, 403, 404);
        keys.MapDelete("/{provider}", DeleteProviderKeyAsync).WithName("DeleteProviderKey")
            .WithSummary("Remove the workspace's key; its bots go back to the platform's")
            .Produces(StatusCodes.Status204NoContent).ProducesErrors(401, 403, 404);
        return app;
    }

    // ---- chat ----

    private static async Task<IResult> ChatAsync(HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return BadRequest(error!);
            }

            var message = body.String("message", required: true, 1, GatewayApi.MaxMessageLength);
            var sessionId = body.String("session_id", required: false, 1, GatewayApi.MaxSessionIdLength);
            var botId = body.String("bot_id", required: false, 1, MaxBotIdLength);
            var stream = body.Boolean("stream", required: false);
            if (body.Error is { } invalid)
            {
                return BadRequest(invalid);
            }

            return await GatewayApi.SendTurnAsync(
                http, grains, caller, new ChatTurnRequest(message!, caller.Key.Id, "api", botId), sessionId, SseResponse.IsWanted(http.Request, stream));
        }
    }

    // ---- bots ----

    private static async Task<IResult> CreateBotAsync(HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return BadRequest(error!);
            }

            body.OnlyFields("name", "system_prompt", "model", "channels");
            var name = body.String("name", required: true, 1, MaxNameLength);
            var systemPrompt = body.String("system_prompt", required: true, 1, MaxSystemPromptLength);
            var model = body.String("model", required: false, 1, MaxModelLength);
            var channels = body.StringArray("channels", required: false);
            if ((body.Error ?? CheckModel(model) ?? CheckChannels(channels)) is { } invalid)
            {
                return BadRequest(invalid);
            }

            var id = BotIds.New();
            var bot = await grains.GetGrain<IBotGrain>(id).CreateAsync(
                new CreateBotRequest(caller.WorkspaceId, name!.Trim(), systemPrompt!, model?.Trim() ?? BotDefaults.Model, Normalize(channels) ?? []),
                http.RequestAborted);
            http.Response.Headers.Location = $"/api/v1/bots/{id}";
            return Bot(bot, StatusCodes.Status201Created);
        }
    }

    private static async Task<IResult> ListBotsAsync(HttpContext http, IGrainFactory grains)
    {
        var bots = await grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D")).ListBotsAsync(http.RequestAborted);
        return TypedResults.Json(bots.Select(ToResponse).ToArray(), LuluJsonContext.Web.BotResponseArray);
    }

    private static async Task<IResult> GetBotAsync(string botId, HttpContext http, IGrainFactory grains)
    {
        var bot = await grains.GetGrain<IBotGrain>(botId).GetAsync(http.RequestAborted);
        return bot is not null && bot.WorkspaceId == http.GetCaller().WorkspaceId ? Bot(bot) : BotNotFound(botId);
    }

    private static async Task<IResult> UpdateBotAsync(string botId, HttpContext http, IGrainFactory grains)
    {
        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return BadRequest(error!);
            }

            string[] fields = ["name", "system_prompt", "model", "channels"];
            body.OnlyFields(fields);
            var name = body.String("name", required: false, 1, MaxNameLength);
            var systemPrompt = body.String("system_prompt", required: false, 1, MaxSystemPromptLength);
            var model = body.String("model", required: false, 1, MaxModelLength);
            var channels = body.StringArray("channels", required: false);
            if ((body.Error ?? CheckModel(model) ?? CheckChannels(channels)) is { } invalid)
            {
                return BadRequest(invalid);
            }

            if (name is null && systemPrompt is null && model is null && channels is null)
            {
                return BadRequest($"nothing to change: send at least one of {string.Join(", ", fields.Select(f => $"'{f}'"))}");
            }

            var bot = await grains.GetGrain<IBotGrain>(botId).UpdateAsync(
                http.GetCaller().WorkspaceId, new BotChanges(name?.Trim(), systemPrompt, model?.Trim(), Normalize(channels)), http.RequestAborted);
            return bot is null ? BotNotFound(botId) : Bot(bot);
        }
    }

    private static async Task<IResult> RestartBotAsync(string botId, HttpContext http, IGrainFactory grains) =>
        await grains.GetGrain<IBotGrain>(botId).RestartAsync(http.GetCaller().WorkspaceId, http.RequestAborted) is { } bot ? Bot(bot) : BotNotFound(botId);

    private static async Task<IResult> DeleteBotAsync(string botId, HttpContext http, IGrainFactory grains) =>
        await grains.GetGrain<IBotGrain>(botId).DeleteAsync(http.GetCaller().WorkspaceId, http.RequestAborted) ? TypedResults.NoContent() : BotNotFound(botId);

    // ---- provider keys ----

    private static async Task<IResult> ListProviderKeysAsync(HttpContext http, IGrainFactory grains)
    {
        var keys = await Workspace(http, grains).ListProviderKeysAsync(http.RequestAborted);
        return TypedResults.Json(keys.Select(k => new ProviderKeyResponse(k.Provider, k.Hint, k.UpdatedAt)).ToArray(), LuluJsonContext.Web.ProviderKeyResponseArray);
    }

    private static async Task<IResult> PutProviderKeyAsync(string provider, HttpContext http, IGrainFactory grains)
    {
        if (UnknownProvider(provider) is { } unknown)
        {
            return unknown;
        }

        var (body, error) = await JsonBody.ReadAsync(http.Request, http.RequestAborted);
        using (body)
        {
            if (body is null)
            {
                return BadRequest(error!);
            }

            body.OnlyFields("api_key");
            var apiKey = body.String("api_key", required: true, 1, MaxProviderKeyLength)?.Trim();
            if (body.Error is { } invalid)
            {
                return BadRequest(invalid);
            }

            if (apiKey!.Any(char.IsWhiteSpace))
            {
                return BadRequest("'api_key' must not contain whitespace");
            }

            var stored = await Workspace(http, grains).SetProviderKeyAsync(provider.ToLowerInvariant(), apiKey!, http.RequestAborted);
            return stored is null
                ? GatewayApi.Error(StatusCodes.Status404NotFound, "workspace not found")
                : TypedResults.Json(new ProviderKeyResponse(stored.Provider, stored.Hint, stored.UpdatedAt), LuluJsonContext.Web.ProviderKeyResponse);
        }
    }

    private static async Task<IResult> DeleteProviderKeyAsync(string provider, HttpContext http, IGrainFactory grains)
    {
        if (UnknownProvider(provider) is { } unknown)
        {
            return unknown;
        }

        return await Workspace(http, grains).DeleteProviderKeyAsync(provider.ToLowerInvariant(), http.RequestAborted)
            ? TypedResults.NoContent()
            : GatewayApi.Error(StatusCodes.Status404NotFound, $"no {provider.ToLowerInvariant()} key is stored for this workspace");
    }

    // ---- helpers ----

    private static IWorkspaceGrain Workspace(HttpContext http, IGrainFactory grains) =>
        grains.GetGrain<IWorkspaceGrain>(http.GetCaller().WorkspaceId.ToString("D"));

    private static IResult BadRequest(string message) => GatewayApi.Error(StatusCodes.Status400BadRequest, message);

    private static IResult BotNotFound(string botId) => GatewayApi.Error(StatusCodes.Status404NotFound, $"bot '{botId}' not found");

    private static IResult? UnknownProvider(string provider) =>
        ModelProviders.WithKeys.Contains(provider.ToLowerInvariant())
            ? null
            : GatewayApi.Error(StatusCodes.Status404NotFound,
                $"unknown provider '{provider}'; keys can be stored for {string.Join(", ", ModelProviders.WithKeys.Select(p => $"'{p}'"))}");

    private static string? CheckModel(string? model) =>
        model is null || ModelName().IsMatch(model.Trim()) ? null : "'model' may contain only letters, digits and . _ : / -";

    private static string? CheckChannels(IReadOnlyList<string>? channels) =>
        channels?.FirstOrDefault(c => !BotChannels.All.Contains(c.Trim().ToLowerInvariant())) is { } unknown
            ? $"'channels' may contain {string.Join(", ", BotChannels.All.Select(c => $"'{c}'"))} (got '{unknown}')"
            : null;

    private static string[]? Normalize(IReadOnlyList<string>? channels) =>
        channels?.Select(c => c.Trim().ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToArray();

    private static IResult Bot(BotInfo bot, int status = StatusCodes.Status200OK) =>
        TypedResults.Json(ToResponse(bot), LuluJsonContext.Web.BotResponse, statusCode: status);

    private static BotResponse ToResponse(BotInfo b) => new(
        b.Id, b.Name, b.SystemPrompt, b.Model, b.Channels, b.Status.ToString().ToLowerInvariant(), b.StatusReason, b.RestartCount,
        b.CreatedAt, b.UpdatedAt, b.LastRestartedAt);

    [GeneratedRegex("^[A-Za-z0-9._:/-]+$")]
    private static partial Regex ModelName();
}
