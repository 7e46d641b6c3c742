using Dapper;
using LuluClaw.Silo.Storage;
using LuluClaw.Tests;
using Npgsql;

namespace LuluClaw.Silo.Tests.Storage;

/// <summary>
/// The migrator itself: script names and their providers, one version sequence, concurrent starts on
/// PostgreSQL, and a provider skipping the scripts of the other.
/// </summary>
public sealed class SchemaMigratorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("0001_initial.sql", 1L, null)]
    [InlineData("0007_orleans_clustering.postgres.sql", 7L, "postgres")]
    [InlineData("0012_some_index.sqlite.sql", 12L, "sqlite")]
    public void ParseScriptName_WellFormed_GivesVersionAndProvider(string file, long version, string? provider) =>
        Assert.Equal((version, provider), SchemaMigrator.ParseScriptName(file));

    [Theory]
    [InlineData("0008_clustering.postgresql.sql")] // a misspelt provider must neither run everywhere nor be skipped silently
    [InlineData("0008_clustering.pg.sql")]
    [InlineData("initial.sql")]
    [InlineData("x8_initial.sql")]
    [InlineData("0008_a.b.postgres.sql")]
    [InlineData("0008_notes.txt")]
    public void ParseScriptName_Malformed_Throws(string file) =>
        Assert.Throws<InvalidOperationException>(() => SchemaMigrator.ParseScriptName(file));

    [Fact]
    public void Scripts_Embedded_AreOneGaplessVersionSequenceAcrossProviders()
    {
        var scripts = SchemaMigrator.Scripts();

        Assert.Equal(Enumerable.Range(1, scripts.Count).Select(v => (long)v), scripts.Select(s => s.Version));
    }

    [Fact]
    public async Task Migrate_ThreeAtOnceOnAFreshPostgres_AllSucceedEachScriptRunsOnceAndAnotherStartAppliesNothing()
    {
        await using var database = await TestPostgres.CreateAsync();
        await using var first = StorageServiceCollectionExtensions.CreatePostgres(database.ConnectionString);
        await using var second = StorageServiceCollectionExtensions.CreatePostgres(database.ConnectionString);
        await using var third = StorageServiceCollectionExtensions.CreatePostgres(database.ConnectionString);
        var expected = SchemaMigrator.Scripts().Where(s => s.Provider is null or "postgres").Select(s => s.Version).ToArray();

        var applied = await Task.WhenAll(new[] { first, second, third }.Select(s => new SchemaMigrator(s.Database).MigrateAsync(Ct)));

        Assert.Equal(expected.Length, applied.Sum());
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        Assert.Equal(expected, await connection.QueryAsync<long>(new CommandDefinition(
            "SELECT version FROM schema_migrations ORDER BY version", cancellationToken: Ct)));
        Assert.Equal(0, await new SchemaMigrator(first.Database).MigrateAsync(Ct));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Migrate_From0007_APendingTurnStaysPending_ASettledOneStaysInItsWindow(string provider)
    {
        var folder = Directory.CreateTempSubdirectory("luluclaw-migrator-").FullName;
        await using var postgres = provider == "postgres" ? await TestPostgres.CreateAsync() : null;
        try
        {
            await using var store = postgres is null
                ? StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(folder, "test.db")}")
                : StorageServiceCollectionExtensions.CreatePostgres(postgres.ConnectionString);

            // :: Step 1: a database as 0007 left it, with a pending and a settled turn.
            var workspaceId = Guid.NewGuid();
            await using (var connection = await store.Database.OpenWriterAsync(Ct))
            {
                await connection.ExecuteAsync("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)");
                foreach (var (version, _, sql) in SchemaMigrator.Scripts().Where(s => s.Version <= 7 && (s.Provider is null || s.Provider == provider)))
                {
                    await connection.ExecuteAsync(sql);
                    await connection.ExecuteAsync("INSERT INTO schema_migrations (version, applied_at) VALUES (@Version, 0)", new { Version = version });
                }

                await connection.ExecuteAsync(
                    "INSERT INTO workspaces (id, name, plan, credits, primary_bot_id, version, created_at, updated_at) VALUES (@Id, 'Acme', 'starter', 8, 'b', 1, 0, 0)",
                    new { Id = workspaceId.ToString("D") });
                await connection.ExecuteAsync(
                    """
                    INSERT INTO turns (id, workspace_id, key_id, session_id, admitted_at, credits, status, alive_at) VALUES
                        ('pending-1', @Id, NULL, 's', 1000, 1, 'pending', 2000), ('done-1', @Id, NULL, 's', 1000, 1, 'done', NULL)
                    """, new { Id = workspaceId.ToString("D") });
            }

            // :: Step 2: 0008 and later keep what the turns were.
            Assert.True(await new SchemaMigrator(store.Database).MigrateAsync(Ct) >= 1);
            await using (var connection = await store.Database.OpenAsync(Ct))
            {
                Assert.Equal(["pending-1"], await connection.QueryAsync<string>("SELECT id FROM pending_turns"));
                Assert.Equal(2000, await connection.ExecuteScalarAsync<long>("SELECT alive_at FROM pending_turns"));
                Assert.Equal(["done-1", "pending-1"], await connection.QueryAsync<string>("SELECT id FROM turns ORDER BY id"));
            }

            // The pending one can still be refunded (its credit comes back, it leaves the window); the settled one stays counted.
            await store.Ledger.RefundAsync("pending-1", Ct);
            Assert.Equal(9, (await store.Tenants.GetWorkspaceAsync(workspaceId, Ct))!.Credits);
            await using (var connection = await store.Database.OpenAsync(Ct))
            {
                Assert.Equal(["done-1"], await connection.QueryAsync<string>("SELECT id FROM turns"));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Migrate_Sqlite_RunsAndRecordsOnlyTheScriptsForSqlite()
    {
        var folder = Directory.CreateTempSubdirectory("luluclaw-migrator-").FullName;
        try
        {
            await using var store = StorageServiceCollectionExtensions.CreateSqlite($"Data Source={Path.Combine(folder, "test.db")}");
            var expected = SchemaMigrator.Scripts().Where(s => s.Provider is null or "sqlite").Select(s => s.Version).ToArray();

            Assert.Equal(expected.Length, await new SchemaMigrator(store.Database).MigrateAsync(Ct));

            await using (var connection = await store.Database.OpenAsync(Ct))
            {
                Assert.Equal(expected, await connection.QueryAsync<long>(new CommandDefinition(
                    "SELECT version FROM schema_migrations ORDER BY version", cancellationToken: Ct)));
            }

            Assert.Equal(0, await new SchemaMigrator(store.Database).MigrateAsync(Ct));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
