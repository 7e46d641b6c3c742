using System.Net;
using System.Net.Http.Json;
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
            (workspaceId, key) = await server.CreateWorkspaceAsync("Crash", "starter", 10, ct);
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
