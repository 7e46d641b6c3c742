using LuluClaw.Grains.Storage;

namespace LuluClaw.Grains;

/// <summary>Lists the deployment's workspaces from the database.</summary>
/// <remarks>
/// Stateless, like <see cref="WorkspaceGrain"/>: a <see cref="StatelessWorkerAttribute">stateless
/// worker</see> on every silo, reentrant, so a listing never leaves the silo it was asked on.
/// </remarks>
[StatelessWorker(1)]
[Reentrant]
public sealed class WorkspaceDirectoryGrain(ITenantStore tenants) : Grain, IWorkspaceDirectoryGrain
{
    public async Task<WorkspacePage> ListWorkspacesAsync(long offset, int limit, CancellationToken cancellationToken)
    {
        var workspaces = await tenants.ListWorkspacesAsync(offset, limit, cancellationToken);
        var total = await tenants.CountWorkspacesAsync(cancellationToken);
        return new WorkspacePage([.. workspaces.Select(w => w.ToInfo())], total);
    }
}
