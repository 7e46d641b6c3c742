using System.Text.Json;
using Microsoft.Extensions.AI;

namespace LuluClaw.Grains.Models;

/// <summary>
/// A function the caller declared for one turn, as the model provider is told of it: a name, a
/// description and the JSON schema of its arguments, and no body. LuluClaw never runs it: the model's
/// call goes back to the caller, who runs it and sends its result in the next request.
/// </summary>
/// <remarks>
/// <see cref="AIFunctionFactory.CreateDeclaration"/> makes such a declaration too, but has no way to
/// say <c>strict</c>, which the OpenAI client reads from <see cref="AITool.AdditionalProperties"/>
/// under <c>"strict"</c>: hence this small subclass.
/// </remarks>
internal sealed class ToolDeclaration : AIFunctionDeclaration
{
    private static readonly JsonElement NoParameters = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();

    private readonly IReadOnlyDictionary<string, object?> _properties;

    private ToolDeclaration(ChatTurnTool tool)
    {
        Name = tool.Name;
        Description = tool.Description ?? "";
        JsonSchema = tool.Parameters is { } schema ? JsonDocument.Parse(schema).RootElement.Clone() : NoParameters;
        _properties = tool.Strict is { } strict ? new Dictionary<string, object?> { ["strict"] = strict } : new Dictionary<string, object?>();
    }

    /// <summary>The declaration of <paramref name="tool"/>.</summary>
    public static AITool Of(ChatTurnTool tool) => new ToolDeclaration(tool);

    /// <inheritdoc />
    public override string Name { get; }

    /// <inheritdoc />
    public override string Description { get; }

    /// <inheritdoc />
    public override JsonElement JsonSchema { get; }

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, object?> AdditionalProperties => _properties;

    /// <summary>
    /// A call's arguments (JSON object text, checked by the surface that took them) as the dictionary
    /// a <see cref="FunctionCallContent"/> holds: each value the JSON it was.
    /// </summary>
    public static Dictionary<string, object?> Arguments(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind == JsonValueKind.Object
            ? document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : [];
    }
}
