using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LuluClaw.Silo.Security;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Silo.Tests.Security;

/// <summary>
/// The key ring that encrypts provider keys (<c>Security/DataProtectionSetup</c>): encrypted at rest
/// with <c>DataProtection:CertificatePath</c> when it is set; otherwise stored as it is, said once in
/// LuluClaw's words instead of the framework's warning. The ring is kept in a folder
/// (<c>DataProtection:KeysPath</c>) so that a test can read it and a second container can reopen it.
/// </summary>
public sealed class DataProtectionSetupTests : IDisposable
{
    private const string Password = "test-pfx-password";
    private readonly string _folder = Directory.CreateTempSubdirectory("luluclaw-keyring-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task WithCertificate_KeysAreStoredEncrypted_AnotherNodeWithTheFileReadsThem_OneWithoutCannot()
    {
        var certificate = WriteCertificate("keyring.pfx");
        var settings = new Dictionary<string, string?> { ["DataProtection:CertificatePath"] = certificate, ["DataProtection:CertificatePassword"] = Password };
        var logs = new CapturedLogs();
        string ciphertext;
        await using (var node = await StartAsync(settings, logs))
        {
            ciphertext = node.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("sk-secret-provider-key");
        }

        var ring = string.Concat(Directory.GetFiles(Path.Combine(_folder, "keys"), "*.xml").Select(File.ReadAllText));
        Assert.Contains("<encryptedSecret", ring, StringComparison.Ordinal);
        Assert.DoesNotContain("<masterKey", ring, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("DataProtection:CertificatePath", StringComparison.Ordinal));

        // A fresh container (another node, or this one restarted) has only the files: the ring and the certificate.
        await using (var again = await StartAsync(settings, new CapturedLogs()))
        {
            Assert.Equal("sk-secret-provider-key", again.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(ciphertext));
        }

        await using var without = await StartAsync(new Dictionary<string, string?>(), new CapturedLogs());
        Assert.ThrowsAny<CryptographicException>(() => without.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(ciphertext));
    }

    [Fact]
    public async Task WithoutCertificate_NoFrameworkWarning_OneInformationLineNamingTheSetting()
    {
        var logs = new CapturedLogs();
        await using (var node = await StartAsync(new Dictionary<string, string?>(), logs))
        {
            node.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("sk-secret-provider-key");
        }

        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_folder, "keys"), "key-*.xml")); // a key was made, which is when the framework warns
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        var notice = Assert.Single(logs.Entries, e => e.Message.Contains("DataProtection:CertificatePath", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, notice.Level);
        Assert.Contains(Path.Combine(_folder, "keys"), notice.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing.pfx", Password, "could not be read")]
    [InlineData("keyring.pfx", "wrong-password", "could not be read")]
    [InlineData("not-a-certificate.pfx", Password, "could not be read")]
    [InlineData("public-only.pfx", Password, "holds no private key")]
    public void BadCertificate_FailsAtStart_NamingTheSetting(string file, string? password, string expected)
    {
        WriteCertificate("keyring.pfx");
        var settings = new Dictionary<string, string?> { ["DataProtection:CertificatePath"] = Path.Combine(_folder, file), ["DataProtection:CertificatePassword"] = password };

        var error = Assert.Throws<InvalidOperationException>(() => Services(settings, new CapturedLogs()));

        Assert.StartsWith("DataProtection:CertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    /// <summary>A self-signed certificate with its private key, as a PKCS#12 file; beside it the same without the key (<c>public-only.pfx</c>) and a file that is no certificate.</summary>
    private string WriteCertificate(string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=LuluClaw key ring test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, Password));
        using var publicOnly = X509CertificateLoader.LoadCertificate(certificate.Export(X509ContentType.Cert));
        File.WriteAllBytes(Path.Combine(_folder, "public-only.pfx"), publicOnly.Export(X509ContentType.Pkcs12, Password));
        File.WriteAllText(Path.Combine(_folder, "not-a-certificate.pfx"), "hello");
        return path;
    }

    private ServiceProvider Services(Dictionary<string, string?> settings, CapturedLogs logs)
    {
        settings["DataProtection:KeysPath"] = Path.Combine(_folder, "keys");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Information).AddProvider(logs));
        services.AddLuluDataProtection(configuration);
        return services.BuildServiceProvider();
    }

    /// <summary>A container as a node has it, its hosted services started (Data Protection's own loads the ring, making its first key).</summary>
    private async Task<ServiceProvider> StartAsync(Dictionary<string, string?> settings, CapturedLogs logs)
    {
        var services = Services(settings, logs);
        foreach (var hosted in services.GetServices<IHostedService>())
        {
            await hosted.StartAsync(Ct);
        }

        return services;
    }

    private sealed record LogEntry(string Category, LogLevel Level, string Message);

    /// <summary>What reaches a logging provider, after the app's filters.</summary>
    private sealed class CapturedLogs : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEntry> _entries = new();

        public IReadOnlyCollection<LogEntry> Entries => _entries;

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs logs, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs._entries.Enqueue(new LogEntry(category, logLevel, formatter(state, exception)));
        }
    }
}
