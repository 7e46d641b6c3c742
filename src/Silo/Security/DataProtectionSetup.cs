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
}

/// <summary>Wires ASP.NET Core Data Protection for LuluClaw.</summary>
public static class DataProtectionSetup
{
    /// <summary>Adds Data Protection with one application name for all nodes and the key ring where <see cref="DataProtectionSettings"/> says.</summary>
    public static IServiceCollection AddLuluDataProtection(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = configuration.GetSection("DataProtection").Get<DataProtectionSettings>() ?? new DataProtectionSettings();
        var builder = services.AddDataProtection().SetApplicationName("LuluClaw");
        if (!string.IsNullOrWhiteSpace(settings.KeysPath))
        {
            builder.PersistKeysToFileSystem(new DirectoryInfo(settings.KeysPath));
        }
        else
        {
            services.AddOptions<KeyManagementOptions>().Configure<KeyRingStore, TimeProvider>((o, store, time) => o.XmlRepository = new SqlXmlRepository(store, time));
        }

        services.AddSingleton<Grains.Models.IProviderKeyProtector, ProviderKeyProtector>();
        return services;
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
}
