using LuluClaw.WebApi.Apis;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace LuluClaw.WebApi;

/// <summary>Wires every surface of the front end.</summary>
public static class WebApiEndpoints
{
    /// <summary>The admin token from <c>Admin:Token</c> or the <c>LULUCLAW_ADMIN_TOKEN</c> environment variable.</summary>
    public static string? AdminToken(IConfiguration configuration) =>
        configuration["Admin:Token"] is { Length: > 0 } token ? token : configuration["LULUCLAW_ADMIN_TOKEN"];

    /// <summary>Adds error handling and maps every surface.</summary>
    public static WebApplication MapLuluClaw(this WebApplication app)
    {
        app.UseLuluErrors();
        app.MapGatewayApi();
        app.MapAdminApi(AdminToken(app.Configuration));
        return app;
    }
}
