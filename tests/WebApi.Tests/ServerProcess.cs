using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

using LuluClaw.Tests;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// A LuluClaw node started as <c>dotnet LuluClaw.Silo.dll</c> on a free loopback port: a real
/// process, so it can be killed with SIGKILL or stopped with SIGTERM.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    public const string AdminToken = "crash-admin-token";

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output;
    private readonly Lines _lines;

    private ServerProcess(Process process, Uri address, ConcurrentQueue<string> output, Lines lines)
    {
        _process = process;
        Address = address;
        _output = output;
        _lines = lines;
    }

    public Uri Address { get; }

    /// <summary>Everything the process wrote so far, for failure messages.</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>
    /// Starts a node in <paramref name="folder"/> on SQLite there, unless <paramref name="settings"/>
    /// (configuration keys such as <c>Storage:Provider</c>) say otherwise.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string folder, CancellationToken cancellationToken, IDictionary<string, string?>? settings = null)
    {
        var port = TestPorts.Free();
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LuluClaw.Silo.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://127.0.0.1:{port}");
        var all = new Dictionary<string, string?>(TestPorts.Silo())
        {
            ["ConnectionStrings:LuluClaw"] = $"Data Source={Path.Combine(folder, "luluclaw.db")}",
            ["Storage:Provider"] = "sqlite",
            ["Admin:Token"] = AdminToken,
            ["Demo:Seed"] = "false",
            ["Logging:LogLevel:Default"] = "Information",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        foreach (var (key, value) in all)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new ConcurrentQueue<string>();
        var lines = new Lines();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException($"server exited before listening:\n{string.Join('\n', output)}"));
                return;
            }

            output.Enqueue(e.Data);
            lines.Add(e.Data);
            if (e.Data.Contains("Application started", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"server on port {port} did not start listening within 60 s:\n{string.Join('\n', output)}");
        }

        return new ServerProcess(process, new Uri($"http://127.0.0.1:{port}"), output, lines);
    }

    /// <summary>Completes with the first line of standard output that contains <paramref name="text"/>, written already or to come.</summary>
    public Task<string> WaitForOutputAsync(string text, CancellationToken cancellationToken) => _lines.WaitForAsync(text).WaitAsync(cancellationToken);

    /// <summary>Creates a workspace through the admin API and mints it a key: its id and the key.</summary>
    public async Task<(string WorkspaceId, string Key)> CreateWorkspaceAsync(string name, string plan, long credits, CancellationToken cancellationToken)
    {
        using var admin = Client(AdminToken);
        var created = await (await admin.PostAsJsonAsync("/api/admin/workspaces", new { name, plan, credits }, cancellationToken))
            .Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        var id = created.GetProperty("id").GetString()!;
        var key = (await (await admin.PostAsync($"/api/admin/workspaces/{id}/keys", null, cancellationToken)).Content.ReadFromJsonAsync<JsonElement>(cancellationToken))
            .GetProperty("key").GetString()!;
        return (id, key);
    }

    public HttpClient Client(string bearer)
    {
        var client = new HttpClient { BaseAddress = Address };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return client;
    }

    /// <summary>SIGKILL, and wait until the process is gone.</summary>
    public void KillNine()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the polite stop a service manager sends.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Waits for the process to exit (at most <paramref name="timeout"/>) and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken).WaitAsync(timeout, cancellationToken);
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            KillNine();
        }

        _process.Dispose();
    }

    /// <summary>Standard output's lines, and who waits for which.</summary>
    private sealed class Lines
    {
        private readonly List<string> _seen = [];
        private readonly List<(string Text, TaskCompletionSource<string> Found)> _waiting = [];

        public void Add(string line)
        {
            List<TaskCompletionSource<string>> found = [];
            lock (_seen)
            {
                _seen.Add(line);
                for (var i = _waiting.Count - 1; i >= 0; i--)
                {
                    if (line.Contains(_waiting[i].Text, StringComparison.Ordinal))
                    {
                        found.Add(_waiting[i].Found);
                        _waiting.RemoveAt(i);
                    }
                }
            }

            found.ForEach(f => f.TrySetResult(line));
        }

        public Task<string> WaitForAsync(string text)
        {
            lock (_seen)
            {
                if (_seen.Find(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
                {
                    return Task.FromResult(line);
                }

                var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add((text, found));
                return found.Task;
            }
        }
    }
}
