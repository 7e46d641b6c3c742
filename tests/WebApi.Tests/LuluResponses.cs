using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests;

/// <summary>Sending to and reading the LuluClaw surfaces' answers (Gateway, Developer API) in tests, streams included.</summary>
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

    /// <summary>POSTs <paramref name="body"/> as JSON and returns as soon as the headers arrive, for reading a stream.</summary>
    public static async Task<HttpResponseMessage> PostStreamAsync(
        HttpClient client, string path, object body, bool acceptEventStream = false, CancellationToken? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (acceptEventStream)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        }

        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token ?? Ct);
    }

    /// <summary>Every server-sent event of the response, in order, until the stream ends.</summary>
    public static async Task<List<SseItem<string>>> ReadEventsAsync(HttpResponseMessage response)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var events = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(Ct))
        {
            events.Add(item);
        }

        return events;
    }
}
