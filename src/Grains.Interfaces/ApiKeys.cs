using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace LuluClaw;

/// <summary>The <c>lulu_sk_</c> key family: minting, shape checks and the hash that is stored instead of the key.</summary>
public static class ApiKeys
{
    /// <summary>Every LuluClaw secret key starts with this.</summary>
    public const string Prefix = "lulu_sk_";

    private const int SecretBytes = 32;

    /// <summary>The length of a minted key: the prefix and 32 random bytes in unpadded base64url.</summary>
    public static readonly int Length = Prefix.Length + Base64Url.GetEncodedLength(SecretBytes);

    /// <summary>A new key from 32 bytes of the system's CSPRNG.</summary>
    public static string Mint() => Prefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    /// <summary>Lowercase hex SHA-256 of the key: what the database keeps.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>The part of a key that may be shown again (prefix and four characters).</summary>
    public static string DisplayPrefix(string key) => key[..(Prefix.Length + 4)];

    /// <summary>Whether <paramref name="key"/> has the shape of a minted key; anything else is malformed.</summary>
    public static bool IsWellFormed(ReadOnlySpan<char> key) =>
        key.Length == Length && key.StartsWith(Prefix, StringComparison.Ordinal) && Base64Url.IsValid(key[Prefix.Length..]);
}
