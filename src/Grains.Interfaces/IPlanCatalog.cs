namespace LuluClaw;

/// <summary>The plan names operators and keys may use, from configuration.</summary>
public interface IPlanCatalog
{
    /// <summary>The per-workspace plans (the Gateway table).</summary>
    IReadOnlyCollection<string> WorkspacePlans { get; }
}
