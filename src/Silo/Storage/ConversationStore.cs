using System.Collections.Concurrent;
using LuluClaw.Grains.Storage;
using static LuluClaw.Silo.Storage.Columns;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Threads and their append-only messages (tables <c>sessions</c> and <c>messages</c>): a turn's
/// commit appends its messages and settles its admission in one transaction.
/// </summary>
/// <remarks>
/// On SQLite a commit is one write of the group-commit writer; on PostgreSQL many turns' commits
/// go in one statement (<see cref="PostgresCommits"/>). Either way (workspace, session, seq) is
/// unique, so a lost append race fails the whole turn, and a turn refunded meanwhile leaves no
/// message behind.
/// </remarks>
public sealed class ConversationStore(Database database, PostgresCommits? batches = null) : IConversationStore
{
    private const int MessageColumns = 6;
    private static readonly ConcurrentDictionary<int, (string Sql, string[][] Names)> MessageInserts = new();

    public Task<SessionRecord?> GetSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null,
            """
            SELECT workspace_id, session_id, bot_id, channel, created_at, last_activity FROM sessions
            WHERE workspace_id = @WorkspaceId AND session_id = @SessionId
            """,
            r => new SessionRecord(r.Guid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.Time(4), r.Time(5)),
            cancellationToken, ("WorkspaceId", Id(workspaceId)), ("SessionId", sessionId)), cancellationToken);

    public async Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            """
            SELECT seq, role, content, created_at, cut_short, sources FROM messages
            WHERE workspace_id = @WorkspaceId AND session_id = @SessionId ORDER BY seq
            """,
            r => new SessionMessage(r.GetInt64(0), r.GetString(1), r.GetString(2), r.Time(3), r.GetInt64(4) != 0, Sources: StoredJson.Sources(r.StringOrNull(5))),
            cancellationToken, ("WorkspaceId", Id(workspaceId)), ("SessionId", sessionId)), cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<SessionSummary>> ListSessionsAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            """
            SELECT session_id, bot_id, channel, created_at, last_activity, message_count FROM sessions
            WHERE workspace_id = @WorkspaceId ORDER BY last_activity DESC, session_id
            """,
            r => new SessionSummary(r.GetString(0), r.GetString(1), r.GetString(2), r.Time(3), r.Time(4), r.GetInt64(5)),
            cancellationToken, ("WorkspaceId", Id(workspaceId))), cancellationToken).ConfigureAwait(false);

    public Task<bool> DeleteSessionAsync(Guid workspaceId, string sessionId, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            await Statements.ExecuteAsync(c, tx, "DELETE FROM messages WHERE workspace_id = @WorkspaceId AND session_id = @SessionId", cancellationToken,
                ("WorkspaceId", Id(workspaceId)), ("SessionId", sessionId));
            return await Statements.ExecuteAsync(c, tx, "DELETE FROM sessions WHERE workspace_id = @WorkspaceId AND session_id = @SessionId",
                cancellationToken, ("WorkspaceId", Id(workspaceId)), ("SessionId", sessionId)) == 1;
        }, cancellationToken);

    public Task CommitTurnAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken) =>
        batches is not null ? batches.CommitAsync(turn, now, cancellationToken) : CommitOneAsync(turn, now, cancellationToken);

    private Task CommitOneAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteUniqueAsync(async (c, tx) =>
        {
            // :: Step 1: settle the admission; a turn refunded meanwhile must not leave messages behind.
            if (await Statements.ExecuteAsync(c, tx, "DELETE FROM pending_turns WHERE id = @TurnId", cancellationToken, ("TurnId", turn.TurnId)) != 1)
            {
                throw new StaleStateException($"turn {turn.TurnId} is no longer pending");
            }

            // :: Step 2: the session row, created by its first turn.
            var (workspaceId, at, count) = (Id(turn.WorkspaceId), Ms(now), (long)turn.Messages.Count);
            _ = turn.NewSession
                ? await Statements.ExecuteAsync(c, tx,
                    """
                    INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
                    VALUES (@WorkspaceId, @SessionId, @BotId, @Channel, @Now, @Now, @Count)
                    """,
                    cancellationToken,
                    ("WorkspaceId", workspaceId), ("SessionId", turn.SessionId), ("BotId", turn.BotId), ("Channel", turn.Channel), ("Now", at), ("Count", count))
                : await Statements.ExecuteAsync(c, tx,
                    """
                    UPDATE sessions SET last_activity = @Now, message_count = message_count + @Count
                    WHERE workspace_id = @WorkspaceId AND session_id = @SessionId
                    """,
                    cancellationToken, ("Now", at), ("Count", count), ("WorkspaceId", workspaceId), ("SessionId", turn.SessionId));

            // :: Step 3: append the messages in one statement.
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
                    parameters[k + 5] = (name[5], StoredJson.Of(m.Sources));
                }

                await Statements.ExecuteAsync(c, tx, sql, cancellationToken, parameters);
            }

            return 0;
        }, e => new StaleStateException($"session {turn.SessionId} was written by someone else: {e.Message}"), cancellationToken);

    /// <summary>
    /// The INSERT of <paramref name="count"/> messages in one statement, and the names of each
    /// message's parameters (Seq0, Role0, Content0, CreatedAt0, CutShort0, Sources0, then Seq1…): made once
    /// per count instead of on every turn.
    /// </summary>
    private static (string Sql, string[][] Names) MessageInsert(int count) => MessageInserts.GetOrAdd(count, static n =>
    {
        var names = Enumerable.Range(0, n).Select(i => new[] { $"Seq{i}", $"Role{i}", $"Content{i}", $"CreatedAt{i}", $"CutShort{i}", $"Sources{i}" }).ToArray();
        var rows = names.Select(p => $"(@WorkspaceId, @SessionId, @{p[0]}, @{p[1]}, @{p[2]}, @{p[3]}, @TurnId, @{p[4]}, @{p[5]})");
        return ($"INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id, cut_short, sources) VALUES {string.Join(", ", rows)}", names);
    });
}
