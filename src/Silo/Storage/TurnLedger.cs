using System.Data.Common;
using LuluClaw.Grains;
using LuluClaw.Grains.Storage;
using static LuluClaw.Silo.Storage.Columns;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The rolling-window and credit ledger (tables <c>turns</c> and <c>pending_turns</c>, and the
/// workspaces' credits): a turn's admission is its row in <c>turns</c> (what the windows count,
/// written once), its row in <c>pending_turns</c> and its debit, taken under the workspace's row
/// lock; its commit (<see cref="ConversationStore"/>) deletes the pending row, its refund both.
/// </summary>
/// <remarks>
/// On SQLite an admission is one write of the group-commit writer (<see cref="AdmitOneAsync"/>). On
/// PostgreSQL admissions are batched, many turns' in one transaction (<see cref="PostgresAdmissions"/>).
/// Both decide with <see cref="AdmissionRules"/>. A window is counted from the admission times of
/// the turns in it, which never hold more rows than the window's limit (a turn beyond it is refused
/// and leaves no row), so counting reads at most a limit's worth of index entries; an unlimited
/// plan counts nothing.
/// </remarks>
public sealed class TurnLedger(Database database, PostgresAdmissions? batches = null) : ITurnLedger
{
    // The admission's read, made once: the dialect decides its locking clause. It brings the
    // workspace's row, the key's (it must still be live here, whatever another node's cache
    // believes), where the session's thread stands, and the version of the bot that is to answer.
    private readonly string _admissionSql = $"""
        SELECT w.plan, w.credits, k.id AS key_id, k.plan AS key_plan, k.revoked_at,
            (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.workspace_id = w.id AND m.session_id = @SessionId) AS last_seq,
            (SELECT b.version FROM bots b WHERE b.id = @BotId AND b.workspace_id = w.id) AS bot_version
        FROM workspaces w LEFT JOIN api_keys k ON k.id = @KeyId AND k.workspace_id = w.id
        WHERE w.id = @Id{database.Dialect.ForUpdateOf("w")}
        """;

    /// <summary>The admission times of an owner's turns since a cutoff, oldest first, by owner.</summary>
    private static string TimesSql(WindowOwner owner) => owner == WindowOwner.Key ? KeyTimesSql : WorkspaceTimesSql;

    private const string KeyTimesSql = "SELECT admitted_at FROM turns WHERE key_id = @Value AND admitted_at > @Cutoff ORDER BY admitted_at";
    private const string WorkspaceTimesSql = "SELECT admitted_at FROM turns WHERE workspace_id = @Value AND admitted_at > @Cutoff ORDER BY admitted_at";

    public Task<AdmissionResult> TryAdmitAsync(TurnAdmission admission, CancellationToken cancellationToken) =>
        batches is not null
            ? batches.AdmitAsync(admission, cancellationToken)
            : database.WriteAsync((c, tx) => AdmitOneAsync(c, tx, admission, cancellationToken), cancellationToken, WriteDurability.Visible);

    /// <summary>One admission inside a write transaction.</summary>
    private async Task<AdmissionResult> AdmitOneAsync(DbConnection c, DbTransaction tx, TurnAdmission admission, CancellationToken cancellationToken)
    {
        var workspaceId = Id(admission.WorkspaceId);
        var locked = await Statements.RowAsync<LockedWorkspace?>(c, tx, _admissionSql,
            r => new LockedWorkspace(r.GetString(0), r.GetInt64(1), !r.IsNull(2), r.StringOrNull(3), !r.IsNull(4), r.GetInt64(5), r.Int64OrNull(6) ?? 0),
            cancellationToken, ("SessionId", admission.SessionId), ("BotId", admission.BotId), ("KeyId", admission.KeyId), ("Id", workspaceId));

        var windows = new List<WindowCheck>();
        if (AdmissionRules.Check(admission, locked, locked?.Credits ?? 0, windows) is { } refused)
        {
            return refused;
        }

        var ws = locked!.Value;
        var full = new List<(TimeSpan, RateWindow)>();
        WindowStanding? tightest = null;
        foreach (var check in windows)
        {
            var times = await Statements.RowsAsync(c, tx, TimesSql(check.Owner), r => r.GetInt64(0), cancellationToken,
                ("Value", check.OwnerId), ("Cutoff", Ms(admission.Now - check.Window.Length)));
            if (AdmissionRules.Measure(check.Window, times, admission.Now, ref tightest) is { } retryAfter)
            {
                full.Add((retryAfter, check.Window));
            }
        }

        if (AdmissionRules.Refusal(full, ws.Credits) is { } limited)
        {
            return limited;
        }

        await Statements.ExecuteAsync(c, tx,
            """
            INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits)
            VALUES (@TurnId, @WorkspaceId, @KeyId, @SessionId, @Now, @Cost)
            """,
            cancellationToken,
            ("TurnId", admission.TurnId), ("WorkspaceId", workspaceId), ("KeyId", admission.KeyId), ("SessionId", admission.SessionId),
            ("Now", Ms(admission.Now)), ("Cost", admission.Cost));
        await Statements.ExecuteAsync(c, tx,
            "INSERT INTO pending_turns (id, workspace_id, credits, admitted_at) VALUES (@TurnId, @WorkspaceId, @Cost, @Now)", cancellationToken,
            ("TurnId", admission.TurnId), ("WorkspaceId", workspaceId), ("Cost", admission.Cost), ("Now", Ms(admission.Now)));
        var remaining = await Statements.ScalarAsync(c, tx,
            "UPDATE workspaces SET credits = credits - @Cost WHERE id = @Id RETURNING credits", cancellationToken,
            ("Cost", admission.Cost), ("Id", workspaceId)) ?? throw new InvalidOperationException($"workspace {workspaceId} vanished under its lock");
        return AdmissionRules.Admitted(admission, ws, remaining, tightest);
    }

    public Task RefundAsync(string turnId, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => RefundPendingAsync(c, tx, "id = @Id", cancellationToken, ("Id", turnId)), cancellationToken);

    public Task<bool> KeepAliveAsync(string turnId, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) => await Statements.ExecuteAsync(c, tx,
            "UPDATE pending_turns SET alive_at = @Now WHERE id = @TurnId", cancellationToken,
            ("Now", Ms(now)), ("TurnId", turnId)) == 1, cancellationToken);

    // pending_turns holds only the turns in flight (and, after a crash, the ones it left): a scan of it is small.
    public Task<int> RefundAbandonedAsync(DateTimeOffset silentSince, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => RefundPendingAsync(c, tx, AbandonedCondition, cancellationToken, ("Cutoff", Ms(silentSince))), cancellationToken);

    internal const string AbandonedCondition = "admitted_at < @Cutoff AND COALESCE(alive_at, admitted_at) < @Cutoff";

    /// <summary>Up to @Batch settled turns admitted before @Before.</summary>
    internal const string SettledBefore =
        """
        SELECT t.id FROM workspaces w CROSS JOIN turns t
        WHERE t.workspace_id = w.id AND t.admitted_at < @Before AND NOT EXISTS (SELECT 1 FROM pending_turns p WHERE p.id = t.id)
        LIMIT @Batch
        """;

    private const string ForgetSettledSql = $"DELETE FROM turns WHERE id IN ({SettledBefore})";

    /// <summary>Settled turns deleted per transaction by <see cref="ForgetSettledAsync(DateTimeOffset, CancellationToken)"/>, so that other writes wait for none of them long.</summary>
    internal const int ForgetBatch = 2000;

    public Task<int> ForgetSettledAsync(DateTimeOffset admittedBefore, CancellationToken cancellationToken) =>
        ForgetSettledAsync(admittedBefore, ForgetBatch, cancellationToken);

    internal async Task<int> ForgetSettledAsync(DateTimeOffset admittedBefore, int batch, CancellationToken cancellationToken)
    {
        // Through each workspace's window index (workspace, admitted_at): no index on the time alone
        // to keep up on every turn for a sweep a minute. CROSS JOIN keeps SQLite's planner to that
        // order (workspaces outside) whatever its statistics say; PostgreSQL plans it as a join.
        var total = 0;
        int deleted;
        do
        {
            deleted = await database.WriteAsync((c, tx) => Statements.ExecuteAsync(c, tx,
                ForgetSettledSql, cancellationToken, ("Before", Ms(admittedBefore)), ("Batch", batch)),
                cancellationToken).ConfigureAwait(false);
            total += deleted;
        }
        while (deleted == batch);

        return total;
    }

    /// <summary>
    /// Deletes the pending turns matching <paramref name="condition"/> (they leave the windows too)
    /// and returns their credits to their workspaces, locking those in id order (as every
    /// transaction that locks several workspaces does, so that none of them can deadlock another).
    /// </summary>
    private static async Task<int> RefundPendingAsync(
        DbConnection c, DbTransaction tx, string condition, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        var turns = await Statements.RowsAsync(c, tx, $"DELETE FROM pending_turns WHERE {condition} RETURNING id, workspace_id, credits",
            r => (Id: r.GetString(0), Workspace: r.GetString(1), Credits: r.GetInt64(2)), cancellationToken, parameters);
        foreach (var turn in turns)
        {
            await Statements.ExecuteAsync(c, tx, "DELETE FROM turns WHERE id = @Id", cancellationToken, ("Id", turn.Id));
        }

        foreach (var refund in turns.GroupBy(t => t.Workspace, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            await Statements.ExecuteAsync(c, tx, "UPDATE workspaces SET credits = credits + @Credits WHERE id = @Id", cancellationToken,
                ("Credits", refund.Sum(t => t.Credits)), ("Id", refund.Key));
        }

        return turns.Count;
    }
}
