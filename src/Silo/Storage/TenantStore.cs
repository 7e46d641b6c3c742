using System.Data.Common;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Cluster;
using static LuluClaw.Silo.Storage.Columns;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Workspaces, their bots, their provider keys and their API keys (tables <c>workspaces</c>,
/// <c>bots</c>, <c>provider_keys</c>, <c>api_keys</c>). Versioned rows reject stale writes.
/// </summary>
public sealed class TenantStore(Database database, ClusterChangeLog changes) : ITenantStore
{
    private const string WorkspaceColumns = "id, name, plan, credits, primary_bot_id, version, created_at, updated_at";
    private const string BotColumns =
        "id, workspace_id, name, system_prompt, model, channels, version, restart_count, created_at, updated_at, last_restarted_at, knowledge";
    private const string ProviderKeyColumns = "workspace_id, provider, ciphertext, hint, updated_at";
    private const string ApiKeyColumns = "id, workspace_id, key_hash, prefix, scopes, plan, created_at, revoked_at";

    private static WorkspaceRecord ReadWorkspace(IRow r) =>
        new(r.Guid(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetInt64(5), r.Time(6), r.Time(7));

    private static BotRecord ReadBot(IRow r) =>
        new(r.GetString(0), r.Guid(1), r.GetString(2), r.GetString(3), r.GetString(4), r.Words(5), r.GetInt64(6), r.GetInt64(7), r.Time(8), r.Time(9),
            r.TimeOrNull(10), StoredJson.Knowledge(r.StringOrNull(11)));

    private static ProviderKeyRecord ReadProviderKey(IRow r) => new(r.Guid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.Time(4));

    private static ApiKeyRecord ReadApiKey(IRow r) =>
        new(r.GetString(0), r.Guid(1), r.GetString(2), r.GetString(3), r.Words(4), r.StringOrNull(5), r.Time(6), r.TimeOrNull(7));

    // ---- workspaces ----

    public Task<bool> AnyWorkspaceAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(async c => await Statements.ScalarAsync(c, null, "SELECT COUNT(*) FROM workspaces", cancellationToken) > 0, cancellationToken);

    public Task<long> CountWorkspacesAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(async c => await Statements.ScalarAsync(c, null, "SELECT COUNT(*) FROM workspaces", cancellationToken) ?? 0, cancellationToken);

    public async Task<IReadOnlyList<WorkspaceRecord>> ListWorkspacesAsync(long offset, int limit, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            $"SELECT {WorkspaceColumns} FROM workspaces ORDER BY created_at DESC, id DESC LIMIT @Limit OFFSET @Offset", ReadWorkspace,
            cancellationToken, ("Limit", (long)limit), ("Offset", offset)), cancellationToken).ConfigureAwait(false);

    public Task CreateWorkspaceAsync(WorkspaceRecord workspace, BotRecord primaryBot, CancellationToken cancellationToken) =>
        database.WriteUniqueAsync(async (c, tx) =>
        {
            await Statements.ExecuteAsync(c, tx,
                $"INSERT INTO workspaces ({WorkspaceColumns}) VALUES (@Id, @Name, @Plan, @Credits, @PrimaryBotId, @Version, @CreatedAt, @UpdatedAt)",
                cancellationToken,
                ("Id", Id(workspace.Id)), ("Name", workspace.Name), ("Plan", workspace.Plan), ("Credits", workspace.Credits),
                ("PrimaryBotId", workspace.PrimaryBotId), ("Version", workspace.Version), ("CreatedAt", Ms(workspace.CreatedAt)),
                ("UpdatedAt", Ms(workspace.UpdatedAt)));
            return await InsertBotAsync(c, tx, primaryBot, cancellationToken);
        }, _ => new DuplicateException($"workspace {workspace.Id} exists already"), cancellationToken);

    public Task<WorkspaceRecord?> GetWorkspaceAsync(Guid id, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null, $"SELECT {WorkspaceColumns} FROM workspaces WHERE id = @Id", ReadWorkspace,
            cancellationToken, ("Id", Id(id))), cancellationToken);

    public async Task<WorkspaceRecord> UpdateWorkspaceAsync(WorkspaceRecord workspace, long expectedVersion, CancellationToken cancellationToken) =>
        await database.WriteAsync((c, tx) => Statements.RowAsync(c, tx,
            $"""
            UPDATE workspaces SET name = @Name, plan = @Plan, updated_at = @UpdatedAt, version = version + 1
            WHERE id = @Id AND version = @ExpectedVersion
            RETURNING {WorkspaceColumns}
            """,
            ReadWorkspace, cancellationToken,
            ("Name", workspace.Name), ("Plan", workspace.Plan), ("UpdatedAt", Ms(workspace.UpdatedAt)), ("Id", Id(workspace.Id)),
            ("ExpectedVersion", expectedVersion)), cancellationToken).ConfigureAwait(false)
        ?? throw new StaleStateException($"workspace {workspace.Id} is no longer at version {expectedVersion}");

    public Task<long?> AddCreditsAsync(Guid id, long amount, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => Statements.ScalarAsync(c, tx,
            "UPDATE workspaces SET credits = credits + @Amount, updated_at = @Now WHERE id = @Id RETURNING credits", cancellationToken,
            ("Amount", amount), ("Now", Ms(now)), ("Id", Id(id))), cancellationToken);

    // ---- bots ----

    public Task<BotRecord?> GetBotAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null, $"SELECT {BotColumns} FROM bots WHERE id = @Id", ReadBot, cancellationToken, ("Id", id)),
            cancellationToken);

    public async Task<IReadOnlyList<string>> ListBotIdsAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null, "SELECT id FROM bots WHERE workspace_id = @WorkspaceId ORDER BY created_at, id",
            r => r.GetString(0), cancellationToken, ("WorkspaceId", Id(workspaceId))), cancellationToken).ConfigureAwait(false);

    public Task InsertBotAsync(BotRecord bot, CancellationToken cancellationToken) =>
        database.WriteUniqueAsync((c, tx) => InsertBotAsync(c, tx, bot, cancellationToken),
            _ => new DuplicateException($"bot {bot.Id} exists already"), cancellationToken);

    private static Task<int> InsertBotAsync(DbConnection c, DbTransaction tx, BotRecord bot, CancellationToken cancellationToken) =>
        Statements.ExecuteAsync(c, tx,
            $"""
            INSERT INTO bots ({BotColumns})
            VALUES (@Id, @WorkspaceId, @Name, @SystemPrompt, @Model, @Channels, @Version, @RestartCount, @CreatedAt, @UpdatedAt, @LastRestartedAt, @Knowledge)
            """,
            cancellationToken,
            ("Id", bot.Id), ("WorkspaceId", Id(bot.WorkspaceId)), ("Name", bot.Name), ("SystemPrompt", bot.SystemPrompt), ("Model", bot.Model),
            ("Channels", string.Join(' ', bot.Channels)), ("Version", bot.Version), ("RestartCount", bot.RestartCount),
            ("CreatedAt", Ms(bot.CreatedAt)), ("UpdatedAt", Ms(bot.UpdatedAt)), ("LastRestartedAt", Ms(bot.LastRestartedAt)),
            ("Knowledge", StoredJson.Of(bot.Knowledge)));

    public async Task<BotRecord> UpdateBotAsync(BotRecord bot, long expectedVersion, CancellationToken cancellationToken) =>
        await database.WriteAsync((c, tx) => Statements.RowAsync(c, tx,
            $"""
            UPDATE bots SET name = @Name, system_prompt = @SystemPrompt, model = @Model, channels = @Channels,
                restart_count = @RestartCount, updated_at = @UpdatedAt, last_restarted_at = @LastRestartedAt, knowledge = @Knowledge, version = version + 1
            WHERE id = @Id AND version = @ExpectedVersion
            RETURNING {BotColumns}
            """,
            ReadBot, cancellationToken,
            ("Name", bot.Name), ("SystemPrompt", bot.SystemPrompt), ("Model", bot.Model), ("Channels", string.Join(' ', bot.Channels)),
            ("RestartCount", bot.RestartCount), ("UpdatedAt", Ms(bot.UpdatedAt)), ("LastRestartedAt", Ms(bot.LastRestartedAt)),
            ("Knowledge", StoredJson.Of(bot.Knowledge)), ("Id", bot.Id),
            ("ExpectedVersion", expectedVersion)), cancellationToken).ConfigureAwait(false)
        ?? throw new StaleStateException($"bot {bot.Id} is no longer at version {expectedVersion}");

    public Task<bool> DeleteBotAsync(Guid workspaceId, string botId, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            if (await Statements.ExecuteAsync(c, tx, "DELETE FROM bots WHERE id = @Id AND workspace_id = @WorkspaceId", cancellationToken,
                ("Id", botId), ("WorkspaceId", Id(workspaceId))) != 1)
            {
                return false;
            }

            // The primary bot answers chat that names no bot: hand the role to the oldest bot left ('' when none is).
            await Statements.ExecuteAsync(c, tx,
                """
                UPDATE workspaces SET primary_bot_id = COALESCE(
                    (SELECT id FROM bots WHERE workspace_id = @WorkspaceId ORDER BY created_at, id LIMIT 1), '')
                WHERE id = @WorkspaceId AND primary_bot_id = @Id
                """, cancellationToken, ("WorkspaceId", Id(workspaceId)), ("Id", botId));
            return true;
        }, cancellationToken);

    // ---- provider keys (a change every other node's model clients must see) ----

    public Task PutProviderKeyAsync(ProviderKeyRecord key, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            await Statements.ExecuteAsync(c, tx,
                $"""
                INSERT INTO provider_keys ({ProviderKeyColumns}) VALUES (@WorkspaceId, @Provider, @Ciphertext, @Hint, @UpdatedAt)
                ON CONFLICT (workspace_id, provider) DO UPDATE
                SET ciphertext = excluded.ciphertext, hint = excluded.hint, updated_at = excluded.updated_at
                """,
                cancellationToken,
                ("WorkspaceId", Id(key.WorkspaceId)), ("Provider", key.Provider), ("Ciphertext", key.Ciphertext), ("Hint", key.Hint),
                ("UpdatedAt", Ms(key.UpdatedAt)));
            await changes.RecordAsync(c, tx, ClusterChange.ProviderKeys, Id(key.WorkspaceId), cancellationToken);
            return 0;
        }, cancellationToken);

    public Task<ProviderKeyRecord?> GetProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null,
            $"SELECT {ProviderKeyColumns} FROM provider_keys WHERE workspace_id = @WorkspaceId AND provider = @Provider", ReadProviderKey,
            cancellationToken, ("WorkspaceId", Id(workspaceId)), ("Provider", provider)), cancellationToken);

    public async Task<IReadOnlyList<ProviderKeyRecord>> ListProviderKeysAsync(Guid workspaceId, CancellationToken cancellationToken) =>
        await database.ReadAsync(c => Statements.RowsAsync(c, null,
            $"SELECT {ProviderKeyColumns} FROM provider_keys WHERE workspace_id = @WorkspaceId ORDER BY provider", ReadProviderKey,
            cancellationToken, ("WorkspaceId", Id(workspaceId))), cancellationToken).ConfigureAwait(false);

    public Task<bool> DeleteProviderKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            if (await Statements.ExecuteAsync(c, tx, "DELETE FROM provider_keys WHERE workspace_id = @WorkspaceId AND provider = @Provider",
                cancellationToken, ("WorkspaceId", Id(workspaceId)), ("Provider", provider)) != 1)
            {
                return false;
            }

            await changes.RecordAsync(c, tx, ClusterChange.ProviderKeys, Id(workspaceId), cancellationToken);
            return true;
        }, cancellationToken);

    // ---- API keys (only their hashes) ----

    public Task InsertApiKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => Statements.ExecuteAsync(c, tx,
            $"INSERT INTO api_keys ({ApiKeyColumns}) VALUES (@Id, @WorkspaceId, @KeyHash, @Prefix, @Scopes, @Plan, @CreatedAt, NULL)",
            cancellationToken,
            ("Id", key.Id), ("WorkspaceId", Id(key.WorkspaceId)), ("KeyHash", key.KeyHash), ("Prefix", key.Prefix),
            ("Scopes", string.Join(' ', key.Scopes)), ("Plan", key.Plan), ("CreatedAt", Ms(key.CreatedAt))), cancellationToken);

    public Task<ApiKeyRecord?> FindApiKeyByHashAsync(string keyHash, CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowAsync(c, null, $"SELECT {ApiKeyColumns} FROM api_keys WHERE key_hash = @KeyHash", ReadApiKey,
            cancellationToken, ("KeyHash", keyHash)), cancellationToken);

    public Task<string?> RevokeApiKeyAsync(Guid workspaceId, string keyId, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => Statements.RowAsync(c, tx,
            "UPDATE api_keys SET revoked_at = @Now WHERE id = @Id AND workspace_id = @WorkspaceId AND revoked_at IS NULL RETURNING key_hash",
            r => r.GetString(0), cancellationToken, ("Now", Ms(now)), ("Id", keyId), ("WorkspaceId", Id(workspaceId))), cancellationToken);
}
