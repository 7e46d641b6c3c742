using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Tests;

/// <summary>
/// A real HTTP server (Kestrel on 127.0.0.1, a free port) that stands in for model providers:
/// <c>POST /v1/chat/completions</c> in the OpenAI wire format and <c>POST /v1/messages</c> in the Anthropic
/// Messages format, each whole (JSON) or streamed (server-sent events, one word per event, each flushed on
/// its own).
/// </summary>
/// <remarks>
/// <para>It answers <see cref="Reply"/> (by default <c>Stub reply to: </c> followed by the last user message)
/// and reports usage in whitespace-separated words: input = the words of every message it was sent (the
/// system prompt included), output = the words of the reply, total = their sum.</para>
/// <para>It records every request it receives, failed ones included (<see cref="Requests"/>), and can be told
/// to fail (<see cref="FailNext"/>, <see cref="FailAll"/>), to answer garbage (<see cref="MalformNext"/>), to
/// wait (<see cref="Delay"/>), or to hold its answers until released (<see cref="HoldReplies"/>), which is how
/// tests catch a call in flight without sleeping.</para>
/// </remarks>
public sealed class StubModelServer : IAsyncDisposable
{
    /// <summary>The reply when <see cref="Reply"/> is not replaced.</summary>
    public static readonly Func<StubRequest, string> DefaultReply = request => $"Stub reply to: {request.LastUserContent}";

    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    private readonly Lock _lock = new();
    private readonly List<StubRequest> _requests = [];
    private readonly List<(int Count, TaskCompletionSource Reached)> _waiters = [];
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private Fault? _fault;
    private int _faultsLeft;
    private TaskCompletionSource? _hold;
    private StubHold _holdPoint;
    private int _sequence;
    private int _abandoned;
    private readonly List<(int Count, TaskCompletionSource Reached)> _abandonWaiters = [];

    private StubModelServer()
    {
    }

    /// <summary>The server root, e.g. <c>http://127.0.0.1:54321</c> (Anthropic's base URL).</summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary><see cref="BaseUrl"/> + <c>/v1</c>, the base URL an OpenAI client wants.</summary>
    public Uri OpenAIBaseUrl => new(BaseUrl, "v1");

    /// <summary>What each answer says; called once per successful request.</summary>
    public Func<StubRequest, string> Reply { get; set; } = DefaultReply;

    /// <summary>
    /// The function calls an OpenAI-format answer makes instead of text, or null for a text answer (the
    /// default): whole, a message with <c>tool_calls</c>; streamed, each call's id and name in one chunk and
    /// its arguments in two more, as OpenAI sends them; <c>finish_reason</c> <c>tool_calls</c> either way.
    /// </summary>
    public Func<StubRequest, IReadOnlyList<StubToolCall>?> ToolCalls { get; set; } = _ => null;

    /// <summary>How long it waits before answering each request (default none).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>The requests received so far, in order of arrival (a snapshot).</summary>
    public IReadOnlyList<StubRequest> Requests
    {
        get
        {
            lock (_lock)
            {
                return _requests.ToArray();
            }
        }
    }

