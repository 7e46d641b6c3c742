using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests;

/// <summary>Reading the LuluClaw surfaces' answers (Gateway, Developer API) in tests.</summary>
public static class LuluResponses
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The body as JSON.</summary>
    public static async Task<JsonElement> Json(HttpResponseMessage response) => await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

    /// <summary>The message of a <c>{"error": "..."}</c> body, which must be JSON and say something.</summary>
    public static async Task<string> ErrorOf(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = (await Json(response)).GetProperty("error").GetString();
        Assert.False(string.IsNullOrWhiteSpace(error));
        return error!;
    }

    /// <summary>Creates a bot through the Developer API (201 expected) and returns its id.</summary>
    public static async Task<string> CreateBotAsync(HttpClient client, string name, string systemPrompt, string model = "gpt-4o-mini")
    {
        var created = await client.PostAsJsonAsync("/api/v1/bots", new { name, system_prompt = systemPrompt, model }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await Json(created)).GetProperty("id").GetString()!;
    }
}
