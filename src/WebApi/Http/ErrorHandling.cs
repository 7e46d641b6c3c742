using System.Data.Common;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// The last line of defence: an exception no endpoint expected becomes a JSON error, never an HTML
/// page or an empty 500. A failing database is a 503 (retry later), not a 500. An error status
/// answered without a body (no route matches, the method is not the route's) gets one too.
/// </summary>
internal static partial class ErrorHandling
{
    /// <summary>The wait a 503 for an unavailable database suggests.</summary>
    private const long StorageRetryAfterSeconds = 2;

    /// <summary>
    /// The wait a 503 suggests when a grain's silo cannot be reached: about the time the cluster takes
    /// to declare a dead silo dead and activate its grains elsewhere (see <c>LuluSilo</c>).
    /// </summary>
    private const long SiloRetryAfterSeconds = 1;

    /// <summary>Adds the handler to the pipeline.</summary>
    public static IApplicationBuilder UseLuluErrors(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client left; there is nobody to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            var (status, message, retryAfter) = e switch
            {
                BadHttpRequestException bad => (bad.StatusCode, JsonRequests.BindingProblem(context, bad) ?? bad.Message, null),
                // The grain's silo is gone or going (killed, partitioned) and the cluster has not yet
                // moved its grains: nothing ran, so nothing was charged, and a retry in a moment lands
                // on the new activation.
                OrleansMessageRejectionException or ConnectionFailedException or GatewayTooBusyException =>
                    (StatusCodes.Status503ServiceUnavailable, "the cluster is moving this conversation to another node; retry in a moment", SiloRetryAfterSeconds),
                DbException or TimeoutException =>
                    (StatusCodes.Status503ServiceUnavailable, "the database is unavailable; retry after a short delay", StorageRetryAfterSeconds),
                _ => (StatusCodes.Status500InternalServerError, "internal error", (long?)null),
            };
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LuluClaw.WebApi");
            if (e is BadHttpRequestException)
            {
                // The client's doing (a body cut short, too large, malformed), as common as clients that hang up: no stack.
                Log.BadRequest(logger, context.Request.Method, context.Request.Path, status, e.Message);
            }
            else if (retryAfter is null)
            {
                Log.Unhandled(logger, context.Request.Method, context.Request.Path, status, e);
            }
            else
            {
                Log.Unavailable(logger, context.Request.Method, context.Request.Path, e.Message); // expected while the database or a silo is away: no stack
            }

            context.Response.Clear();
            if (retryAfter is { } seconds)
            {
                context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            // Each surface answers in its own error shape, which its endpoints carry.
            await ErrorShapes.Of(context).Result(status, message, retryAfter).ExecuteAsync(context);
        }
    }).UseStatusCodePages(context => EmptyErrorAsync(context.HttpContext));

    /// <summary>
    /// A body for an error status that has none: routing's own 404 (no route) and 405 (not the route's
    /// method), and 415 (a route that declares its Content-Type, sent another). Issue 16.
    /// </summary>
    private static Task EmptyErrorAsync(HttpContext context)
    {
        var (request, response) = (context.Request, context.Response);
        var message = response.StatusCode switch
        {
            StatusCodes.Status404NotFound => $"no route matches {request.Method} {Shown(request.Path.Value ?? "")}",
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {Shown(request.Path.Value ?? "")}" +
                (response.Headers.Allow is { Count: > 0 } allow ? $"; it takes {allow}" : ""),
            StatusCodes.Status415UnsupportedMediaType => $"Content-Type {(request.ContentType is { } type ? $"'{Shown(type)}'" : "(none)")} is not accepted here; send application/json",
            var other => ReasonPhrases.GetReasonPhrase(other) is { Length: > 0 } phrase ? phrase : $"error {other}",
        };
        return ErrorShapes.Of(context).Result(response.StatusCode, message).ExecuteAsync(context);
    }

    /// <summary>Text from the request as an error message may repeat it: at most 100 characters.</summary>
    public static string Shown(string text) => text.Length <= 100 ? text : $"{text[..100]}… ({text.Length:N0} characters)";

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "{Method} {Path} failed with {Status}")]
        public static partial void Unhandled(ILogger logger, string method, string path, int status, Exception exception);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "{Method} {Path}: 503, unavailable: {Reason}")]
        public static partial void Unavailable(ILogger logger, string method, string path, string reason);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "{Method} {Path}: {Status}, the request was malformed: {Reason}")]
        public static partial void BadRequest(ILogger logger, string method, string path, int status, string reason);
    }
}
