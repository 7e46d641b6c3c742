using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LuluClaw.WebApi.Tests;

/// <summary>What a newcomer sees on the first start of a real process on an empty SQLite database.</summary>
public sealed partial class FirstStartTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-first-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task FirstStart_BannerShowsTheDemoWorkspacesIdBesideItsKey_AndNoWarningAboutTheKeyRing()
    {
        using var server = await ServerProcess.StartAsync(_folder, Ct, new Dictionary<string, string?> { ["Demo:Seed"] = "true" });

        var id = Guid.Parse(IdLine().Match(await server.WaitForOutputAsync("workspace id:", Ct)).Groups[1].Value);
        var key = KeyLine().Match(await server.WaitForOutputAsync("API key:", Ct)).Groups[1].Value;

        // The id is the one the admin API's walk-through needs; the key chats in it.
        using var admin = server.Client(ServerProcess.AdminToken);
        var workspace = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{id}", Ct);
        Assert.Equal(("Demo", "starter", 250), (workspace.GetProperty("name").GetString(), workspace.GetProperty("plan").GetString(), workspace.GetProperty("credits_remaining").GetInt64()));
        using var client = server.Client(key);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/gateway/chat", new { message = "Hello!" }, Ct)).StatusCode);

        // The unencrypted key ring is said once, in LuluClaw's words, with the setting; not as the framework's warning.
        await server.WaitForOutputAsync("DataProtection:CertificatePath", Ct);
        Assert.DoesNotContain("XmlKeyManager", server.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("No XML encryptor configured", server.Output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"workspace id:\s+([0-9a-f-]{36})")]
    private static partial Regex IdLine();

    [GeneratedRegex(@"API key:\s+(lulu_sk_[A-Za-z0-9_-]+)")]
    private static partial Regex KeyLine();
}
