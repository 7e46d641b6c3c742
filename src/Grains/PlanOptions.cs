using LuluClaw.Grains.Storage;

namespace LuluClaw.Grains;

/// <summary>The plan tables and credit prices (<c>Plans</c> section of configuration).</summary>
/// <remarks>
/// Both tables apply to every chat turn: the workspace's plan (the Gateway document, turns per
/// rolling hour) and the plan of the key the turn came with (the Developer API document, requests
/// per minute, hour and day). The stricter wins.
/// </remarks>
public sealed class PlanOptions
{
    /// <summary>Per-workspace plans by name: turns per rolling hour; a plan without a limit is unlimited.</summary>
    public Dictionary<string, WorkspacePlan> Workspace { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Per-key plans by name: requests per rolling minute, hour and day.</summary>
    public Dictionary<string, KeyPlan> Key { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The key plan of a key minted without one (<c>Plans:DefaultKeyPlan</c>, default <c>standard</c>).</summary>
    public string DefaultKeyPlan { get; set; } = "standard";

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

    /// <summary>The key plans the Developer API document publishes, used where configuration names none.</summary>
    public static IReadOnlyDictionary<string, KeyPlan> KeyDefaults { get; } = new Dictionary<string, KeyPlan>(StringComparer.OrdinalIgnoreCase)
    {
        ["byok"] = new() { RequestsPerMinute = 10, RequestsPerHour = 15, RequestsPerDay = 200 },
        ["standard"] = new() { RequestsPerMinute = 30, RequestsPerHour = 30, RequestsPerDay = 600 },
        ["priority"] = new() { RequestsPerMinute = 60, RequestsPerHour = 60, RequestsPerDay = 2000 },
    };

    /// <summary>The longest rate window of any plan (a key's day): turns admitted before it count in no window.</summary>
    public static readonly TimeSpan LongestWindow = TimeSpan.FromDays(1);

    /// <summary>Whether <paramref name="plan"/> is a known workspace plan.</summary>
    public bool IsWorkspacePlan(string plan) => Workspace.ContainsKey(plan);

    /// <summary>The windows of every plan, as the turn ledger takes them.</summary>
    public PlanLimits ToLimits()
    {
        var workspace = new Dictionary<string, IReadOnlyList<RateWindow>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, plan) in Workspace)
        {
            workspace[name] = plan.TurnsPerHour is { } limit
                ? [new RateWindow(TimeSpan.FromHours(1), limit, $"rolling-hour turn limit of the workspace's plan '{name}' ({limit} turns)")]
                : [];
        }

        var key = new Dictionary<string, IReadOnlyList<RateWindow>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, plan) in Key)
        {
            var windows = new List<RateWindow>(3);
            Add(TimeSpan.FromMinutes(1), plan.RequestsPerMinute, "minute");
            Add(TimeSpan.FromHours(1), plan.RequestsPerHour, "hour");
            Add(LongestWindow, plan.RequestsPerDay, "day");
            key[name] = windows;

            void Add(TimeSpan length, int? limit, string unit)
            {
                if (limit is { } l)
                {
                    windows.Add(new RateWindow(length, l, $"per-key limit of {l} requests per {unit} (plan '{name}')"));
                }
            }
        }

        return new PlanLimits(workspace, key, DefaultKeyPlan);
    }
}

/// <summary>One workspace plan.</summary>
public sealed class WorkspacePlan
{
    /// <summary>Turns admitted per rolling hour; null or absent for unlimited.</summary>
    public int? TurnsPerHour { get; set; }
}

/// <summary>One key plan; an absent limit is unlimited.</summary>
public sealed class KeyPlan
{
    /// <summary>Requests per rolling minute.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Requests per rolling hour.</summary>
    public int? RequestsPerHour { get; set; }

    /// <summary>Requests per rolling day.</summary>
    public int? RequestsPerDay { get; set; }
}

/// <summary>A rolling window: at most <paramref name="Limit"/> turns within <paramref name="Length"/>.</summary>
/// <param name="Description">What to tell a client this window refused it, e.g. "per-key limit of 30 requests per minute".</param>
public sealed record RateWindow(TimeSpan Length, int Limit, string Description);
