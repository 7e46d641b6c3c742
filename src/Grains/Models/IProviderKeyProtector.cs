namespace LuluClaw.Grains.Models;

/// <summary>
/// Encrypts the provider keys workspaces bring (BYOK) for storage, and decrypts them for use. The
/// ciphertext is bound to its workspace: copied to another workspace's row it does not decrypt.
/// </summary>
public interface IProviderKeyProtector
{
    /// <summary>The ciphertext to store for <paramref name="apiKey"/>.</summary>
    string Protect(Guid workspaceId, string apiKey);

    /// <summary>The key back from its ciphertext; throws if it was not made for this workspace or was tampered with.</summary>
    string Unprotect(Guid workspaceId, string ciphertext);

    /// <summary>A hint that tells keys apart without revealing them: <c>sk-…abcd</c>.</summary>
    static string Hint(string apiKey)
    {
        var key = apiKey.Trim();
        return key.Length >= 12 ? $"{key[..3]}…{key[^4..]}" : "…";
    }
}
