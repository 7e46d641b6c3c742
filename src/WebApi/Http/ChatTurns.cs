using Orleans;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>How one surface shapes a chat turn's answer: whole as JSON, or streamed as its own events.</summary>
internal abstract class TurnAnswers
{
    /// <summary>The 200 answer to a turn that succeeded.</summary>
    public abstract IResult Whole(ChatTurnResult result);

    /// <summary>The events a turn event becomes on this surface.</summary>
    public abstract IEnumerable<SseEvent> Events(ChatTurnEvent turnEvent);

    /// <summary>The events that open a stream, once the turn is admitted.</summary>
    public virtual IEnumerable<SseEvent> Prologue => [];

    /// <summary>The events that close a stream.</summary>
    public virtual IEnumerable<SseEvent> Epilogue => [];
}

/// <summary>
/// The chat turn every surface runs: one call to the session grain, whole or streamed, and its
/// refusals in HTTP (the same status codes and <c>Retry-After</c> on every surface, in the endpoint's
/// error shape). Surfaces differ only in what they read from the request and in their
/// <see cref="TurnAnswers"/>.
/// </summary>
internal static class ChatTurns
{
    /// <summary>Longest user message, in characters (Unicode scalar values), on every surface.</summary>
    public const int MaxMessageLength = 4000;

    /// <summary>Whether <paramref name="message"/> is longer than <see cref="MaxMessageLength"/> Unicode scalar values.</summary>
    public static bool IsTooLong(string message) => message.EnumerateRunes().Count() > MaxMessageLength;

    /// <summary>Longest session id, in characters, on every surface.</summary>
    public const int MaxSessionIdLength = 128;

    /// <summary>Marks a route that runs chat turns (see <see cref="RunsChatTurn{TBuilder}"/>).</summary>
    public sealed class TurnRoute
    {
        /// <summary>The one instance.</summary>
        public static readonly TurnRoute Instance = new();
    }

    /// <summary>
    /// Marks the endpoints of <paramref name="builder"/> as running chat turns, whose admission checks
    /// the caller's key again in the database: authentication may then take the key from this silo's cache.
    /// </summary>
    public static TBuilder RunsChatTurn<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(TurnRoute.Instance).ProducesErrors(
            StatusCodes.Status402PaymentRequired, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status429TooManyRequests,
            ErrorShape.ModelFailure, StatusCodes.Status503ServiceUnavailable);

    /// <summary>A server-made session id.</summary>
    public static string NewSessionId() => $"sess_{Guid.CreateVersion7():N}";

    /// <summary>The session grain of <paramref name="sessionId"/> in the caller's workspace.</summary>
    public static ISessionGrain Session(this IGrainFactory grains, Caller caller, string sessionId) =>
        grains.GetGrain<ISessionGrain>(SessionKey.Of(caller.WorkspaceId, sessionId));

    /// <summary>
    /// Runs <paramref name="request"/> in <paramref name="session"/> and answers it: JSON through
    /// <paramref name="answers"/>, or with <paramref name="stream"/> the surface's server-sent events. A
    /// refusal found before the turn was admitted keeps its status code either way.
    /// </summary>
    public static async Task<IResult> RunAsync(HttpContext http, ISessionGrain session, ChatTurnRequest request, bool stream, TurnAnswers answers)
    {
        if (!stream)
        {
            var result = await session.SendAsync(request, http.RequestAborted);
            if (result.Status != ChatTurnStatus.Ok)
            {
                return Refusal(http, result);
            }

            TurnWindowHeaders.Describe(http, result.Window);
            return answers.Whole(result);
        }

        return await TurnStream.RespondAsync(
            http, session.StreamAsync(request, http.RequestAborted), refused => Refusal(http, refused), answers.Events, answers.Prologue, answers.Epilogue);
    }

    /// <summary>A refused turn in the endpoint's error shape, with <c>Retry-After</c> when the turn says when.</summary>
    public static IResult Refusal(HttpContext http, ChatTurnResult result)
    {
        var shape = ErrorShapes.Of(http);
        var retryAfter = TurnRefusal.SetRetryAfter(http, result);
        TurnWindowHeaders.Describe(http, result.Window);
        return shape.Result(TurnRefusal.StatusCode(result.Status, shape.ModelFailureStatus), result.Error ?? "unexpected turn outcome", retryAfter);
    }
}
