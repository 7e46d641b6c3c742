namespace LuluClaw;

/// <summary>
/// Every workspace of the deployment, for operators. One directory, key <see cref="Key"/>; it holds no
/// state, so each silo answers from the database.
/// </summary>
[Alias("luluclaw.IWorkspaceDirectoryGrain")]
public interface IWorkspaceDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>The directory's grain key.</summary>
    public const long Key = 0;

    /// <summary>
    /// Up to <paramref name="limit"/> workspaces, newest first, after the <paramref name="offset"/> newer
    /// ones (empty past the last), and how many there are in all.
    /// </summary>
    [Alias("ListWorkspacesAsync")]
    Task<WorkspacePage> ListWorkspacesAsync(long offset, int limit, CancellationToken cancellationToken);
}

/// <summary>One page of the workspace list.</summary>
/// <param name="Workspaces">Newest first.</param>
/// <param name="Total">How many workspaces there are, on every page.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.WorkspacePage")]
public sealed record WorkspacePage(
    [property: Id(0)] IReadOnlyList<WorkspaceInfo> Workspaces,
    [property: Id(1)] long Total);