    /// <summary>Starts a server on a free loopback port.</summary>
    public static async Task<StubModelServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var server = new StubModelServer();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapPost("/v1/chat/completions", (RequestDelegate)server.HandleOpenAIAsync);
        app.MapPost("/v1/messages", (RequestDelegate)server.HandleAnthropicAsync);
        await app.StartAsync(cancellationToken);

        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        server._app = app;
        server.BaseUrl = new Uri(addresses.First(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)));
        return server;
    }

    /// <summary>A loopback URL where nothing listens (a port just bound and released): connections are refused.</summary>
    public static Uri ClosedPortUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}");
    }

    /// <summary>
    /// The next <paramref name="count"/> requests fail with <paramref name="statusCode"/>, in the provider's
    /// error format, with a <c>Retry-After: <paramref name="retryAfter"/></c> header when given.
    /// </summary>
    public void FailNext(int statusCode, string? retryAfter = null, int count = 1) =>
        SetFault(new Fault(statusCode, retryAfter, Malformed: false), count);

    /// <summary>Every request fails with <paramref name="statusCode"/> until <see cref="Heal"/>.</summary>
    public void FailAll(int statusCode, string? retryAfter = null) =>
        SetFault(new Fault(statusCode, retryAfter, Malformed: false), int.MaxValue);

    /// <summary>The next <paramref name="count"/> requests get 200 with a body that is not valid JSON.</summary>
    public void MalformNext(int count = 1) => SetFault(new Fault(200, null, Malformed: true), count);

    /// <summary>Stops failing.</summary>
    public void Heal() => SetFault(null, 0);

    /// <summary>
    /// Requests wait at <paramref name="where"/> until <see cref="ReleaseReplies"/> (or until their client goes
    /// away, or the server stops).
    /// </summary>
    public void HoldReplies(StubHold where = StubHold.BeforeReply)
    {
        lock (_lock)
        {
            _hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _holdPoint = where;
        }
    }

    /// <summary>Lets held requests go on, and stops holding.</summary>
    public void ReleaseReplies()
    {
        TaskCompletionSource? hold;
        lock (_lock)
        {
            hold = _hold;
            _hold = null;
        }

        hold?.TrySetResult();
    }

    /// <summary>Completes when at least <paramref name="count"/> requests have arrived (recorded, not answered).</summary>
    public Task WaitForRequestsAsync(int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_requests.Count >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, reached));
            return reached.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>How many requests their client abandoned while they were held or delayed (the caller cancelled its model call).</summary>
    public int Abandoned => Volatile.Read(ref _abandoned);

    /// <summary>Completes when at least <paramref name="count"/> requests have been abandoned by their client.</summary>
    public Task WaitForAbandonedAsync(int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_abandoned >= count)
            {
                return Task.CompletedTask;
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _abandonWaiters.Add((count, reached));
            return reached.Task.WaitAsync(cancellationToken);
        }
    }

    private void RecordAbandoned()
    {
        List<TaskCompletionSource> reached = [];
        lock (_lock)
        {
            _abandoned++;
            for (var i = _abandonWaiters.Count - 1; i >= 0; i--)
            {
                if (_abandonWaiters[i].Count <= _abandoned)
                {
                    reached.Add(_abandonWaiters[i].Reached);
                    _abandonWaiters.RemoveAt(i);
                }
            }
        }

        foreach (var waiter in reached)
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Stops the server; held and delayed requests are let go.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        ReleaseReplies();
        if (_app is not null)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(deadline.Token);
            await _app.DisposeAsync();
        }

        _stopping.Dispose();
    }

    private void SetFault(Fault? fault, int count)
    {
        lock (_lock)
        {
            _fault = fault;
            _faultsLeft = fault is null ? 0 : count;
        }
    }

    // :: OpenAI chat completions

    private async Task HandleOpenAIAsync(HttpContext context)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var ct = aborted.Token;
        var body = await ReadBodyAsync(context, ct);
        var messages = new List<StubMessage>();
        foreach (var message in (body["messages"] as JsonArray) ?? [])
        {
            messages.Add(new StubMessage((string?)message?["role"] ?? "", TextOf(message?["content"])));
        }

        var request = new StubRequest
        {
            Path = context.Request.Path,
            Model = (string?)body["model"],
            Stream = (bool?)body["stream"] ?? false,
            IncludeUsage = (bool?)body["stream_options"]?["include_usage"] ?? false,
            MaxTokens = (int?)body["max_completion_tokens"] ?? (int?)body["max_tokens"],
            Temperature = (double?)body["temperature"],
            Authorization = HeaderOf(context, "Authorization"),
            ApiKey = HeaderOf(context, "x-api-key"),
            Messages = messages,
            Body = body.ToJsonString(),
        };
        var (fault, id, hold) = Admit(request, "chatcmpl-stub-");
        if (!await WaitAsync(hold, StubHold.BeforeReply, ct))
        {
            return;
        }

        if (fault is { Malformed: false })
        {
            var error = new JsonObject
            {
                ["error"] = new JsonObject { ["message"] = $"stub failure {fault.StatusCode}", ["type"] = "stub_error", ["param"] = null, ["code"] = null },
            };
            await WriteFaultAsync(context, fault, error, ct);
            return;
        }

        var model = request.Model ?? "stub";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!request.Stream)
        {
            if (fault is { Malformed: true })
            {
                await WriteMalformedJsonAsync(context, ct);
                return;
            }

            var calls = ToolCalls(request);
            var reply = calls is null ? Reply(request) : "";
            var message = new JsonObject { ["role"] = "assistant", ["content"] = calls is null ? reply : null, ["refusal"] = null };
            if (calls is not null)
            {
                message["tool_calls"] = new JsonArray([.. calls.Select(c => (JsonNode)new JsonObject
                {
                    ["id"] = c.Id,
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments },
                })]);
            }

            var completion = new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = message,
                    ["logprobs"] = null,
                    ["finish_reason"] = calls is null ? "stop" : "tool_calls",
                }),
                ["usage"] = OpenAIUsage(request, reply),
            };
            await WriteJsonAsync(context, completion, ct);
            return;
        }

        StartEventStream(context);
        if (fault is { Malformed: true })
        {
            await WriteEventAsync(context, null, "{\"id\": not json", ct);
            return;
        }

        var toolCalls = ToolCalls(request);
        var answer = toolCalls is null ? Reply(request) : "";
        JsonObject Chunk(JsonObject delta, string? finishReason) => new()
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["delta"] = delta,
                ["logprobs"] = null,
                ["finish_reason"] = finishReason,
            }),
        };

        await WriteEventAsync(context, null, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null), ct);
        var first = true;
        foreach (var piece in Pieces(answer))
        {
            await WriteEventAsync(context, null, Chunk(new JsonObject { ["content"] = piece }, null), ct);
            if (first && !await WaitAsync(hold, StubHold.AfterFirstChunk, ct))
            {
                return;
            }

            first = false;
        }

        for (var index = 0; index < (toolCalls?.Count ?? 0); index++)
        {
            var call = toolCalls![index];
            JsonObject Fragment(JsonObject part) => new() { ["tool_calls"] = new JsonArray(part) };
            await WriteEventAsync(context, null, Chunk(Fragment(new JsonObject
            {
                ["index"] = index,
                ["id"] = call.Id,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = "" },
            }), null), ct);
            var half = call.Arguments.Length / 2;
            foreach (var part in new[] { call.Arguments[..half], call.Arguments[half..] })
            {
                await WriteEventAsync(context, null, Chunk(Fragment(new JsonObject { ["index"] = index, ["function"] = new JsonObject { ["arguments"] = part } }), null), ct);
            }
        }

        await WriteEventAsync(context, null, Chunk(new JsonObject(), toolCalls is null ? "stop" : "tool_calls"), ct);
        if (request.IncludeUsage)
        {
            var usage = new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = model,
                ["choices"] = new JsonArray(),
                ["usage"] = OpenAIUsage(request, answer),
            };
            await WriteEventAsync(context, null, usage, ct);
        }

        await WriteEventAsync(context, null, "[DONE]", ct);
    }

    private static JsonObject OpenAIUsage(StubRequest request, string reply)
    {
        var (input, output) = Usage(request, reply);
        return new JsonObject { ["prompt_tokens"] = input, ["completion_tokens"] = output, ["total_tokens"] = input + output };
    }

    // :: Anthropic messages

    private async Task HandleAnthropicAsync(HttpContext context)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var ct = aborted.Token;
        var body = await ReadBodyAsync(context, ct);
        var system = body["system"] is { } systemNode ? TextOf(systemNode) : null;
        var messages = new List<StubMessage>();
        if (system is not null)
        {
            messages.Add(new StubMessage("system", system));
        }

        foreach (var message in (body["messages"] as JsonArray) ?? [])
        {
            messages.Add(new StubMessage((string?)message?["role"] ?? "", TextOf(message?["content"])));
        }

        var request = new StubRequest
        {
            Path = context.Request.Path,
            Model = (string?)body["model"],
            Stream = (bool?)body["stream"] ?? false,
            MaxTokens = (int?)body["max_tokens"],
            Temperature = (double?)body["temperature"],
            Authorization = HeaderOf(context, "Authorization"),
            ApiKey = HeaderOf(context, "x-api-key"),
            System = system,
            Messages = messages,
        };
        var (fault, id, hold) = Admit(request, "msg_stub_");
        if (!await WaitAsync(hold, StubHold.BeforeReply, ct))
        {
            return;
        }

        if (fault is { Malformed: false })
        {
            var type = fault.StatusCode switch
            {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            var error = new JsonObject
            {
                ["type"] = "error",
                ["error"] = new JsonObject { ["type"] = type, ["message"] = $"stub failure {fault.StatusCode}" },
            };
            await WriteFaultAsync(context, fault, error, ct);
            return;
        }

        var model = request.Model ?? "stub";
        if (!request.Stream)
        {
            if (fault is { Malformed: true })
            {
                await WriteMalformedJsonAsync(context, ct);
                return;
            }

            var reply = Reply(request);
            var (input, output) = Usage(request, reply);
            var message = new JsonObject
            {
                ["id"] = id,
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = model,
                ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = reply }),
                ["stop_reason"] = "end_turn",
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject { ["input_tokens"] = input, ["output_tokens"] = output },
            };
            await WriteJsonAsync(context, message, ct);
            return;
        }

        StartEventStream(context);
        if (fault is { Malformed: true })
        {
            await WriteEventAsync(context, "message_start", "{\"type\": not json", ct);
            return;
        }

        var answer = Reply(request);
        var (inputTokens, outputTokens) = Usage(request, answer);
        await WriteEventAsync(context, "message_start", new JsonObject
        {
            ["type"] = "message_start",
            ["message"] = new JsonObject
            {
                ["id"] = id,
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = model,
                ["content"] = new JsonArray(),
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject { ["input_tokens"] = inputTokens, ["output_tokens"] = 0 },
            },
        }, ct);
        await WriteEventAsync(context, "content_block_start", new JsonObject
        {
            ["type"] = "content_block_start",
            ["index"] = 0,
            ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" },
        }, ct);
        await WriteEventAsync(context, "ping", new JsonObject { ["type"] = "ping" }, ct);
        var first = true;
        foreach (var piece in Pieces(answer))
        {
            await WriteEventAsync(context, "content_block_delta", new JsonObject
            {
                ["type"] = "content_block_delta",
                ["index"] = 0,
                ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece },
            }, ct);
            if (first && !await WaitAsync(hold, StubHold.AfterFirstChunk, ct))
            {
                return;
            }

            first = false;
        }

        await WriteEventAsync(context, "content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 0 }, ct);
        await WriteEventAsync(context, "message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = "end_turn", ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["input_tokens"] = inputTokens, ["output_tokens"] = outputTokens },
        }, ct);
        await WriteEventAsync(context, "message_stop", new JsonObject { ["type"] = "message_stop" }, ct);
    }

    // :: Shared plumbing

    /// <summary>Records the request, wakes waiters, and decides its fate: a fault or not, its id, the hold in force.</summary>
    private (Fault? Fault, string Id, (TaskCompletionSource Gate, StubHold Point)? Hold) Admit(StubRequest request, string idPrefix)
    {
        Fault? fault = null;
        (TaskCompletionSource, StubHold)? hold = null;
        List<TaskCompletionSource> reached = [];
        int sequence;
        lock (_lock)
        {
            _requests.Add(request);
            sequence = ++_sequence;
            if (_faultsLeft > 0 && _fault is not null)
            {
                fault = _fault;
                if (_faultsLeft != int.MaxValue && --_faultsLeft == 0)
                {
                    _fault = null;
                }
            }

            if (_hold is not null)
            {
                hold = (_hold, _holdPoint);
            }

            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Count <= _requests.Count)
                {
                    reached.Add(_waiters[i].Reached);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var waiter in reached)
        {
            waiter.TrySetResult();
        }

        return (fault, idPrefix + sequence.ToString(CultureInfo.InvariantCulture), hold);
    }

    /// <summary>Waits for the delay (before replying) and for a hold at <paramref name="point"/>; false when the client went away.</summary>
    private async Task<bool> WaitAsync((TaskCompletionSource Gate, StubHold Point)? hold, StubHold point, CancellationToken ct)
    {
        try
        {
            if (point == StubHold.BeforeReply && Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, ct);
            }

            if (hold is { } held && held.Point == point)
            {
                await held.Gate.Task.WaitAsync(ct);
            }

            return true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (!_stopping.IsCancellationRequested)
            {
                RecordAbandoned();
            }

            return false;
        }
    }

    private static async Task<JsonObject> ReadBodyAsync(HttpContext context, CancellationToken ct) =>
        await JsonNode.ParseAsync(context.Request.Body, cancellationToken: ct) as JsonObject ?? [];

    private static string? HeaderOf(HttpContext context, string name) =>
        context.Request.Headers.TryGetValue(name, out var values) ? values.ToString() : null;

    /// <summary>A string, or the concatenated <c>text</c> of an array of content parts / blocks.</summary>
    private static string TextOf(JsonNode? content) => content switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        JsonArray parts => string.Concat(parts.Select(part => (string?)part?["text"] ?? "")),
        _ => "",
    };

    private static (int Input, int Output) Usage(StubRequest request, string reply) =>
        (request.Messages.Sum(message => Words(message.Content)), Words(reply));

    private static int Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>The reply cut before each space: "Stub", " reply", " to:"…</summary>
    private static IEnumerable<string> Pieces(string reply)
    {
        var start = 0;
        while (start < reply.Length)
        {
            var next = reply.IndexOf(' ', start + 1);
            var end = next < 0 ? reply.Length : next;
            yield return reply[start..end];
            start = end;
        }
    }

    private static async Task WriteFaultAsync(HttpContext context, Fault fault, JsonObject error, CancellationToken ct)
    {
        context.Response.StatusCode = fault.StatusCode;
        if (fault.RetryAfter is not null)
        {
            context.Response.Headers.RetryAfter = fault.RetryAfter;
        }

        await WriteJsonAsync(context, error, ct);
    }

    private static async Task WriteJsonAsync(HttpContext context, JsonNode body, CancellationToken ct)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(Compact), ct);
    }

    private static async Task WriteMalformedJsonAsync(HttpContext context, CancellationToken ct)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync("{\"id\": this is not json", ct);
    }

    private static void StartEventStream(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
    }

    private static async Task WriteEventAsync(HttpContext context, string? eventName, JsonNode data, CancellationToken ct) =>
        await WriteEventAsync(context, eventName, data.ToJsonString(Compact), ct);

    private static async Task WriteEventAsync(HttpContext context, string? eventName, string data, CancellationToken ct)
    {
        var text = eventName is null ? $"data: {data}\n\n" : $"event: {eventName}\ndata: {data}\n\n";
        await context.Response.WriteAsync(text, ct);
        await context.Response.Body.FlushAsync(ct);
    }

    private sealed record Fault(int StatusCode, string? RetryAfter, bool Malformed);
}

