using System.Data.Common;
using Dapper;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The storage of both providers: one copy of each query over a <see cref="DbDataSource"/>, with
/// the few differences in <see cref="SqlDialect"/>. Every multi-row invariant is one transaction.
/// </summary>
public sealed class SqlStore(DbDataSource dataSource, SqlDialect dialect) : ITenantStore, ITurnLedger, IConversationStore
{
    static SqlStore() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    /// <summary>The provider's dialect.</summary>
    public SqlDialect Dialect => dialect;

    // ---- connections and transactions ----

    internal async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await dialect.PrepareConnectionAsync(connection, cancellationToken).ConfigureAwait(false);
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

    private async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        using var writer = await dialect.EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var result = await work(connection, transaction).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static CommandDefinition Command(string sql, object? parameters, DbTransaction? transaction, CancellationToken cancellationToken) =>
        new(sql, parameters, transaction, cancellationToken: cancellationToken);

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

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
            INSERT INTO bots (id, workspace_id, name, system_prompt, model, version, created_at, updated_at)
            VALUES (@Id, @WorkspaceId, @Name, @SystemPrompt, @Model, @Version, @CreatedAt, @UpdatedAt)
            """,
            new
            {
                bot.Id, WorkspaceId = bot.WorkspaceId.ToString("D"), bot.Name, bot.SystemPrompt, bot.Model, bot.Version,
                CreatedAt = Ms(bot.CreatedAt), UpdatedAt = Ms(bot.UpdatedAt),
            }, tx, cancellationToken));

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

    public Task<BotRecord?> GetBotAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QuerySingleOrDefaultAsync<BotRow>(Command(
            "SELECT id, workspace_id, name, system_prompt, model, version, created_at, updated_at FROM bots WHERE id = @Id",
            new { Id = id }, null, cancellationToken)))?.ToRecord(), cancellationToken);

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
        WriteAsync((c, tx) => c.QuerySingleOrDefaultAsync<string?>(Command(
            "UPDATE api_keys SET revoked_at = @Now WHERE id = @Id AND workspace_id = @WorkspaceId AND revoked_at IS NULL RETURNING key_hash",
            new { Id = keyId, WorkspaceId = workspaceId.ToString("D"), Now = Ms(now) }, tx, cancellationToken)), cancellationToken);

    // ---- the turn ledger ----

    public Task<AdmissionResult> TryAdmitAsync(TurnAdmission admission, CancellationToken cancellationToken) =>
        WriteAsync(async (c, tx) =>
        {
            var workspaceId = admission.WorkspaceId.ToString("D");

            // :: Step 1: lock the workspace row; every admission of this workspace, on any node, queues here.
            var workspace = await c.QuerySingleOrDefaultAsync<PlanRow>(Command(
                $"SELECT plan, credits FROM workspaces WHERE id = @Id{dialect.ForUpdate}", new { Id = workspaceId }, tx, cancellationToken));
            if (workspace is not { } ws)
            {
                return new AdmissionResult(AdmissionStatus.NotFound, 0, 0);
            }

            // :: Step 2: credits first: an empty balance is the condition waiting will not fix.
            if (ws.Credits < admission.Cost)
            {
                return new AdmissionResult(AdmissionStatus.InsufficientCredits, 0, ws.Credits);
            }

            // :: Step 3: the rolling hour, counted from the rows themselves.
            var window = TimeSpan.FromHours(1);
            if (admission.TurnsPerHour(ws.Plan) is { } limit)
            {
                var (count, oldest) = await c.QuerySingleAsync<WindowRow>(Command(
                    "SELECT COUNT(*) AS count, MIN(admitted_at) AS oldest FROM turns WHERE workspace_id = @Id AND admitted_at > @Cutoff",
                    new { Id = workspaceId, Cutoff = Ms(admission.Now - window) }, tx, cancellationToken));
                if (count >= limit)
                {
                    var retryAfter = oldest is { } o ? Time(o) + window - admission.Now : window;
                    return new AdmissionResult(AdmissionStatus.RateLimited, 0, ws.Credits, retryAfter);
                }
            }

            // :: Step 4: count the turn and debit it, in the same transaction.
            await c.ExecuteAsync(Command(
                """
                INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits, status)
                VALUES (@TurnId, @WorkspaceId, @KeyId, @SessionId, @Now, @Cost, 'pending')
                """,
                new { admission.TurnId, WorkspaceId = workspaceId, admission.KeyId, admission.SessionId, Now = Ms(admission.Now), admission.Cost },
                tx, cancellationToken));
            var remaining = await c.QuerySingleAsync<long>(Command(
                "UPDATE workspaces SET credits = credits - @Cost WHERE id = @Id RETURNING credits",
                new { Id = workspaceId, admission.Cost }, tx, cancellationToken));
            return new AdmissionResult(AdmissionStatus.Admitted, admission.Cost, remaining);
        }, cancellationToken);

    public Task RefundAsync(string turnId, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => RefundPendingAsync(c, tx, "id = @Id", new { Id = turnId }, cancellationToken), cancellationToken);

    public Task<int> RefundAbandonedAsync(DateTimeOffset admittedBefore, CancellationToken cancellationToken) =>
        WriteAsync((c, tx) => RefundPendingAsync(c, tx, "admitted_at < @Cutoff", new { Cutoff = Ms(admittedBefore) }, cancellationToken), cancellationToken);

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
            SELECT seq, role, content, created_at FROM messages
            WHERE workspace_id = @WorkspaceId AND session_id = @SessionId ORDER BY seq
            """,
            new { WorkspaceId = workspaceId.ToString("D"), SessionId = sessionId }, null, cancellationToken)))
            .Select(m => new SessionMessage(m.Seq, m.Role, m.Content, Time(m.CreatedAt))).ToArray(), cancellationToken);

    public async Task CommitTurnAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var workspaceId = turn.WorkspaceId.ToString("D");
        try
        {
            await WriteAsync(async (c, tx) =>
            {
                // :: Step 1: settle the admission; a turn refunded meanwhile must not leave messages behind.
                var settled = await c.ExecuteAsync(Command(
                    "UPDATE turns SET status = 'done' WHERE id = @TurnId AND status = 'pending'", new { turn.TurnId }, tx, cancellationToken));
                if (settled != 1)
                {
                    throw new StaleStateException($"turn {turn.TurnId} is no longer pending");
                }

                // :: Step 2: the session row, created by its first turn.
                var sessionSql = turn.NewSession
                    ? """
                      INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
                      VALUES (@WorkspaceId, @SessionId, @BotId, @Channel, @Now, @Now, @Count)
                      """
                    : """
                      UPDATE sessions SET last_activity = @Now, message_count = message_count + @Count
                      WHERE workspace_id = @WorkspaceId AND session_id = @SessionId
                      """;
                await c.ExecuteAsync(Command(sessionSql,
                    new { WorkspaceId = workspaceId, turn.SessionId, turn.BotId, turn.Channel, Now = Ms(now), Count = (long)turn.Messages.Count },
                    tx, cancellationToken));

                // :: Step 3: append the messages; (workspace, session, seq) is unique, so a lost race fails the whole turn.
                await c.ExecuteAsync(Command(
                    """
                    INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id)
                    VALUES (@WorkspaceId, @SessionId, @Seq, @Role, @Content, @CreatedAt, @TurnId)
                    """,
                    turn.Messages.Select(m => new
                    {
                        WorkspaceId = workspaceId, turn.SessionId, m.Seq, m.Role, m.Content, CreatedAt = Ms(m.CreatedAt), turn.TurnId,
                    }), tx, cancellationToken));
                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (dialect.IsUniqueViolation(e))
        {
            throw new StaleStateException($"session {turn.SessionId} was written by someone else: {e.Message}");
        }
    }

    // ---- rows as the database returns them ----

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
        public long Version { get; init; }
        public long CreatedAt { get; init; }
        public long UpdatedAt { get; init; }

        public BotRecord ToRecord() => new(Id, Guid.Parse(WorkspaceId), Name, SystemPrompt, Model, Version, Time(CreatedAt), Time(UpdatedAt));
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

    private sealed class PlanRow
    {
        public string Plan { get; init; } = "";
        public long Credits { get; init; }
    }

    private sealed class WindowRow
    {
        public long Count { get; init; }
        public long? Oldest { get; init; }

        public void Deconstruct(out long count, out long? oldest) => (count, oldest) = (Count, Oldest);
    }

    private sealed class RefundRow
    {
        public string WorkspaceId { get; init; } = "";
        public long Credits { get; init; }
    }

    private sealed class MessageRow
    {
        public long Seq { get; init; }
        public string Role { get; init; } = "";
        public string Content { get; init; } = "";
        public long CreatedAt { get; init; }
    }
}
