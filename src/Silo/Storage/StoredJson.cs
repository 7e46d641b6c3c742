using System.Text.Json;
using System.Text.Json.Serialization;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The JSON columns of a bot's knowledge settings (<c>bots.knowledge</c>) and of the sources a reply
/// used (<c>messages.sources</c>): null for the defaults and for none, so rows that never used
/// knowledge stay as they were.
/// </summary>
internal static class StoredJson
{
    /// <summary>The column of a bot's knowledge settings: null for the defaults.</summary>
    public static string? Of(BotKnowledge? knowledge) =>
        knowledge is null || knowledge == BotKnowledge.Default ? null : JsonSerializer.Serialize(knowledge, StoredJsonContext.Default.BotKnowledge);

    /// <summary>A bot's knowledge settings from their column.</summary>
    public static BotKnowledge Knowledge(string? json) =>
        json is null ? BotKnowledge.Default : JsonSerializer.Deserialize(json, StoredJsonContext.Default.BotKnowledge) ?? BotKnowledge.Default;

    /// <summary>The column of a reply's sources: null for none.</summary>
    public static string? Of(IReadOnlyList<MessageSource>? sources) =>
        sources is not { Count: > 0 }
            ? null
            : JsonSerializer.Serialize(sources.Select(s => new StoredSource(s.Id, s.Name, s.Url, [.. s.ChunkIds])).ToArray(), StoredJsonContext.Default.StoredSourceArray);

    /// <summary>A reply's sources from their column.</summary>
    public static IReadOnlyList<MessageSource>? Sources(string? json) =>
        json is null
            ? null
            : JsonSerializer.Deserialize(json, StoredJsonContext.Default.StoredSourceArray)?.Select(s => new MessageSource(s.Id, s.Name, s.Url, s.Chunks)).ToArray();
}

/// <summary>A reply's source as stored.</summary>
internal sealed record StoredSource(string Id, string Name, string? Url, long[] Chunks);

/// <summary>Source-generated JSON of the stored shapes.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BotKnowledge))]
[JsonSerializable(typeof(StoredSource[]))]
internal sealed partial class StoredJsonContext : JsonSerializerContext;
