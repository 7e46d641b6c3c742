using System.Data.Common;
using LuluClaw.Silo.Cluster;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The <c>cluster_changes</c> table: changes other nodes' caches must drop, written inside the
/// transaction of the change itself (<see cref="RecordAsync"/>), announced at its commit and read by
/// <see cref="ClusterChangeFeed"/>. Nothing is recorded where one process owns the database (SQLite).
/// </summary>
public sealed class ClusterChangeLog(Database database, string? nodeId = null)
{
    /// <summary>This process's name in the log: its own changes it has applied already.</summary>
    public string NodeId { get; } = nodeId ?? Guid.NewGuid().ToString("N")[..12];

    /// <summary>Whether other processes share the database, so that changes are recorded and announced.</summary>
    public bool Shared => database.Dialect.NotifySql is not null;

    /// <summary>Inside a write: records a change, announced when the transaction commits and never if it rolls back.</summary>
    internal Task RecordAsync(DbConnection c, DbTransaction tx, string kind, string subject, CancellationToken cancellationToken)
    {
        if (database.Dialect.NotifySql is not { } notify)
        {
            return Task.CompletedTask;
        }

        var change = ClusterChange.New(NodeId, kind, subject);
        return Statements.ExecuteAsync(c, tx,
            $"INSERT INTO cluster_changes (id, node, kind, subject, at) VALUES (@Id, @Node, @Kind, @Subject, @At); {notify}",
            cancellationToken,
            ("Id", change.Id), ("Node", change.Node), ("Kind", change.Kind), ("Subject", change.Subject), ("At", change.At),
            ("Channel", ClusterChange.Channel), ("Payload", change.ToPayload()));
    }

    /// <summary>The changes recorded since <paramref name="since"/> (Unix ms), oldest first.</summary>
    internal Task<List<ClusterChange>> SinceAsync(long since, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowsAsync(c, null,
            "SELECT id, node, kind, subject, at FROM cluster_changes WHERE at > @Since ORDER BY at",
            r => new ClusterChange(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4)),
            cancellationToken, ("Since", since)), cancellationToken);

    /// <summary>Deletes the changes older than <paramref name="before"/> (Unix ms).</summary>
    internal Task PruneAsync(long before, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => Statements.ExecuteAsync(c, tx, "DELETE FROM cluster_changes WHERE at < @Before", cancellationToken, ("Before", before)),
            cancellationToken);
}
