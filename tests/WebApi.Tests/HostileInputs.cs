using System.Text;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// One generated request: enough to send it again by hand. <see cref="Authorization"/> null means the
/// route's own valid credential; an empty list means no <c>Authorization</c> header at all.
/// </summary>
/// <param name="Kind">The class of hostility ("invalid UTF-8", "wrong Content-Type", ...), for grouping failures.</param>
/// <param name="MayBeAccepted">
/// Whether a 2xx is a right answer: the hostile part is something the route does not read (a query
/// parameter on a route that takes none, a body on a route that takes none).
/// </param>
internal sealed record FuzzRequest(
    string Kind,
    string Name,
    string Method,
    string Target,
    byte[]? Body,
    string? ContentType,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    IReadOnlyList<string>? Authorization,
    bool MayBeAccepted);

/// <summary>
/// Hostile bodies, query strings, headers, credentials and path values, generated from a route's valid
/// request with a seeded <see cref="Random"/>: the same seed gives the same cases, byte for byte.
/// </summary>
internal static class HostileInputs
{
    /// <summary>Byte sequences that are not UTF-8, each with what it is.</summary>
    private static readonly (string Name, byte[] Bytes)[] NotUtf8 =
    [
        ("FF (never in UTF-8)", [0xFF]),
        ("FE (never in UTF-8)", [0xFE]),
        ("80 (a continuation byte alone)", [0x80]),
        ("C0 AF (an overlong '/')", [0xC0, 0xAF]),
        ("E0 80 AF (an overlong '/' in three bytes)", [0xE0, 0x80, 0xAF]),
        ("ED A0 80 (the surrogate U+D800 encoded raw)", [0xED, 0xA0, 0x80]),
        ("ED BF BF (the surrogate U+DFFF encoded raw)", [0xED, 0xBF, 0xBF]),
        ("F4 90 80 80 (past U+10FFFF)", [0xF4, 0x90, 0x80, 0x80]),
        ("F8 88 80 80 80 (a five-byte form)", [0xF8, 0x88, 0x80, 0x80, 0x80]),
        ("E2 82 (a three-byte character cut short)", [0xE2, 0x82]),
    ];

    /// <summary>Escapes that the JSON parser accepts but that are not Unicode text.</summary>
    private static readonly string[] LoneSurrogates = [@"\ud800", @"\udfff", @"\udc00\ud800", @"\ud83dx", @"\uD800\u0041"];

    /// <summary>Control characters other than tab, CR and LF, escaped (valid JSON) or raw where JSON allows it.</summary>
    private static readonly (string Name, byte[] Bytes)[] ValidJsonControls =
    [
        (@"escaped \u0000", Encoding.ASCII.GetBytes(@"\u0000")),
        (@"escaped \u001b", Encoding.ASCII.GetBytes(@"\u001b")),
        (@"escaped \u0007", Encoding.ASCII.GetBytes(@"\u0007")),
        (@"escaped \u007f (DEL)", Encoding.ASCII.GetBytes(@"\u007f")),
        (@"escaped \u0085 (NEL)", Encoding.ASCII.GetBytes(@"\u0085")),
        ("raw 7F (DEL)", [0x7F]),
        ("raw C2 85 (NEL)", [0xC2, 0x85]),
    ];

    /// <summary>Number literals that no field of ours should take: too big, not whole, not JSON.</summary>
    private static readonly string[] BadNumbers =
        ["1e400", "-1e400", "99999999999999999999", "-99999999999999999999", "-0", "1.5", "1E+2", "0x10", "01", "+1", ".5", "NaN", "Infinity"];

    // ---- bodies ----

