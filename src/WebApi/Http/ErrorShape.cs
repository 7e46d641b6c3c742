using LuluClaw.WebApi.Apis;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// How one surface writes its errors. Each surface's route group carries its shape as endpoint
/// metadata (<see cref="ErrorShapes.WithErrorShape{TBuilder}"/>), and everything that answers on a
/// surface's behalf without being its handler (authentication, body checks, the last-resort error
/// handler) asks the endpoint for it.
/// </summary>
internal abstract class ErrorShape
{
    /// <summary>The error body type, for the OpenAPI document.</summary>
    public abstract Type BodyType { get; }

    /// <summary>Stands for <see cref="ModelFailureStatus"/> in a list of status codes an endpoint declares.</summary>
    public const int ModelFailure = -1;

    /// <summary>The status a failed model call is answered with on this surface (503, or 502 where the surface's document says so).</summary>
    public virtual int ModelFailureStatus => StatusCodes.Status503ServiceUnavailable;

    /// <summary>The error answer: <paramref name="message"/> under <paramref name="statusCode"/>; <paramref name="field"/> names the offending field where the shape has room for it.</summary>
    public abstract IResult Result(int statusCode, string message, long? retryAfter = null, string? field = null);

    /// <summary>The 403 message for a credential that lacks <paramref name="scope"/>.</summary>
    public virtual string MissingScope(string scope) => $"this API key lacks the '{scope}' scope";
}

/// <summary>Picks the error shape of a request's endpoint.</summary>
internal static class ErrorShapes
{
    /// <summary>The Gateway's, the Developer API's and the admin API's <c>{"error": "..."}</c>, also used where no endpoint matched.</summary>
    public static ErrorShape Lulu { get; } = new LuluErrorShape();

    /// <summary>Makes <paramref name="shape"/> the error shape of every endpoint <paramref name="builder"/> maps.</summary>
    public static TBuilder WithErrorShape<TBuilder>(this TBuilder builder, ErrorShape shape)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(shape);

    /// <summary>
    /// Maps the route group of a surface at <paramref name="prefix"/> with its error shape; requests under the
    /// prefix that match no endpoint of it (routing's 404 and 405) are answered in that shape too.
    /// </summary>
    public static RouteGroupBuilder MapSurface(this IEndpointRouteBuilder app, string prefix, ErrorShape shape)
    {
        app.ServiceProvider.GetRequiredService<SurfacePrefixes>().Add(prefix, shape);
        return app.MapGroup(prefix).WithErrorShape(shape);
    }

    /// <summary>
    /// The error shape of the request's endpoint; where routing found none of a surface's, the shape of the
    /// surface whose prefix the path is under; else <see cref="Lulu"/>.
    /// </summary>
    public static ErrorShape Of(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<ErrorShape>()
        ?? context.RequestServices.GetService<SurfacePrefixes>()?.Find(context.Request.Path)
        ?? Lulu;

    private sealed class LuluErrorShape : ErrorShape
    {
        public override Type BodyType => typeof(ErrorBody);

        public override IResult Result(int statusCode, string message, long? retryAfter = null, string? field = null) =>
            TypedResults.Json(new ErrorBody(message), LuluJsonContext.Web.ErrorBody, statusCode: statusCode);
    }
}

/// <summary>The path prefixes of the surfaces this app maps, longest first, and their error shapes.</summary>
internal sealed class SurfacePrefixes
{
    private readonly List<(PathString Prefix, ErrorShape Shape)> _surfaces = [];

    /// <summary>Registers a surface (at startup, while endpoints are mapped).</summary>
    public void Add(PathString prefix, ErrorShape shape)
    {
        lock (_surfaces)
        {
            _surfaces.Add((prefix, shape));
            _surfaces.Sort((a, b) => (b.Prefix.Value?.Length ?? 0).CompareTo(a.Prefix.Value?.Length ?? 0));
        }
    }

    /// <summary>The shape of the surface <paramref name="path"/> is under, or null.</summary>
    public ErrorShape? Find(PathString path)
    {
        foreach (var (prefix, shape) in _surfaces)
        {
            if (path.StartsWithSegments(prefix))
            {
                return shape;
            }
        }

        return null;
    }
}
