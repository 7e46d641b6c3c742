using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The one way storage talks to the database: a statement, its parameters by name and position,
/// and its rows read by column position. On the SQLite writer's connection each statement is
/// compiled once and kept; elsewhere a command is made per call.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite compiles a command's SQL when the command first runs and keeps the
/// compiled statement only as long as that command lives; Dapper makes a new command per call. On
/// SQLite (the group-commit writer's one long-lived connection) a statement is compiled once for the
/// life of the connection and run through SQLite's own calls (<see cref="SqliteStatement"/>): its
/// parameters are bound by position, looked up once, where Microsoft.Data.Sqlite looks each name up
/// on every run. Keeping compiled statements saved a tenth of the CPU a turn cost; going around
/// Microsoft.Data.Sqlite then gave 15% more turns/s.
/// Only connections handed to <see cref="Keep"/> (the group-commit writer's) run that way: a pooled
/// reader's connection object is new on every open, and statements compiled on it would outlive it.
/// On PostgreSQL every open gives a new connection object, so a command per call costs little;
/// preparing there is Npgsql's job (<c>Max Auto Prepare</c>, on by default in
/// <see cref="StorageServiceCollectionExtensions.CreatePostgres"/>).
/// A connection runs one statement at a time, so its statements are never shared between threads.
/// Dapper did the cold paths until issue 15; one style for every store keeps a store one readable
/// file, and by-position readers are as short as Dapper's row classes were.
/// </remarks>
internal static class Statements
{
    private static readonly ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteStatement>> Compiled = new();

    /// <summary>Compiles and keeps every statement run on <paramref name="connection"/> (a SQLite connection that lives long: the writer's) until <see cref="Release"/>.</summary>
    public static void Keep(DbConnection connection)
    {
        if (connection is SqliteConnection sqlite)
        {
            Compiled.GetValue(sqlite, static _ => []);
        }
    }

    /// <summary>
    /// Lets go of what is kept for <paramref name="connection"/>, before it closes: SQLite's compiled
    /// statements are finalized now rather than when the collector gets to them.
    /// </summary>
    public static void Release(DbConnection connection)
    {
        if (connection is SqliteConnection sqlite && Compiled.TryGetValue(sqlite, out var statements))
        {
            Compiled.Remove(sqlite);
            foreach (var statement in statements.Values)
            {
                statement.Dispose();
            }
        }
    }

    /// <summary>Runs <paramref name="sql"/>; returns the rows it changed.</summary>
    public static Task<int> ExecuteAsync(
        DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (KeptStatement(connection, sql, cancellationToken, parameters) is { } statement)
        {
            return Task.FromResult(statement.Execute());
        }

        return ExecuteAsync(Command(connection, transaction, sql, parameters), cancellationToken);
    }

    /// <summary>Runs <paramref name="sql"/>; returns the first column of its first row as a number, or null if it has none.</summary>
    public static Task<long?> ScalarAsync(
        DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (KeptStatement(connection, sql, cancellationToken, parameters) is { } statement)
        {
            return Task.FromResult(statement.Row(static row => row.IsNull(0) ? (long?)null : row.GetInt64(0)));
        }

        return ScalarAsync(Command(connection, transaction, sql, parameters), cancellationToken);
    }

    /// <summary>Runs <paramref name="sql"/>; returns its first row as <paramref name="read"/> makes it, or the default if it has none.</summary>
    public static Task<T?> RowAsync<T>(
        DbConnection connection, DbTransaction? transaction, string sql, Func<IRow, T> read, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (KeptStatement(connection, sql, cancellationToken, parameters) is { } statement)
        {
            return Task.FromResult(statement.Row(read));
        }

        return RowAsync(Command(connection, transaction, sql, parameters), read, cancellationToken);
    }

    /// <summary>Runs <paramref name="sql"/>; returns every row as <paramref name="read"/> makes it.</summary>
    public static Task<List<T>> RowsAsync<T>(
        DbConnection connection, DbTransaction? transaction, string sql, Func<IRow, T> read, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (KeptStatement(connection, sql, cancellationToken, parameters) is { } statement)
        {
            return Task.FromResult(statement.Rows(read));
        }

        return RowsAsync(Command(connection, transaction, sql, parameters), read, cancellationToken);
    }


