using System.Buffers;
using System.Collections;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.Unicode;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// JSON request bodies: typed records bound by System.Text.Json (strict options, see
/// <see cref="Configure"/>), after one pass over the body's bytes that refuses what the serializer
/// would accept silently or fail on with a message naming no field.
/// </summary>
/// <remarks>
/// Why a pass of our own before binding: System.Text.Json's reader does not check that strings are
/// Unicode text (invalid or overlong UTF-8, a surrogate encoded raw or escaped without its pair pass
/// the reader, and binding then fails with the same "could not be converted" as a wrong type), and it
/// names neither a duplicate field's cause nor a BOM. The pass reads each string once and allocates
/// only for escaped strings and field names; bodies are at most <see cref="MaxBytes"/>.
/// </remarks>
internal static class JsonRequests
{
    /// <summary>Largest body read (1 MiB): far above any valid request.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>Deepest nesting a body may have.</summary>
    public const int MaxDepth = 64;

    private const string NotText = "is not valid Unicode text (invalid UTF-8, or an unpaired surrogate such as \\ud800)";

    private const string Controls = "must not contain control characters";

    /// <summary>The binding options: snake_case, no duplicate fields, numbers only as numbers, <see cref="MaxDepth"/>.</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        options.AllowDuplicateProperties = false;
        options.MaxDepth = MaxDepth;
    }

    /// <summary>
    /// Checks the body of every request whose endpoint binds a JSON body, before binding (its
    /// <c>Content-Type</c> was checked by <see cref="RequestChecks"/>): a body over <see cref="MaxBytes"/> a 413, and an empty body, bytes
    /// that are not JSON, a body that is not an object, nesting past <see cref="MaxDepth"/>, strings that
    /// are not Unicode text and a field named twice are each a 400 naming the problem, in the endpoint's
    /// error shape. The body the binder then reads is the checked copy.
    /// </summary>
    public static IApplicationBuilder UseJsonBodyChecks(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var accepts = context.GetEndpoint()?.Metadata.GetMetadata<IAcceptsMetadata>();
        if (accepts is null || !accepts.ContentTypes.Any(IsJson) || HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsDelete(context.Request.Method)
            || Uploads.IsUpload(context.Request))
        {
            await next(context);
            return;
        }

        var (status, problem) = await CheckAsync(context.Request, accepts.IsOptional, context.RequestAborted);
        if (problem is not null)
        {
            await ErrorShapes.Of(context).Result(status, problem).ExecuteAsync(context);
            return;
        }

        await next(context);
    });

    /// <summary>The 400 message for a binding failure of <paramref name="exception"/> (a field of the wrong type), or null if it is not one.</summary>
    public static string? BindingProblem(HttpContext context, BadHttpRequestException exception)
    {
        if (exception.InnerException is not JsonException { Path: { } path })
        {
            return null;
        }

        var field = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        if (field.Length == 0)
        {
            return "request body must be a JSON object";
        }

        var type = context.GetEndpoint()?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
        var options = context.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
        return $"'{field}' must be {Describe(FieldType(type, field, options))}";
    }

    /// <summary>The type of the field at <paramref name="path"/> (<c>a.b[2].c</c>) of <paramref name="root"/>, if it can be found.</summary>
    private static Type? FieldType(Type? root, string path, JsonSerializerOptions options)
    {
        var type = root;
        foreach (var segment in path.Split('.'))
        {
            var name = segment;
            var bracket = name.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                name = name[..bracket];
            }

            if (type is null || !options.TryGetTypeInfo(type, out var info) || info.Kind != JsonTypeInfoKind.Object)
            {
                return null;
            }

            type = info.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
            for (var i = bracket; type is not null && i >= 0; i = segment.IndexOf('[', i + 1))
            {
                type = ElementType(type);
            }
        }

        return type;
    }

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && typeof(IEnumerable).IsAssignableFrom(type) ? type.GetGenericArguments()[^1]
        : null;

    /// <summary>What a JSON value must be to bind to <paramref name="type"/>, in a 400's words.</summary>
    private static string Describe(Type? type)
    {
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            null => "of another type",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) => "a whole number",
            _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number",
            _ when type == typeof(JsonElement) => "valid JSON",
            _ when ElementType(type) == typeof(string) => "an array of strings",
            _ when ElementType(type) is not null => "an array",
            _ => "an object",
        };
    }

    private static bool IsJson(string contentType) =>
        contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
        || contentType.Contains("+json", StringComparison.OrdinalIgnoreCase);

    private static async Task<(int Status, string? Problem)> CheckAsync(HttpRequest request, bool optional, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxBytes)
        {
            return (StatusCodes.Status413PayloadTooLarge, "request body is larger than 1 MiB");
        }

        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > MaxBytes)
                {
                    return (StatusCodes.Status413PayloadTooLarge, "request body is larger than 1 MiB");
                }

                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        var body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (body.Length == 0 && optional)
        {
            request.Body = new MemoryStream([], writable: false);
            return (StatusCodes.Status200OK, null);
        }

        if (body.Span.StartsWith("\uFEFF"u8) || body.Span.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || body.Span.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]))
        {
            // JSON text has no byte-order mark (RFC 8259 8.1); one means an editor's or a UTF-16 encoder's output.
            return (StatusCodes.Status400BadRequest, "request body starts with a byte-order mark; send UTF-8 JSON without one");
        }

        if (Problem(body.Span) is { } problem)
        {
            return (StatusCodes.Status400BadRequest, problem);
        }

        var checkedBody = body.ToArray();
        request.Body = new MemoryStream(checkedBody, writable: false);
        request.ContentLength = checkedBody.Length;
        return (StatusCodes.Status200OK, null);
    }

    /// <summary>What is wrong with <paramref name="json"/> as a request body, or null.</summary>
    internal static string? Problem(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty)
        {
            return "request body is empty; send a JSON object";
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
        // One entry per open object or array: its path, and for an object the names seen so far.
        var open = new List<(string Path, HashSet<string>? Names, int Index)>();
        var pending = ""; // the path of the value the reader reads next
        try
        {
            while (reader.Read())
            {
                if (open.Count > 0 && open[^1].Names is null && reader.TokenType is not (JsonTokenType.EndArray))
                {
                    var (path, _, index) = open[^1];
                    pending = $"{path}[{index}]";
                    open[^1] = (path, null, index + 1);
                }

                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        open.Add((pending, new HashSet<string>(StringComparer.Ordinal), 0));
                        break;
                    case JsonTokenType.StartArray:
                        if (open.Count == 0)
                        {
                            return "request body must be a JSON object";
                        }

                        open.Add((pending, null, 0));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        open.RemoveAt(open.Count - 1);
                        break;
                    case JsonTokenType.PropertyName:
                        var owner = open[^1];
                        var name = Name(ref reader);
                        if (name is null || HasControl(name))
                        {
                            return $"a field name{(owner.Path.Length == 0 ? "" : $" in '{owner.Path}'")} {(name is null ? NotText : "holds control characters")}";
                        }

                        pending = owner.Path.Length == 0 ? name : $"{owner.Path}.{name}";
                        if (!owner.Names!.Add(name))
                        {
                            return $"request body is not valid JSON: a property appears twice in one object ('{pending}')";
                        }

                        break;
                    case JsonTokenType.String:
                        if (open.Count == 0)
                        {
                            return "request body must be a JSON object";
                        }

                        if (Unreadable(ref reader) is { } problem)
                        {
                            return $"'{pending}' {problem}";
                        }

                        break;
                    case JsonTokenType.Number when reader.ValueSpan.Length >= 2 && reader.ValueSpan[0] == '-' && IsZero(reader.ValueSpan[1..]):
                        return $"'{pending}' is -0; send 0";
                    default:
                        if (open.Count == 0)
                        {
                            return "request body must be a JSON object";
                        }

                        break;
                }
            }
        }
        catch (JsonException) when (open.Count >= MaxDepth)
        {
            return $"request body nests deeper than {MaxDepth} levels";
        }
        catch (JsonException e)
        {
            return $"request body is not valid JSON ({Where(e)})";
        }

        return null;

        static string Where(JsonException e) => e.LineNumber is { } line && e.BytePositionInLine is { } position
            ? $"line {line + 1}, byte {position + 1}"
            : "at the end";
    }

    /// <summary>
    /// What makes the string under the reader unfit as text, or null: not Unicode text, or control characters
    /// other than tab and line breaks (raw ones JSON forbids below U+0020; DEL, the C1 range and escaped ones it
    /// lets through). Only an escaped string is decoded to tell.
    /// </summary>
    private static string? Unreadable(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped)
        {
            return Name(ref reader) is not { } text ? NotText : HasControl(text) ? Controls : null;
        }

        var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
        if (!Utf8.IsValid(raw))
        {
            return NotText;
        }

        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == 0x7F || raw[i] == 0xC2 && i + 1 < raw.Length && raw[i + 1] is >= 0x80 and <= 0x9F)
            {
                return Controls;
            }
        }

        return null;
    }

    private static bool HasControl(string text)
    {
        foreach (var rune in text.EnumerateRunes())
        {
            if (Rune.IsControl(rune) && rune.Value is not ('\n' or '\r' or '\t'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a number's digits (after its sign) are zero: <c>0</c>, <c>0.0</c>, <c>0e5</c>.</summary>
    private static bool IsZero(ReadOnlySpan<byte> digits)
    {
        foreach (var b in digits)
        {
            if (b is (byte)'e' or (byte)'E')
            {
                break;
            }

            if (b is not ((byte)'0' or (byte)'.'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The string or field name under the reader, or null if it is not Unicode text.</summary>
    private static string? Name(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped)
        {
            var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
            return Utf8.IsValid(raw) ? Encoding.UTF8.GetString(raw) : null;
        }

        try
        {
            var text = reader.GetString()!;
            return IsWellFormed(text) ? text : null;
        }
        catch (InvalidOperationException)
        {
            return null; // System.Text.Json could not transcode it
        }
    }

    /// <summary>No surrogate without its pair.</summary>
    private static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }
}