    /// <summary>
    /// Hostile bodies for a route whose valid body is <paramref name="valid"/> (ASCII JSON without escapes):
    /// bad bytes and escapes at random places in its strings, its fields duplicated or of the wrong type,
    /// numbers too big, deep nesting, wrong or missing Content-Type, empty, cut short, not an object.
    /// </summary>
    public static IEnumerable<(string Kind, string Name, byte[] Body, string? ContentType)> Bodies(string valid, bool optional, Random random)
    {
        const string Json = "application/json";
        var bytes = Encoding.UTF8.GetBytes(valid);
        var strings = StringTokens(bytes);
        var values = strings.Where(s => !s.IsName).ToArray();
        var names = strings.Where(s => s.IsName).ToArray();
        using var document = JsonDocument.Parse(bytes);
        var nodes = Nodes(document.RootElement);

        // :: Bytes that are not UTF-8, in a value at a random place; a few in a field name.
        foreach (var (name, bad) in NotUtf8)
        {
            if (values.Length > 0)
            {
                var (at, where) = Place(values, random);
                yield return ("invalid UTF-8", $"{name} {where}", Splice(bytes, at, bad), Json);
            }
        }

        foreach (var (name, bad) in NotUtf8.OrderBy(_ => random.Next()).Take(3))
        {
            if (names.Length > 0)
            {
                var (at, where) = Place(names, random);
                yield return ("invalid UTF-8", $"{name} {where}", Splice(bytes, at, bad), Json);
            }
        }

        // :: Escaped surrogates without their pair, in a value and in a field name.
        foreach (var escape in LoneSurrogates)
        {
            if (values.Length > 0)
            {
                var (at, where) = Place(values, random);
                yield return ("unpaired surrogate", $"{escape} {where}", Splice(bytes, at, Encoding.ASCII.GetBytes(escape)), Json);
            }
        }

        if (names.Length > 0)
        {
            var (at, where) = Place(names, random);
            yield return ("unpaired surrogate", $@"\ud800 {where}", Splice(bytes, at, Encoding.ASCII.GetBytes(@"\ud800")), Json);
        }

        // :: Control characters: raw below 0x20 (not JSON at all), escaped, or raw where JSON allows them.
        foreach (var raw in new byte[] { 0x00, (byte)random.Next(0x01, 0x09), 0x1B })
        {
            if (values.Length > 0)
            {
                var (at, where) = Place(values, random);
                yield return ("control character", $"raw {raw:X2} {where}", Splice(bytes, at, [raw]), Json);
            }
        }

        foreach (var (name, control) in ValidJsonControls)
        {
            if (values.Length > 0)
            {
                var (at, where) = Place(values, random);
                yield return ("control character", $"{name} {where}", Splice(bytes, at, control), Json);
            }
        }

        // :: Encodings: a UTF-8 byte-order mark, the body in UTF-16.
        yield return ("byte-order mark", "EF BB BF before the JSON", [0xEF, 0xBB, 0xBF, .. bytes], Json);
        yield return ("byte-order mark", "the body in UTF-16LE with its BOM", [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes(valid)], Json);

        // :: A field named twice: same value, another value, the name spelt with an escape, in a nested object.
        var objects = nodes.Where(n => n.Element.ValueKind == JsonValueKind.Object && n.Element.EnumerateObject().Any()).ToArray();
        foreach (var style in objects.Length == 0 ? [] : new[] { "same value", "another value", "name escaped" })
        {
            var target = style == "same value" ? nodes[0] : objects[random.Next(objects.Length)];
            yield return ("duplicate key", $"{style}, in {target.Path}", Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(target.Index, Duplicate: style, Random: random))), Json);
        }

        // :: Numbers too big or not whole: in every number field, and in one other field picked at random.
        var numbers = nodes.Where(n => n.Element.ValueKind == JsonValueKind.Number).ToList();
        var others = nodes.Where(n => n.Index != 0 && n.Element.ValueKind != JsonValueKind.Number).ToArray();
        if (others.Length > 0)
        {
            numbers.Add(others[random.Next(others.Length)]);
        }

        foreach (var node in numbers)
        {
            foreach (var number in BadNumbers)
            {
                yield return ("bad number", $"{number} as {node.Path}", Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(node.Index, number))), Json);
            }
        }

        // :: Deep nesting, past any parser's default depth.
        var field = others.Length > 0 ? others[random.Next(others.Length)] : nodes[0];
        yield return ("deep nesting", "5,000 '[' and nothing else", Encoding.ASCII.GetBytes(new string('[', 5000)), Json);
        yield return ("deep nesting", "5,000 nested arrays as the body", Encoding.ASCII.GetBytes(new string('[', 5000) + new string(']', 5000)), Json);
        yield return ("deep nesting", "a 100-deep object as the body", Encoding.ASCII.GetBytes(Nested(100)), Json);
        yield return ("deep nesting", $"a 100-deep object as {field.Path}", Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(field.Index, Nested(100)))), Json);
        yield return ("deep nesting", $"5,000 nested arrays as {field.Path}",
            Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(field.Index, new string('[', 5000) + new string(']', 5000)))), Json);
        yield return ("deep nesting", $"65 nested arrays as {field.Path}",
            Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(field.Index, new string('[', 65) + new string(']', 65)))), Json);

        // :: The valid body under a Content-Type that is not JSON, or none.
        foreach (var type in new[] { "text/plain", "application/xml", "multipart/form-data; boundary=fuzz", "application/x-www-form-urlencoded", "application/json; charset=utf-16", "application/jsonx" })
        {
            yield return ("wrong Content-Type", type, bytes, type);
        }

        yield return ("wrong Content-Type", "no Content-Type", bytes, null);
        yield return ("wrong Content-Type", "XML under application/xml", Encoding.ASCII.GetBytes("<chat><message>hi</message></chat>"), "application/xml");

        // :: Empty, blank, cut short.
        if (!optional)
        {
            yield return ("empty body", "no bytes", [], Json);
        }

        yield return ("empty body", "three spaces", Encoding.ASCII.GetBytes("   "), Json);
        var cut = random.Next(1, bytes.Length - 1);
        yield return ("body cut short", $"the valid body cut after byte {cut}", bytes[..cut], Json);
        yield return ("body cut short", "the valid body without its last '}'", bytes[..^1], Json);
        yield return ("body cut short", "{\"message\":\"hi", Encoding.ASCII.GetBytes("{\"message\":\"hi"), Json);

        // :: JSON that is not an object, or not JSON.
        foreach (var text in new[] { "[]", "\"x\"", "null", "1", "true", "\"\"", $"[{valid}]" })
        {
            yield return ("not an object", text.Length > 20 ? "the valid body inside an array" : text, Encoding.UTF8.GetBytes(text), Json);
        }

        yield return ("not JSON", "text after the object", Encoding.UTF8.GetBytes(valid + " x"), Json);
        yield return ("not JSON", "two objects", Encoding.UTF8.GetBytes(valid + valid), Json);
        yield return ("not JSON", "a comment before the object", Encoding.UTF8.GetBytes("/* c */" + valid), Json);
        yield return ("not JSON", "a trailing comma", Encoding.UTF8.GetBytes(valid[..^1] + ",}"), Json);
        yield return ("not JSON", "single quotes", Encoding.UTF8.GetBytes(valid.Replace('"', '\'')), Json);

        // :: Values of the wrong type: every value once, nested ones too, and three more picked at random.
        var typed = nodes.Where(n => n.Index != 0).ToList();
        var picked = typed.Concat(typed.OrderBy(_ => random.Next()).Take(3)).ToArray();
        foreach (var node in picked)
        {
            var wrong = WrongTypes(node.Element.ValueKind);
            var replacement = wrong[random.Next(wrong.Length)];
            yield return ("wrong type", $"{replacement} as {node.Path}", Encoding.UTF8.GetBytes(Write(document.RootElement, new Mutation(node.Index, replacement))), Json);
        }

        // :: Larger than any valid request.
        if (values.Length > 0)
        {
            var (at, where) = Place(values, random);
            yield return ("too large", $"1 MiB of 'x' {where}", Splice(bytes, at, Encoding.ASCII.GetBytes(new string('x', 1 << 20))), Json);
        }
    }

    /// <summary>Values of another JSON kind than <paramref name="kind"/>; never null, which an optional field may rightly take.</summary>
    private static string[] WrongTypes(JsonValueKind kind) => kind switch
    {
        JsonValueKind.String => ["42", "true", "{}", "[\"x\"]"],
        JsonValueKind.Number => ["\"1\"", "true", "{}", "[1]"],
        JsonValueKind.True or JsonValueKind.False => ["\"true\"", "1", "{}", "[]"],
        JsonValueKind.Array => ["\"x\"", "42", "{}", "[1]"],
        _ => ["\"x\"", "42", "[]", "true"],
    };

    private static string Nested(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    private static byte[] Splice(byte[] bytes, int at, byte[] insert) => [.. bytes.AsSpan(0, at), .. insert, .. bytes.AsSpan(at)];

    /// <summary>A random offset inside one of <paramref name="tokens"/> and a description of it.</summary>
    private static (int At, string Where) Place(StringToken[] tokens, Random random)
    {
        var token = tokens[random.Next(tokens.Length)];
        var offset = random.Next(token.Length + 1);
        return (token.Start + offset, $"at char {offset} of {(token.IsName ? "the name" : "the value")} '{token.Text}'");
    }

    private sealed record StringToken(int Start, int Length, bool IsName, string Text);

    /// <summary>Every string and property name of <paramref name="json"/>, by byte offset of its content.</summary>
    private static StringToken[] StringTokens(byte[] json)
    {
        var tokens = new List<StringToken>();
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName)
            {
                tokens.Add(new StringToken((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length, reader.TokenType == JsonTokenType.PropertyName, reader.GetString()!));
            }
        }

        return [.. tokens];
    }

    private sealed record Node(int Index, int Depth, string Path, JsonElement Element);

    /// <summary>Every value of the tree in pre-order, the root first (index 0).</summary>
    private static List<Node> Nodes(JsonElement root)
    {
        var nodes = new List<Node>();
        Visit(root, 0, "the body");
        return nodes;

        void Visit(JsonElement element, int depth, string path)
        {
            nodes.Add(new Node(nodes.Count, depth, path, element));
            if (element.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in element.EnumerateObject())
                {
                    Visit(property.Value, depth + 1, depth == 0 ? $"'{property.Name}'" : $"{path[..^1]}.{property.Name}'");
                }
            }
            else if (element.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Visit(item, depth + 1, depth == 0 ? $"[{i}]" : $"{path[..^1]}[{i}]'");
                    i++;
                }
            }
        }
    }

    /// <summary>
    /// A change at node <paramref name="Node"/>: its value replaced by the raw text <paramref name="Replacement"/>,
    /// or, for an object, one of its fields written twice in the way <paramref name="Duplicate"/> names.
    /// </summary>
    private sealed record Mutation(int Node, string? Replacement = null, string? Duplicate = null, Random? Random = null);

    /// <summary>The tree as JSON text with <paramref name="mutation"/> applied (raw text: duplicates and bad literals survive).</summary>
    private static string Write(JsonElement root, Mutation mutation)
    {
        var text = new StringBuilder();
        var index = 0;
        Emit(root);
        return text.ToString();

        void Emit(JsonElement element)
        {
            var here = index++;
            if (here == mutation.Node && mutation.Replacement is { } replacement)
            {
                text.Append(replacement);
                SkipChildren(element);
                return;
            }

            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    var properties = element.EnumerateObject().ToArray();
                    var twice = here == mutation.Node && mutation.Duplicate is not null ? mutation.Random!.Next(properties.Length) : -1;
                    var twiceAt = twice < 0 ? -1 : mutation.Random!.Next(properties.Length + 1);
                    text.Append('{');
                    var first = true;
                    for (var i = 0; i <= properties.Length; i++)
                    {
                        if (i == twiceAt)
                        {
                            Separate(ref first);
                            var property = properties[twice];
                            var name = mutation.Duplicate == "name escaped" ? $"\\u{(int)property.Name[0]:x4}{property.Name[1..]}" : property.Name;
                            text.Append('"').Append(name).Append("\":");
                            text.Append(mutation.Duplicate == "another value" ? Other(property.Value) : property.Value.GetRawText());
                        }

                        if (i < properties.Length)
                        {
                            Separate(ref first);
                            text.Append('"').Append(properties[i].Name).Append("\":");
                            Emit(properties[i].Value);
                        }
                    }

                    text.Append('}');
                    break;
                case JsonValueKind.Array:
                    text.Append('[');
                    var firstItem = true;
                    foreach (var item in element.EnumerateArray())
                    {
                        Separate(ref firstItem);
                        Emit(item);
                    }

                    text.Append(']');
                    break;
                default:
                    text.Append(element.GetRawText());
                    break;
            }
        }

        void Separate(ref bool first)
        {
            if (!first)
            {
                text.Append(',');
            }

            first = false;
        }

        // A replaced node's children keep their numbers, so the indexes of the nodes after it do not move.
        void SkipChildren(JsonElement element)
        {
            if (element.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in element.EnumerateObject())
                {
                    index++;
                    SkipChildren(property.Value);
                }
            }
            else if (element.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in element.EnumerateArray())
                {
                    index++;
                    SkipChildren(item);
                }
            }
        }

        static string Other(JsonElement value) => value.ValueKind == JsonValueKind.String ? "\"other\"" : value.ValueKind == JsonValueKind.Number ? "2" : "\"other\"";
    }

    // ---- query strings, credentials, headers, path values ----

    /// <summary>
    /// Bad values for a query parameter named <paramref name="name"/>, as (what, query string, whether the
    /// query names that parameter at all: one whose name is something else is a parameter no route reads).
    /// </summary>
    public static IEnumerable<(string Name, string Query, bool Names)> Queries(string name, Random random)
    {
        yield return ("not a number", $"?{name}=abc", true);
        yield return ("%FF", $"?{name}=%FF", true);
        yield return ("an exponent", $"?{name}=1e3", true);
        yield return ("negative", $"?{name}=-1", true);
        yield return ("zero", $"?{name}=0", true);
        yield return ("too big", $"?{name}=99999999999999999999", true);
        yield return ("given twice", $"?{name}=1&{name}=2", true);
        yield return ("10,000 characters", $"?{name}={new string('9', 10_000)}", true);
        yield return ("%00", $"?{name}=%00", true);
        yield return ("a broken escape", $"?{name}=%E2%82", true);
        yield return ("a lone %", $"?{name}=%", true);
        yield return ("random bytes", $"?{name}={string.Concat(Enumerable.Range(0, 8).Select(_ => $"%{random.Next(256):X2}"))}", true);
        yield return ("NUL before the name", $"?%00{name}=1", false);
    }

    /// <summary>
    /// Malformed <c>Authorization</c> headers around the route's valid credential <paramref name="valid"/>
    /// and the other kind of credential <paramref name="wrong"/> (the admin token for a key route, a key for an admin route).
    /// </summary>
    public static IEnumerable<(string Name, IReadOnlyList<string> Values)> Credentials(string valid, string wrong)
    {
        yield return ("none", []);
        yield return ("no scheme", [valid]);
        yield return ("'Bearer' alone", ["Bearer"]);
        yield return ("'Bearer' and spaces", ["Bearer    "]);
        yield return ("Basic scheme", [$"Basic {Convert.ToBase64String(Encoding.UTF8.GetBytes($"user:{valid}"))}"]);
        yield return ("unknown scheme", [$"Token {valid}"]);
        yield return ("10,000-character token", [$"Bearer {new string('A', 10_000)}"]);
        yield return ("non-ASCII token", [$"Bearer {valid}é😀"]);
        yield return ("token and another word", [$"Bearer {valid} extra"]);
        yield return ("the valid header twice", [$"Bearer {valid}", $"Bearer {valid}"]);
        yield return ("a valid and an invalid header", [$"Bearer {valid}", "Bearer lulu_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
        yield return ("the other kind of credential", [$"Bearer {wrong}"]);
    }

    /// <summary>
    /// Hostile values for a route parameter, already escaped for the path. Not <c>%00</c>: the test server
    /// will not take a path with NUL in it (the Kestrel walk sends it).
    /// </summary>
    public static IEnumerable<(string Name, string Value)> PathValues(Random random)
    {
        yield return ("5,000 characters", new string('x', 5000));
        yield return ("%FF", "%FF");
        yield return ("'..' escaped", "%2E%2E");
        yield return ("'../..' with escaped slashes", "..%2F..%2Fadmin");
        yield return ("an overlong '/' (%C0%AF)", "%C0%AF");
        yield return ("a raw-encoded surrogate (%ED%A0%80)", "%ED%A0%80");
        yield return ("a character cut short (%E2%82)", "x%E2%82");
        yield return ("unicode", Uri.EscapeDataString("ボット😀"));
        yield return ("a newline", "%0A");
        yield return ("a space", "%20");
        yield return ("random bytes", string.Concat(Enumerable.Range(0, 6).Select(_ => $"%{random.Next(1, 256):X2}")));
    }
}
