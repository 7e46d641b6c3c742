using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// The statements of every turn (admission, commit, request counts), run through commands kept on
/// their connection instead of new ones per call.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite compiles a command's SQL when the command first runs and keeps the
/// compiled statement only as long as that command lives; Dapper makes a new command per call. On
/// the group-commit writer's one long-lived connection (SQLite) a kept command is compiled once for
/// the life of the process instead of on every turn, which was a tenth of the CPU a turn cost. On
/// PostgreSQL every open gives a new connection object, so its commands go with it; preparing there
/// is Npgsql's job (<c>Max Auto Prepare</c>, on by default in
/// <see cref="StorageServiceCollectionExtensions.CreatePostgres"/>).
/// A connection runs one statement at a time, so its commands are never shared between threads.
/// </remarks>
internal static class Statements
{
    private static readonly ConditionalWeakTable<DbConnection, Dictionary<string, DbCommand>> Kept = new();

    /// <summary>Runs <paramref name="sql"/>; returns the rows it changed.</summary>
    public static Task<int> ExecuteAsync(
        DbConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters) =>
        Command(connection, transaction, sql, parameters).ExecuteNonQueryAsync(cancellationToken);

    /// <summary>Runs <paramref name="sql"/>; returns the first column of its first row as a number, or null if it has none.</summary>
    public static Task<long?> ScalarAsync(
        DbConnection connection, DbTransaction transaction, string sql, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters) =>
        ScalarAsync(Command(connection, transaction, sql, parameters), cancellationToken);

    /// <summary>Runs <paramref name="sql"/>; returns its first row as <paramref name="read"/> makes it, or the default if it has none.</summary>
    public static Task<T?> RowAsync<T>(
        DbConnection connection, DbTransaction transaction, string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken,
        params ReadOnlySpan<(string Name, object? Value)> parameters) =>
        RowAsync(Command(connection, transaction, sql, parameters), read, cancellationToken);

    private static async Task<long?> ScalarAsync(DbCommand command, CancellationToken cancellationToken) =>
        await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } value and not DBNull
            ? Convert.ToInt64(value, CultureInfo.InvariantCulture)
            : null;

    private static async Task<T?> RowAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? read(reader) : default;
    }

    /// <summary>The command kept for <paramref name="sql"/> on <paramref name="connection"/>, bound to these values.</summary>
    private static DbCommand Command(DbConnection connection, DbTransaction transaction, string sql, ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var commands = Kept.GetValue(connection, static _ => []);
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, _) in parameters)
            {
                var parameter = command.CreateParameter();
                parameter.ParameterName = "@" + name; // as written in the SQL: bound by one lookup, not one per prefix tried
                command.Parameters.Add(parameter);
            }

            commands.Add(sql, command);
        }

        if (command.Parameters.Count != parameters.Length)
        {
            throw new InvalidOperationException($"'{sql}' was kept with {command.Parameters.Count} parameters and now run with {parameters.Length}");
        }

        command.Transaction = transaction;
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters[i].Value = parameters[i].Value ?? DBNull.Value;
        }

        return command;
    }
}
