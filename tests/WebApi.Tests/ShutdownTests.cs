using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Net.Sockets;
using System.Text.Json;
using LuluClaw.Tests;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests;

/// <summary>SIGTERM on a real node: it stops accepting, finishes what is in flight, then exits.</summary>
public sealed class ShutdownTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-drain-").FullName;
    private StubModelServer _stub = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _stub = await StubModelServer.StartAsync(Ct);

    public async ValueTask DisposeAsync()
    {
        await _stub.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private Dictionary<string, string?> Settings(int drainSeconds) => new()
    {
        ["Llm:OpenAI:BaseUrl"] = _stub.OpenAIBaseUrl.ToString(),
        ["Llm:OpenAI:ApiKey"] = "sk-platform",
        ["Shutdown:DrainSeconds"] = drainSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Sigterm_DrainsTurnsAndStreamsInFlight_ThenExitsCleanly()
    {
        string workspaceId, key;
        using (var server = await ServerProcess.StartAsync(_folder, Ct, Settings(drainSeconds: 60)))
        {
            (workspaceId, key) = await server.CreateWorkspaceAsync("Drain", "pro", 100, Ct);
            using var client = server.Client(key);
            _stub.HoldReplies();
            var plain = Enumerable.Range(1, 3)
                .Select(i => client.PostAsJsonAsync("/api/gateway/chat", new { message = $"plain {i}", session_id = $"p{i}" }, Ct)).ToArray();
            var streams = Enumerable.Range(1, 2).Select(i => StreamAsync(client, $"streamed {i}", $"s{i}")).ToArray();
            await _stub.WaitForRequestsAsync(5, Ct); // all five turns are at the model

            server.Terminate();
            await WaitUntilRefusedAsync(server.Address); // no new connections from here on...
            _stub.ReleaseReplies(); // ...but what was in flight finishes

            foreach (var (answer, i) in (await Task.WhenAll(plain)).Select((a, i) => (a, i + 1)))
            {
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.Equal($"Stub reply to: plain {i}", (await answer.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("reply").GetString());
            }

            foreach (var (events, i) in (await Task.WhenAll(streams)).Select((e, i) => (e, i + 1)))
            {
                Assert.Equal("done", events[^1].EventType);
                Assert.Equal($"Stub reply to: streamed {i}", string.Concat(events.Where(e => e.EventType == "delta").Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("content").GetString())));
            }

            Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(60), Ct));
        }

        // Everything that was answered is stored and charged.
        using (var server = await ServerProcess.StartAsync(_folder, Ct, Settings(drainSeconds: 60)))
        {
            using var admin = server.Client(ServerProcess.AdminToken);
            Assert.Equal(95, (await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspaceId}", Ct)).GetProperty("credits_remaining").GetInt64());
            foreach (var session in new[] { "p1", "p2", "p3", "s1", "s2" })
            {
                var history = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspaceId}/sessions/{session}/messages", Ct);
                Assert.Equal(2, history.GetProperty("messages").GetArrayLength());
            }
        }
    }

    [Fact]
    public async Task Sigterm_DrainIsBounded_ATurnHeldPastTheDeadlineIsNotStored()
    {
        string workspaceId;
        using (var server = await ServerProcess.StartAsync(_folder, Ct, Settings(drainSeconds: 1)))
        {
            (workspaceId, var key) = await server.CreateWorkspaceAsync("Drain", "pro", 100, Ct);
            using var client = server.Client(key);
            _stub.HoldReplies(); // and never released
            var held = client.PostAsJsonAsync("/api/gateway/chat", new { message = "never answered", session_id = "held" }, Ct);
            await _stub.WaitForRequestsAsync(1, Ct);

            server.Terminate();

            // It exits although the turn never finished, and the client was not told it succeeded.
            Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(60), Ct));
            var outcome = await Record.ExceptionAsync(async () => Assert.NotEqual(HttpStatusCode.OK, (await held).StatusCode));
            Assert.True(outcome is null or HttpRequestException, $"unexpected: {outcome}");
        }

        _stub.ReleaseReplies();
        using (var server = await ServerProcess.StartAsync(_folder, Ct, Settings(drainSeconds: 1)))
        {
            using var admin = server.Client(ServerProcess.AdminToken);
            Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/admin/workspaces/{workspaceId}/sessions/held/messages", Ct)).StatusCode);
        }
    }

    private static async Task<List<SseItem<string>>> StreamAsync(HttpClient client, string message, string sessionId)
    {
        using var response = await PostStreamAsync(client, "/api/gateway/chat", new { message, session_id = sessionId, stream = true });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await ReadEventsAsync(response);
    }

    /// <summary>Waits until the node no longer accepts connections.</summary>
    private static async Task WaitUntilRefusedAsync(Uri address)
    {
        for (var attempt = 0; attempt < 600; attempt++)
        {
            using var probe = new TcpClient();
            try
            {
                await probe.ConnectAsync(address.Host, address.Port, Ct);
            }
            catch (SocketException)
            {
                return;
            }

            await Task.Delay(50, Ct);
        }

        Assert.Fail("the node still accepted connections 30 s after SIGTERM");
    }
}
