using System.Net.Sockets;
using System.Text;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// HTTP/1.1 written byte by byte to a real server, for what <see cref="HttpClient"/> will not send:
/// a Content-Length that lies, a header section past the server's limits, raw bytes in a header.
/// </summary>
internal static class RawHttp
{
    /// <summary>An answer as read off the wire; <see cref="Body"/> is de-chunked.</summary>
    public sealed record Answer(int Status, string? ContentType, string Body);

    /// <summary>
    /// Sends <paramref name="head"/> (request line and headers, without the blank line; <c>Connection: close</c>
    /// is added) and <paramref name="body"/>, and reads the answer to the end of the connection. The sending
    /// side stays open: Kestrel takes a client's FIN for an abort and answers nothing, so a body shorter
    /// than its Content-Length is a client that stalls, answered when Kestrel's minimum data rate gives up on it.
    /// </summary>
    public static async Task<Answer> SendAsync(Uri server, string head, byte[] body, CancellationToken cancellationToken) =>
        await SendAsync(server, Encoding.Latin1.GetBytes(head), body, cancellationToken);

    /// <inheritdoc cref="SendAsync(Uri, string, byte[], CancellationToken)"/>
    public static async Task<Answer> SendAsync(Uri server, byte[] head, byte[] body, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, timeout.Token);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(head, timeout.Token);
            await stream.WriteAsync("\r\nConnection: close\r\n\r\n"u8.ToArray(), timeout.Token);
            await stream.WriteAsync(body, timeout.Token);
        }
        catch (IOException)
        {
            // The server answered and closed before it had read everything (a header section past its
            // limit): its answer is still there to read.
        }

        using var buffer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(buffer, timeout.Token);
        }
        catch (IOException) when (buffer.Length > 0)
        {
            // A reset after the answer.
        }

        return Parse(buffer.ToArray());
    }

    private static Answer Parse(byte[] raw)
    {
        var headEnd = raw.AsSpan().IndexOf("\r\n\r\n"u8);
        if (headEnd < 0 || !raw.AsSpan().StartsWith("HTTP/1.1 "u8))
        {
            var text = Encoding.UTF8.GetString(raw);
            return new Answer(0, null, text.Length > 300 ? text[..300] : text);
        }

        var lines = Encoding.Latin1.GetString(raw, 0, headEnd).Split("\r\n");
        var status = int.Parse(lines[0].AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
        string? Header(string name) => lines.Skip(1).Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            .Select(l => l[(name.Length + 1)..].Trim()).FirstOrDefault();
        var body = raw.AsSpan(headEnd + 4).ToArray();
        if (Header("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)
        {
            body = Dechunk(body);
        }

        return new Answer(status, Header("Content-Type"), Encoding.UTF8.GetString(body));
    }

    private static byte[] Dechunk(byte[] chunked)
    {
        using var body = new MemoryStream();
        var at = 0;
        while (at < chunked.Length)
        {
            var lineEnd = chunked.AsSpan(at).IndexOf("\r\n"u8);
            if (lineEnd < 0 || !int.TryParse(Encoding.ASCII.GetString(chunked, at, lineEnd), System.Globalization.NumberStyles.HexNumber, null, out var size) || size == 0)
            {
                break;
            }

            var start = at + lineEnd + 2;
            body.Write(chunked, start, Math.Min(size, chunked.Length - start));
            at = start + size + 2;
        }

        return body.ToArray();
    }
}
