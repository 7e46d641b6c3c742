using Microsoft.Extensions.Options;

namespace LuluClaw.Grains;

/// <summary>The plan names of <see cref="PlanOptions"/>.</summary>
public sealed class PlanCatalog(IOptionsMonitor<PlanOptions> plans) : IPlanCatalog
{
    /// <inheritdoc />
    public IReadOnlyCollection<string> WorkspacePlans => plans.CurrentValue.Workspace.Keys;

    /// <inheritdoc />
    public IReadOnlyCollection<string> KeyPlans => plans.CurrentValue.Key.Keys;

    /// <inheritdoc />
    public string DefaultKeyPlan => plans.CurrentValue.DefaultKeyPlan;
}
