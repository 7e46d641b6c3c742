using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>Response metadata for the OpenAPI document.</summary>
public static class OpenApiMetadata
{
    /// <summary>Declares the surface's <c>{"error": "..."}</c> body for each of <paramref name="statusCodes"/>.</summary>
    public static RouteHandlerBuilder ProducesErrors(this RouteHandlerBuilder builder, params int[] statusCodes)
    {
        foreach (var status in statusCodes)
        {
            builder.Produces<ErrorBody>(status, "application/json");
        }

        return builder;
    }
}
