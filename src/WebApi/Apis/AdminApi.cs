using Orleans;
using Orleans.Dashboard;
using Orleans.Runtime;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using System.ComponentModel.DataAnnotations;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// The operators' API: workspaces, plans, credits and keys. It exists only when an admin token is
/// configured; without one its routes are not mapped (404).
/// </summary>
internal static class AdminApi
{
    /// <summary>Where the Orleans Dashboard is served when <c>Admin:Dashboard</c> is on.</summary>
    public const string DashboardPath = "/api/admin/dashboard";

    /// <summary>The most credits one request may set or add (a quarter of <see cref="long.MaxValue"/>, so sums cannot overflow).</summary>
    public const string MaxCreditsText = "2305843009213693951";

    /// <summary>Credits a workspace starts with when the request names none.</summary>
    public const long DefaultCredits = 250;

    /// <summary>Maps <c>/api/admin/…</c> behind <paramref name="adminToken"/>; maps nothing when it is empty.</summary>
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app, string? adminToken)
    {
        if (string.IsNullOrWhiteSpace(adminToken))
        {
            return app;
        }

        // Operators' routes are not part of the public API document.
        var group = app.MapGroup("/api/admin/workspaces").WithTags("Admin").ExcludeFromDescription().WithErrorShape(ErrorShapes.Lulu).RequireAdminToken().ValidatesRequests();
        group.MapPost("/", CreateWorkspaceAsync).WithName("AdminCreateWorkspace");
        group.MapGet("/", ListWorkspacesAsync).WithName("AdminListWorkspaces");
        group.MapGet("/{id}", GetWorkspaceAsync).WithName("AdminGetWorkspace");
        group.MapPatch("/{id}", ChangePlanAsync).WithName("AdminChangePlan");
        group.MapPost("/{id}/credits", AddCreditsAsync).WithName("AdminAddCredits");
        group.MapPost("/{id}/keys", CreateKeyAsync).WithName("AdminCreateKey");
        group.MapDelete("/{id}/keys/{keyId}", RevokeKeyAsync).WithName("AdminRevokeKey");
        group.MapGet("/{id}/sessions/{sessionId}/messages", GetHistoryAsync).WithName("AdminGetHistory");
        app.MapGet("/api/admin/cluster", GetClusterAsync).WithName("AdminGetCluster").WithTags("Admin").ExcludeFromDescription()
            .WithErrorShape(ErrorShapes.Lulu).RequireAdminToken();
        if (WebApiEndpoints.DashboardEnabled(app.ServiceProvider.GetRequiredService<IConfiguration>()))
        {
            // Orleans' own dashboard, every route of it (page, assets, JSON) behind the admin token.
            app.MapOrleansDashboard(DashboardPath).ExcludeFromDescription().WithErrorShape(ErrorShapes.Lulu).RequireAdminToken(browser: true);
        }

        return app;
    }

    /// <summary>
    /// The cluster as Orleans' membership table has it (every silo it knows, dead ones included until
    /// they are cleaned up), and how many activations of each grain type live on which silo.
    /// </summary>
    private static async Task<IResult> GetClusterAsync(IGrainFactory grains)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetDetailedHosts(onlyActive: false);
        var statistics = await management.GetSimpleGrainStatistics();
        var silos = hosts
            .OrderBy(h => h.StartTime)
            .Select(h => new SiloResponse(
                h.SiloAddress.ToParsableString(), h.SiloName, h.Status.ToString().ToLowerInvariant(),
                new DateTimeOffset(DateTime.SpecifyKind(h.StartTime, DateTimeKind.Utc)), new DateTimeOffset(DateTime.SpecifyKind(h.IAmAliveTime, DateTimeKind.Utc))))
            .ToArray();
        var activations = statistics
            .GroupBy(s => s.GrainType, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new GrainActivationsResponse(
                g.Key, g.Sum(s => s.ActivationCount),
                g.GroupBy(s => s.SiloAddress.ToParsableString(), StringComparer.Ordinal).ToDictionary(s => s.Key, s => s.Sum(x => x.ActivationCount))))
            .ToArray();
        return TypedResults.Json(new ClusterResponse(silos, activations), LuluJsonContext.Web.ClusterResponse);
    }

    private static IResult NotFound(string id) => ErrorShapes.Lulu.Result(StatusCodes.Status404NotFound, $"workspace '{id}' not found");

    private static IResult BadRequest(string message) => ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, message);

    private static IResult Workspace(WorkspaceInfo w, int status = StatusCodes.Status200OK) =>
        TypedResults.Json(WorkspaceBody(w), LuluJsonContext.Web.WorkspaceResponse, statusCode: status);

    private static WorkspaceResponse WorkspaceBody(WorkspaceInfo w) => new(w.Id, w.Name, w.Plan, w.CreditsRemaining, w.PrimaryBotId, w.CreatedAt);

    /// <summary>The default and the largest <c>limit</c> of the workspace list.</summary>
    public const int DefaultListLimit = 50, MaxListLimit = 200;

    /// <summary><c>GET /api/admin/workspaces?page=&amp;limit=</c>: newest first, <c>page</c> from 1, each item as <c>GET /api/admin/workspaces/{id}</c> shows it.</summary>
    private static async Task<IResult> ListWorkspacesAsync(HttpContext http, IGrainFactory grains)
    {
        if (QueryParameters.Number(http.Request, "page", 1, int.MaxValue, 1) is not { } page)
        {
            return BadRequest("'page' must be a whole number, 1 or more");
        }

        if (QueryParameters.Number(http.Request, "limit", 1, MaxListLimit, DefaultListLimit) is not { } limit)
        {
            return BadRequest($"'limit' must be a whole number from 1 to {MaxListLimit}");
        }

        var listed = await grains.GetGrain<IWorkspaceDirectoryGrain>(IWorkspaceDirectoryGrain.Key)
            .ListWorkspacesAsync((page - 1L) * limit, limit, http.RequestAborted);
        return TypedResults.Json(
            new WorkspaceListResponse([.. listed.Workspaces.Select(WorkspaceBody)], page, limit, listed.Total), LuluJsonContext.Web.WorkspaceListResponse);
    }

    private static async Task<IResult> CreateWorkspaceAsync(CreateWorkspaceBody body, HttpContext http, IGrainFactory grains, IPlanCatalog plans)
    {
        var plan = body.Plan.Trim().ToLowerInvariant();
        if (UnknownPlan(plan, plans.WorkspacePlans) is { } unknownPlan)
        {
            return BadRequest(unknownPlan);
        }

        var id = Guid.NewGuid();
        var workspace = await grains.GetGrain<IWorkspaceGrain>(id.ToString("D"))
            .CreateAsync(new CreateWorkspaceRequest(body.Name.Trim(), plan, body.Credits ?? DefaultCredits), http.RequestAborted);
        http.Response.Headers.Location = $"/api/admin/workspaces/{id:D}";
        return Workspace(workspace, StatusCodes.Status201Created);
    }

    /// <summary>The 400 message for a plan the catalog does not have; null for a known plan.</summary>
    private static string? UnknownPlan(string plan, IReadOnlyCollection<string> known) =>
        known.Contains(plan, StringComparer.OrdinalIgnoreCase) ? null : $"'plan' must be one of {string.Join(", ", known.Order().Select(p => $"'{p}'"))} (got '{plan}')";

    private static async Task<IResult> GetWorkspaceAsync(string id, IGrainFactory grains, CancellationToken cancellationToken) =>
        WorkspaceGrain(grains, id) is { } grain && await grain.GetAsync(cancellationToken) is { } workspace ? Workspace(workspace) : NotFound(id);

    private static async Task<IResult> ChangePlanAsync(string id, ChangePlanBody body, HttpContext http, IGrainFactory grains, IPlanCatalog plans)
    {
        if (WorkspaceGrain(grains, id) is not { } grain)
        {
            return NotFound(id);
        }

        var plan = body.Plan.Trim().ToLowerInvariant();
        if (UnknownPlan(plan, plans.WorkspacePlans) is { } unknownPlan)
        {
            return BadRequest(unknownPlan);
        }

        return await grain.ChangePlanAsync(plan, http.RequestAborted) is { } workspace ? Workspace(workspace) : NotFound(id);
    }

    private static async Task<IResult> AddCreditsAsync(string id, AddCreditsBody body, HttpContext http, IGrainFactory grains)
    {
        if (WorkspaceGrain(grains, id) is not { } grain)
        {
            return NotFound(id);
        }

        return await grain.AddCreditsAsync(body.Amount!.Value, http.RequestAborted) is { } balance
            ? TypedResults.Json(new CreditsResponse(balance), LuluJsonContext.Web.CreditsResponse)
            : NotFound(id);
    }

    private static async Task<IResult> CreateKeyAsync(string id, CreateKeyBody? body, HttpContext http, IGrainFactory grains, IPlanCatalog plans)
    {
        if (WorkspaceGrain(grains, id) is not { } grain || await grain.GetAsync(http.RequestAborted) is null)
        {
            return NotFound(id);
        }

        var plan = body?.Plan?.Trim().ToLowerInvariant();
        if (plan is not null && UnknownPlan(plan, plans.KeyPlans) is { } unknownPlan)
        {
            return BadRequest(unknownPlan);
        }

        var key = await grain.CreateKeyAsync(new CreateApiKeyRequest(body?.Scopes, plan), http.RequestAborted);
        return key is null
            ? NotFound(id)
            : TypedResults.Json(new KeyResponse(key.Id, key.Key, key.Prefix, key.Scopes, key.Plan), LuluJsonContext.Web.KeyResponse,
                statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> RevokeKeyAsync(string id, string keyId, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (WorkspaceGrain(grains, id) is not { } grain)
        {
            return NotFound(id);
        }

        return await grain.RevokeKeyAsync(keyId, cancellationToken)
            ? TypedResults.NoContent()
            : ErrorShapes.Lulu.Result(StatusCodes.Status404NotFound, $"key '{keyId}' not found in workspace '{id}'");
    }

    private static async Task<IResult> GetHistoryAsync(string id, string sessionId, IGrainFactory grains, CancellationToken cancellationToken)
    {
        if (!Guid.TryParse(id, out var workspaceId) || sessionId.Length is 0 or > ChatTurns.MaxSessionIdLength)
        {
            return NotFound(id);
        }

        var session = grains.GetGrain<ISessionGrain>(SessionKey.Of(workspaceId, sessionId));
        var history = await session.GetHistoryAsync(cancellationToken);
        if (history.Count == 0)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status404NotFound, $"session '{sessionId}' not found");
        }

        var silo = await grains.GetGrain<IManagementGrain>(0).GetActivationAddress(session, cancellationToken);
        return TypedResults.Json(
            new HistoryResponse(sessionId, history.Select(m => new MessageResponse(m.Seq, m.Role, m.Content, m.CreatedAt, m.CutShort, SourceResponse.Of(m.Sources))).ToArray(), silo?.ToParsableString()),
            LuluJsonContext.Web.HistoryResponse);
    }

    private static IWorkspaceGrain? WorkspaceGrain(IGrainFactory grains, string id) =>
        Guid.TryParse(id, out var workspaceId) ? grains.GetGrain<IWorkspaceGrain>(workspaceId.ToString("D")) : null;
}

