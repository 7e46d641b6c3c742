namespace LuluClaw.Grains;

/// <summary>The plan tables and credit prices (<c>Plans</c> section of configuration).</summary>
public sealed class PlanOptions
{
    /// <summary>Per-workspace plans by name: turns per rolling hour; a plan without a limit is unlimited.</summary>
    public Dictionary<string, WorkspacePlan> Workspace { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Credits one turn costs.</summary>
    public long CreditsPerTurn { get; set; } = 1;

    /// <summary>The plans the Gateway document publishes, used where configuration names none.</summary>
    public static IReadOnlyDictionary<string, WorkspacePlan> Defaults { get; } = new Dictionary<string, WorkspacePlan>(StringComparer.OrdinalIgnoreCase)
    {
        ["starter"] = new() { TurnsPerHour = 15 },
        ["pro"] = new() { TurnsPerHour = 30 },
        ["premium"] = new() { TurnsPerHour = 60 },
        ["byok"] = new() { TurnsPerHour = null },
    };

    /// <summary>Whether <paramref name="plan"/> is a known workspace plan.</summary>
    public bool IsWorkspacePlan(string plan) => Workspace.ContainsKey(plan);

    /// <summary>The turns-per-hour limit of a workspace plan; null for unlimited. An unknown plan admits nothing.</summary>
    public int? TurnsPerHour(string plan) => Workspace.TryGetValue(plan, out var p) ? p.TurnsPerHour : 0;
}

/// <summary>One workspace plan.</summary>
public sealed class WorkspacePlan
{
    /// <summary>Turns admitted per rolling hour; null or absent for unlimited.</summary>
    public int? TurnsPerHour { get; set; }
}
