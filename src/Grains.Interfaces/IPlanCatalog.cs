namespace LuluClaw;

/// <summary>The plan names operators and keys may use, from configuration.</summary>
public interface IPlanCatalog
{
    /// <summary>The per-workspace plans (the Gateway table).</summary>
    IReadOnlyCollection<string> WorkspacePlans { get; }

    /// <summary>The per-key plans (the Developer API table).</summary>
    IReadOnlyCollection<string> KeyPlans { get; }

    /// <summary>The plan a key minted without one gets.</summary>
    string DefaultKeyPlan { get; }
}
