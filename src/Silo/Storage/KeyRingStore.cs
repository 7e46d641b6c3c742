namespace LuluClaw.Silo.Storage;

/// <summary>The Data Protection key ring (table <c>data_protection_keys</c>), shared by every node of the database.</summary>
public sealed class KeyRingStore(Database database)
{
    /// <summary>Every stored key element, as XML, oldest first.</summary>
    public Task<List<string>> GetAllAsync(CancellationToken cancellationToken) =>
        database.ReadAsync(c => Statements.RowsAsync(c, null, "SELECT xml FROM data_protection_keys ORDER BY created_at, name", r => r.GetString(0),
            cancellationToken), cancellationToken);

    /// <summary>Stores a key element; a second store of the same name keeps the first.</summary>
    public Task StoreAsync(string name, string xml, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, tx) => Statements.ExecuteAsync(c, tx,
            "INSERT INTO data_protection_keys (name, xml, created_at) VALUES (@Name, @Xml, @Now) ON CONFLICT (name) DO NOTHING",
            cancellationToken, ("Name", name), ("Xml", xml), ("Now", Columns.Ms(now))), cancellationToken);
}