/// <summary>Where <see cref="StubModelServer.HoldReplies"/> makes requests wait.</summary>
public enum StubHold
{
    /// <summary>Before anything is answered (the status line included).</summary>
    BeforeReply,

    /// <summary>In a streamed answer, right after the first piece of text was sent and flushed.</summary>
    AfterFirstChunk,
}

/// <summary>One request the stub received.</summary>
public sealed record StubRequest
{
    /// <summary>The request path, e.g. <c>/v1/chat/completions</c> or <c>/v1/messages</c>.</summary>
    public required string Path { get; init; }

    /// <summary>The <c>model</c> of the body.</summary>
    public string? Model { get; init; }

    /// <summary>Whether the body asked for a stream.</summary>
    public bool Stream { get; init; }

    /// <summary>OpenAI: whether <c>stream_options.include_usage</c> was set.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary><c>max_completion_tokens</c> or <c>max_tokens</c> (OpenAI), <c>max_tokens</c> (Anthropic).</summary>
    public int? MaxTokens { get; init; }

    /// <summary>The <c>temperature</c> of the body.</summary>
    public double? Temperature { get; init; }

    /// <summary>OpenAI: the whole body as received, for parameters the other members do not name.</summary>
    public string? Body { get; init; }

    /// <summary>The <c>Authorization</c> header (OpenAI: <c>Bearer &lt;key&gt;</c>).</summary>
    public string? Authorization { get; init; }

    /// <summary>The <c>x-api-key</c> header (Anthropic).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Anthropic: the top-level <c>system</c> text (also first in <see cref="Messages"/>).</summary>
    public string? System { get; init; }

    /// <summary>The messages in the order received; for Anthropic the top-level <c>system</c> comes first as role <c>system</c>.</summary>
    public required IReadOnlyList<StubMessage> Messages { get; init; }

    /// <summary>The content of the last <c>user</c> message, or empty.</summary>
    public string LastUserContent => Messages.LastOrDefault(message => message.Role == "user")?.Content ?? "";
}

/// <summary>One message of a <see cref="StubRequest"/>: its role and its text.</summary>
public sealed record StubMessage(string Role, string Content);

/// <summary>A function call the stub's model makes (<see cref="StubModelServer.ToolCalls"/>).</summary>
/// <param name="Arguments">JSON object text.</param>
public sealed record StubToolCall(string Id, string Name, string Arguments);
