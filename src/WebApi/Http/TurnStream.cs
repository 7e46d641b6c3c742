using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>One server-sent event: its name (null for none) and its data line.</summary>
internal readonly record struct SseEvent(string? Name, string Data);

/// <summary>Answers a streamed chat turn on any surface, in that surface's events.</summary>
internal static class TurnStream
{
    /// <summary>
    /// A refusal found before the turn was admitted (the turn's first event is a failed outcome) is
    /// answered by <paramref name="refusal"/> with its status code. Otherwise the answer is server-sent
    /// events, started as soon as the turn is admitted (<see cref="ChatTurnEvent.Admitted"/>), before
    /// the model's first token: status line and headers, then <paramref name="prologue"/> (or, for a
    /// surface without one, an SSE comment, so that the client has a first byte), the events
    /// <paramref name="map"/> makes of each turn event, and <paramref name="epilogue"/>. A client that
    /// leaves ends the response quietly; the session grain has then cancelled the model call and kept
    /// what it produced.
    /// </summary>
    public static async Task<IResult> RespondAsync(
        HttpContext http,
        IAsyncEnumerable<ChatTurnEvent> turn,
        Func<ChatTurnResult, IResult> refusal,
        Func<ChatTurnEvent, IEnumerable<SseEvent>> map,
        IEnumerable<SseEvent>? prologue = null,
        IEnumerable<SseEvent>? epilogue = null)
    {
        await using var events = turn.GetAsyncEnumerator(http.RequestAborted);
        if (!await events.MoveNextAsync())
        {
            throw new InvalidOperationException("A turn stream ended without an outcome.");
        }

        if (events.Current.Result is { Status: not ChatTurnStatus.Ok } refused)
        {
            return refusal(refused);
        }

        TurnWindowHeaders.Describe(http, events.Current.Window);
        await using var sse = await SseResponse.StartAsync(http);
        try
        {
            var opened = false;
            foreach (var e in prologue ?? [])
            {
                await sse.WriteAsync(e.Name, e.Data, http.RequestAborted);
                opened = true;
            }

            if (!opened)
            {
                await sse.WriteCommentAsync(AdmittedComment, http.RequestAborted);
            }

            do
            {
                if (events.Current.IsAdmission)
                {
                    continue; // answered by the status line and the prologue above
                }

                foreach (var e in map(events.Current))
                {
                    await sse.WriteAsync(e.Name, e.Data, http.RequestAborted);
                }
            }
            while (await events.MoveNextAsync());

            foreach (var e in epilogue ?? [])
            {
                await sse.WriteAsync(e.Name, e.Data, http.RequestAborted);
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client left.
        }

        return Results.Empty;
    }

    /// <summary>The SSE comment (<c>: ok</c>) that opens a stream whose surface has no first event of its own.</summary>
    public const string AdmittedComment = "ok";
}

/// <summary>What a refused turn means in HTTP, the same on every surface.</summary>
internal static class TurnRefusal
{
    /// <summary>The status code of <paramref name="status"/>; a model failure is <paramref name="modelFailure"/> (503, or 502 where a surface says so).</summary>
    public static int StatusCode(ChatTurnStatus status, int modelFailure = StatusCodes.Status503ServiceUnavailable) => status switch
    {
        ChatTurnStatus.Ok => StatusCodes.Status200OK,
        ChatTurnStatus.RateLimited => StatusCodes.Status429TooManyRequests,
        ChatTurnStatus.InsufficientCredits => StatusCodes.Status402PaymentRequired,
        ChatTurnStatus.ModelUnavailable => modelFailure,
        ChatTurnStatus.NotFound => StatusCodes.Status404NotFound,
        ChatTurnStatus.Conflict => StatusCodes.Status409Conflict,
        ChatTurnStatus.Unauthorized => StatusCodes.Status401Unauthorized,
        ChatTurnStatus.InvalidRequest => StatusCodes.Status400BadRequest,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>Sets <c>Retry-After</c> (whole seconds, at least 1) when the turn says when to retry; returns the seconds.</summary>
    public static long? SetRetryAfter(HttpContext http, ChatTurnResult result)
    {
        if (result.RetryAfter is not { } retryAfter)
        {
            return null;
        }

        var seconds = WholeSeconds(retryAfter);
        http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return seconds;
    }

    /// <summary><paramref name="span"/> in whole seconds, rounded up and at least 1: how waits are written in headers.</summary>
    public static long WholeSeconds(TimeSpan span) => Math.Max(1, (long)Math.Ceiling(span.TotalSeconds));
}
