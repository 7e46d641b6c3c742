using Orleans;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LuluClaw.WebApi.Apis;

/// <summary>The LuluClaw Gateway API: one chat endpoint, per-workspace rolling-hour plans, credits.</summary>
internal static class GatewayApi
{
    /// <summary>Maps <c>POST /api/gateway/chat</c>.</summary>
    public static IEndpointRouteBuilder MapGatewayApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapSurface("/api/gateway", ErrorShapes.Lulu).WithTags("Gateway").ValidatesRequests();
        group.MapPost("/chat", ChatAsync).WithName("GatewayChat").WithSummary("Send a message in a thread of the workspace's primary bot")
            .WithDescription(LuluChat.StreamingNote).RequireApiKey(ApiScopes.Chat).RunsChatTurn()
            .Produces<ChatResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream");
        return app;
    }

    private static Task<IResult> ChatAsync(GatewayChatRequest body, HttpContext http, IGrainFactory grains)
    {
        var caller = http.GetCaller();
        var session = grains.Session(caller, body.SessionId ?? ChatTurns.NewSessionId());
        return ChatTurns.RunAsync(
            http, session, new ChatTurnRequest(body.Message, caller.Key.Id, "gateway"), SseResponse.IsWanted(http.Request, body.Stream), LuluChat.Gateway);
    }
}
