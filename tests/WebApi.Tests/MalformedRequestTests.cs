using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace LuluClaw.WebApi.Tests;

/// <summary>A request the HTTP server itself cannot read, on a real node (Kestrel, not the test server).</summary>
public sealed class MalformedRequestTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-malformed-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task BrokenChunkedBody_Is400InTheSurfaceShape_LoggedWithoutAStack_AndTheNodeGoesOn()
    {
        using var server = await ServerProcess.StartAsync(_folder, Ct);
        var (_, key) = await server.CreateWorkspaceAsync("Malformed", "pro", 10, Ct);

        // A chunk size that is not hexadecimal: Kestrel fails the body read inside the endpoint.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Address.Host, server.Address.Port, Ct);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /api/gateway/chat HTTP/1.1\r\nHost: {server.Address.Authority}\r\nAuthorization: Bearer {key}\r\n" +
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"), Ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var answer = await reader.ReadToEndAsync(Ct);

        Assert.StartsWith("HTTP/1.1 400", answer);
        var json = answer[answer.IndexOf('{', StringComparison.Ordinal)..(answer.LastIndexOf('}') + 1)]; // the body may come chunked
        var body = JsonDocument.Parse(json).RootElement;
        Assert.Contains("chunk", body.GetProperty("error").GetString(), StringComparison.OrdinalIgnoreCase);

        // The node answers the next request as before; the log names the bad request, with no stack trace.
        using var client = server.Client(key);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/gateway/chat", new { message = "still here" }, Ct)).StatusCode);
        const string line = "POST /api/gateway/chat: 400, the request was malformed";
        for (var waited = 0; !server.Output.Contains(line, StringComparison.Ordinal) && waited < 100; waited++)
        {
            await Task.Delay(100, Ct); // the console logger writes from its own queue
        }

        Assert.Contains(line, server.Output);
        Assert.DoesNotContain("BadHttpRequestException", server.Output);
    }
}
