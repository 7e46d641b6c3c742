using System.Text.Json;
using System.Text.Json.Serialization;
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

    /// <summary>Adds what the front end needs: the OpenAPI 3.1 document of the public surfaces, Kestrel's limits (<see cref="RequestChecks"/>).</summary>
    public static IServiceCollection AddLuluWebApi(this IServiceCollection services)
    {
        services.AddSingleton<Http.ResolvedApiKeys>();
        services.AddLuluRequestLimits();
        // Schemas in the document use the LuluClaw surfaces' snake_case; responses are written through
        // source-generated contexts, never through these options.
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });
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

    /// <summary>Adds error handling and the checks every request passes, and maps every surface, the OpenAPI document (<c>/openapi/v1.json</c>) and <c>/healthz</c>.</summary>
    public static WebApplication MapLuluClaw(this WebApplication app)
    {
        app.UseLuluErrors();
        app.UseLuluRequestChecks();
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
