using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests;

/// <summary>The real server as a child process, killed with SIGKILL right after it answered.</summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-crash-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task KillNine_RightAfter200_TurnAndDebitSurviveRestart()
    {
        var ct = TestContext.Current.CancellationToken;
        string workspaceId, key;
        using (var server = await ServerProcess.StartAsync(_folder, ct))
        {
            using var admin = server.Client(ServerProcess.AdminToken);
            var created = await (await admin.PostAsJsonAsync("/api/admin/workspaces", new { name = "Crash", plan = "starter", credits = 10 }, ct))
                .Content.ReadFromJsonAsync<JsonElement>(ct);
            workspaceId = created.GetProperty("id").GetString()!;
            key = (await (await admin.PostAsync($"/api/admin/workspaces/{workspaceId}/keys", null, ct)).Content.ReadFromJsonAsync<JsonElement>(ct))
                .GetProperty("key").GetString()!;

            using var client = server.Client(key);
            var first = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "remember me", session_id = "crash" }, ct);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            var reply = await first.Content.ReadFromJsonAsync<JsonElement>(ct);
            Assert.Equal(9, reply.GetProperty("credits_remaining").GetInt64());

            server.KillNine(); // no shutdown, no flush: only what was durable before the 200 survives
        }

        using (var server = await ServerProcess.StartAsync(_folder, ct))
        {
            using var admin = server.Client(ServerProcess.AdminToken);
            var history = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspaceId}/sessions/crash/messages", ct);
            Assert.Equal(
                ["user: remember me", "assistant: Echo: remember me"],
                history.GetProperty("messages").EnumerateArray().Select(m => $"{m.GetProperty("role").GetString()}: {m.GetProperty("content").GetString()}"));
            var workspace = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspaceId}", ct);
            Assert.Equal(9, workspace.GetProperty("credits_remaining").GetInt64());

            // The thread goes on where it stopped.
            using var client = server.Client(key);
            var next = await client.PostAsJsonAsync("/api/gateway/chat", new { message = "still there?", session_id = "crash" }, ct);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            history = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspaceId}/sessions/crash/messages", ct);
            Assert.Equal([1L, 2, 3, 4], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
        }
    }
}

/// <summary>A LuluClaw server started as <c>dotnet LuluClaw.Silo.dll</c> on a free loopback port.</summary>
internal sealed class ServerProcess : IDisposable
{
    public const string AdminToken = "crash-admin-token";

    private readonly Process _process;

    private ServerProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    public Uri Address { get; }

    public static async Task<ServerProcess> StartAsync(string folder, CancellationToken cancellationToken)
    {
        var port = FreePort();
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LuluClaw.Silo.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://127.0.0.1:{port}");
        start.Environment["ConnectionStrings__LuluClaw"] = $"Data Source={Path.Combine(folder, "luluclaw.db")}";
        start.Environment["Storage__Provider"] = "sqlite";
        start.Environment["Admin__Token"] = AdminToken;
        start.Environment["Demo__Seed"] = "false";
        start.Environment["Logging__LogLevel__Default"] = "Information";

        var process = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException($"server exited before listening:\n{string.Join('\n', output)}"));
                return;
            }

            output.Enqueue(e.Data);
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

        return new ServerProcess(process, new Uri($"http://127.0.0.1:{port}"));
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

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            KillNine();
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
