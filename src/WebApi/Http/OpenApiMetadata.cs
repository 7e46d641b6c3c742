using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// What the OpenAPI document says beyond what handlers' types say: the error answers each endpoint
/// can give in its surface's shape, the headers that come with them, and enumerations.
/// </summary>
internal static class OpenApiMetadata
{
    /// <summary>
    /// Declares the surface's error body for each of <paramref name="statusCodes"/>; the body type is the
    /// endpoint's <see cref="ErrorShape"/>, known once every convention has run.
    /// </summary>
    public static TBuilder ProducesErrors<TBuilder>(this TBuilder builder, params int[] statusCodes)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.Finally(endpoint =>
        {
            var shape = endpoint.Metadata.OfType<ErrorShape>().LastOrDefault() ?? ErrorShapes.Lulu;
            var declared = endpoint.Metadata.OfType<IProducesResponseTypeMetadata>().Select(m => m.StatusCode).ToHashSet();
            foreach (var status in statusCodes.Select(s => s == ErrorShape.ModelFailure ? shape.ModelFailureStatus : s).Where(declared.Add))
            {
                endpoint.Metadata.Add(new ProducesResponseTypeMetadata(status, shape.BodyType, ["application/json"]));
            }
        });
        return builder;
    }

    /// <summary>
    /// Adds the <c>Retry-After</c> header to every 429 and 503 answer, the <c>X-RateLimit-*</c> headers where the endpoint counts requests,
    /// and a turn route's window headers (<see cref="TurnWindowHeaders"/>) to its 200 and 429.
    /// </summary>
    public static Task DescribeHeadersAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var counted = context.Description.ActionDescriptor.EndpointMetadata.OfType<CountsRequests>().Any();
        var windows = context.Description.ActionDescriptor.EndpointMetadata.OfType<TurnWindowHeaders>().LastOrDefault();
        foreach (var (status, response) in operation.Responses ?? [])
        {
            if (response is not OpenApiResponse answer)
            {
                continue;
            }

            answer.Headers ??= new Dictionary<string, IOpenApiHeader>();
            if (status is "429" or "503")
            {
                answer.Headers["Retry-After"] = Header("Seconds to wait before retrying.");
            }

            if (counted && status is not ("401" or "403"))
            {
                answer.Headers["X-RateLimit-Limit"] = Header("Requests this token may make per minute on this route's bucket.");
                answer.Headers["X-RateLimit-Remaining"] = Header("Requests left in the current minute.");
                answer.Headers["X-RateLimit-Reset"] = Header("When the minute ends (Unix seconds).");
            }

            if (windows is not null && status is "200" or "429")
            {
                foreach (var (name, description, isInteger) in windows.Described)
                {
                    answer.Headers[name] = Header(description, isInteger);
                }
            }
        }

        return Task.CompletedTask;

        static OpenApiHeader Header(string description, bool isInteger = true) =>
            new() { Description = description, Schema = new OpenApiSchema { Type = isInteger ? JsonSchemaType.Integer : JsonSchemaType.String } };
    }

    /// <summary>Turns <see cref="AllowedValuesAttribute"/> on a property (or on a list's items) into the schema's <c>enum</c>.</summary>
    public static Task DescribeAllowedValuesAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.JsonPropertyInfo?.AttributeProvider?.GetCustomAttributes(typeof(AllowedValuesAttribute), inherit: true)
                .OfType<AllowedValuesAttribute>().FirstOrDefault() is not { } allowed)
        {
            return Task.CompletedTask;
        }

        var target = schema.Items as OpenApiSchema ?? schema;
        target.Enum = allowed.Values.Select(v => (JsonNode)JsonValue.Create(v?.ToString())!).ToList();
        return Task.CompletedTask;
    }

    /// <summary>Endpoint metadata: the endpoint counts requests per token and answers with <c>X-RateLimit-*</c> headers.</summary>
    public sealed class CountsRequests
    {
        /// <summary>The one instance.</summary>
        public static readonly CountsRequests Instance = new();
    }
}
