using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// Reads a JSON object body field by field, so that every bad input gets a message naming the field
/// instead of a serializer's exception text.
/// </summary>
internal sealed class JsonBody : IDisposable
{
    /// <summary>Largest body read (1 MiB): far above any valid request.</summary>
    public const int MaxBytes = 1 << 20;

    private readonly JsonDocument _document;

    private JsonBody(JsonDocument document) => _document = document;

    /// <summary>The first problem found, if any.</summary>
    public string? Error { get; private set; }

    /// <summary>
    /// Parses the request body; on failure the error says why. With <paramref name="optional"/>, an
    /// empty body is neither a body nor an error.
    /// </summary>
    public static async Task<(JsonBody? Body, string? Error)> ReadAsync(HttpRequest request, CancellationToken cancellationToken, bool optional = false)
    {
        if (request.ContentLength > MaxBytes)
        {
            return (null, "request body is larger than 1 MiB");
        }

        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, cancellationToken);
            if (buffer.Length > MaxBytes)
            {
                return (null, "request body is larger than 1 MiB");
            }

            if (buffer.Length == 0)
            {
                return (null, optional ? null : "request body is empty; send a JSON object");
            }

            var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
            if (bytes.Span.StartsWith("\uFEFF"u8) || bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]))
            {
                return (null, "request body starts with a byte-order mark; send UTF-8 JSON without one");
            }

            var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                return (null, "request body must be a JSON object");
            }

            if (Unreadable(document.RootElement, "") is { } problem)
            {
                document.Dispose();
                return (null, problem);
            }

            return (new JsonBody(document), null);
        }
        catch (JsonException)
        {
            return (null, "request body is not valid JSON");
        }
    }

    /// <summary>
    /// What makes the body unreadable as its sender meant it, or null: a string or field name that is
    /// not valid Unicode text (invalid UTF-8, or an unpaired surrogate, escaped or raw: the parser
    /// accepts both and only reading the string would fail) or has a control character other than tab,
    /// CR and LF (escaped or raw; a field a route passes on as it is, such as an OpenAI message's
    /// content, is checked too), or a field named twice in one object (which of its values counts is
    /// not the sender's choice to leave open). The whole body is checked once here, before any field
    /// of it is read or stored.
    /// </summary>
    private static string? Unreadable(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return TextOf(element) is not { } text ? $"{Named(path)} is not valid Unicode text (invalid UTF-8, or an unpaired surrogate such as \\ud800)"
                    : HasControl(text) ? $"{Named(path)} must not contain control characters"
                    : null;
            case JsonValueKind.Object:
                var names = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    var name = NameOf(property);
                    if (name is null)
                    {
                        return $"a field name{(path.Length == 0 ? "" : $" in {Named(path)}")} is not valid Unicode text (invalid UTF-8, or an unpaired surrogate such as \\ud800)";
                    }

                    if (HasControl(name))
                    {
                        return $"a field name{(path.Length == 0 ? "" : $" in {Named(path)}")} contains a control character";
                    }

                    var field = path.Length == 0 ? name : $"{path}.{name}";
                    if (!names.Add(name))
                    {
                        return $"request body is not valid JSON: a property appears twice in one object ({Named(field)})";
                    }

                    if (Unreadable(property.Value, field) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Unreadable(item, $"{path}[{index++}]") is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            default:
                return null;
        }

        static string Named(string path) => path.Length == 0 ? "the body" : $"'{path}'";
    }

    /// <summary>The property's name, or null if it is not valid Unicode text.</summary>
    private static string? NameOf(JsonProperty property)
    {
        try
        {
            var name = property.Name;
            return IsWellFormed(name) ? name : null;
        }
        catch (InvalidOperationException)
        {
            return null; // System.Text.Json could not transcode it
        }
    }

    /// <summary>The string's text, or null if it is not valid Unicode text.</summary>
    private static string? TextOf(JsonElement value)
    {
        try
        {
            var text = value.GetString()!;
            return IsWellFormed(text) ? text : null;
        }
        catch (InvalidOperationException)
        {
            return null; // System.Text.Json could not transcode it
        }
    }

    /// <summary>Whether <paramref name="text"/> has a control character other than tab, CR and LF (C0, DEL, C1).</summary>
    private static bool HasControl(string text)
    {
        foreach (var c in text)
        {
            if (char.IsControl(c) && c is not ('\t' or '\n' or '\r'))
            {
                return true;
            }
        }

        return false;
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

    /// <summary>
    /// A string field of <paramref name="minLength"/> to <paramref name="maxLength"/> characters
    /// (Unicode scalar values); null when absent or JSON null and not required.
    /// </summary>
    public string? String(string name, bool required, int minLength, int maxLength)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            return Fail($"'{name}' must be a string");
        }

        // Control characters were refused with the whole body (Unreadable).
        var text = value.GetString()!;
        var length = text.EnumerateRunes().Count();

        if (length < minLength || string.IsNullOrWhiteSpace(text) && minLength > 0)
        {
            return Fail(minLength == 1 ? $"'{name}' must not be empty" : $"'{name}' must be at least {minLength} characters");
        }

        return length > maxLength ? Fail($"'{name}' must be at most {maxLength} characters (got {length})") : text;
    }

    /// <summary>A whole-number field in [<paramref name="min"/>, <paramref name="max"/>]; null when absent and not required.</summary>
    public long? Integer(string name, bool required, long min, long max)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        // -0 is zero to the parser, but no sender of a count means it.
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || value.GetRawText() == "-0")
        {
            Fail($"'{name}' must be a whole number");
            return null;
        }

        if (number < min || number > max)
        {
            Fail($"'{name}' must be between {min} and {max}");
            return null;
        }

        return number;
    }

    /// <summary>An array of strings; null when absent or JSON null and not required.</summary>
    public IReadOnlyList<string>? StringArray(string name, bool required)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
        {
            Fail($"'{name}' must be an array of strings");
            return null;
        }

        return value.EnumerateArray().Select(e => e.GetString()!).ToArray();
    }

    /// <summary>A boolean field; null when absent or JSON null and not required.</summary>
    public bool? Boolean(string name, bool required)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            Fail($"'{name}' must be true or false");
            return null;
        }

        return value.GetBoolean();
    }

    /// <summary>A JSON object field, as is; null when absent or JSON null.</summary>
    public JsonElement? Object(string name) => Raw(name, JsonValueKind.Object, "an object");

    /// <summary>A JSON array field, as is; null when absent or JSON null.</summary>
    public JsonElement? Array(string name) => Raw(name, JsonValueKind.Array, "an array");

    private JsonElement? Raw(string name, JsonValueKind kind, string what)
    {
        if (!TryGet(name, required: false, out var value))
        {
            return null;
        }

        if (value.ValueKind != kind)
        {
            Fail($"'{name}' must be {what}");
            return null;
        }

        return value;
    }

    /// <summary>Fails on the first property not in <paramref name="allowed"/>, so a misspelt field is not silently ignored.</summary>
    public void OnlyFields(params string[] allowed)
    {
        foreach (var property in _document.RootElement.EnumerateObject())
        {
            if (!allowed.Contains(property.Name, StringComparer.Ordinal))
            {
                Fail($"unknown field '{property.Name}'; expected {string.Join(", ", allowed.Select(a => $"'{a}'"))}");
                return;
            }
        }
    }

    /// <summary>Whether the body has a property <paramref name="name"/> (even null).</summary>
    public bool Has(string name) => _document.RootElement.TryGetProperty(name, out _);

    /// <inheritdoc />
    public void Dispose() => _document.Dispose();

    private bool TryGet(string name, bool required, out JsonElement value)
    {
        if (Error is null && _document.RootElement.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
        {
            return true;
        }

        if (required)
        {
            Fail($"'{name}' is required");
        }

        value = default;
        return false;
    }

    private string? Fail(string message)
    {
        Error ??= message;
        return null;
    }
}