/// <summary><c>POST /api/admin/workspaces</c>.</summary>
internal sealed record CreateWorkspaceBody(
    [property: Required, StringLength(200, MinimumLength = 1)] string Name,
    [property: Required, StringLength(64, MinimumLength = 1)] string Plan,
    [property: Range(typeof(long), "0", AdminApi.MaxCreditsText)] long? Credits = null) : IRequestBody;

/// <summary><c>PATCH /api/admin/workspaces/{id}</c>.</summary>
internal sealed record ChangePlanBody([property: Required, StringLength(64, MinimumLength = 1)] string Plan) : IRequestBody;

/// <summary><c>POST /api/admin/workspaces/{id}/credits</c>.</summary>
internal sealed record AddCreditsBody([property: Required, Range(typeof(long), "1", AdminApi.MaxCreditsText)] long? Amount) : IRequestBody;

/// <summary><c>POST /api/admin/workspaces/{id}/keys</c>; the body is optional.</summary>
internal sealed record CreateKeyBody(
    IReadOnlyList<string>? Scopes = null,
    [property: StringLength(64, MinimumLength = 1)] string? Plan = null) : IRequestBody
{
    /// <inheritdoc />
    public string? Check() =>
        Scopes?.FirstOrDefault(s => !ApiScopes.All.Contains(s)) is { } unknown
            ? $"'scopes' may contain {string.Join(", ", ApiScopes.All.Select(s => $"'{s}'"))} (got '{unknown}')"
            : null;
}
