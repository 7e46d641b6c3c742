using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.Bench.Stub;

// An OpenAI-compatible stub: POST /v1/chat/completions answers a fixed chat.completion, or with
// "stream": true server-sent chunks and then "data: [DONE]". For the streams benchmark it can hold
// streaming answers after their first piece of text until released:
//   POST /control/hold     streams started from now on wait after their first content chunk
//   POST /control/release  lets every held stream finish and stops holding
//   GET  /control/stats    {"in_flight", "held", "requests"}
// Usage: LuluClaw.Bench.Stub --port <port> (listens on 127.0.0.1 only).
var port = args.Length == 2 && args[0] == "--port" && int.TryParse(args[1], out var p) ? p : 5091;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPAddress.Loopback, port);
    kestrel.Limits.MaxConcurrentConnections = null;
    kestrel.Limits.MaxConcurrentUpgradedConnections = null;
});

var stub = new StubState();
var app = builder.Build();
app.MapPost("/v1/chat/completions", stub.CompleteAsync);
app.MapPost("/control/hold", () => stub.Hold());
app.MapPost("/control/release", () => stub.Release());
app.MapGet("/control/stats", stub.WriteStatsAsync);
app.Run();

namespace LuluClaw.Bench.Stub
{
    /// <summary>The stub's answers and its hold switch.</summary>
    internal sealed class StubState
    {
        private const string Reply = "Stub reply: hello from the benchmark stub";
        private const long Created = 1_700_000_000;

        private static readonly byte[] Completion = JsonSerializer.SerializeToUtf8Bytes(
            new Completion("chatcmpl-bench", "chat.completion", Created, "gpt-4o-mini",
                [new CompletionChoice(0, new AssistantMessage("assistant", Reply), "stop")], new Usage(8, 7, 15)),
            StubJsonContext.Default.Completion);

        private static readonly byte[][] Chunks = BuildChunks();
        private static readonly byte[] UsageChunk = Event(JsonSerializer.Serialize(
            new Chunk("chatcmpl-bench", "chat.completion.chunk", Created, "gpt-4o-mini", [], new Usage(8, 7, 15)), StubJsonContext.Default.Chunk));
        private static readonly byte[] Done = Event("[DONE]");

        private readonly Lock _lock = new();
        private TaskCompletionSource? _hold;
        private long _requests;
        private long _inFlight;
        private long _held;

        public IResult Hold()
        {
            lock (_lock)
            {
                _hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            return Results.Ok();
        }

        public IResult Release()
        {
            TaskCompletionSource? hold;
            lock (_lock)
            {
                hold = _hold;
                _hold = null;
            }

            hold?.TrySetResult();
            return Results.Ok();
        }

        public Task WriteStatsAsync(HttpContext http) =>
            http.Response.WriteAsJsonAsync(
                new Stats(Interlocked.Read(ref _inFlight), Interlocked.Read(ref _held), Interlocked.Read(ref _requests)),
                StubJsonContext.Default.Stats, cancellationToken: http.RequestAborted);

        public async Task CompleteAsync(HttpContext http)
        {
            Interlocked.Increment(ref _requests);
            Interlocked.Increment(ref _inFlight);
            try
            {
                var ct = http.RequestAborted;
                CompletionRequest? request;
                try
                {
                    request = await JsonSerializer.DeserializeAsync(http.Request.Body, StubJsonContext.Default.CompletionRequest, ct);
                }
                catch (JsonException)
                {
                    request = null;
                }

                if (request is null)
                {
                    http.Response.StatusCode = StatusCodes.Status400BadRequest;
                    return;
                }

                if (request.Stream != true)
                {
                    http.Response.ContentType = "application/json";
                    http.Response.ContentLength = Completion.Length;
                    await http.Response.Body.WriteAsync(Completion, ct);
                    return;
                }

                http.Response.ContentType = "text/event-stream";
                http.Response.Headers.CacheControl = "no-cache";
                Task? hold;
                lock (_lock)
                {
                    hold = _hold?.Task;
                }

                for (var i = 0; i < Chunks.Length; i++)
                {
                    await http.Response.Body.WriteAsync(Chunks[i], ct);
                    await http.Response.Body.FlushAsync(ct);
                    if (i == 1 && hold is not null)
                    {
                        // Held after the first piece of text: the client has seen the stream open.
                        Interlocked.Increment(ref _held);
                        try
                        {
                            await hold.WaitAsync(ct);
                        }
                        finally
                        {
                            Interlocked.Decrement(ref _held);
                        }
                    }
                }

                if (request.StreamOptions?.IncludeUsage == true)
                {
                    await http.Response.Body.WriteAsync(UsageChunk, ct);
                }

                await http.Response.Body.WriteAsync(Done, ct);
            }
            catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
            {
                // The caller left.
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        private static byte[][] BuildChunks()
        {
            string Json(ChunkDelta delta, string? finish) => JsonSerializer.Serialize(
                new Chunk("chatcmpl-bench", "chat.completion.chunk", Created, "gpt-4o-mini", [new ChunkChoice(0, delta, finish)], null),
                StubJsonContext.Default.Chunk);

            var chunks = new List<byte[]> { Event(Json(new ChunkDelta("assistant", ""), null)) };
            var start = 0;
            while (start < Reply.Length)
            {
                var next = Reply.IndexOf(' ', start + 1);
                var end = next < 0 ? Reply.Length : next;
                chunks.Add(Event(Json(new ChunkDelta(null, Reply[start..end]), null)));
                start = end;
            }

            chunks.Add(Event(Json(new ChunkDelta(null, null), "stop")));
            return [.. chunks];
        }

        private static byte[] Event(string data) => Encoding.UTF8.GetBytes($"data: {data}\n\n");
    }

    internal sealed record CompletionRequest(string? Model, bool? Stream, StreamOptions? StreamOptions);

    internal sealed record StreamOptions(bool? IncludeUsage);

    internal sealed record Completion(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, Usage Usage);

    internal sealed record CompletionChoice(int Index, AssistantMessage Message, string FinishReason);

    internal sealed record AssistantMessage(string Role, string Content);

    internal sealed record Chunk(string Id, string Object, long Created, string Model, IReadOnlyList<ChunkChoice> Choices, Usage? Usage);

    internal sealed record ChunkChoice(int Index, ChunkDelta Delta, string? FinishReason);

    internal sealed record ChunkDelta(string? Role, string? Content);

    internal sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);

    internal sealed record Stats(long InFlight, long Held, long Requests);

    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
    [JsonSerializable(typeof(CompletionRequest))]
    [JsonSerializable(typeof(Completion))]
    [JsonSerializable(typeof(Chunk))]
    [JsonSerializable(typeof(Stats))]
    internal sealed partial class StubJsonContext : JsonSerializerContext;
}
