using System.Collections.Concurrent;

namespace LuluClaw.WebApi.Http;

/// <summary>
/// The keys this silo has resolved, for the chat routes only: a turn's admission checks the key's row
/// again in the same transaction that admits it, so a key revoked on any silo is refused there (401),
/// and a stale entry here costs nothing but that refused turn. Every other route asks the key's grain.
/// </summary>
/// <remarks>
/// Why a cache beside the key's grain: the grain call was one of the Orleans calls every turn made;
/// taking it out raised SQLite echo chat at 64 clients from 7,155 to 8,392 turns/s (bench/run.sh
/// gateway, runs by hand, 25 s warm-up). Keys never
/// change but by revocation, so an entry is right until then. At most <see cref="Capacity"/> entries; a
/// full cache starts again empty rather than tracking use, which a flood of made-up keys cannot fill
/// (only keys the grain resolved are kept).
/// </remarks>
internal sealed class ResolvedApiKeys
{
    /// <summary>How many keys are kept at the most.</summary>
    public const int Capacity = 50_000;

    private readonly ConcurrentDictionary<string, ApiKeyInfo> _keys = new(StringComparer.Ordinal);

    /// <summary>The key of <paramref name="hash"/>, if this silo resolved it.</summary>
    public ApiKeyInfo? Find(string hash) => _keys.TryGetValue(hash, out var key) ? key : null;

    /// <summary>Keeps what the key's grain answered.</summary>
    public void Keep(string hash, ApiKeyInfo key)
    {
        if (_keys.Count >= Capacity)
        {
            _keys.Clear();
        }

        _keys[hash] = key;
    }

    /// <summary>Drops a key a turn found revoked.</summary>
    public void Forget(string hash) => _keys.TryRemove(hash, out _);
}
