using LuluClaw.Tests;
using System.Net;
using LuluClaw.Silo.Knowledge;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The SSRF guard's address ranges, scheme refusals, and the client that enforces them after DNS.</summary>
public sealed class UrlGuardTests
{
    /// <summary>Address, allowed when private is refused, allowed when private is allowed.</summary>
    public static TheoryData<string, bool, bool> Addresses() => new()
    {
        // Public
        { "93.184.216.34", true, true },
        { "8.8.8.8", true, true },
        { "2606:4700:4700::1111", true, true },
        // Loopback: only for tests that allow private
        { "127.0.0.1", false, true },
        { "127.255.0.9", false, true },
        { "::1", false, true },
        { "::ffff:127.0.0.1", false, true },
        // Private ranges
        { "10.1.2.3", false, true },
        { "172.16.0.1", false, true },
        { "172.31.255.254", false, true },
        { "172.32.0.1", true, true },
        { "192.168.1.1", false, true },
        { "fc00::1", false, true },
        { "fd12:3456::1", false, true },
        { "::ffff:10.0.0.1", false, true },
        { "64:ff9b::a00:1", false, true },
        { "2002:c0a8:0101::1", false, true },
        // Never
        { "0.0.0.0", false, false },
        { "::", false, false },
        { "169.254.169.254", false, false },
        { "169.254.0.1", false, false },
        { "fe80::1", false, false },
        { "::ffff:169.254.169.254", false, false },
        { "64:ff9b::a9fe:a9fe", false, false },
        { "2002:a9fe:a9fe::1", false, false },
        { "224.0.0.1", false, false },
        { "239.255.255.250", false, false },
        { "ff02::1", false, false },
        { "255.255.255.255", false, false },
        { "100.64.0.1", false, false },
        { "100.127.255.254", false, false },
        { "192.0.0.8", false, false },
        { "198.18.0.1", false, false },
        { "198.19.255.1", false, false },
        { "240.0.0.1", false, false },
        { "::ffff:0.0.0.0", false, false },
        { "2002:7f00:0001::1", false, true },
        // Public v4 embedded in v6 stays public
        { "::ffff:8.8.8.8", true, true },
        { "64:ff9b::808:808", true, true },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public void IsAllowed_Address_FollowsItsRange(string address, bool allowedPublicOnly, bool allowedWithPrivate)
    {
        var ip = IPAddress.Parse(address);

        Assert.Equal(allowedPublicOnly, UrlGuard.IsAllowed(ip, allowPrivate: false));
        Assert.Equal(allowedWithPrivate, UrlGuard.IsAllowed(ip, allowPrivate: true));
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://example.com/file")]
    [InlineData("gopher://example.com:70/1")]
    [InlineData("data:text/html,<h1>hi</h1>")]
    [InlineData("http://user:pass@example.com/")]
    [InlineData("https://user@example.com/")]
    public void SchemeRefusal_UnsafeUrl_GivesAReason(string url)
    {
        Assert.NotNull(UrlGuard.SchemeRefusal(new Uri(url)));
    }

    [Theory]
    [InlineData("http://example.com/")]
    [InlineData("https://example.com:8443/docs?q=1")]
    public void SchemeRefusal_WebUrl_IsNull(string url)
    {
        Assert.Null(UrlGuard.SchemeRefusal(new Uri(url)));
    }

    [Fact]
    public async Task CreateClient_PublicOnly_RefusesLoopbackByAddressAndByName()
    {
        await using var site = await LocalSite.StartAsync();
        site.Page("/", "<p>secret</p>");
        using var client = UrlGuard.CreateClient(allowPrivate: false);
        var byName = new Uri($"http://localhost:{site.BaseUrl.Port}/");

        var byAddressError = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(site.BaseUrl, TestContext.Current.CancellationToken));
        var byNameError = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(byName, TestContext.Current.CancellationToken));

        Assert.Contains("127.0.0.1", RefusalIn(byAddressError).Message, StringComparison.Ordinal);
        Assert.Contains("localhost", RefusalIn(byNameError).Message, StringComparison.Ordinal);
        Assert.Empty(site.Requests);
    }

    [Fact]
    public async Task CreateClient_PrivateAllowed_ConnectsToLoopback()
    {
        await using var site = await LocalSite.StartAsync();
        site.Page("/", "<p>hello</p>");
        using var client = UrlGuard.CreateClient(allowPrivate: true);

        var body = await client.GetStringAsync(site.BaseUrl, TestContext.Current.CancellationToken);

        Assert.Equal("<p>hello</p>", body);
    }

    private static UrlRefusedException RefusalIn(Exception error)
    {
        for (Exception? inner = error; inner is not null; inner = inner.InnerException)
        {
            if (inner is UrlRefusedException refused)
            {
                return refused;
            }
        }

        throw new Xunit.Sdk.XunitException($"no UrlRefusedException in {error}");
    }
}
