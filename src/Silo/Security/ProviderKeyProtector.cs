using LuluClaw.Grains.Models;
using Microsoft.AspNetCore.DataProtection;

namespace LuluClaw.Silo.Security;

/// <summary>
/// Encrypts workspaces' provider keys with ASP.NET Core Data Protection (authenticated encryption;
/// the key ring is shared by every node, see <see cref="DataProtectionSetup"/>). The purpose chain
/// names the workspace, so a ciphertext only decrypts for the workspace it was made for.
/// </summary>
public sealed class ProviderKeyProtector(IDataProtectionProvider provider) : IProviderKeyProtector
{
    private const string Purpose = "LuluClaw.ProviderKeys.v1";

    /// <inheritdoc />
    public string Protect(Guid workspaceId, string apiKey) => For(workspaceId).Protect(apiKey);

    /// <inheritdoc />
    public string Unprotect(Guid workspaceId, string ciphertext) => For(workspaceId).Unprotect(ciphertext);

    private IDataProtector For(Guid workspaceId) => provider.CreateProtector(Purpose, workspaceId.ToString("D"));
}
