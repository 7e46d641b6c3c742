using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Storage;

/// <summary>Per-key request counters in fixed windows (table <c>request_counts</c>): one upsert per request, the database counting.</summary>
public sealed class RequestCounter(Database database) : IRequestCounter
{
    public Task<long> CountAsync(string keyId, string bucket, DateTimeOffset windowStart, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, tx) =>
        {
            var start = Columns.Ms(windowStart);
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
}
