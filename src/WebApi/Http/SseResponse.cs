using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// A server-sent-events response written by hand: each event is flushed as soon as it is written
/// (nothing is buffered), and a stream with nothing to say for <see cref="KeepAliveInterval"/> gets
/// an SSE comment so that proxies and clients do not take it for dead.
/// </summary>
/// <remarks>
/// Why our own writer and not <c>System.Net.ServerSentEvents.SseFormatter</c> (which
/// <c>TypedResults.ServerSentEvents</c> uses): it writes events only, and a quiet stream needs SSE comments
/// between them, at times the producer does not choose, to keep proxies from closing it. Events here are one
/// name and one line of JSON, so the formatting is two lines of code; the timer is the part we need.
/// Writes are serialised: the keep-alive timer and the producer never interleave bytes. A client
/// that goes away makes writes throw <see cref="OperationCanceledException"/> through the request's
/// abort token, which also cancels whatever produces the events.
/// </remarks>
internal sealed class SseResponse : IAsyncDisposable
{
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    private readonly HttpResponse _response;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly CancellationTokenSource _stop;
    private readonly Task _keepAlive;
    private long _lastWrite;

    private SseResponse(HttpContext http, TimeSpan keepAliveInterval)
    {
        _response = http.Response;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        _lastWrite = Environment.TickCount64;
        _keepAlive = KeepAliveAsync(keepAliveInterval, _stop.Token);
    }

    /// <summary>The default idle interval between keep-alive comments (<c>Streaming:KeepAliveSeconds</c> overrides it).</summary>
    public static TimeSpan KeepAliveInterval { get; } = TimeSpan.FromSeconds(15);

    /// <summary>Whether the request asks for a stream: <c>"stream": true</c> in its body or <c>Accept: text/event-stream</c>.</summary>
    public static bool IsWanted(HttpRequest request, bool? streamField) =>
        streamField ?? request.Headers.Accept.Any(a => a is not null && a.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase));

    /// <summary>Sends the status line and SSE headers, and starts the keep-alive timer.</summary>
    public static async Task<SseResponse> StartAsync(HttpContext http)
    {
        var seconds = http.RequestServices.GetService<IConfiguration>()?.GetValue<double?>("Streaming:KeepAliveSeconds");
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // nginx: do not buffer the stream
        await response.StartAsync(http.RequestAborted);
        return new SseResponse(http, seconds is > 0 ? TimeSpan.FromSeconds(seconds.Value) : KeepAliveInterval);
    }

    /// <summary>Writes one event (<paramref name="data"/> is one line of JSON) and flushes it.</summary>
    public async Task WriteAsync(string? eventName, string data, CancellationToken cancellationToken)
    {
        var text = new StringBuilder(data.Length + 32);
        if (eventName is not null)
        {
            text.Append("event: ").Append(eventName).Append('\n');
        }

        text.Append("data: ").Append(data).Append("\n\n");
        await WriteRawAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken);
    }

    /// <summary>Writes an SSE comment (<c>: </c><paramref name="text"/>), which clients do not show as an event, and flushes it.</summary>
    public Task WriteCommentAsync(string text, CancellationToken cancellationToken) =>
        WriteRawAsync(Encoding.UTF8.GetBytes($": {text}\n\n"), cancellationToken);

    /// <summary>Stops the keep-alive timer.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _keepAlive;
        _stop.Dispose();
        _write.Dispose();
    }

    private async Task WriteRawAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        await _write.WaitAsync(cancellationToken);
        try
        {
            await _response.Body.WriteAsync(bytes, cancellationToken);
            await _response.Body.FlushAsync(cancellationToken);
            Volatile.Write(ref _lastWrite, Environment.TickCount64);
        }
        finally
        {
            _write.Release();
        }
    }

    private async Task KeepAliveAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        // Tick at a quarter of the interval and speak only after a full interval of silence.
        using var timer = new PeriodicTimer(interval / 4);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (Environment.TickCount64 - Volatile.Read(ref _lastWrite) >= (long)interval.TotalMilliseconds)
                {
                    await WriteRawAsync(KeepAlive, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The stream ended or the client left.
        }
        catch (IOException)
        {
            // The client left between two ticks; the producer finds out on its next write.
        }
    }
}
