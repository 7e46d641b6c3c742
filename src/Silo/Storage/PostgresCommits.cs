using LuluClaw.Grains.Storage;
using Npgsql;
using static LuluClaw.Silo.Storage.Columns;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// PostgreSQL's turn commits: those waiting on this node go to the database together, in one
/// statement (so its own transaction, durable at return).
/// </summary>
/// <remarks>
/// The statement settles the turns still pending, and only for those creates or updates the
/// session rows and appends the messages. A turn not pending any more (refunded meanwhile) gets
/// <see cref="StaleStateException"/>. If the statement fails (a lost append race, a deadlock between
/// two silos' batches), each of its turns is committed alone, so that only the one at fault fails.
/// One batch is in flight per node at a time: the commits that arrive while it waits for its flush
/// make the next batch bigger. With one lane a turn on PostgreSQL did 5,600-5,800 turns/s at 64
/// clients on one workspace, with two 5,100, with three 4,200 (one silo, this machine): every batch
/// is a flush, and fewer, bigger ones cost PostgreSQL less.
/// </remarks>
public sealed class PostgresCommits : IAsyncDisposable
{
    private readonly NpgsqlDataSource _source;
    private readonly Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool> _commits;

    public PostgresCommits(NpgsqlDataSource source)
    {
        _source = source;
        _commits = new(CommitBatchAsync, lanes: 1);
    }

    /// <summary>Commits one turn with the others waiting (see the remarks).</summary>
    public Task CommitAsync(CommittedTurn turn, DateTimeOffset now, CancellationToken cancellationToken) => _commits.Add((turn, now), cancellationToken);

    public ValueTask DisposeAsync() => _commits.DisposeAsync();

    private const string CommitSql =
        """
        WITH settled AS (
            DELETE FROM pending_turns WHERE id = ANY(@TurnIds) RETURNING id),
        t AS (
            SELECT * FROM unnest(@TurnIds::text[], @Workspaces::text[], @Sessions::text[], @Bots::text[], @Channels::text[], @New::boolean[], @Counts::bigint[])
                AS t(turn_id, workspace_id, session_id, bot_id, channel, is_new, n)
            WHERE t.turn_id IN (SELECT id FROM settled)),
        new_sessions AS (
            INSERT INTO sessions (workspace_id, session_id, bot_id, channel, created_at, last_activity, message_count)
            SELECT workspace_id, session_id, bot_id, channel, @Now, @Now, n FROM t WHERE is_new),
        old_sessions AS (
            UPDATE sessions s SET last_activity = @Now, message_count = s.message_count + t.n
            FROM t WHERE NOT t.is_new AND s.workspace_id = t.workspace_id AND s.session_id = t.session_id),
        new_messages AS (
            INSERT INTO messages (workspace_id, session_id, seq, role, content, created_at, turn_id, cut_short, sources)
            SELECT m.workspace_id, m.session_id, m.seq, m.role, m.content, m.created_at, m.turn_id, m.cut_short, m.sources
            FROM unnest(@MTurns::text[], @MWorkspaces::text[], @MSessions::text[], @MSeqs::bigint[], @MRoles::text[], @MContents::text[],
                @MTimes::bigint[], @MCut::int[], @MSources::text[]) AS m(turn_id, workspace_id, session_id, seq, role, content, created_at, cut_short, sources)
            WHERE m.turn_id IN (SELECT id FROM settled))
        SELECT id FROM settled
        """;

    private async Task CommitBatchAsync(IReadOnlyList<Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool>.Waiting> batch)
    {
        // A session appears once per statement (its row is updated once); a second turn of it (only
        // ever two activations of one session during a failover) is committed on its own.
        var seen = new HashSet<(Guid, string)>();
        var together = new List<Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool>.Waiting>(batch.Count);
        var alone = new List<Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool>.Waiting>();
        foreach (var waiting in batch)
        {
            (seen.Add((waiting.Item.Turn.WorkspaceId, waiting.Item.Turn.SessionId)) ? together : alone).Add(waiting);
        }

        if (together.Count > 1)
        {
            try
            {
                Answer(together, await CommitTogetherAsync(together).ConfigureAwait(false));
            }
            catch (PostgresException)
            {
                alone.InsertRange(0, together); // each alone, so that only the turn at fault fails
            }
        }
        else
        {
            alone.InsertRange(0, together);
        }

        foreach (var waiting in alone)
        {
            try
            {
                Answer([waiting], await CommitTogetherAsync([waiting]).ConfigureAwait(false));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                waiting.Answer.TrySetException(new StaleStateException($"session {waiting.Item.Turn.SessionId} was written by someone else: {e.Message}"));
            }
            catch (Exception e)
            {
                waiting.Answer.TrySetException(e);
            }
        }

        static void Answer(List<Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool>.Waiting> turns, HashSet<string> settled)
        {
            foreach (var waiting in turns)
            {
                _ = settled.Contains(waiting.Item.Turn.TurnId)
                    ? waiting.Answer.TrySetResult(true)
                    : waiting.Answer.TrySetException(new StaleStateException($"turn {waiting.Item.Turn.TurnId} is no longer pending"));
            }
        }
    }

    /// <summary>The commit statement for <paramref name="batch"/>; returns the turns it settled.</summary>
    private async Task<HashSet<string>> CommitTogetherAsync(List<Batcher<(CommittedTurn Turn, DateTimeOffset Now), bool>.Waiting> batch)
    {
        var turns = batch.Select(w => w.Item.Turn).ToArray();
        var messages = turns.SelectMany(t => t.Messages.Select(m => (Turn: t, Message: m))).ToArray();
        await using var connection = await _source.OpenConnectionAsync().ConfigureAwait(false);
        await using var command = PostgresAdmissions.Command(connection, CommitSql,
            ("TurnIds", turns.Select(t => t.TurnId).ToArray()), ("Workspaces", turns.Select(t => Id(t.WorkspaceId)).ToArray()),
            ("Sessions", turns.Select(t => t.SessionId).ToArray()), ("Bots", turns.Select(t => t.BotId).ToArray()),
            ("Channels", turns.Select(t => t.Channel).ToArray()), ("New", turns.Select(t => t.NewSession).ToArray()),
            ("Counts", turns.Select(t => (long)t.Messages.Count).ToArray()), ("Now", Ms(batch.Max(w => w.Item.Now))),
            ("MTurns", messages.Select(m => m.Turn.TurnId).ToArray()), ("MWorkspaces", messages.Select(m => Id(m.Turn.WorkspaceId)).ToArray()),
            ("MSessions", messages.Select(m => m.Turn.SessionId).ToArray()), ("MSeqs", messages.Select(m => m.Message.Seq).ToArray()),
            ("MRoles", messages.Select(m => m.Message.Role).ToArray()), ("MContents", messages.Select(m => m.Message.Content).ToArray()),
            ("MTimes", messages.Select(m => Ms(m.Message.CreatedAt)).ToArray()), ("MCut", messages.Select(m => m.Message.CutShort ? 1 : 0).ToArray()),
            ("MSources", messages.Select(m => StoredJson.Of(m.Message.Sources)).ToArray()));
        var settled = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            settled.Add(reader.GetString(0));
        }

        return settled;
    }
}
