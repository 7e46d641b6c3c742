using Npgsql;

namespace LuluClaw.Tests;

/// <summary>
/// A fresh PostgreSQL database per test class on the server named by <c>LULUCLAW_TEST_POSTGRES</c>
/// (<c>test.sh</c> starts one). Without that variable the PostgreSQL tests are skipped, and say so.
/// </summary>
public sealed class TestPostgres : IAsyncDisposable
{
    private const string Variable = "LULUCLAW_TEST_POSTGRES";
    private readonly string _admin;
    private readonly string _name;

    private TestPostgres(string admin, string name, string connectionString)
    {
        _admin = admin;
        _name = name;
        ConnectionString = connectionString;
    }

    /// <summary>The connection string of the new database.</summary>
    public string ConnectionString { get; }

    /// <summary>Creates an empty database; skips the test when no server is configured.</summary>
    public static async Task<TestPostgres> CreateAsync()
    {
        var admin = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(admin))
        {
            if (Environment.GetEnvironmentVariable("LULUCLAW_REQUIRE_POSTGRES") == "1")
            {
                Assert.Fail($"{Variable} is not set, and LULUCLAW_REQUIRE_POSTGRES=1 says the PostgreSQL tests must run.");
            }

            Assert.Skip($"{Variable} is not set: run ./test.sh, which starts a PostgreSQL server, or point it at one.");
        }

        var name = $"luluclaw_test_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }

        var builder = new NpgsqlConnectionStringBuilder(admin) { Database = name, MaxPoolSize = 50 };
        return new TestPostgres(admin, name, builder.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public ManualTimeProvider() : this(new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero))
    {
    }

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    /// <summary>Moves the clock forward.</summary>
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
