using System.Buffers.Text;
using System.Security.Cryptography;

namespace LuluClaw.Grains;

/// <summary>Server-made identifiers: a readable prefix and 16 random bytes.</summary>
public static class Ids
{
    /// <summary>A new id such as <c>bot_3q2…</c>.</summary>
    public static string New(string prefix) => $"{prefix}_{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(12))}";

    /// <summary>
    /// A new id that sorts after the ids made before <paramref name="now"/>: the milliseconds in hex,
    /// then 9 random bytes. For a row inserted on every turn, so that the table's key index grows at
    /// its end (one page per group commit) instead of dirtying a random page per row.
    /// </summary>
    public static string NewOrdered(string prefix, DateTimeOffset now) =>
        $"{prefix}_{now.ToUnixTimeMilliseconds():x12}{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(9))}";
}

/// <summary>Time as storage keeps it.</summary>
public static class StoredTime
{
    /// <summary>
    /// Now, truncated to the millisecond that storage keeps, so that what an actor answers from memory
    /// is what a reload would answer.
    /// </summary>
    public static DateTimeOffset GetStoredNow(this TimeProvider time) =>
        DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
}
