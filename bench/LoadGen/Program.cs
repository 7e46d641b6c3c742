using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LuluClaw.Bench.LoadGen;

/// <summary>
/// Opens N concurrent streaming chat turns against one LuluClaw process, checks that all N are open
/// at the same time, reads the server's memory, then lets them finish and checks that all complete.
/// </summary>
/// <remarks>
/// Two ways to hold the model's answer open:
/// - <c>stub</c>: LuluClaw's OpenAI provider points at the benchmark stub, told here to hold streaming
///   answers after their first piece of text. A stream is open once its first <c>delta</c> event
///   arrived (LuluClaw answered 200 <c>text/event-stream</c>); the stub's count of held answers
///   confirms that N model calls are in flight at once. Costs LuluClaw two sockets per stream.
/// - <c>echo</c>: LuluClaw's echo model waits <c>Llm:Echo:DelayMilliseconds</c> before its first word,
///   so LuluClaw sends no byte before then (its status line waits for the first event). A stream is
///   open once its turn was admitted: the workspace's credits (one per admitted turn, read through the
///   admin API) have gone down by N while no response has arrived yet. One socket per stream.
/// Steps:
/// 1. (stub) hold the stub; read the server's RSS;
/// 2. start N streams (<c>POST /api/gateway/chat</c>, <c>"stream": true</c>, each in its own session) at
///    <c>--rate</c> per second;
/// 3. wait until all N are open; read the server's RSS and the stub's held count;
/// 4. (stub) release; wait until every stream ended with a <c>done</c> event.
/// Prints one line <c>RESULT key=value ...</c> for the script, progress on standard error.
/// </remarks>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var options = Options.Parse(args);
        if (options is null)
        {
            await Console.Error.WriteLineAsync(
                "usage: LuluClaw.Bench.LoadGen --url http://127.0.0.1:PORT --key KEY --streams N\n" +
                "         [--mode stub --stub http://127.0.0.1:PORT | --mode echo --admin-token TOKEN --workspace ID]\n" +
                "         [--pid SERVER_PID] [--tag TAG] [--rate 1000] [--timeout-seconds 180]");
            return 2;
        }

        return await new StreamsRun(options).RunAsync();
    }
}

/// <summary>Command-line options.</summary>
internal sealed record Options(
    Uri Url, string Key, int Streams, string Mode, Uri? Stub, string? AdminToken, string? Workspace,
    int? Pid, string Tag, int Rate, TimeSpan Timeout)
{
    public static Options? Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }

        if (!values.TryGetValue("--url", out var url) || !values.TryGetValue("--key", out var key) || !values.TryGetValue("--streams", out var streams))
        {
            return null;
        }

        var options = new Options(
            new Uri(url), key, int.Parse(streams), values.GetValueOrDefault("--mode", "stub"),
            values.TryGetValue("--stub", out var stub) ? new Uri(stub) : null,
            values.GetValueOrDefault("--admin-token"), values.GetValueOrDefault("--workspace"),
            values.TryGetValue("--pid", out var pid) ? int.Parse(pid) : null,
            values.GetValueOrDefault("--tag", "sse"),
            values.TryGetValue("--rate", out var rate) ? int.Parse(rate) : 1000,
            TimeSpan.FromSeconds(values.TryGetValue("--timeout-seconds", out var timeout) ? int.Parse(timeout) : 180));
        return options.Mode switch
        {
            "stub" when options.Stub is not null => options,
            "echo" when options.AdminToken is not null && options.Workspace is not null => options,
            _ => null,
        };
    }
}

