using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Xml.Linq;
using LuluClaw.Silo.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace LuluClaw.Silo.Security;

/// <summary>Settings of the key ring that encrypts provider keys (<c>DataProtection</c> section).</summary>
public sealed class DataProtectionSettings
{
    /// <summary>
    /// A directory for the key ring. Empty (the default) keeps it in the database, where every node
    /// of a cluster finds it; a directory (a mounted secret, say) keeps the key ring apart from the
    /// data it protects, but then every node must see the same directory.
    /// </summary>
    public string? KeysPath { get; set; }

    /// <summary>
    /// A PKCS#12 file (<c>.pfx</c>, <c>.p12</c>) holding a certificate and its private key. When set,
    /// every key of the ring is encrypted with it before it is stored, and read back with it: whoever
    /// reads the database (or <see cref="KeysPath"/>) then cannot decrypt the provider keys without the
    /// file too. Every node needs the same file, for as long as the ring holds keys encrypted with it.
    /// Empty (the default): the ring's keys are stored as they are, protected only by access to where
    /// they are stored.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>The password of <see cref="CertificatePath"/>, if it has one.</summary>
    public string? CertificatePassword { get; set; }
}

/// <summary>Wires ASP.NET Core Data Protection for LuluClaw.</summary>
public static partial class DataProtectionSetup
{
    /// <summary>The framework's logger that warns, at each new key, that no certificate encrypts it.</summary>
    private const string KeyManagerCategory = "Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager";

    /// <summary>
    /// Adds Data Protection with one application name for all nodes, the key ring where
    /// <see cref="DataProtectionSettings"/> says, and encrypted with its certificate if one is configured.
    /// </summary>
    /// <remarks>
    /// Without a certificate, Data Protection warns at each new key (on a newcomer's first start, and
    /// every 90 days) that the key "may be persisted to storage in unencrypted form": true, and the
    /// documented default here, which nothing in that warning tells how to change. So the key
    /// manager's warnings are not shown then (its errors still are), and LuluClaw says at every start,
    /// at Information, where the ring is and which setting encrypts it. With a certificate nothing is
    /// filtered.
    /// </remarks>
    public static IServiceCollection AddLuluDataProtection(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = configuration.GetSection("DataProtection").Get<DataProtectionSettings>() ?? new DataProtectionSettings();
        var builder = services.AddDataProtection().SetApplicationName("LuluClaw");
        string where;
        if (!string.IsNullOrWhiteSpace(settings.KeysPath))
        {
            builder.PersistKeysToFileSystem(new DirectoryInfo(settings.KeysPath));
            where = $"in {settings.KeysPath}";
        }
        else
        {
            services.AddOptions<KeyManagementOptions>().Configure<KeyRingStore, TimeProvider>((o, store, time) => o.XmlRepository = new SqlXmlRepository(store, time));
            where = "in the database, table data_protection_keys";
        }

        if (!string.IsNullOrWhiteSpace(settings.CertificatePath))
        {
            // Encrypts new keys with it and registers it for decryption, so reading the ring needs no certificate store.
            builder.ProtectKeysWithCertificate(LoadCertificate(settings));
        }
        else
        {
            services.AddLogging(logging => logging.AddFilter(KeyManagerCategory, LogLevel.Error));
            services.AddHostedService(sp => new UnencryptedKeyRingNotice(sp.GetRequiredService<ILogger<UnencryptedKeyRingNotice>>(), where));
        }

        services.AddSingleton<Grains.Models.IProviderKeyProtector, ProviderKeyProtector>();
        return services;
    }

    /// <summary>The certificate of <c>DataProtection:CertificatePath</c>, with its private key, or a start-up failure that names the setting.</summary>
    private static X509Certificate2 LoadCertificate(DataProtectionSettings settings)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(settings.CertificatePath!, settings.CertificatePassword);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"DataProtection:CertificatePath '{settings.CertificatePath}' could not be read as a PKCS#12 file (wrong password, or not such a file?): {e.Message}", e);
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new InvalidOperationException(
                $"DataProtection:CertificatePath '{settings.CertificatePath}' holds no private key: keys encrypted with it could never be read back");
        }

        return certificate;
    }

    /// <summary>The key ring in the <c>data_protection_keys</c> table.</summary>
    /// <remarks>
    /// <see cref="IXmlRepository"/> is synchronous; Data Protection reads the ring once and caches it
    /// for hours, so blocking here is rare and short.
    /// </remarks>
    private sealed class SqlXmlRepository(KeyRingStore store, TimeProvider time) : IXmlRepository
    {
        public IReadOnlyCollection<XElement> GetAllElements() =>
            [.. store.GetAllAsync(CancellationToken.None).GetAwaiter().GetResult().Select(x => XElement.Parse(x))];

        public void StoreElement(XElement element, string friendlyName) =>
            store.StoreAsync(friendlyName, element.ToString(SaveOptions.DisableFormatting), time.GetUtcNow(), CancellationToken.None)
                .GetAwaiter().GetResult();
    }

    /// <summary>Says once, at start, that the key ring is not encrypted at rest and which setting changes that.</summary>
    private sealed partial class UnencryptedKeyRingNotice(ILogger<UnencryptedKeyRingNotice> logger, string where) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            LogUnencrypted(logger, where);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(EventId = 3201, Level = LogLevel.Information,
            Message = "Provider keys are encrypted with a key ring kept {Where}, itself not encrypted; set DataProtection:CertificatePath to encrypt it (README, Configuration)")]
        private static partial void LogUnencrypted(ILogger logger, string where);
    }
}
