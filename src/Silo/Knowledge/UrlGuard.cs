using System.Net;
using System.Net.Sockets;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Server-side request forgery guard (OWASP API7) for every URL a user gave: which URLs may be
/// fetched at all, which addresses may be connected to, and an <see cref="HttpClient"/> that checks
/// the address it actually connects to.
/// </summary>
internal static class UrlGuard
{
    /// <summary>How long a pooled connection lives, so a host whose DNS moved is resolved (and checked) again.</summary>
    private static readonly TimeSpan ConnectionLifetime = TimeSpan.FromMinutes(2);

    /// <summary>The reason <paramref name="url"/> may not be fetched at all (scheme other than http/https, credentials in the URL, no host), or null.</summary>
    public static string? SchemeRefusal(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri)
        {
            return "the URL is not absolute";
        }

        if (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
        {
            return $"the scheme {url.Scheme}: is not http or https";
        }

        if (url.UserInfo.Length > 0)
        {
            return "the URL carries a user name or password";
        }

        return string.IsNullOrEmpty(url.Host) ? "the URL has no host" : null;
    }

    /// <summary>
    /// Whether <paramref name="address"/> may be connected to. Loopback and private ranges only with
    /// <paramref name="allowPrivate"/>; link-local (the cloud metadata address among them),
    /// unspecified, multicast, broadcast, shared (CGNAT), benchmarking, documentation and reserved
    /// ranges never. An IPv4 address embedded in IPv6 (mapped, compatible, NAT64, 6to4) is judged as itself.
    /// </summary>
    public static bool IsAllowed(IPAddress address, bool allowPrivate)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork => IsAllowedV4(address.GetAddressBytes(), allowPrivate),
            AddressFamily.InterNetworkV6 => IsAllowedV6(address.GetAddressBytes(), allowPrivate),
            _ => false,
        };
    }

    /// <summary>
    /// An <see cref="HttpClient"/> that resolves each host itself and connects only when every
    /// address it resolved to is allowed, to the address it checked: the check follows DNS and
    /// cannot be raced by a rebinding answer, and it applies to every redirect hop. Redirects are
    /// not followed (the caller follows and checks them), no proxy is used, responses are decompressed.
    /// </summary>
    public static HttpClient CreateClient(bool allowPrivate)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.All,
            PooledConnectionLifetime = ConnectionLifetime,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            ConnectCallback = (context, cancellationToken) => ConnectAsync(context.DnsEndPoint, allowPrivate, cancellationToken),
        };
        return new HttpClient(handler, disposeHandler: true);
    }

    private static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, bool allowPrivate, CancellationToken cancellationToken)
    {
        // :: Step 1: resolve the host ourselves (a literal address is its own answer).
        var host = endPoint.Host.Trim('[', ']');
        var addresses = IPAddress.TryParse(host, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new UrlRefusedException($"{host} does not resolve to any address");
        }

        // :: Step 2: every answer must be allowed; one bad answer means the name is not trusted.
        foreach (var address in addresses)
        {
            if (!IsAllowed(address, allowPrivate))
            {
                throw new UrlRefusedException($"{host} resolves to {address}, an address LuluClaw does not connect to");
            }
        }

        // :: Step 3: connect to the checked addresses, never to the name again.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, endPoint.Port, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static bool IsAllowedV4(ReadOnlySpan<byte> a, bool allowPrivate)
    {
        var isPrivate = a[0] == 10
            || (a[0] == 172 && (a[1] & 0xF0) == 16)
            || (a[0] == 192 && a[1] == 168)
            || a[0] == 127;
        var isNeverAllowed = a[0] == 0                                   // 0/8 "this network", 0.0.0.0 among it
            || (a[0] == 169 && a[1] == 254)                              // 169.254/16 link-local, cloud metadata
            || (a[0] == 100 && (a[1] & 0xC0) == 64)                      // 100.64/10 shared address space (CGNAT)
            || (a[0] == 192 && a[1] == 0 && a[2] == 0)                   // 192.0.0/24 protocol assignments
            || (a[0] == 192 && a[1] == 0 && a[2] == 2)                   // 192.0.2/24 documentation
            || (a[0] == 198 && (a[1] & 0xFE) == 18)                      // 198.18/15 benchmarking
            || (a[0] == 198 && a[1] == 51 && a[2] == 100)                // 198.51.100/24 documentation
            || (a[0] == 203 && a[1] == 0 && a[2] == 113)                 // 203.0.113/24 documentation
            || a[0] >= 224;                                              // 224/4 multicast, 240/4 reserved, broadcast
        return !isNeverAllowed && (allowPrivate || !isPrivate);
    }

    private static bool IsAllowedV6(byte[] a, bool allowPrivate)
    {
        var address = new IPAddress(a);
        if (address.IsIPv4MappedToIPv6)
        {
            return IsAllowedV4(a.AsSpan(12), allowPrivate);
        }

        if (address.Equals(IPAddress.IPv6Loopback))
        {
            return allowPrivate;
        }

        // ::/96 (unspecified, and IPv4-compatible addresses), NAT64 64:ff9b::/96: the v4 in the last 32 bits.
        var firstTwelve = a.AsSpan(0, 12);
        if (firstTwelve.IndexOfAnyExcept((byte)0) < 0)
        {
            return !address.Equals(IPAddress.IPv6Any) && IsAllowedV4(a.AsSpan(12), allowPrivate);
        }

        if (firstTwelve.SequenceEqual(new byte[] { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 }))
        {
            return IsAllowedV4(a.AsSpan(12), allowPrivate);
        }

        // 6to4 2002::/16: the v4 in bits 16 to 48.
        if (a[0] == 0x20 && a[1] == 0x02)
        {
            return IsAllowedV4(a.AsSpan(2, 4), allowPrivate);
        }

        var neverAllowed = a[0] == 0xff                                   // ff00::/8 multicast
            || (a[0] == 0xfe && (a[1] & 0xC0) == 0x80)                   // fe80::/10 link-local
            || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)  // 2001::/32 Teredo: tunnels to any v4
            || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) // 2001:db8::/32 documentation
            || (a[0] == 0x01 && a[1] == 0 && a.AsSpan(2, 6).IndexOfAnyExcept((byte)0) < 0) // 100::/64 discard
            || (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1); // 64:ff9b:1::/48 local NAT64
        var isPrivate = (a[0] & 0xFE) == 0xfc                             // fc00::/7 unique local
            || (a[0] == 0xfe && (a[1] & 0xC0) == 0xC0);                  // fec0::/10 site-local (deprecated)
        return !neverAllowed && (allowPrivate || !isPrivate);
    }
}
