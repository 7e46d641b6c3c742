using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// Issue 16: hostile bytes are a 4xx on every route, never a 500. Walks every route the app maps and
/// sends each a generated set of hostile bodies, query strings, headers, credentials and path values.
/// </summary>
/// <remarks>
/// <para>
/// The routes come from the app's <see cref="EndpointDataSource"/>, so a route added later is walked
/// without editing this test. What the test knows about a route beyond that (its valid body, the query
/// parameters and headers it reads) is in <see cref="Inputs"/>, by endpoint name; a route missing there
/// is still walked, as one that takes a JSON object it did not describe (POST, PUT, PATCH) or nothing.
/// </para>
/// <para>
/// The cases come from <see cref="HostileInputs"/> with a <see cref="Random"/> seeded per route from
/// <see cref="Seed"/> (<c>LULUCLAW_FUZZ_SEED</c> overrides it), so a failure names its seed and case and
/// the same run reproduces it; <c>LULUCLAW_FUZZ_ROUTE</c> (a part of "METHOD /pattern") walks only the
/// routes it matches.
/// </para>
/// <para>
/// Each case must be answered 4xx in the surface's own error shape with a non-empty message, or 2xx
/// where the hostile part is something the route does not read; never 5xx. After each case the
/// workspace's credits, sessions, bots and provider keys are as before unless the case was accepted;
/// after each route a normal chat turn still answers 200. Every failure is collected, and the test fails
/// once at the end with the list.
/// </para>
/// <para>
/// The in-memory test server has no header limits, so the header section is tried again on a real
/// node on Kestrel (<see cref="ServerProcess"/>), with the body cut short by a Content-Length that lies,
/// which only a real connection can send. That walk runs once, with the SQLite class: what Kestrel does
/// with a request's framing does not depend on the storage behind it.
/// </para>
/// </remarks>
public abstract partial class RouteFuzzTests(Provider provider) : IAsyncLifetime
{
    /// <summary>The seed of every run unless <c>LULUCLAW_FUZZ_SEED</c> says otherwise (the issue's number).</summary>
    private const int DefaultSeed = 16;

    private const string Json = "application/json";
    private const string Session = "fuzz-session";
    private const string VictimSession = "fuzz-victim";
    private const string OpenAISession = "fuzz-oai";

    /// <summary>
    /// The routes that are not part of any API surface, and so are not walked: <c>/healthz</c> is the load
    /// balancers' probe (plain text "ok", no input, no error shape), and <c>/openapi/{documentName}.json</c>
    /// is the OpenAPI document, served by Microsoft.AspNetCore.OpenApi rather than by LuluClaw's code.
    /// The test fails if either is gone, so this list cannot hide a route by going stale.
    /// </summary>
    private static readonly string[] NotApi = ["/healthz", "/openapi/{documentName}.json"];

    /// <summary>What a route reads, by endpoint name: a valid body (<c>{session}</c> and <c>{bot}</c> are filled in), query parameters, headers with valid values.</summary>
    private static readonly Dictionary<string, RouteInputs> Inputs = new(StringComparer.Ordinal)
    {
        ["GatewayChat"] = new("""{"message":"hi","session_id":"{session}","stream":false}"""),
        ["DeveloperChat"] = new("""{"message":"hi","session_id":"{session}","bot_id":"{bot}","stream":false}"""),
        ["CreateBot"] = new("""{"name":"fuzz bot","system_prompt":"be brief","model":"echo","channels":["slack"]}"""),
        ["UpdateBot"] = new("""{"name":"fuzz bot","system_prompt":"be brief","model":"echo","channels":["slack"]}"""),
        ["RestartBot"] = new(Body: null),
        ["PutProviderKey"] = new("""{"api_key":"sk-fuzz-0123456789"}"""),
        ["OpenAIChatCompletions"] = new(
            """{"model":"{bot}","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":false,"stream_options":{"include_usage":false}}""",
            Headers: [new("X-Session-Id", OpenAISession)]),
        ["OpenAIResponses"] = new("""{"model":"{bot}","input":[{"role":"developer","content":"be brief"},{"role":"user","content":"hi"}],"stream":false,"store":true}"""),
        ["OpenClawChat"] = new("""{"message":"hi","sessionKey":"{session}","stream":false}"""),
        ["OpenClawChatStream"] = new("""{"message":"hi","sessionKey":"{session}","stream":true}"""),
        ["OpenClawHistory"] = new(Body: null, Query: ["limit"]),
        ["AdminCreateWorkspace"] = new("""{"name":"fuzz","plan":"starter","credits":5}"""),
        ["AdminChangePlan"] = new("""{"plan":"fuzz"}"""),
        ["AdminAddCredits"] = new("""{"amount":1}"""),
        ["AdminCreateKey"] = new("""{"scopes":["chat"],"plan":"standard"}""", BodyOptional: true),
    };

