using System.Text.Json;
using LuluClaw.WebApi.Apis;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

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

    /// <summary>Adds what the front end needs: the OpenAPI 3.1 document of the public surfaces.</summary>
    public static IServiceCollection AddLuluWebApi(this IServiceCollection services)
    {
        services.AddSingleton<Http.ResolvedApiKeys>();
        services.AddLuluAuthentication();
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
                    Description = "The LuluClaw Gateway and Developer APIs. Authenticate with 'Authorization: Bearer lulu_sk_...'; " +
                        "errors are {\"error\": \"<message>\"}.",
                };
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
        });
        return services;
    }

    /// <summary>Adds error handling and maps every surface, the OpenAPI document (<c>/openapi/v1.json</c>) and <c>/healthz</c>.</summary>
    public static WebApplication MapLuluClaw(this WebApplication app)
    {
        app.UseLuluErrors();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseJsonBodyChecks();
        app.MapOpenApi();
        app.MapGatewayApi();
        app.MapDeveloperApi();
        app.MapOpenAICompatibleApi();
        app.MapOpenClawApi();
        app.MapAdminApi(AdminToken(app.Configuration));

        // For load balancers: the process is up and serving HTTP. It does not touch the database,
        // which every node shares: an outage there is answered per request with 503, not by pulling every node.
        app.MapGet("/healthz", () => TypedResults.Text("ok")).ExcludeFromDescription();
        return app;
    }
}
