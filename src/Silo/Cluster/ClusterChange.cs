using System.Globalization;

namespace LuluClaw.Silo.Cluster;

/// <summary>
/// A change that other silos' caches must drop: written in the transaction of the change itself
/// (table <c>cluster_changes</c>), announced on <see cref="Channel"/> at its commit, and applied by
/// every other node's <see cref="ClusterChangeFeed"/>.
/// </summary>
/// <param name="Id">Unique per change, so that a node applies each one once.</param>
/// <param name="Node">The node that made the change; it has applied it already.</param>
/// <param name="Kind">One of the kind constants below.</param>
/// <param name="Subject">What changed: a workspace id.</param>
/// <param name="At">When, in Unix milliseconds.</param>
public sealed record ClusterChange(string Id, string Node, string Kind, string Subject, long At)
{
    /// <summary>The PostgreSQL notification channel.</summary>
    public const string Channel = "luluclaw_changes";

    /// <summary>A workspace's provider keys changed; the subject is the workspace id.</summary>
    public const string ProviderKeys = "provider-keys";

    /// <summary>A new change made by <paramref name="node"/> now.</summary>
    public static ClusterChange New(string node, string kind, string subject) =>
        new(Guid.NewGuid().ToString("N"), node, kind, subject, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    /// <summary>The notification payload: the fields on separate lines (none of them may hold a control character).</summary>
    public string ToPayload() => string.Join('\n', Id, Node, Kind, At.ToString(CultureInfo.InvariantCulture), Subject);

    /// <summary>Reads a payload made by <see cref="ToPayload"/>; null if it is not one.</summary>
    public static ClusterChange? Parse(string payload)
    {
        var parts = payload.Split('\n', 5);
        return parts.Length == 5 && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var at)
            ? new ClusterChange(parts[0], parts[1], parts[2], parts[4], at)
            : null;
    }
}