    /// <summary>Plans without limits that matter here: the walk makes a few thousand requests and a few hundred accepted turns.</summary>
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Plans:Workspace:fuzz:TurnsPerHour"] = "1000000",
        ["Plans:Key:fuzz:RequestsPerDay"] = "1000000",
        ["Plans:DefaultKeyPlan"] = "fuzz",
        ["OpenClaw:ChatRequestsPerMinute"] = "1000000",
        ["OpenClaw:ReadRequestsPerMinute"] = "1000000",
    };

    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-fuzz-").FullName;
    private readonly SortedDictionary<string, int> _answers = new(StringComparer.Ordinal);
    private LuluClawApp _app = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("LULUCLAW_FUZZ_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : DefaultSeed;

    public async ValueTask InitializeAsync() => _app = await LuluClawApp.StartAsync(provider, Settings);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task EveryRoute_HostileInput_Is4xxInTheSurfaceShape_StoresAndChargesNothing_AndTheServerKeepsServing()
    {
        // The real node boots while the in-memory walk runs; it is stopped even if the walk throws.
        var node = provider == Provider.Sqlite ? ServerProcess.StartAsync(_folder, Ct, Settings) : null;
        await using var stop = new NodeStopper(node);
        var watch = Stopwatch.StartNew();
        var routes = Routes(_app.Services);
        var only = Environment.GetEnvironmentVariable("LULUCLAW_FUZZ_ROUTE");
        var walked = routes.Where(r => only is null || $"{r.Method} {r.Pattern}".Contains(only, StringComparison.OrdinalIgnoreCase)).ToArray();
        var world = await World.CreateAsync(_app);
        var failures = new List<Failure>();
        var sent = 0;

        using var client = _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.Timeout = TimeSpan.FromSeconds(30);
        foreach (var route in walked)
        {
            var seed = RouteSeed(route);
            var cases = Cases(route, routes, world, new Random(seed)).ToArray();
            var before = await world.StateAsync(client);
            for (var i = 0; i < cases.Length; i++)
            {
                var request = cases[i];
                var where = new Where(route, i, request, seed);
                var (status, body, problem) = await SendAsync(client, world, route, request);
                sent++;
                Count(request.Kind, status);
                if (Judge(route.Pattern, request, status, body, problem) is { } outcome)
                {
                    failures.Add(new Failure(where, outcome.Class, status, outcome.Detail));
                }

                // A GET changes nothing even when it is accepted: its route is checked once, after its last case.
                if (route.Method != "GET" || i == cases.Length - 1)
                {
                    var after = await world.StateAsync(client);
                    if ((route.Method == "GET" || status is < 200 or >= 300) && after != before)
                    {
                        failures.Add(new Failure(where, "stored or charged", status, $"before: {before}\n        after:  {after}"));
                    }

                    before = after;
                }
            }

            // :: The server goes on: a normal turn answers, and is the only thing it charged.
            using var turn = await client.SendAsync(world.Authorized(HttpMethod.Post, "/api/gateway/chat", JsonContent.Create(new { message = "still serving", session_id = "fuzz-health" })), Ct);
            if (turn.StatusCode != System.Net.HttpStatusCode.OK)
            {
                failures.Add(new Failure(new Where(route, -1, null, seed), "not serving after", (int)turn.StatusCode, await turn.Content.ReadAsStringAsync(Ct)));
            }
        }

        var inMemory = watch.Elapsed;
        var kestrelSent = node is null ? 0 : await WalkKestrelAsync(await node, walked, failures);

        var report = Report(failures, sent, kestrelSent, walked.Length, inMemory, watch.Elapsed);
        TestContext.Current.TestOutputHelper?.WriteLine(report); // the answers by class, on a pass too
        Assert.True(routes.Count >= 20, $"only {routes.Count} routes found in the endpoint data source");
        Assert.True(failures.Count == 0, report);
    }

    /// <summary>Kills the node when the test ends, however it ends.</summary>
    private sealed class NodeStopper(Task<ServerProcess>? node) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            if (node is null)
            {
                return;
            }

            try
            {
                (await node).Dispose();
            }
            catch (Exception) when (!node.IsCompletedSuccessfully)
            {
                // It never started: nothing to stop, and the test has already failed for it or for something else.
            }
        }
    }

    // ---- routes ----

    /// <summary>A route as the endpoint data source has it: one HTTP method of one pattern.</summary>
    /// <param name="Anonymous">
    /// The route asks for no credential (it has no authorization metadata): the API reference page and its
    /// assets. It reads neither the Authorization header nor, past choosing a page, its path values, so
    /// answering those cases is not accepting them.
    /// </param>
    private sealed record FuzzRoute(string Method, string Pattern, string Name, IReadOnlyList<string> Parameters, bool Anonymous)
    {
        public bool TakesBody => Method is "POST" or "PUT" or "PATCH";

        /// <summary>The admin routes take the admin token; every other route a workspace key.</summary>
        public bool IsAdmin => Pattern.StartsWith("/api/admin/", StringComparison.Ordinal);

        public override string ToString() => $"{Method} {Pattern} [{Name}]";
    }

    /// <summary>What a route reads besides its path; <paramref name="Body"/> null: it takes none.</summary>
    private sealed record RouteInputs(string? Body, bool BodyOptional = false, string[]? Query = null, KeyValuePair<string, string>[]? Headers = null);

    /// <summary>Every route with HTTP methods in the endpoint data source except <see cref="NotApi"/>, in a stable order.</summary>
    private static List<FuzzRoute> Routes(IServiceProvider services)
    {
        var routes = new List<FuzzRoute>();
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var endpoint in services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            var pattern = "/" + (endpoint.RoutePattern.RawText ?? "").TrimStart('/');
            if (endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods is not { Count: > 0 } methods)
            {
                continue;
            }

            if (NotApi.Contains(pattern, StringComparer.Ordinal))
            {
                skipped.Add(pattern);
                continue;
            }

            var name = endpoint.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
            foreach (var method in methods)
            {
                routes.Add(new FuzzRoute(method, pattern, name ?? $"{method} {pattern}", endpoint.RoutePattern.Parameters.Select(p => p.Name).ToArray(),
                    endpoint.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAuthorizeData>() is null));
            }
        }

        Assert.Equal(NotApi.Order(StringComparer.Ordinal), skipped.Order(StringComparer.Ordinal));
        Assert.All(Inputs.Keys, name => Assert.Contains(routes, r => r.Name == name)); // no stale entry
        return [.. routes.OrderBy(r => r.Pattern, StringComparer.Ordinal).ThenBy(r => r.Method, StringComparer.Ordinal)];
    }

    /// <summary>The route's own seed: the run's seed and the route, so one route's cases do not move when another is added.</summary>
    private static int RouteSeed(FuzzRoute route)
    {
        var hash = 2166136261u; // FNV-1a: string.GetHashCode differs from process to process
        foreach (var c in $"{route.Method} {route.Pattern}")
        {
            hash = (hash ^ c) * 16777619u;
        }

        return Seed ^ (int)hash;
    }

    private static string Fill(string pattern, Func<string, string> value) => Parameter().Replace(pattern, m => value(m.Groups[1].Value));

    [GeneratedRegex(@"\{\*{0,2}([A-Za-z0-9_]+)[^}]*\}")]
    private static partial Regex Parameter();

    // ---- cases ----

    private static IEnumerable<FuzzRequest> Cases(FuzzRoute route, IReadOnlyList<FuzzRoute> all, World world, Random random)
    {
        var inputs = Inputs.GetValueOrDefault(route.Name) ?? new RouteInputs(route.TakesBody ? "{}" : null);
        var path = Fill(route.Pattern, p => world.Real(p, route.Method));
        var valid = inputs.Body is null ? null : world.Expand(inputs.Body);
        var validBytes = route.TakesBody && valid is not null ? Encoding.UTF8.GetBytes(valid) : null;
        var validType = validBytes is null ? null : Json;
        KeyValuePair<string, string>[] headers = inputs.Headers ?? [];

        // :: Bodies, to every route that may take one; a 2xx only where the route takes none.
        if (route.TakesBody)
        {
            foreach (var (kind, name, body, type) in HostileInputs.Bodies(valid ?? """{"fuzz":"x"}""", inputs.BodyOptional, random))
            {
                yield return new FuzzRequest(kind, name, route.Method, path, body, type, headers, null, MayBeAccepted: inputs.Body is null);
            }
        }

        // :: Query strings, on every route: a 2xx where the route reads no such parameter.
        foreach (var parameter in inputs.Query ?? ["limit"])
        {
            foreach (var (name, query, names) in HostileInputs.Queries(parameter, random))
            {
                yield return new FuzzRequest("bad query", $"{parameter}: {name}", route.Method, path + query, validBytes, validType, headers, null,
                    MayBeAccepted: !names || inputs.Query?.Contains(parameter) != true);
            }
        }

        // :: Credentials.
        var (credential, other) = route.IsAdmin ? (LuluClawApp.AdminToken, world.Key) : (world.Key, LuluClawApp.AdminToken);
        foreach (var (name, values) in HostileInputs.Credentials(credential, other))
        {
            yield return new FuzzRequest("bad Authorization", name, route.Method, path, validBytes, validType, headers, values, MayBeAccepted: route.Anonymous);
        }

        // :: Headers. The test server has no header limits, so a huge or repeated header the route does not
        // read may be accepted here (the Kestrel walk checks the limits); one it reads may not.
        var huge = new string('h', 40 * 1024);
        yield return new FuzzRequest("huge header", "X-Fuzz: 40 KB", route.Method, path, validBytes, validType, [.. headers, new("X-Fuzz", huge)], null, MayBeAccepted: true);
        yield return new FuzzRequest("repeated header", "X-Fuzz 200 times", route.Method, path, validBytes, validType,
            [.. headers, .. Enumerable.Repeat(new KeyValuePair<string, string>("X-Fuzz", "1"), 200)], null, MayBeAccepted: true);
        foreach (var (header, value) in headers)
        {
            var rest = headers.Where(h => h.Key != header).ToArray();
            yield return new FuzzRequest("huge header", $"{header}: 40 KB", route.Method, path, validBytes, validType, [.. rest, new(header, huge)], null, false);
            yield return new FuzzRequest("repeated header", $"{header} twice", route.Method, path, validBytes, validType, [.. rest, new(header, value), new(header, value + "-2")], null, false);
            yield return new FuzzRequest("control character", $"{header} with \\u0001", route.Method, path, validBytes, validType, [.. rest, new(header, value + "\u0001")], null, false);
        }

        // :: Path values: each parameter in turn takes hostile values, the others stay real.
        foreach (var parameter in route.Parameters)
        {
            foreach (var (name, value) in HostileInputs.PathValues(random))
            {
                var target = Fill(route.Pattern, p => p == parameter ? value : world.Real(p, route.Method));
                yield return new FuzzRequest("bad path value", $"{{{parameter}}}: {name}", route.Method, target, validBytes, validType, headers, null, route.Anonymous);
            }
        }

        // :: A method the pattern does not map, and a path just past the route.
        var mapped = all.Where(r => r.Pattern == route.Pattern).Select(r => r.Method).ToHashSet(StringComparer.Ordinal);
        var wrong = new[] { "PUT", "PATCH", "DELETE", "POST", "GET" }.First(m => !mapped.Contains(m));
        yield return new FuzzRequest("wrong method", wrong, wrong, path, wrong is "GET" or "DELETE" ? null : validBytes, wrong is "GET" or "DELETE" ? null : validType, headers, null, false);
        yield return new FuzzRequest("no such route", "a segment past the route", route.Method, path.TrimEnd('/') + "/fuzz-no-such-route", validBytes, validType, headers, null, false);
    }

    // ---- sending and judging ----

    private static async Task<(int Status, string Body, string? Problem)> SendAsync(HttpClient client, World world, FuzzRoute route, FuzzRequest request)
    {
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(request.Target, UriKind.Relative));
        if (request.Body is not null)
        {
            message.Content = new ByteArrayContent(request.Body);
            if (request.ContentType is not null && !message.Content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType))
            {
                return (0, "", $"the client would not send Content-Type {request.ContentType}");
            }
        }

        foreach (var value in request.Authorization ?? [$"Bearer {(route.IsAdmin ? LuluClawApp.AdminToken : world.Key)}"])
        {
            message.Headers.TryAddWithoutValidation("Authorization", value);
        }

        foreach (var (name, value) in request.Headers)
        {
            if (!message.Headers.TryAddWithoutValidation(name, value))
            {
                return (0, "", $"the client would not send header {name}");
            }
        }

        try
        {
            using var response = await client.SendAsync(message, Ct);
            return ((int)response.StatusCode, Describe(response.Content.Headers.ContentType) + "\n" + await response.Content.ReadAsStringAsync(Ct), null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !Ct.IsCancellationRequested)
        {
            return (0, "", $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static string Describe(MediaTypeHeaderValue? type) => type?.MediaType ?? "(no Content-Type)";

    /// <summary>What is wrong with an answer, or null; <paramref name="answer"/> is the media type, a newline, the body.</summary>
    private static (string Class, string Detail)? Judge(string pattern, FuzzRequest request, int status, string answer, string? problem)
    {
        if (problem is not null)
        {
            return ("no answer", problem);
        }

        if (status >= 500)
        {
            return ("5xx", Excerpt(answer));
        }

        if (status is >= 200 and < 300)
        {
            return request.MayBeAccepted ? null : ("accepted", Excerpt(answer));
        }

        if (status is >= 400 and < 500)
        {
            return ShapeProblem(pattern, status, answer) is { } wrong ? ("error shape", $"{wrong}: {Excerpt(answer)}") : null;
        }

        return ("unexpected status", Excerpt(answer));
    }

    /// <summary>
    /// Why <paramref name="answer"/> is not the error shape of the surface the path belongs to, or null:
    /// <c>/v1/</c> OpenAI's <c>{"error": {"message", "type", ...}}</c>; <c>/openclaw/</c> OpenClaw's
    /// <c>{"error": {"code", "message"}}</c>; every other surface <c>{"error": "..."}</c>. A 4xx must not
    /// call itself a server error in OpenAI's <c>type</c> or OpenClaw's <c>code</c>.
    /// </summary>
    private static string? ShapeProblem(string pattern, int status, string answer)
    {
        var newline = answer.IndexOf('\n', StringComparison.Ordinal);
        var (type, body) = (answer[..newline], answer[(newline + 1)..]);
        if (type != Json)
        {
            return $"Content-Type is {type}, not {Json}";
        }

        JsonElement error;
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("error", out var found))
            {
                return "no 'error' field";
            }

            error = found.Clone();
        }
        catch (JsonException)
        {
            return "the body is not JSON";
        }

        if (pattern.StartsWith("/v1/", StringComparison.Ordinal))
        {
            return error.ValueKind != JsonValueKind.Object ? "'error' is not OpenAI's object"
                : Text(error, "message") ?? Text(error, "type") ?? ClientSide(error, "type", "server_error");
        }

        if (pattern.StartsWith("/openclaw/", StringComparison.Ordinal))
        {
            return error.ValueKind != JsonValueKind.Object ? "'error' is not OpenClaw's object"
                : Text(error, "code") ?? Text(error, "message") ?? ClientSide(error, "code", "INTERNAL_ERROR");
        }

        return error.ValueKind != JsonValueKind.String ? "'error' is not a string"
            : string.IsNullOrWhiteSpace(error.GetString()) ? "'error' is empty" : null;

        string? ClientSide(JsonElement error, string field, string serverError) =>
            status < 500 && error.GetProperty(field).GetString() == serverError ? $"a {status} calls itself '{serverError}' in 'error.{field}'" : null;

        static string? Text(JsonElement error, string field) =>
            error.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(value.GetString())
                ? null
                : $"'error.{field}' is not a non-empty string";
    }

    private static string Excerpt(string answer)
    {
        var flat = answer.Replace('\n', ' ');
        return flat.Length > 240 ? flat[..240] + "…" : flat;
    }

    // ---- Kestrel ----

    /// <summary>
    /// Each route again on a real node, for what the test server cannot show: the header section and the
    /// request line against Kestrel's limits, a body shorter or longer than its Content-Length, bytes that
    /// are not HTTP. Some of these Kestrel refuses while it parses the request, before any of LuluClaw's
    /// code runs and without a body: for those (<c>Transport</c>) only the status is checked.
    /// </summary>
    private async Task<int> WalkKestrelAsync(ServerProcess server, IReadOnlyList<FuzzRoute> routes, List<Failure> failures)
    {
        var (workspaceId, key) = await server.CreateWorkspaceAsync("Fuzz", "fuzz", 100_000, Ct);
        using var client = server.Client(key);
        var sent = 0;

        // :: A body that stops short of its Content-Length is answered when Kestrel's minimum data rate gives
        // up on it (about 5 s): those go first, all at once, and are judged at the end.
        var stalled = routes.Where(r => r.TakesBody).Select(route =>
        {
            var (path, body, head) = Request(route);
            var request = new FuzzRequest("body cut short", "Content-Length 64 bytes past the body, then nothing", route.Method, path, body, Json, [], null, false);
            return (route, request, Answer: RawHttp.SendAsync(server.Address, head(path, "", body.Length + 64), body, Ct));
        }).ToArray();

        foreach (var route in routes)
        {
            var (path, body, head) = Request(route);
            var cases = new List<(string Kind, string Name, string Target, byte[] Head, bool Transport)>
            {
                ("huge header", "X-Fuzz: 40 KB", path, Bytes(head(path, $"\r\nX-Fuzz: {new string('h', 40 * 1024)}", null)), false),
                ("many headers", "150 distinct headers", path, Bytes(head(path, string.Concat(Enumerable.Range(0, 150).Select(i => $"\r\nX-Fuzz-{i}: 1")), null)), false),
                ("repeated header", "X-Fuzz 150 times", path, Bytes(head(path, string.Concat(Enumerable.Repeat("\r\nX-Fuzz: 1", 150)), null)), false),
                ("bad query", "limit: 10,000 characters", $"{path}?limit={new string('9', 10_000)}", Bytes(head($"{path}?limit={new string('9', 10_000)}", "", null)), false),
                ("raw bytes in a header", "a header value with a raw FF", path, [.. Bytes(head(path, "", null)), .. "\r\nX-Fuzz: a"u8, 0xFF, .. "b"u8], true),
                ("raw bytes in a header", "a header value with a raw NUL", path, [.. Bytes(head(path, "", null)), .. "\r\nX-Fuzz: a"u8, 0x00, .. "b"u8], true),
                ("past the transport limit", "X-Fuzz: 100 KB", path, Bytes(head(path, $"\r\nX-Fuzz: {new string('h', 100 * 1024)}", null)), true),
            };
            foreach (var parameter in route.Parameters)
            {
                var target = Fill(route.Pattern, p => p == parameter ? "%00" : Value(p));
                cases.Add(("bad path value", $"{{{parameter}}}: %00", target, Bytes(head(target, "", null)), true));
            }

            if (route.TakesBody)
            {
                cases.Add(("body cut short", "Content-Length 3 bytes short of the body", path, Bytes(head(path, "", Math.Max(1, body.Length - 3))), false));
                cases.Add(("conflicting Content-Length", "two different Content-Length headers", path, Bytes(head(path, $"\r\nContent-Length: {body.Length + 1}", null)), true));
            }

            for (var i = 0; i < cases.Count; i++)
            {
                var (kind, name, target, raw, transport) = cases[i];
                var request = new FuzzRequest(kind, name, route.Method, target, route.TakesBody ? body : null, Json, [], null, false);
                Judge(new Where(route, i, request, Seed, OnKestrel: true), transport, await Send(raw, body));
            }

            using var turn = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "still serving", session_id = "fuzz-health" }, Ct);
            if (turn.StatusCode != System.Net.HttpStatusCode.OK)
            {
                failures.Add(new Failure(new Where(route, -1, null, Seed, OnKestrel: true), "not serving after", (int)turn.StatusCode, await turn.Content.ReadAsStringAsync(Ct)));
            }
        }

        foreach (var (route, request, answer) in stalled)
        {
            Judge(new Where(route, 100, request, Seed, OnKestrel: true), transport: false, await Catch(answer));
        }

        return sent;

        string Value(string parameter) => parameter switch { "id" => workspaceId, "provider" => "anthropic", _ => "fuzz" };

        // The route's path with placeholder values (the real workspace where a handler looks it up before it
        // reads the body), a valid body, and its request head with extra header lines and a Content-Length.
        (string Path, byte[] Body, Func<string, string, long?, string> Head) Request(FuzzRoute route)
        {
            var inputs = Inputs.GetValueOrDefault(route.Name);
            var body = route.TakesBody
                ? Encoding.UTF8.GetBytes((inputs?.Body ?? "{}").Replace("{session}", Session, StringComparison.Ordinal).Replace("{bot}", "fuzz", StringComparison.Ordinal))
                : [];
            var credential = route.IsAdmin ? ServerProcess.AdminToken : key;
            return (Fill(route.Pattern, Value), body, (target, extra, length) =>
                $"{route.Method} {target} HTTP/1.1\r\nHost: {server.Address.Authority}\r\nAuthorization: Bearer {credential}" +
                (route.TakesBody ? $"\r\nContent-Type: {Json}\r\nContent-Length: {length ?? body.Length}" : "") + extra);
        }

        async Task<(RawHttp.Answer? Answer, string? Problem)> Send(byte[] head, byte[] body) => await Catch(RawHttp.SendAsync(server.Address, head, body, Ct));

        static async Task<(RawHttp.Answer? Answer, string? Problem)> Catch(Task<RawHttp.Answer> answer)
        {
            try
            {
                return (await answer, null);
            }
            catch (Exception e) when (e is not OperationCanceledException || !Ct.IsCancellationRequested)
            {
                return (null, $"{e.GetType().Name}: {e.Message}");
            }
        }

        void Judge(Where where, bool transport, (RawHttp.Answer? Answer, string? Problem) result)
        {
            sent++;
            Count($"{where.Request!.Kind} (Kestrel)", result.Answer?.Status ?? 0);
            if (result.Answer is not { } answer)
            {
                failures.Add(new Failure(where, "no answer", 0, result.Problem!));
                return;
            }

            var text = (answer.ContentType?.Split(';')[0].Trim() ?? "(no Content-Type)") + "\n" + answer.Body;
            (string Class, string Detail)? verdict = !transport ? RouteFuzzTests.Judge(where.Route.Pattern, where.Request!, answer.Status, text, null)
                : answer.Status is >= 400 and < 500 ? null : ("not a 4xx", Excerpt(text));
            if (verdict is { } outcome)
            {
                failures.Add(new Failure(where, outcome.Class, answer.Status, outcome.Detail));
            }
        }

        static byte[] Bytes(string head) => Encoding.Latin1.GetBytes(head);
    }

    // ---- the test's own workspace ----

    /// <summary>The test's workspace: a key with every scope, and the things its routes' parameters name.</summary>
    private sealed record World(LuluClawApp App, string WorkspaceId, string Key, string VictimKeyId, string BotId, string VictimBotId)
    {
        public static async Task<World> CreateAsync(LuluClawApp app)
        {
            using var admin = app.Admin();
            var created = await admin.PostAsJsonAsync("/api/admin/workspaces", new { name = "Fuzz", plan = "fuzz", credits = 1_000_000 }, Ct);
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
            var key = await (await admin.PostAsJsonAsync($"/api/admin/workspaces/{id}/keys", new { scopes = new[] { "chat", "bots", "sessions", "knowledge" }, plan = "fuzz" }, Ct))
                .Content.ReadFromJsonAsync<JsonElement>(Ct);
            var victimKey = await (await admin.PostAsJsonAsync($"/api/admin/workspaces/{id}/keys", new { }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
            using var client = app.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.GetProperty("key").GetString());
            var bot = await LuluResponses.CreateBotAsync(client, "fuzz", "be brief", "echo");
            var victimBot = await LuluResponses.CreateBotAsync(client, "victim", "be brief", "echo");
            foreach (var session in new[] { Session, VictimSession })
            {
                (await client.PostAsJsonAsync("/api/gateway/chat", new { message = "hello", session_id = session }, Ct)).EnsureSuccessStatusCode();
            }

            return new World(app, id, key.GetProperty("key").GetString()!, victimKey.GetProperty("id").GetString()!, bot, victimBot);
        }

        /// <summary>
        /// A real id for route parameter <paramref name="parameter"/>. A DELETE gets things made to be
        /// deleted; the key the test authenticates with is never the one revoked.
        /// </summary>
        public string Real(string parameter, string method) => parameter switch
        {
            "id" => WorkspaceId,
            "keyId" => VictimKeyId,
            "botId" => method == "DELETE" ? VictimBotId : BotId,
            "key" or "sessionId" => method == "DELETE" ? VictimSession : Session,
            "provider" => "anthropic", // no bot here uses a Claude model, so a stored key changes no turn
            _ => "fuzz",
        };

        public string Expand(string body) => body.Replace("{session}", Session, StringComparison.Ordinal).Replace("{bot}", BotId, StringComparison.Ordinal);

        public HttpRequestMessage Authorized(HttpMethod method, string path, HttpContent? content = null)
        {
            var request = new HttpRequestMessage(method, path) { Content = content };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            return request;
        }

        /// <summary>What a refused request must not change: the balance, the sessions and their sizes, the bots, the provider keys.</summary>
        public async Task<string> StateAsync(HttpClient client)
        {
            async Task<JsonElement> Get(string path, bool admin = false)
            {
                using var request = Authorized(HttpMethod.Get, path);
                if (admin)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", LuluClawApp.AdminToken);
                }

                using var response = await client.SendAsync(request, Ct);
                response.EnsureSuccessStatusCode();
                return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
            }

            var workspace = Get($"/api/admin/workspaces/{WorkspaceId}", admin: true);
            var sessions = Get("/openclaw/api/v1/sessions");
            var bots = Get("/api/v1/bots");
            var keys = Get("/api/v1/provider-keys");
            await Task.WhenAll(workspace, sessions, bots, keys);
            return $"credits {(await workspace).GetProperty("credits_remaining").GetInt64()}; sessions " +
                string.Join(' ', (await sessions).GetProperty("sessions").EnumerateArray().Select(s => $"{s.GetProperty("key").GetString()}:{s.GetProperty("messageCount").GetInt64()}").Order(StringComparer.Ordinal)) +
                "; bots " + string.Join(' ', (await bots).EnumerateArray().Select(b => string.Join('|',
                    b.GetProperty("id").GetString(), b.GetProperty("name").GetString(), b.GetProperty("model").GetString(), b.GetProperty("system_prompt").GetString(),
                    b.GetProperty("channels").GetRawText(), b.GetProperty("restart_count").GetRawText())).Order(StringComparer.Ordinal)) +
                "; provider keys " + string.Join(' ', (await keys).EnumerateArray().Select(k => k.GetRawText()).Order(StringComparer.Ordinal));
        }
    }

    // ---- the report ----

    /// <summary>Where a case ran: its route, its number among the route's cases (-1 for the check after), the seed.</summary>
    private sealed record Where(FuzzRoute Route, int Index, FuzzRequest? Request, int Seed, bool OnKestrel = false);

    private sealed record Failure(Where Where, string Class, int Status, string Detail);

    private void Count(string kind, int status) =>
        _answers[$"{kind}: {status}"] = _answers.GetValueOrDefault($"{kind}: {status}") + 1;

    private string Report(List<Failure> failures, int sent, int kestrelSent, int routes, TimeSpan inMemory, TimeSpan total)
    {
        var report = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{failures.Count} failures in {sent} in-memory and {kestrelSent} Kestrel requests to {routes} routes ")
            .Append(CultureInfo.InvariantCulture, $"(seed {Seed}; in-memory {inMemory.TotalSeconds:F0} s, in all {total.TotalSeconds:F0} s).\n\nBy class:\n");
        foreach (var group in failures.GroupBy(f => $"{f.Where.Request?.Kind ?? "after the route"} -> {f.Class}{(f.Where.OnKestrel ? " (Kestrel)" : "")}").OrderByDescending(g => g.Count()))
        {
            report.Append(CultureInfo.InvariantCulture, $"  {group.Count(),5}  {group.Key}\n");
        }

        report.Append("\nEvery answer, by class and status:\n  ").AppendJoin(", ", _answers.Select(a => $"{a.Key} x{a.Value}")).Append('\n');
        report.Append("\nEach failure:\n");
        foreach (var failure in failures)
        {
            var (route, index, request, seed, kestrel) = failure.Where;
            report.Append(CultureInfo.InvariantCulture, $"- {route}{(kestrel ? " on Kestrel" : "")}, ");
            report.Append(request is null ? "the check after the route" : $"case #{index} {request.Kind}: {request.Name}");
            report.Append(CultureInfo.InvariantCulture, $" (route seed {seed}) -> {failure.Class}, status {failure.Status}: {failure.Detail}\n");
            if (request is not null)
            {
                report.Append(CultureInfo.InvariantCulture, $"    sent {request.Method} {Shorten(request.Target)}");
                if (request.Body is not null)
                {
                    report.Append(CultureInfo.InvariantCulture, $", Content-Type {request.ContentType ?? "(none)"}, body {Escape(request.Body)}");
                }

                if (request.Authorization is { } authorization)
                {
                    report.Append(", Authorization ").Append(authorization.Count == 0 ? "(none)" : string.Join(" + ", authorization.Select(a => Shorten(a))));
                }

                report.Append('\n');
            }
        }

        return report.ToString();
    }

    private static string Shorten(string text) => text.Length > 120 ? $"{text[..100]}…({text.Length} chars)" : text;

    /// <summary>The bytes as ASCII with everything else as \xNN, cut at 200 characters.</summary>
    private static string Escape(byte[] body)
    {
        var text = new StringBuilder();
        foreach (var b in body.Take(200))
        {
            text.Append(b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"\\x{b:X2}");
        }

        return body.Length > 200 ? $"{text}…({body.Length} bytes)" : text.ToString();
    }
}

public sealed class SqliteRouteFuzzTests() : RouteFuzzTests(Provider.Sqlite);

public sealed class PostgresRouteFuzzTests() : RouteFuzzTests(Provider.Postgres);
