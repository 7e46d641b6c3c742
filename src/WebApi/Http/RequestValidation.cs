using System.Collections;
using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// A request record whose data annotations (<see cref="RequiredAttribute"/>, <see cref="StringLengthAttribute"/>,
/// <see cref="RangeAttribute"/>, <see cref="MaxLengthAttribute"/>) are checked by <see cref="RequestValidation"/>
/// before the handler runs, and describe it in the OpenAPI document too. (Control characters and text
/// that is not Unicode were refused before binding, by <see cref="JsonRequests"/>.) A record with a
/// <see cref="JsonExtensionDataAttribute"/> property refuses fields it does not know.
/// </summary>
internal interface IRequestBody
{
    /// <summary>Rules the annotations cannot say, run after them: the 400 message (naming the field), or null.</summary>
    string? Check() => null;
}

/// <summary>The validation filter: the first broken rule of a request's body is a 400 naming its field, in the endpoint's error shape.</summary>
internal static class RequestValidation
{
    private static readonly ConcurrentDictionary<Type, Field[]> Fields = new();

    /// <summary>Checks every <see cref="IRequestBody"/> argument of the endpoints <paramref name="builder"/> maps.</summary>
    public static TBuilder ValidatesRequests<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        // What the body checks and this filter answer, on the endpoints that take a JSON body.
        builder.Finally(endpoint =>
        {
            if (endpoint.Metadata.OfType<Microsoft.AspNetCore.Http.Metadata.IAcceptsMetadata>().Any())
            {
                var shape = endpoint.Metadata.OfType<ErrorShape>().LastOrDefault() ?? ErrorShapes.Lulu;
                foreach (var status in new[] { StatusCodes.Status400BadRequest, StatusCodes.Status413PayloadTooLarge, StatusCodes.Status415UnsupportedMediaType })
                {
                    endpoint.Metadata.Add(new ProducesResponseTypeMetadata(status, shape.BodyType, ["application/json"]));
                }
            }
        });
        return builder.AddEndpointFilterFactory((factory, next) =>
        {
            var bodies = factory.MethodInfo.GetParameters()
                .Select((p, i) => (Index: i, p.ParameterType))
                .Where(p => typeof(IRequestBody).IsAssignableFrom(p.ParameterType))
                .Select(p => p.Index)
                .ToArray();
            if (bodies.Length == 0)
            {
                return next;
            }

            return invocation =>
            {
                foreach (var index in bodies)
                {
                    if (invocation.Arguments[index] is IRequestBody body && Problem(invocation.HttpContext, body) is { } problem)
                    {
                        return ValueTask.FromResult<object?>(ErrorShapes.Of(invocation.HttpContext).Result(StatusCodes.Status400BadRequest, problem.Message, field: problem.Field));
                    }
                }

                return next(invocation);
            };
        });
    }

    /// <summary>The first broken rule of <paramref name="body"/>, or null.</summary>
    internal static (string Field, string Message)? Problem(HttpContext context, IRequestBody body)
    {
        var fields = Fields.GetOrAdd(body.GetType(), static (type, context) =>
            Describe(type, context.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions), context);
        foreach (var field in fields)
        {
            if (field.Check(body) is { } message)
            {
                return (field.Name, message);
            }
        }

        return body.Check() is { } other ? ("", other) : null;
    }

    private static Field[] Describe(Type type, JsonSerializerOptions options)
    {
        var info = options.GetTypeInfo(type);
        var known = info.Properties.Where(p => !IsExtensionData(p)).Select(p => $"'{p.Name}'").ToArray();
        // Unknown fields first: a misspelt field would otherwise read as a required one missing.
        return info.Properties.OrderBy(p => IsExtensionData(p) ? 0 : 1).Select(p => new Field(p, known)).ToArray();
    }

    private static bool IsExtensionData(JsonPropertyInfo property) =>
        property.AttributeProvider?.IsDefined(typeof(JsonExtensionDataAttribute), inherit: false) == true;

    /// <summary>One field of a request record and its rules.</summary>
    private sealed class Field(JsonPropertyInfo property, string[] known)
    {
        private readonly Func<object, object?> _get = property.Get ?? (_ => null);
        private readonly bool _extensionData = IsExtensionData(property);
        private readonly ValidationAttribute[] _rules =
            property.AttributeProvider?.GetCustomAttributes(typeof(ValidationAttribute), inherit: true).Cast<ValidationAttribute>().ToArray() ?? [];

        public string Name { get; } = property.Name;

        public string? Check(object body)
        {
            var value = _get(body);
            if (_extensionData)
            {
                return value is IDictionary { Count: > 0 } unknown
                    ? $"unknown field '{unknown.Keys.Cast<string>().First()}'; expected {string.Join(", ", known)}"
                    : null;
            }

            if (value is null)
            {
                return _rules.OfType<RequiredAttribute>().Any() ? $"'{Name}' is required" : null;
            }

            if (value is string text)
            {
                return CheckText(text);
            }

            foreach (var rule in _rules)
            {
                switch (rule)
                {
                    case RangeAttribute range when value is IConvertible number:
                        var x = Convert.ToDecimal(number, CultureInfo.InvariantCulture);
                        var min = Convert.ToDecimal(range.Minimum, CultureInfo.InvariantCulture);
                        var max = Convert.ToDecimal(range.Maximum, CultureInfo.InvariantCulture);
                        if (x < min || x > max)
                        {
                            return $"'{Name}' must be between {range.Minimum} and {range.Maximum}";
                        }

                        break;
                    case MaxLengthAttribute most when value is ICollection items && items.Count > most.Length:
                        return $"'{Name}' may have at most {most.Length} items (got {items.Count})";
                }
            }

            return null;
        }

        private string? CheckText(string text)
        {
            var length = 0;
            foreach (var _ in text.EnumerateRunes())
            {
                length++;
            }

            var (minLength, maxLength) = _rules.OfType<StringLengthAttribute>().Select(s => (s.MinimumLength, s.MaximumLength)).FirstOrDefault((0, int.MaxValue));
            if (length < minLength || minLength > 0 && string.IsNullOrWhiteSpace(text))
            {
                return minLength == 1 ? $"'{Name}' must not be empty" : $"'{Name}' must be at least {minLength} characters";
            }

            return length > maxLength ? $"'{Name}' must be at most {maxLength} characters (got {length})" : null;
        }
    }
}
