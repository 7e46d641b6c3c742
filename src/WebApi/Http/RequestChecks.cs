using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// What every route refuses before its handler runs, in the surface's error shape: a header section or
/// request target past the limits, a header that means one thing sent twice, a path value that is blank
/// or has control characters, a body not declared as UTF-8 JSON.
/// </summary>
/// <remarks>
/// The limits are Kestrel's defaults, but enforced here: Kestrel refuses a request past its own limits
/// while parsing it, before any application code runs, with no body to name the problem. Kestrel's
/// limits are set to twice these (<see cref="AddLuluRequestLimits"/>), so only a request past those gets
/// Kestrel's bare 431 or 414 (issue 16).
/// </remarks>
internal static partial class RequestChecks
{
    /// <summary>Largest header section read, in bytes (names, values, and four for ": " and the line end).</summary>
    public const int MaxHeaderBytes = 32 * 1024;

    /// <summary>Most header lines read.</summary>
    public const int MaxHeaderCount = 100;

    /// <summary>Longest request target (path and query) read, in characters.</summary>
    public const int MaxTargetLength = 8 * 1024;

    /// <summary>Headers whose second copy would leave open which one counts.</summary>
    private static readonly string[] Singletons = [HeaderNames.Authorization, HeaderNames.ContentType, Apis.OpenAICompatibleApi.SessionHeader];

    /// <summary>Sets Kestrel's own limits to twice the ones checked here, so that these answer first.</summary>
    public static IServiceCollection AddLuluRequestLimits(this IServiceCollection services) =>
        services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * MaxHeaderBytes;
            kestrel.Limits.MaxRequestHeaderCount = 2 * MaxHeaderCount;
            kestrel.Limits.MaxRequestLineSize = 2 * MaxTargetLength;
        });

    /// <summary>Adds the checks to the pipeline, after routing (they read the route's values) and before the endpoint.</summary>
    public static IApplicationBuilder UseLuluRequestChecks(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (Refusal(context) is not var (status, message))
        {
            await next(context);
            return;
        }

        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LuluClaw.WebApi");
        Log.Refused(logger, context.Request.Method, ErrorHandling.Shown(context.Request.Path.Value ?? ""), status, message);
        await ErrorShapes.Of(context).Result(status, message).ExecuteAsync(context);
    });

    /// <summary>The status and message to refuse the request with, or null.</summary>
    private static (int Status, string Message)? Refusal(HttpContext context)
    {
        var request = context.Request;

        // :: Step 1: the request's size.
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw ? raw : request.Path.Value + request.QueryString.Value;
        if (target.Length > MaxTargetLength)
        {
            return (StatusCodes.Status414UriTooLong, $"the request target (path and query) is {target.Length:N0} characters; at most {MaxTargetLength:N0} are read");
        }

        var (lines, bytes) = (0, 0L);
        foreach (var (name, values) in request.Headers)
        {
            foreach (var value in values)
            {
                lines++;
                bytes += name.Length + (value?.Length ?? 0) + 4;
            }
        }

        if (lines > MaxHeaderCount)
        {
            return (StatusCodes.Status431RequestHeaderFieldsTooLarge, $"the request has {lines:N0} header lines; at most {MaxHeaderCount:N0} are read");
        }

        if (bytes > MaxHeaderBytes)
        {
            return (StatusCodes.Status431RequestHeaderFieldsTooLarge, $"the request's headers are {bytes:N0} bytes; at most {MaxHeaderBytes:N0} are read");
        }

        // :: Step 2: headers that mean one thing, sent once.
        foreach (var name in Singletons)
        {
            if (request.Headers[name].Count is > 1 and var count)
            {
                return (StatusCodes.Status400BadRequest, $"the '{name}' header appears {count} times; send it once");
            }
        }

        // The rest is about the route; routing's 404 and 405 are answered as they are.
        if (context.GetEndpoint() is not RouteEndpoint)
        {
            return null;
        }

        // :: Step 3: path values. An empty one is a catch-all's; a blank one is no id at all.
        foreach (var (name, value) in request.RouteValues)
        {
            if (value is string { Length: > 0 } text && (string.IsNullOrWhiteSpace(text) || text.Any(char.IsControl)))
            {
                return (StatusCodes.Status400BadRequest, $"the path's '{name}' must not be blank or contain control characters");
            }
        }

        // :: Step 4: a body is UTF-8 JSON, and says so.
        if (request.ContentLength is not > 0 && request.Headers.TransferEncoding.Count == 0)
        {
            return null;
        }

        if (request.ContentType is not { } type)
        {
            return (StatusCodes.Status415UnsupportedMediaType, "the request has a body but no Content-Type; send Content-Type: application/json");
        }

        if (Uploads.IsUpload(request))
        {
            return null; // an upload to a route that takes one: it reads its form itself
        }

        if (!MediaTypeHeaderValue.TryParse(type, out var media)
            || !(media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase)))
        {
            return (StatusCodes.Status415UnsupportedMediaType, $"Content-Type '{ErrorHandling.Shown(type)}' is not JSON; send Content-Type: application/json");
        }

        return media.Charset.HasValue && !media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
            ? (StatusCodes.Status415UnsupportedMediaType, $"a JSON body is UTF-8, not '{ErrorHandling.Shown(media.Charset.ToString())}'; send Content-Type: application/json")
            : null;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "{Method} {Path}: {Status}, refused before its route ran: {Reason}")]
        public static partial void Refused(ILogger logger, string method, string path, int status, string reason);
    }
}
