using System.Collections.Concurrent;
using System.Data.Common;
using Dapper;
using LuluClaw.Grains;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Cluster;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The storage of both providers: one copy of each query over a <see cref="DbDataSource"/>, with
/// the few differences in <see cref="SqlDialect"/>. Every multi-row invariant is one transaction.
/// </summary>
public sealed class SqlStore(DbDataSource dataSource, SqlDialect dialect, string? nodeId = null)
    : ITenantStore, ITurnLedger, IConversationStore, IRequestCounter, IAsyncDisposable
{
    private readonly ConcurrentDictionary<Guid, WorkspaceAdmissions> _admissions = new();

    // The admission's first statement, made once: the dialect decides its locking clause.
    private readonly string _admissionSql = $"""
        SELECT w.plan, w.credits, k.id AS key_id, k.plan AS key_plan, k.revoked_at,
            (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.workspace_id = w.id AND m.session_id = @SessionId) AS last_seq,
            (SELECT b.version FROM bots b WHERE b.id = @BotId AND b.workspace_id = w.id) AS bot_version
        FROM workspaces w LEFT JOIN api_keys k ON k.id = @KeyId AND k.workspace_id = w.id
        WHERE w.id = @Id{dialect.ForUpdateOf("w")}
        """;
    private GroupCommitWriter? _groupCommit;

    static SqlStore() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    /// <summary>The provider's dialect.</summary>
    public SqlDialect Dialect => dialect;

    /// <summary>This process's name in <c>cluster_changes</c>: its own changes it has applied already.</summary>
    public string NodeId { get; } = nodeId ?? Guid.NewGuid().ToString("N")[..12];

    /// <summary>Finishes the writes queued for the next group commit, then closes the writer.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_groupCommit is not null)
        {
            await _groupCommit.DisposeAsync().ConfigureAwait(false);
        }
    }

    // ---- connections and transactions ----

    /// <summary>A connection to read with.</summary>
    internal ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) => dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>A connection to write with, set up as the dialect wants its writers.</summary>
    internal async Task<DbConnection> OpenWriterAsync(CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await dialect.PrepareWriterAsync(connection, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await work(connection).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction and returns once it is committed: its own
    /// transaction (PostgreSQL), or a place in the next group commit (SQLite, one writer), where
    /// <paramref name="answerBeforeCommit"/> answers as soon as it ran (see <see cref="GroupCommitWriter"/>).
    /// </summary>
    private Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, bool answerBeforeCommit = false) =>
        dialect.GroupCommits
            ? (_groupCommit ?? GroupCommit()).WriteAsync(work, cancellationToken, answerBeforeCommit)
            : WriteAloneAsync(work, cancellationToken, answerBeforeCommit);

    /// <summary>The group-commit writer, made on the first write; after that, finding it allocates nothing (a lambda per write was 0.8% of the bytes a turn allocates).</summary>
    private GroupCommitWriter GroupCommit() =>
        LazyInitializer.EnsureInitialized(ref _groupCommit, () => new GroupCommitWriter(OpenWriterAsync, dialect.OpenCommitFlush));

    /// <summary>
    /// One write in its own transaction. With <paramref name="answerBeforeCommit"/> its commit returns
    /// without waiting for its flush where the dialect allows it (<see cref="SqlDialect.EarlyCommitSql"/>):
    /// its locks go at once instead of after an fsync, and a later durable commit on the same
    /// database makes it durable too, since the log is flushed in order.
    /// </summary>
    private async Task<T> WriteAloneAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, bool answerBeforeCommit = false)
    {
        await using var connection = await OpenWriterAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (answerBeforeCommit && dialect.EarlyCommitSql is { } early)
        {
            await Statements.ExecuteAsync(connection, transaction, early, cancellationToken).ConfigureAwait(false);
        }

        var result = await work(connection, transaction).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static CommandDefinition Command(string sql, object? parameters, DbTransaction? transaction, CancellationToken cancellationToken) =>
        new(sql, parameters, transaction, cancellationToken: cancellationToken);

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    /// <summary>
    /// Inside a write: records a change other nodes must see, announced when the transaction commits
    /// and never if it rolls back. Nothing where one process owns the database (SQLite).
    /// </summary>
    private Task RecordChangeAsync(DbConnection c, DbTransaction tx, string kind, string subject, CancellationToken cancellationToken)
    {
        if (dialect.NotifySql is not { } notify)
        {
            return Task.CompletedTask;
        }

        var change = ClusterChange.New(NodeId, kind, subject);
        return c.ExecuteAsync(Command(
            $"INSERT INTO cluster_changes (id, node, kind, subject, at) VALUES (@Id, @Node, @Kind, @Subject, @At); {notify}",
            new { change.Id, change.Node, change.Kind, change.Subject, change.At, ClusterChange.Channel, Payload = change.ToPayload() },
            tx, cancellationToken));
    }

    /// <summary>The changes recorded since <paramref name="since"/> (Unix ms), oldest first.</summary>
    internal Task<IReadOnlyList<ClusterChange>> ChangesSinceAsync(long since, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ClusterChange>>(async c => (await c.QueryAsync<ClusterChange>(Command(
            "SELECT id, node, kind, subject, at FROM cluster_changes WHERE at > @Since ORDER BY at", new { Since = since }, null, cancellationToken)))
            .ToArray(), cancellationToken);

    /// <summary>Deletes the changes older than <paramref name="before"/> (Unix ms).</summary>
    internal Task PruneChangesAsync(long before, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => c.ExecuteAsync(Command("DELETE FROM cluster_changes WHERE at < @Before", new { Before = before }, tx, cancellationToken)),
            cancellationToken);

    // ---- tenants ----

    public Task<bool> AnyWorkspaceAsync(CancellationToken cancellationToken) =>
        ReadAsync(async c => await c.ExecuteScalarAsync<long>(Command("SELECT COUNT(*) FROM workspaces", null, null, cancellationToken)) > 0, cancellationToken);

    public async Task CreateWorkspaceAsync(WorkspaceRecord workspace, BotRecord primaryBot, CancellationToken cancellationToken)
    {
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                await c.ExecuteAsync(Command(
                    """
                    INSERT INTO workspaces (id, name, plan, credits, primary_bot_id, version, created_at, updated_at)
                    VALUES (@Id, @Name, @Plan, @Credits, @PrimaryBotId, @Version, @CreatedAt, @UpdatedAt)
                    """,
                    new
                    {
                        Id = workspace.Id.ToString("D"), workspace.Name, workspace.Plan, workspace.Credits, workspace.PrimaryBotId,
                        workspace.Version, CreatedAt = Ms(workspace.CreatedAt), UpdatedAt = Ms(workspace.UpdatedAt),
                    }, tx, cancellationToken));
                await InsertBotAsync(c, tx, primaryBot, cancellationToken);
                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (dialect.IsUniqueViolation(e))
        {
            throw new DuplicateException($"workspace {workspace.Id} exists already");
        }
    }

    private static Task InsertBotAsync(DbConnection c, DbTransaction tx, BotRecord bot, CancellationToken cancellationToken) =>
        c.ExecuteAsync(Command(
            """
            INSERT INTO bots (id, workspace_id, name, system_prompt, model, channels, version, restart_count, created_at, updated_at, last_restarted_at)
            VALUES (@Id, @WorkspaceId, @Name, @SystemPrompt, @Model, @Channels, @Version, @RestartCount, @CreatedAt, @UpdatedAt, @LastRestartedAt)
            """,
            BotParameters(bot), tx, cancellationToken));

    private static object BotParameters(BotRecord bot) => new
    {
        bot.Id, WorkspaceId = bot.WorkspaceId.ToString("D"), bot.Name, bot.SystemPrompt, bot.Model, Channels = string.Join(' ', bot.Channels),
        bot.Version, bot.RestartCount, CreatedAt = Ms(bot.CreatedAt), UpdatedAt = Ms(bot.UpdatedAt),
        LastRestartedAt = bot.LastRestartedAt is { } r ? Ms(r) : (long?)null,
    };

    private const string WorkspaceColumns = "id, name, plan, credits, primary_bot_id, version, created_at, updated_at";

    public Task<WorkspaceRecord?> GetWorkspaceAsync(Guid id, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<WorkspaceRow>(Command(
            $"SELECT {WorkspaceColumns} FROM workspaces WHERE id = @Id", new { Id = id.ToString("D") }, null, cancellationToken)))?.ToRecord(),
            cancellationToken);

    public async Task<WorkspaceRecord> UpdateWorkspaceAsync(WorkspaceRecord workspace, long expectedVersion, CancellationToken cancellationToken)
    {
        var row = await WriteAsync((c, tx) => c.QuerySingleOrDefaultAsync<WorkspaceRow>(Command(
            $"""
            UPDATE workspaces SET name = @Name, plan = @Plan, updated_at = @UpdatedAt, version = version + 1
            WHERE id = @Id AND version = @ExpectedVersion
            RETURNING {WorkspaceColumns}
            """,
            new { Id = workspace.Id.ToString("D"), workspace.Name, workspace.Plan, UpdatedAt = Ms(workspace.UpdatedAt), ExpectedVersion = expectedVersion },
            tx, cancellationToken)), cancellationToken).ConfigureAwait(false);
        return row?.ToRecord() ?? throw new StaleStateException($"workspace {workspace.Id} is no longer at version {expectedVersion}");
    }

    public Task<long?> AddCreditsAsync(Guid id, long amount, DateTimeOffset now, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => c.QuerySingleOrDefaultAsync<long?>(Command(
            "UPDATE workspaces SET credits = credits + @Amount, updated_at = @Now WHERE id = @Id RETURNING credits",
            new { Id = id.ToString("D"), Amount = amount, Now = Ms(now) }, tx, cancellationToken)), cancellationToken);

    private const string BotColumns =
        "id, workspace_id, name, system_prompt, model, channels, version, restart_count, created_at, updated_at, last_restarted_at";

    public Task<BotRecord?> GetBotAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<BotRow>(Command(
            $"SELECT {BotColumns} FROM bots WHERE id = @Id", new { Id = id }, null, cancellationToken)))?.ToRecord(), cancellationToken);

    public Task<IReadOnlyList<string>> ListBotIdsAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<string>>(async c => (await c.QueryAsync<string>(Command(
            "SELECT id FROM bots WHERE workspace_id = @WorkspaceId ORDER BY created_at, id",
            new { WorkspaceId = workspaceId.ToString("D") }, null, cancellationToken))).ToArray(), cancellationToken);

    public async Task InsertBotAsync(BotRecord bot, CancellationToken cancellationToken)
    {
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                await InsertBotAsync(c, tx, bot, cancellationToken);
                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (dialect.IsUniqueViolation(e))
        {
            throw new DuplicateException($"bot {bot.Id} exists already");
        }
    }

    public async Task<BotRecord> UpdateBotAsync(BotRecord bot, long expectedVersion, CancellationToken cancellationToken)
    {
        var parameters = new DynamicParameters(BotParameters(bot));
        parameters.Add("ExpectedVersion", expectedVersion);
        var row = await WriteAsync(async (c, tx) =>
        {
            var updated = await c.QuerySingleOrDefaultAsync<BotRow>(Command(
                $"""
                UPDATE bots SET name = @Name, system_prompt = @SystemPrompt, model = @Model, channels = @Channels,
                    restart_count = @RestartCount, updated_at = @UpdatedAt, last_restarted_at = @LastRestartedAt, version = version + 1
                WHERE id = @Id AND version = @ExpectedVersion
                RETURNING {BotColumns}
                """,
                parameters, tx, cancellationToken));
            return updated;
        }, cancellationToken).ConfigureAwait(false);
        return row?.ToRecord() ?? throw new StaleStateException($"bot {bot.Id} is no longer at version {expectedVersion}");
    }

    public Task<bool> DeleteBotAsync(Guid workspaceId, string botId, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var parameters = new { WorkspaceId = workspaceId.ToString("D"), Id = botId };
            if (await c.ExecuteAsync(Command("DELETE FROM bots WHERE id = @Id AND workspace_id = @WorkspaceId", parameters, tx, cancellationToken)) != 1)
            {
                return false;
            }

            // The primary bot answers chat that names no bot: hand the role to the oldest bot left ('' when none is).
            await c.ExecuteAsync(Command(
                """
                UPDATE workspaces SET primary_bot_id = COALESCE(
                    (SELECT id FROM bots WHERE workspace_id = @WorkspaceId ORDER BY created_at, id LIMIT 1), '')
                WHERE id = @WorkspaceId AND primary_bot_id = @Id
                """, parameters, tx, cancellationToken));
            return true;
        }, cancellationToken);

    public Task PutProviderKeyAsync(ProviderKeyRecord key, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var workspaceId = key.WorkspaceId.ToString("D");
            await c.ExecuteAsync(Command(
                """
                INSERT INTO provider_keys (workspace_id, provider, ciphertext, hint, updated_at)
                VALUES (@WorkspaceId, @Provider, @Ciphertext, @Hint, @UpdatedAt)
                ON CONFLICT (workspace_id, provider) DO UPDATE
                SET ciphertext = excluded.ciphertext, hint = excluded.hint, updated_at = excluded.updated_at
                """,
                new { WorkspaceId = workspaceId, key.Provider, key.Ciphertext, key.Hint, UpdatedAt = Ms(key.UpdatedAt) },
                tx, cancellationToken));
            await RecordChangeAsync(c, tx, ClusterChange.ProviderKeys, workspaceId, cancellationToken);
            return 0;
        }, cancellationToken);

    public Task<ProviderKeyRecord?> GetProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<ProviderKeyRow>(Command(
            "SELECT workspace_id, provider, ciphertext, hint, updated_at FROM provider_keys WHERE workspace_id = @WorkspaceId AND provider = @Provider",
            new { WorkspaceId = workspaceId.ToString("D"), Provider = provider }, null, cancellationToken)))?.ToRecord(), cancellationToken);

    public Task<IReadOnlyList<ProviderKeyRecord>> ListProviderKeysAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ProviderKeyRecord>>(async c => (await c.QueryAsync<ProviderKeyRow>(Command(
            "SELECT workspace_id, provider, ciphertext, hint, updated_at FROM provider_keys WHERE workspace_id = @WorkspaceId ORDER BY provider",
            new { WorkspaceId = workspaceId.ToString("D") }, null, cancellationToken))).Select(k => k.ToRecord()).ToArray(), cancellationToken);

    public Task<bool> DeleteProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            if (await c.ExecuteAsync(Command(
                "DELETE FROM provider_keys WHERE workspace_id = @WorkspaceId AND provider = @Provider",
                new { WorkspaceId = workspaceId.ToString("D"), Provider = provider }, tx, cancellationToken)) != 1)
            {
                return false;
            }

            await RecordChangeAsync(c, tx, ClusterChange.ProviderKeys, workspaceId.ToString("D"), cancellationToken);
            return true;
        }, cancellationToken);

    // ---- the Data Protection key ring ----

    /// <summary>Every stored Data Protection key element, as XML.</summary>
    internal Task<IReadOnlyList<string>> GetDataProtectionKeysAsync(CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<string>>(async c => (await c.QueryAsync<string>(Command(
            "SELECT xml FROM data_protection_keys ORDER BY created_at, name", null, null, cancellationToken))).ToArray(), cancellationToken);

    /// <summary>Stores a Data Protection key element; a second store of the same name keeps the first.</summary>
    internal Task StoreDataProtectionKeyAsync(string name, string xml, DateTimeOffset now, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => c.ExecuteAsync(Command(
            "INSERT INTO data_protection_keys (name, xml, created_at) VALUES (@Name, @Xml, @Now) ON CONFLICT (name) DO NOTHING",
            new { Name = name, Xml = xml, Now = Ms(now) }, tx, cancellationToken)), cancellationToken);

    public Task InsertApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => c.ExecuteAsync(Command(
            """
            INSERT INTO api_keys (id, workspace_id, key_hash, prefix, scopes, plan, created_at, revoked_at)
            VALUES (@Id, @WorkspaceId, @KeyHash, @Prefix, @Scopes, @Plan, @CreatedAt, NULL)
            """,
            new
            {
                key.Id, WorkspaceId = key.WorkspaceId.ToString("D"), key.KeyHash, key.Prefix, Scopes = string.Join(' ', key.Scopes),
                key.Plan, CreatedAt = Ms(key.CreatedAt),
            }, tx, cancellationToken)), cancellationToken);

    public Task<ApiKeyRecord?> FindApiKeyByHashAsync(string keyHash, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<ApiKeyRow>(Command(
            "SELECT id, workspace_id, key_hash, prefix, scopes, plan, created_at, revoked_at FROM api_keys WHERE key_hash = @KeyHash",
            new { KeyHash = keyHash }, null, cancellationToken)))?.ToRecord(), cancellationToken);

    public Task<string?> RevokeApiKeyAsync(Guid workspaceId, string keyId, DateTimeOffset now, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var hash = await c.QuerySingleOrDefaultAsync<string?>(Command(
                "UPDATE api_keys SET revoked_at = @Now WHERE id = @Id AND workspace_id = @WorkspaceId AND revoked_at IS NULL RETURNING key_hash",
                new { Id = keyId, WorkspaceId = workspaceId.ToString("D"), Now = Ms(now) }, tx, cancellationToken));
            return hash;
        }, cancellationToken);

    // ---- the turn ledger ----

    public Task<AdmissionResult> TryAdmitAsync(TurnAdmission admission, CancellationToken cancellationToken) =>
        dialect.GroupCommits
            ? WriteAsync((c, tx) => AdmitAsync(c, tx, admission, cancellationToken), cancellationToken, answerBeforeCommit: true) // the turn's commit checks the pending row before anything is acknowledged
            : AdmitQueuedAsync(admission, cancellationToken);

    /// <summary>How many workspaces have admissions queued on this node (PostgreSQL); none once every admission is answered.</summary>
    internal int QueuedWorkspaces => _admissions.Count;

    /// <summary>Queues the admission with its workspace's others on this node (see <see cref="WorkspaceAdmissions"/>).</summary>
    private Task<AdmissionResult> AdmitQueuedAsync(TurnAdmission admission, CancellationToken cancellationToken)
    {
        while (true)
        {
            var queue = _admissions.GetOrAdd(admission.WorkspaceId, static (id, store) => new WorkspaceAdmissions(store, id), this);
            if (queue.TryAdmit(admission, cancellationToken) is { } answer)
            {
                return answer;
            }
        }
    }

    /// <summary>One admission inside a write transaction (see <see cref="ITurnLedger.TryAdmitAsync"/>).</summary>
    private async Task<AdmissionResult> AdmitAsync(DbConnection c, DbTransaction tx, TurnAdmission admission, CancellationToken cancellationToken)
    {
        var workspaceId = admission.WorkspaceId.ToString("D");

        // :: Step 1: lock the workspace row; every admission of this workspace (and so of each of
        // its keys), on any node, queues here. The same read brings the key's row (it must still be
        // live here, whatever another node's cache believes), where the session's thread stands, and
        // the version of the bot that is to answer.
        var ws = await Statements.RowAsync(c, tx, _admissionSql, AdmissionRow.Read, cancellationToken,
            ("SessionId", admission.SessionId), ("BotId", admission.BotId), ("KeyId", admission.KeyId), ("Id", workspaceId));
        if (ws is null)
        {
            return new AdmissionResult(AdmissionStatus.NotFound, 0, 0);
        }

        // :: Step 2: the key's plan decides its windows.
        IReadOnlyList<RateWindow> keyWindows = [];
        if (admission.KeyId is not null)
        {
            if (ws.KeyId is null || ws.RevokedAt is not null)
            {
                return new AdmissionResult(AdmissionStatus.KeyRevoked, 0, ws.Credits);
            }

            keyWindows = admission.KeyWindows(ws.KeyPlan);
        }

        // :: Step 3: credits first: an empty balance is the condition waiting will not fix.
        if (ws.Credits < admission.Cost)
        {
            return new AdmissionResult(AdmissionStatus.InsufficientCredits, 0, ws.Credits);
        }

        // :: Step 4: the rolling windows, counted from the rows themselves: the key's plan, then the
        // workspace's hour. If several are full, the client waits for the one that frees up last.
        var refusals = new List<(TimeSpan RetryAfter, string Description)>();
        foreach (var window in keyWindows)
        {
            if (await FullWindowAsync(c, tx, WindowOf.Key, admission.KeyId!, window, admission.Now, cancellationToken) is { } retryAfter)
            {
                refusals.Add((retryAfter, window.Description));
            }
        }

        if (admission.TurnsPerHour(ws.Plan) is { } limit)
        {
            var window = new RateWindow(TimeSpan.FromHours(1), limit, $"rolling-hour turn limit of the workspace's plan '{ws.Plan}' ({limit} turns)");
            if (await FullWindowAsync(c, tx, WindowOf.Workspace, workspaceId, window, admission.Now, cancellationToken) is { } retryAfter)
            {
                refusals.Add((retryAfter, window.Description));
            }
        }

        if (refusals.Count > 0)
        {
            var longest = refusals.MaxBy(r => r.RetryAfter);
            return new AdmissionResult(AdmissionStatus.RateLimited, 0, ws.Credits, longest.RetryAfter, $"{longest.Description} reached");
        }

        // :: Step 5: count the turn and debit it, in the same transaction.
        await Statements.ExecuteAsync(c, tx,
            """
            INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits, status)
            VALUES (@TurnId, @WorkspaceId, @KeyId, @SessionId, @Now, @Cost, 'pending')
            """,
            cancellationToken,
            ("TurnId", admission.TurnId), ("WorkspaceId", workspaceId), ("KeyId", admission.KeyId), ("SessionId", admission.SessionId),
            ("Now", Ms(admission.Now)), ("Cost", admission.Cost));
        var remaining = await Statements.ScalarAsync(c, tx,
            "UPDATE workspaces SET credits = credits - @Cost WHERE id = @Id RETURNING credits", cancellationToken,
            ("Cost", admission.Cost), ("Id", workspaceId)) ?? throw new InvalidOperationException($"workspace {workspaceId} vanished under its lock");

        // The thread's last sequence number, read under the lock: an activation whose copy is behind (another node wrote it) catches up first.
        return new AdmissionResult(AdmissionStatus.Admitted, admission.Cost, remaining, SessionLastSeq: ws.LastSeq, BotVersion: ws.BotVersion);
    }

    /// <summary>
    /// Null if <paramref name="window"/> has room for one more turn of the rows where
    /// <paramref name="of"/>'s column = <paramref name="value"/>; otherwise how long until it has: until
    /// enough of the turns it counts have aged out of it.
    /// </summary>
    private static async Task<TimeSpan?> FullWindowAsync(
        DbConnection c, DbTransaction tx, WindowOf of, string value, RateWindow window, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var cutoff = Ms(now - window.Length);
        var count = await Statements.ScalarAsync(c, tx, of.CountSql, cancellationToken, ("Value", value), ("Cutoff", cutoff)) ?? 0;
        if (count < window.Limit)
        {
            return null;
        }

        // The turn that must leave for the count to drop below the limit is the (count - limit + 1)-th oldest.
        var freedBy = await Statements.ScalarAsync(c, tx, of.FreedBySql, cancellationToken,
            ("Value", value), ("Cutoff", cutoff), ("Skip", count - window.Limit));
        return freedBy is { } t ? Time(t) + window.Length - now : window.Length;
    }

    /// <summary>Whose turns a rolling window counts (a key's or a workspace's), and its two queries, made once.</summary>
    private sealed class WindowOf(string column)
    {
        public static readonly WindowOf Key = new("key_id");
        public static readonly WindowOf Workspace = new("workspace_id");

        public string CountSql { get; } = $"SELECT COUNT(*) FROM turns WHERE {column} = @Value AND admitted_at > @Cutoff";

        public string FreedBySql { get; } =
            $"SELECT admitted_at FROM turns WHERE {column} = @Value AND admitted_at > @Cutoff ORDER BY admitted_at LIMIT 1 OFFSET @Skip";
    }

    public Task RefundAsync(string turnId, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => RefundPendingAsync(c, tx, "id = @Id", new { Id = turnId }, cancellationToken), cancellationToken);

    public Task<bool> KeepAliveAsync(string turnId, DateTimeOffset now, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) => await Statements.ExecuteAsync(c, tx,
            "UPDATE turns SET alive_at = @Now WHERE id = @TurnId AND status = 'pending'", cancellationToken,
            ("Now", Ms(now)), ("TurnId", turnId)) == 1, cancellationToken);

    // A turn's keep-alive is never before its admission, so "admitted before the cutoff" is implied;
    // written out, it lets the database range over the index of pending turns instead of the table.
    public Task<int> RefundAbandonedAsync(DateTimeOffset silentSince, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => RefundPendingAsync(c, tx, AbandonedCondition, new { Cutoff = Ms(silentSince) }, cancellationToken),
            cancellationToken);

    internal const string AbandonedCondition = "admitted_at < @Cutoff AND COALESCE(alive_at, admitted_at) < @Cutoff";

    /// <summary>Up to @Batch settled turns admitted before @Before.</summary>
    internal const string SettledBefore =
        "SELECT t.id FROM workspaces w CROSS JOIN turns t WHERE t.workspace_id = w.id AND t.admitted_at < @Before AND t.status = 'done' LIMIT @Batch";

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
            deleted = await WriteAsync((c, tx) => Statements.ExecuteAsync(c, tx,
                ForgetSettledSql, cancellationToken, ("Before", Ms(admittedBefore)), ("Batch", batch)),
                cancellationToken).ConfigureAwait(false);
            total += deleted;
        }
        while (deleted == batch);

        return total;
    }

    /// <summary>Deletes the pending turns matching <paramref name="condition"/> and returns their credits to their workspaces.</summary>
    private static async Task<int> RefundPendingAsync(
        DbConnection c, DbTransaction tx, string condition, object parameters, CancellationToken cancellationToken)
    {
        var turns = (await c.QueryAsync<RefundRow>(Command(
            $"DELETE FROM turns WHERE status = 'pending' AND {condition} RETURNING workspace_id, credits",
            parameters, tx, cancellationToken))).ToArray();
        foreach (var t in turns)
        {
            await c.ExecuteAsync(Command(
                "UPDATE workspaces SET credits = credits + @Credits WHERE id = @Id", new { Id = t.WorkspaceId, t.Credits }, tx, cancellationToken));
        }

        return turns.Length;
    }

    // ---- conversations ----

    public Task<SessionRecord?> GetSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<SessionRow>(Command(
            """
            SELECT workspace_id, session_id, bot_id, channel, created_at, last_activity FROM sessions
            WHERE workspace_id = @WorkspaceId AND session_id = @SessionId
            """,
            new { WorkspaceId = workspaceId.ToString("D"), SessionId = sessionId }, null, cancellationToken)))?.ToRecord(),
            cancellationToken);

    public Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<SessionMessage>>(async c => (await c.QueryAsync<MessageRow>(Command(
            """
            SELECT seq, role, content, created_at, cut_short FROM messages
            WHERE workspace_id = @WorkspaceId AND session_id = @SessionId ORDER BY seq
            """,
            new { WorkspaceId = workspaceId.ToString("D"), SessionId = sessionId }, null, cancellationToken)))
            .Select(m => new SessionMessage(m.Seq, m.Role, m.Content, Time(m.CreatedAt), m.CutShort != 0)).ToArray(), cancellationToken);

    public async Task CommitTurnAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var workspaceId = turn.WorkspaceId.ToString("D");
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                // :: Step 1: settle the admission; a turn refunded meanwhile must not leave messages behind.
                var settled = await Statements.ExecuteAsync(c, tx,
                    "UPDATE turns SET status = 'done' WHERE id = @TurnId AND status = 'pending'", cancellationToken, ("TurnId", turn.TurnId));
                if (settled != 1)
                {
                    throw new StaleStateException($"turn {turn.TurnId} is no longer pending");
                }

                // :: Step 2: the session row, created by its first turn.
                var at = Ms(now);
                var count = (long)turn.Messages.Count;
                _ = turn.NewSession
                    ? await Statements.ExecuteAsync(c, tx,
                        """
                        INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
                        VALUES (@WorkspaceId, @SessionId, @BotId, @Channel, @Now, @Now, @Count)
                        """,
                        cancellationToken,
                        ("WorkspaceId", workspaceId), ("SessionId", turn.SessionId), ("BotId", turn.BotId), ("Channel", turn.Channel),
                        ("Now", at), ("Count", count))
                    : await Statements.ExecuteAsync(c, tx,
                        """
                        UPDATE sessions SET last_activity = @Now, message_count = message_count + @Count
                        WHERE workspace_id = @WorkspaceId AND session_id = @SessionId
                        """,
                        cancellationToken, ("Now", at), ("Count", count), ("WorkspaceId", workspaceId), ("SessionId", turn.SessionId));

                // :: Step 3: append the messages in one statement; (workspace, session, seq) is unique, so a lost race fails the whole turn.
                if (turn.Messages.Count > 0)
                {
                    var (sql, names) = MessageInsert(turn.Messages.Count);
                    var parameters = new (string, object?)[3 + MessageColumns * turn.Messages.Count];
                    (parameters[0], parameters[1], parameters[2]) = (("WorkspaceId", workspaceId), ("SessionId", turn.SessionId), ("TurnId", turn.TurnId));
                    for (var i = 0; i < turn.Messages.Count; i++)
                    {
                        var (m, name, k) = (turn.Messages[i], names[i], 3 + MessageColumns * i);
                        parameters[k] = (name[0], m.Seq);
                        parameters[k + 1] = (name[1], m.Role);
                        parameters[k + 2] = (name[2], m.Content);
                        parameters[k + 3] = (name[3], Ms(m.CreatedAt));
                        parameters[k + 4] = (name[4], m.CutShort ? 1 : 0);
                    }

                    await Statements.ExecuteAsync(c, tx, sql, cancellationToken, parameters);
                }

                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (dialect.IsUniqueViolation(e))
        {
            throw new StaleStateException($"session {turn.SessionId} was written by someone else: {e.Message}");
        }
    }

    private const int MessageColumns = 5;
    private static readonly ConcurrentDictionary<int, (string Sql, string[][] Names)> MessageInserts = new();

    /// <summary>
    /// The INSERT of <paramref name="count"/> messages in one statement, and the names of each
    /// message's parameters (Seq0, Role0, Content0, CreatedAt0, CutShort0, then Seq1…): made once
    /// per count instead of on every turn.
    /// </summary>
    private static (string Sql, string[][] Names) MessageInsert(int count) => MessageInserts.GetOrAdd(count, static n =>
    {
        var names = Enumerable.Range(0, n).Select(i => new[] { $"Seq{i}", $"Role{i}", $"Content{i}", $"CreatedAt{i}", $"CutShort{i}" }).ToArray();
        var rows = names.Select(p => $"(@WorkspaceId, @SessionId, @{p[0]}, @{p[1]}, @{p[2]}, @{p[3]}, @TurnId, @{p[4]})");
        return ($"INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id, cut_short) VALUES {string.Join(", ", rows)}", names);
    });

    public Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<SessionSummary>>(async c => (await c.QueryAsync<SessionListRow>(Command(
            """
            SELECT session_id, bot_id, channel, created_at, last_activity, message_count FROM sessions
            WHERE workspace_id = @WorkspaceId ORDER BY last_activity DESC, session_id
            """,
            new { WorkspaceId = workspaceId.ToString("D") }, null, cancellationToken)))
            .Select(r => new SessionSummary(r.SessionId, r.BotId, r.Channel, Time(r.CreatedAt), Time(r.LastActivity), r.MessageCount)).ToArray(),
            cancellationToken);

    public Task<bool> DeleteSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var parameters = new { WorkspaceId = workspaceId.ToString("D"), SessionId = sessionId };
            await c.ExecuteAsync(Command("DELETE FROM messages WHERE workspace_id = @WorkspaceId AND session_id = @SessionId", parameters, tx, cancellationToken));
            if (await c.ExecuteAsync(Command(
                "DELETE FROM sessions WHERE workspace_id = @WorkspaceId AND session_id = @SessionId", parameters, tx, cancellationToken)) != 1)
            {
                return false;
            }

            return true;
        }, cancellationToken);

    // ---- request counters ----

    public Task<long> CountAsync(string keyId, string bucket, DateTimeOffset windowStart, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var start = Ms(windowStart);
            await Statements.ExecuteAsync(c, tx,
                "DELETE FROM request_counts WHERE key_id = @KeyId AND bucket = @Bucket AND window_start < @WindowStart", cancellationToken,
                ("KeyId", keyId), ("Bucket", bucket), ("WindowStart", start));
            return await Statements.ScalarAsync(c, tx,
                """
                INSERT INTO request_counts (key_id, bucket, window_start, count) VALUES (@KeyId, @Bucket, @WindowStart, 1)
                ON CONFLICT (key_id, bucket, window_start) DO UPDATE SET count = request_counts.count + 1
                RETURNING count
                """, cancellationToken, ("KeyId", keyId), ("Bucket", bucket), ("WindowStart", start)) ?? 0;
        }, cancellationToken);

    // ---- rows as the database returns them ----

    private sealed class SessionListRow
    {
        public string SessionId { get; init; } = "";
        public string BotId { get; init; } = "";
        public string Channel { get; init; } = "";
        public long CreatedAt { get; init; }
        public long LastActivity { get; init; }
        public long MessageCount { get; init; }
    }


    private sealed class WorkspaceRow
    {
        public string Id { get; init; } = "";
        public string Name { get; init; } = "";
        public string Plan { get; init; } = "";
        public long Credits { get; init; }
        public string PrimaryBotId { get; init; } = "";
        public long Version { get; init; }
        public long CreatedAt { get; init; }
        public long UpdatedAt { get; init; }

        public WorkspaceRecord ToRecord() => new(Guid.Parse(Id), Name, Plan, Credits, PrimaryBotId, Version, Time(CreatedAt), Time(UpdatedAt));
    }

    private sealed class BotRow
    {
        public string Id { get; init; } = "";
        public string WorkspaceId { get; init; } = "";
        public string Name { get; init; } = "";
        public string SystemPrompt { get; init; } = "";
        public string Model { get; init; } = "";
        public string Channels { get; init; } = "";
        public long Version { get; init; }
        public long RestartCount { get; init; }
        public long CreatedAt { get; init; }
        public long UpdatedAt { get; init; }
        public long? LastRestartedAt { get; init; }

        public BotRecord ToRecord() => new(
            Id, Guid.Parse(WorkspaceId), Name, SystemPrompt, Model, Channels.Split(' ', StringSplitOptions.RemoveEmptyEntries), Version, RestartCount,
            Time(CreatedAt), Time(UpdatedAt), LastRestartedAt is { } r ? Time(r) : null);
    }

    private sealed class ProviderKeyRow
    {
        public string WorkspaceId { get; init; } = "";
        public string Provider { get; init; } = "";
        public string Ciphertext { get; init; } = "";
        public string Hint { get; init; } = "";
        public long UpdatedAt { get; init; }

        public ProviderKeyRecord ToRecord() => new(Guid.Parse(WorkspaceId), Provider, Ciphertext, Hint, Time(UpdatedAt));
    }

    private sealed class ApiKeyRow
    {
        public string Id { get; init; } = "";
        public string WorkspaceId { get; init; } = "";
        public string KeyHash { get; init; } = "";
        public string Prefix { get; init; } = "";
        public string Scopes { get; init; } = "";
        public string? Plan { get; init; }
        public long CreatedAt { get; init; }
        public long? RevokedAt { get; init; }

        public ApiKeyRecord ToRecord() => new(
            Id, Guid.Parse(WorkspaceId), KeyHash, Prefix, Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), Plan, Time(CreatedAt),
            RevokedAt is { } r ? Time(r) : null);
    }

    private sealed class SessionRow
    {
        public string WorkspaceId { get; init; } = "";
        public string SessionId { get; init; } = "";
        public string BotId { get; init; } = "";
        public string Channel { get; init; } = "";
        public long CreatedAt { get; init; }
        public long LastActivity { get; init; }

        public SessionRecord ToRecord() => new(Guid.Parse(WorkspaceId), SessionId, BotId, Channel, Time(CreatedAt), Time(LastActivity));
    }

    private sealed class AdmissionRow
    {
        /// <summary>The row of the admission query, by column position.</summary>
        public static AdmissionRow Read(IRow r) => new()
        {
            Plan = r.GetString(0),
            Credits = r.GetInt64(1),
            KeyId = r.IsNull(2) ? null : r.GetString(2),
            KeyPlan = r.IsNull(3) ? null : r.GetString(3),
            RevokedAt = r.IsNull(4) ? null : r.GetInt64(4),
            LastSeq = r.GetInt64(5),
            BotVersion = r.IsNull(6) ? 0 : r.GetInt64(6),
        };

        public string Plan { get; init; } = "";
        public long Credits { get; init; }
        public string? KeyId { get; init; }
        public string? KeyPlan { get; init; }
        public long? RevokedAt { get; init; }
        public long LastSeq { get; init; }
        public long BotVersion { get; init; }
    }

    private sealed class RefundRow
    {
        public string WorkspaceId { get; init; } = "";
        public long Credits { get; init; }
    }

    private sealed class MessageRow
    {
        public long CutShort { get; init; }
        public long Seq { get; init; }
        public string Role { get; init; } = "";
        public string Content { get; init; } = "";
        public long CreatedAt { get; init; }
    }

    /// <summary>
    /// A workspace's admissions on this node, where each write is its own transaction (PostgreSQL):
    /// one transaction at a time per workspace, admitting every turn that waits for it, in arrival
    /// order, under one lock of the workspace row.
    /// </summary>
    /// <remarks>
    /// Every admission locks its workspace's row. Run one transaction each, a busy workspace's
    /// admissions queue in PostgreSQL for that lock, one backend each (at 512 clients some waited
    /// past the statement timeout); here they queue in memory instead, and each node sends one
    /// transaction per workspace at a time, holding the lock once for the whole batch. A transaction
    /// locks one workspace row only, so batches of different workspaces or nodes cannot deadlock.
    /// Each admission sees the ones before it in its batch, as if they had run one after another; the
    /// answers come after the batch's commit (which does not wait for its flush: see
    /// <see cref="SqlDialect.EarlyCommitSql"/>). If the transaction fails, every admission of the batch
    /// gets its error. A queue that runs dry leaves the store's map, so that a workspace with no
    /// turn waiting costs this node nothing; a turn that finds it leaving asks the map again.
    /// </remarks>
    private sealed class WorkspaceAdmissions(SqlStore store, Guid workspaceId)
    {
        private const int MaxBatch = 256;

        private readonly object _gate = new();
        private readonly Queue<Waiting> _waiting = new();
        private bool _running;
        private bool _gone;

        /// <summary>The admission's answer, or null if this queue has run dry and left the map (ask the map again).</summary>
        public Task<AdmissionResult>? TryAdmit(TurnAdmission admission, CancellationToken cancellationToken)
        {
            var waiting = new Waiting(admission, new TaskCompletionSource<AdmissionResult>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
            lock (_gate)
            {
                if (_gone)
                {
                    return null;
                }

                _waiting.Enqueue(waiting);
                if (_running)
                {
                    return waiting.Answer.Task;
                }

                _running = true;
            }

            _ = RunAsync();
            return waiting.Answer.Task;
        }

        private async Task RunAsync()
        {
            var batch = new List<Waiting>(MaxBatch);
            while (TakeBatch(batch))
            {
                AdmissionResult[]? results = null;
                Exception? error = null;
                try
                {
                    results = await store.WriteAloneAsync(async (c, tx) =>
                    {
                        var admitted = new AdmissionResult[batch.Count];
                        for (var i = 0; i < batch.Count; i++)
                        {
                            admitted[i] = await store.AdmitAsync(c, tx, batch[i].Admission, CancellationToken.None).ConfigureAwait(false);
                        }

                        return admitted;
                    }, CancellationToken.None, answerBeforeCommit: true).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    error = e; // every admission of the batch gets it
                }

                // Leave the map (if nothing waits) before answering, so that whoever was answered finds it as it stays.
                var more = StayIfWaiting();
                for (var i = 0; i < batch.Count; i++)
                {
                    _ = error is null ? batch[i].Answer.TrySetResult(results![i]) : batch[i].Answer.TrySetException(error);
                }

                if (!more)
                {
                    return;
                }
            }
        }

        /// <summary>Moves up to <see cref="MaxBatch"/> waiting admissions into <paramref name="batch"/>; false, and the queue has left the map, if none waits.</summary>
        private bool TakeBatch(List<Waiting> batch)
        {
            batch.Clear();
            lock (_gate)
            {
                while (batch.Count < MaxBatch && _waiting.TryDequeue(out var next))
                {
                    if (next.CancellationToken.IsCancellationRequested)
                    {
                        next.Answer.TrySetCanceled(next.CancellationToken); // gave up before its turn: never admitted
                    }
                    else
                    {
                        batch.Add(next);
                    }
                }

                return batch.Count > 0 || StayIfWaiting();
            }
        }

        /// <summary>True if admissions wait; otherwise the queue stops, leaves the store's map and refuses new ones (they ask the map again).</summary>
        private bool StayIfWaiting()
        {
            lock (_gate)
            {
                if (_waiting.Count > 0)
                {
                    return true;
                }

                _running = false;
                _gone = true;
                store._admissions.TryRemove(KeyValuePair.Create(workspaceId, this));
                return false;
            }
        }

        private sealed record Waiting(TurnAdmission Admission, TaskCompletionSource<AdmissionResult> Answer, CancellationToken CancellationToken);
    }
}
