using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// Routes that take a JSON body or, on the same path, a file as <c>multipart/form-data</c> (a knowledge
/// document). Routing cannot tell two endpoints of one path apart by a body that has no
/// <c>Content-Type</c> (it answers that with an ambiguity, a 500), so such a route is one endpoint that
/// binds its JSON itself and reads its form itself; this marks it, so that the request checks let a
/// form through to it, and describes the form in the OpenAPI document beside the JSON body.
/// </summary>
internal static class Uploads
{
    /// <summary>Endpoint metadata: the route also takes an upload, whose form <see cref="Schema"/> describes.</summary>
    public sealed class TakesUploadsMetadata(Func<OpenApiSchema> schema)
    {
        /// <summary>The form's schema, for the OpenAPI document.</summary>
        public Func<OpenApiSchema> Schema { get; } = schema;
    }

    /// <summary>Marks the endpoints of <paramref name="builder"/> as taking a multipart upload too, described by <paramref name="schema"/>.</summary>
    public static TBuilder TakesUploads<TBuilder>(this TBuilder builder, Func<OpenApiSchema> schema)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new TakesUploadsMetadata(schema));

    /// <summary>Whether the request is a <c>multipart/form-data</c> upload to a route that takes one.</summary>
    public static bool IsUpload(HttpRequest request) =>
        request.HttpContext.GetEndpoint()?.Metadata.GetMetadata<TakesUploadsMetadata>() is not null
        && MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
        && media.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase);

    /// <summary>Adds the form, as <c>multipart/form-data</c>, to the request body of an operation that takes uploads.</summary>
    public static Task DescribeAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<TakesUploadsMetadata>().LastOrDefault() is { } uploads
            && operation.RequestBody is OpenApiRequestBody body)
        {
            body.Content ??= new Dictionary<string, OpenApiMediaType>();
            body.Content["multipart/form-data"] = new OpenApiMediaType { Schema = uploads.Schema() };
        }

        return Task.CompletedTask;
    }
}
