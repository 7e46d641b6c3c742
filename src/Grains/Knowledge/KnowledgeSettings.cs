using System.Text.Json;
using System.Text.Json.Serialization;

namespace LuluClaw.Grains.Knowledge;

/// <summary>
/// What a source's type needs to ingest it, as stored in its row (JSON): a website's page and depth
/// budget, a manual source's entries or text. A document's bytes are stored beside it.
/// </summary>
public sealed record KnowledgeSettings(
    int? MaxPages = null,
    int? MaxDepth = null,
    IReadOnlyList<KnowledgeEntry>? Entries = null,
    string? Content = null)
{
    /// <summary>A website's page budget when none is given.</summary>
    public const int DefaultMaxPages = 50;

    /// <summary>A website's depth when none is given.</summary>
    public const int DefaultMaxDepth = 2;

    /// <summary>The settings as stored.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, KnowledgeSettingsJson.Default.KnowledgeSettings);

    /// <summary>Settings as stored.</summary>
    public static KnowledgeSettings FromJson(string json) => JsonSerializer.Deserialize(json, KnowledgeSettingsJson.Default.KnowledgeSettings) ?? new();
}

/// <summary>Source-generated JSON of <see cref="KnowledgeSettings"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(KnowledgeSettings))]
internal sealed partial class KnowledgeSettingsJson : JsonSerializerContext;

/// <summary>Told when a source becomes due for ingestion on this silo, so that ingestion starts now rather than at its next look.</summary>
public interface IKnowledgeIngestionSignal
{
    /// <summary>There is a source to ingest.</summary>
    void Wake();
}