    private static async Task<int> ExecuteAsync(DbCommand command, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<List<T>> RowsAsync<T>(DbCommand command, Func<IRow, T> read, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var rows = new List<T>();
            var row = new ReaderRow(reader);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add(read(row));
            }

            return rows;
        }
    }

    private static async Task<long?> ScalarAsync(DbCommand command, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } value and not DBNull
                ? Convert.ToInt64(value, CultureInfo.InvariantCulture)
                : null;
        }
    }

    private static async Task<T?> RowAsync<T>(DbCommand command, Func<IRow, T> read, CancellationToken cancellationToken)
    {
        await using (command.ConfigureAwait(false))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? read(new ReaderRow(reader)) : default;
        }
    }

    /// <summary>A new command for <paramref name="sql"/> on <paramref name="connection"/>, bound to these values.</summary>
    private static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@" + name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>
    /// On a connection handed to <see cref="Keep"/>: the statement compiled for <paramref name="sql"/>
    /// (compiled now if it is new), bound to these values. Null on any other connection, which runs a
    /// command instead.
    /// </summary>
    private static SqliteStatement? KeptStatement(
        DbConnection connection, string sql, CancellationToken cancellationToken, ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (connection is not SqliteConnection sqlite || !Compiled.TryGetValue(sqlite, out var statements))
        {
            return null;
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (!statements.TryGetValue(sql, out var statement))
        {
            statement = SqliteStatement.Compile(sqlite.Handle!, sql, parameters);
            statements.Add(sql, statement);
        }

        CheckCount(sql, statement.ParameterCount, parameters.Length);
        statement.Bind(parameters);
        return statement;
    }

    private static void CheckCount(string sql, int kept, int given)
    {
        if (kept != given)
        {
            throw new InvalidOperationException($"'{sql}' was kept with {kept} parameters and now run with {given}");
        }
    }

    /// <summary>A row of a <see cref="DbDataReader"/>.</summary>
    private sealed class ReaderRow(DbDataReader reader) : IRow
    {
        public bool IsNull(int column) => reader.IsDBNull(column);

        public long GetInt64(int column) => reader.GetInt64(column);

        public string GetString(int column) => reader.GetString(column);

        public byte[] GetBytes(int column) => reader.GetFieldValue<byte[]>(column);
    }

    /// <summary>
    /// One compiled SQLite statement and where each of its parameters goes. Runs through SQLite's
    /// calls directly; an error is thrown as the <see cref="SqliteException"/> Microsoft.Data.Sqlite
    /// would throw, and the statement is reset after every run, so it never holds the database.
    /// </summary>
    private sealed class SqliteStatement : IRow, IDisposable
    {
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _statement;
        private readonly int[] _positions;

        private SqliteStatement(sqlite3 db, sqlite3_stmt statement, int[] positions)
        {
            _db = db;
            _statement = statement;
            _positions = positions;
        }

        public int ParameterCount => _positions.Length;

        public static SqliteStatement Compile(sqlite3 db, string sql, ReadOnlySpan<(string Name, object? Value)> parameters)
        {
            Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
            var positions = new int[parameters.Length];
            for (var i = 0; i < parameters.Length; i++)
            {
                positions[i] = raw.sqlite3_bind_parameter_index(statement, "@" + parameters[i].Name);
                if (positions[i] == 0)
                {
                    statement.Dispose();
                    throw new InvalidOperationException($"'{sql}' has no parameter @{parameters[i].Name}");
                }
            }

            if (raw.sqlite3_bind_parameter_count(statement) != parameters.Length)
            {
                statement.Dispose();
                throw new InvalidOperationException($"'{sql}' has parameters that were given no value");
            }

            return new SqliteStatement(db, statement, positions);
        }

        public void Bind(ReadOnlySpan<(string Name, object? Value)> parameters)
        {
            for (var i = 0; i < parameters.Length; i++)
            {
                var at = _positions[i];
                Check(_db, parameters[i].Value switch
                {
                    null or DBNull => raw.sqlite3_bind_null(_statement, at),
                    string s => raw.sqlite3_bind_text16(_statement, at, s.AsSpan()),
                    long l => raw.sqlite3_bind_int64(_statement, at, l),
                    int n => raw.sqlite3_bind_int64(_statement, at, n),
                    bool b => raw.sqlite3_bind_int64(_statement, at, b ? 1 : 0),
                    double d => raw.sqlite3_bind_double(_statement, at, d),
                    byte[] bytes => raw.sqlite3_bind_blob(_statement, at, bytes),
                    var other => throw new NotSupportedException($"no SQLite binding for {other.GetType().Name}"),
                });
            }
        }

        /// <summary>Runs the statement to its end; returns the rows it changed.</summary>
        public int Execute()
        {
            try
            {
                int rc;
                while ((rc = raw.sqlite3_step(_statement)) == raw.SQLITE_ROW)
                {
                }

                Check(_db, rc);
                return raw.sqlite3_changes(_db);
            }
            finally
            {
                raw.sqlite3_reset(_statement);
            }
        }

        /// <summary>Runs the statement to its end; returns every row as <paramref name="read"/> makes it.</summary>
        public List<T> Rows<T>(Func<IRow, T> read)
        {
            try
            {
                var rows = new List<T>();
                int rc;
                while ((rc = raw.sqlite3_step(_statement)) == raw.SQLITE_ROW)
                {
                    rows.Add(read(this));
                }

                Check(_db, rc);
                return rows;
            }
            finally
            {
                raw.sqlite3_reset(_statement);
            }
        }

        /// <summary>Runs the statement; returns its first row as <paramref name="read"/> makes it, or the default if it has none.</summary>
        public T? Row<T>(Func<IRow, T> read)
        {
            try
            {
                var rc = raw.sqlite3_step(_statement);
                if (rc == raw.SQLITE_ROW)
                {
                    return read(this);
                }

                Check(_db, rc);
                return default;
            }
            finally
            {
                // A statement that changes rows (RETURNING) made all its changes on its first step.
                raw.sqlite3_reset(_statement);
            }
        }

        public void Dispose() => _statement.Dispose();

        public bool IsNull(int column) => raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL;

        public long GetInt64(int column) => raw.sqlite3_column_int64(_statement, column);

        public string GetString(int column) => raw.sqlite3_column_text(_statement, column).utf8_to_string();

        public byte[] GetBytes(int column) => raw.sqlite3_column_blob(_statement, column).ToArray();

        private static void Check(sqlite3 db, int rc)
        {
            if (rc is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
            {
                SqliteException.ThrowExceptionForRC(rc, db);
            }
        }
    }
}

/// <summary>One row of a result, by column position.</summary>
internal interface IRow
{
    bool IsNull(int column);

    long GetInt64(int column);

    string GetString(int column);

    byte[] GetBytes(int column);
}

/// <summary>The column readers every store shares: storage keeps times as Unix milliseconds and lists as space-separated words.</summary>
internal static class Columns
{
    public static long? Int64OrNull(this IRow row, int column) => row.IsNull(column) ? null : row.GetInt64(column);

    public static string? StringOrNull(this IRow row, int column) => row.IsNull(column) ? null : row.GetString(column);

    public static DateTimeOffset Time(this IRow row, int column) => DateTimeOffset.FromUnixTimeMilliseconds(row.GetInt64(column));

    public static DateTimeOffset? TimeOrNull(this IRow row, int column) => row.IsNull(column) ? null : row.Time(column);

    public static Guid Guid(this IRow row, int column) => System.Guid.Parse(row.GetString(column));

    public static string[] Words(this IRow row, int column) => row.GetString(column).Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>A time as stored.</summary>
    public static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    /// <summary>A time as stored, or null.</summary>
    public static long? Ms(DateTimeOffset? time) => time?.ToUnixTimeMilliseconds();

    /// <summary>A workspace id as stored.</summary>
    public static string Id(Guid id) => id.ToString("D");
}
