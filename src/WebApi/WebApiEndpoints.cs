using System.Text.Json;
using LuluClaw.WebApi.Apis;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace LuluClaw.WebApi;

/// <summary>Wires every surface of the front end.</summary>
public static class WebApiEndpoints
{
    /// <summary>The admin token from <c>Admin:Token</c> or the <c>LULUCLAW_ADMIN_TOKEN</c> environment variable.</summary>
    public static string? AdminToken(IConfiguration configuration) =>
        configuration["Admin:Token"] is { Length: > 0 } token ? token : configuration["LULUCLAW_ADMIN_TOKEN"];

    /// <summary>
    /// Whether to run the Orleans Dashboard (<c>Admin:Dashboard</c>, default off). Off by default because its
    /// profiler is a filter on every grain call; it is served only where an admin token is configured.
    /// </summary>
    public static bool DashboardEnabled(IConfiguration configuration) =>
        configuration.GetValue("Admin:Dashboard", false) && !string.IsNullOrWhiteSpace(AdminToken(configuration));

    /// <summary>What each tag of the document groups.</summary>
    private static readonly Dictionary<string, string> TagDescriptions = new(StringComparer.Ordinal)
    {
        ["Gateway"] = "The LuluClaw Gateway: chat with the workspace's primary bot under its plan's rolling-hour limits and credits.",
        ["Developer API: chat"] = "Chat with any bot of the workspace, whole or streamed.",
        ["Developer API: bots"] = "Create, configure, restart and delete bots; a change reloads the bot.",
        ["Developer API: knowledge"] = "Websites, documents and manual entries the workspace's bots answer from; ingested in the background (scope knowledge).",
        ["Developer API: provider keys"] = "The workspace's own model provider keys (bring your own key), stored encrypted and never shown again.",
        ["OpenAI-compatible"] = "OpenAI's chat completions, models and responses routes, so OpenAI SDKs talk to LuluClaw bots by changing the base URL.",
        ["OpenClaw-compatible"] = "OpenClaw's chat, sessions and status routes with per-token request limits, camelCase JSON and OpenClaw's errors.",
    };

    /// <summary>Adds what the front end needs: authentication, the request checks and Kestrel's limits (<see cref="RequestChecks"/>), the OpenAPI 3.1 document of the public surfaces.</summary>
    public static IServiceCollection AddLuluWebApi(this IServiceCollection services)
    {
        services.AddSingleton<Http.ResolvedApiKeys>();
        services.AddLuluAuthentication();
        services.AddLuluRequestLimits();
        services.AddSingleton<SurfacePrefixes>();
        // Request records are bound with these strict options (JsonRequests); typed results of the
        // snake_case surfaces are written with them too, and the document's schemas follow them.
        services.ConfigureHttpJsonOptions(o =>
        {
            JsonRequests.Configure(o.SerializerOptions);
            o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        });
        // A body that does not bind (a field of the wrong type) throws, so that the error handler answers
        // it in the surface's shape with the field named, instead of an empty 400.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddOpenApi("v1", o =>
        {
            o.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1;
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "LuluClaw API",
                    Version = "v1",
                    Description = "LuluClaw's public surfaces: the Gateway and Developer APIs ({\"error\": \"<message>\"} errors), the " +
                        "OpenAI-compatible API under /v1 (OpenAI's error shape) and the OpenClaw-compatible API under /openclaw/api/v1 " +
                        "(OpenClaw's error shape). Every route takes 'Authorization: Bearer lulu_sk_...'. The operators' admin API is not part of it.",
                    License = new OpenApiLicense { Name = "Proprietary: LuluClaw, all rights reserved", Identifier = "LicenseRef-LuluClaw-Proprietary" },
                };
                foreach (var server in document.Servers ?? [])
                {
                    server.Url = server.Url?.TrimEnd('/');
                }

                foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
                {
                    tag.Description = tag.Name is { } name && TagDescriptions.TryGetValue(name, out var description) ? description : tag.Description;
                }

                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "A workspace API key: lulu_sk_...",
                };
                document.Security ??= [];
                document.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] });
                return Task.CompletedTask;
            });
            o.AddOperationTransformer(OpenApiMetadata.DescribeHeadersAsync);
            o.AddOperationTransformer(Uploads.DescribeAsync);
            o.AddSchemaTransformer(OpenApiMetadata.DescribeAllowedValuesAsync);
        });
        return services;
    }

    /// <summary>Adds error handling and maps every surface, the OpenAPI document (<c>/openapi/v1.json</c>), its reference page (<c>/docs</c>) and <c>/healthz</c>, behind error handling and the checks every request passes.</summary>
    public static WebApplication MapLuluClaw(this WebApplication app)
    {
        app.UseLuluErrors();
        app.UseLuluRequestChecks();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseJsonBodyChecks();
        app.MapOpenApi();
        // The reference page of the same document, served with its script from this process (no CDN, no web fonts).
        app.MapScalarApiReference("/docs", o => o.WithTitle("LuluClaw API").WithOpenApiRoutePattern("/openapi/{documentName}.json").DisableDefaultFonts());
        app.MapGatewayApi();
        app.MapDeveloperApi();
        app.MapKnowledgeApi();
        app.MapOpenAICompatibleApi();
        app.MapOpenAIResponsesApi();
        app.MapOpenClawApi();
        app.MapAdminApi(AdminToken(app.Configuration));

        // For load balancers: the process is up and serving HTTP. It does not touch the database,
        // which every node shares: an outage there is answered per request with 503, not by pulling every node.
        app.MapGet("/healthz", () => TypedResults.Text("ok")).ExcludeFromDescription();
        return app;
    }
}
