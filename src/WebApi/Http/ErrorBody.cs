namespace LuluClaw.WebApi.Http;

/// <summary>The Gateway, Developer API and admin error shape: <c>{"error": "..."}</c>.</summary>
internal sealed record ErrorBody(string Error);