/// <summary>One run of N streams.</summary>
internal sealed class StreamsRun(Options options)
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = int.MaxValue,
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
        AutomaticDecompression = DecompressionMethods.None,
        UseProxy = false,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private readonly TaskCompletionSource _allOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _opened;
    private int _answered;
    private int _failedBeforeOpen;
    private int _completed;
    private int _failed;
    private string? _firstError;

    private bool Stub => options.Mode == "stub";

    public async Task<int> RunAsync()
    {
        // The open phase may take options.Timeout; the streams may then take as long again to finish.
        using var openDeadline = new CancellationTokenSource(options.Timeout);
        using var hardDeadline = new CancellationTokenSource(options.Timeout * 2);
        var ct = hardDeadline.Token;

        // :: Step 1.
        var baseRss = RssKb(options.Pid);
        var baseCredits = Stub ? 0 : await CreditsAsync(ct);
        if (Stub)
        {
            (await _http.PostAsync(new Uri(options.Stub!, "/control/hold"), null, ct)).EnsureSuccessStatusCode();
        }

        // :: Step 2: start N streams at the given rate.
        var clock = Stopwatch.StartNew();
        var streams = new List<Task>(options.Streams);
        var opened = false;
        try
        {
            for (var i = 0; i < options.Streams; i++)
            {
                var due = TimeSpan.FromSeconds((double)i / options.Rate) - clock.Elapsed;
                if (due > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(due, openDeadline.Token);
                }

                streams.Add(StreamAsync(i, ct));
                if (i % 1000 == 999)
                {
                    Log($"started {i + 1}, open {Volatile.Read(ref _opened)}");
                }
            }

            // :: Step 3: wait until all N are open at once.
            opened = Stub ? await WaitForFirstDeltasAsync(openDeadline.Token) : await WaitForAdmissionsAsync(baseCredits, openDeadline.Token);
        }
        catch (OperationCanceledException) when (openDeadline.IsCancellationRequested)
        {
            Log($"not all streams opened within {options.Timeout.TotalSeconds:F0}s");
        }

        var openSeconds = clock.Elapsed.TotalSeconds;
        var rss = RssKb(options.Pid);
        var held = Stub ? await HeldAsync(ct) : Volatile.Read(ref _opened);
        var early = Volatile.Read(ref _answered);
        Log($"open {_opened}/{options.Streams} after {openSeconds:F1}s ({(Stub ? "the stub holds" : "answered before all were admitted:")} " +
            $"{(Stub ? held : early)}), server RSS {rss / 1024} MB");

        // :: Step 4: let them finish.
        if (Stub)
        {
            (await _http.PostAsync(new Uri(options.Stub!, "/control/release"), null, CancellationToken.None)).EnsureSuccessStatusCode();
        }

        clock.Restart();
        await Task.WhenAll(streams).ContinueWith(_ => { }, CancellationToken.None);
        var completeSeconds = clock.Elapsed.TotalSeconds;
        var failed = _failed + _failedBeforeOpen + (options.Streams - streams.Count);
        Log($"completed {_completed}, failed {failed} in {completeSeconds:F1}s{(_firstError is null ? "" : $"; first error: {_firstError}")}");

        var concurrent = opened && (Stub ? held == options.Streams : early == 0);
        Console.WriteLine(
            $"RESULT mode={options.Mode} streams={options.Streams} opened={_opened} concurrent={(concurrent ? options.Streams : _opened - early)} " +
            $"completed={_completed} failed={failed} rss_base_kb={baseRss} rss_kb={rss} open_s={openSeconds:F1} complete_s={completeSeconds:F1} " +
            $"error={Uri.EscapeDataString(_firstError ?? "-")}");
        return concurrent && _completed == options.Streams ? 0 : 1;
    }

    private async Task StreamAsync(int index, CancellationToken ct)
    {
        var open = false;
        try
        {
            // Each stream runs on its own, so that a slow one never holds back the loop that starts the others.
            await Task.Yield();
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Url, "/api/gateway/chat"))
            {
                Content = new StringContent(
                    $$"""{"message":"stream {{index}}","session_id":"{{options.Tag}}-{{index}}","stream":true}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Key);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            Interlocked.Increment(ref _answered);
            if (response.StatusCode != HttpStatusCode.OK || response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                throw new HttpRequestException($"status {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            var done = false;
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (!open && line == "event: delta")
                {
                    open = true;
                    if (Stub)
                    {
                        Opened();
                    }
                }
                else if (line == "event: done")
                {
                    done = true;
                }
                else if (line == "event: error")
                {
                    throw new HttpRequestException("the stream ended with an error event");
                }
            }

            if (!open || !done)
            {
                throw new HttpRequestException("the stream ended without a done event");
            }

            Interlocked.Increment(ref _completed);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _firstError, $"{e.GetType().Name}: {e.Message}", null);
            if (open || !Stub)
            {
                Interlocked.Increment(ref _failed);
            }
            else if (Interlocked.Increment(ref _failedBeforeOpen) + Volatile.Read(ref _opened) == options.Streams)
            {
                _allOpen.TrySetResult();
            }
        }
    }

    private void Opened()
    {
        if (Interlocked.Increment(ref _opened) + Volatile.Read(ref _failedBeforeOpen) == options.Streams)
        {
            _allOpen.TrySetResult();
        }
    }

    /// <summary>Stub mode: every stream has had its first delta (or failed).</summary>
    private async Task<bool> WaitForFirstDeltasAsync(CancellationToken ct)
    {
        await _allOpen.Task.WaitAsync(ct);
        return Volatile.Read(ref _opened) == options.Streams;
    }

    /// <summary>Echo mode: N turns admitted (the credits went down by N) before any answer came back.</summary>
    private async Task<bool> WaitForAdmissionsAsync(long baseCredits, CancellationToken ct)
    {
        while (true)
        {
            var admitted = baseCredits - await CreditsAsync(ct);
            Volatile.Write(ref _opened, (int)admitted);
            if (admitted >= options.Streams)
            {
                return true;
            }

            if (Volatile.Read(ref _answered) > 0)
            {
                Log($"an answer came back after {admitted} admissions: raise the echo model's delay");
                return false;
            }

            await Task.Delay(250, ct);
        }
    }

    private async Task<long> CreditsAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(options.Url, $"/api/admin/workspaces/{options.Workspace}"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.AdminToken);
        using var response = await _http.SendAsync(request, ct);
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return json.RootElement.GetProperty("credits_remaining").GetInt64();
    }

    private async Task<long> HeldAsync(CancellationToken ct)
    {
        try
        {
            await using var stats = await _http.GetStreamAsync(new Uri(options.Stub!, "/control/stats"), ct);
            using var json = await JsonDocument.ParseAsync(stats, cancellationToken: ct);
            return json.RootElement.GetProperty("held").GetInt64();
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or JsonException)
        {
            return -1;
        }
    }

    /// <summary>The resident set of process <paramref name="pid"/> in KB (VmRSS), or 0.</summary>
    private static long RssKb(int? pid)
    {
        if (pid is null)
        {
            return 0;
        }

        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static void Log(string message) => Console.Error.WriteLine($"loadgen: {message}");
}
