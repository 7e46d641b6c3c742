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
