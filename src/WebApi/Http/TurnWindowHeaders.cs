using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// Endpoint metadata: a chat-turn route that reports where the caller's tightest rolling window
/// stands (<see cref="WindowStanding"/>) in headers of its surface's naming, on the answer to an
/// admitted turn (whole or streamed) and on a 429. A turn no window counts (an unlimited plan) gets none.
/// </summary>
internal abstract class TurnWindowHeaders
{
    /// <summary>The headers' names and what each says, for the OpenAPI document.</summary>
    public abstract IReadOnlyList<(string Name, string Description, bool IsInteger)> Described { get; }

    /// <summary>Writes <paramref name="window"/> into <paramref name="headers"/>.</summary>
    public abstract void Write(IHeaderDictionary headers, WindowStanding window);

    /// <summary>Writes <paramref name="window"/> in the headers of <paramref name="http"/>'s endpoint, if it reports windows and there is one.</summary>
    public static void Describe(HttpContext http, WindowStanding? window)
    {
        if (window is not null && !http.Response.HasStarted && http.GetEndpoint()?.Metadata.GetMetadata<TurnWindowHeaders>() is { } headers)
        {
            headers.Write(http.Response.Headers, window);
        }
    }

    /// <summary>
    /// OpenAI's names: <c>x-ratelimit-limit-requests</c>, <c>x-ratelimit-remaining-requests</c> and
    /// <c>x-ratelimit-reset-requests</c>, the last a duration as OpenAI writes it (<c>1s</c>,
    /// <c>6m0s</c>, <c>1h0m0s</c>), rounded up to the second.
    /// </summary>
    public static TurnWindowHeaders OpenAI { get; } = new OpenAINames();

    private sealed class OpenAINames : TurnWindowHeaders
    {
        public override IReadOnlyList<(string Name, string Description, bool IsInteger)> Described { get; } =
        [
            ("x-ratelimit-limit-requests", "Turns allowed by the caller's tightest rolling window (of the workspace's and the key's plans).", true),
            ("x-ratelimit-remaining-requests", "Turns left in that window.", true),
            ("x-ratelimit-reset-requests", "How long until the window has a turn more, as a duration (for example 59m58s).", false),
        ];

        public override void Write(IHeaderDictionary headers, WindowStanding window)
        {
            headers["x-ratelimit-limit-requests"] = window.Limit.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-remaining-requests"] = window.Remaining.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-reset-requests"] = Duration(window.ResetAfter);
        }
    }

    /// <summary>A duration in OpenAI's (and Go's) way of writing one, rounded up to the second: <c>45s</c>, <c>6m0s</c>, <c>1h2m3s</c>.</summary>
    internal static string Duration(TimeSpan span)
    {
        var seconds = TurnRefusal.WholeSeconds(span);
        var (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        return hours > 0 ? $"{hours}h{minutes}m{rest}s" : minutes > 0 ? $"{minutes}m{rest}s" : $"{rest}s";
    }
}
