-- Issue "Orleans' schema, written by us": what Orleans' ADO.NET clustering provider
-- (Microsoft.Orleans.Clustering.AdoNet, invariant "Npgsql") needs on PostgreSQL, and nothing else:
-- no grain storage, no reminders. PostgreSQL only: SQLite runs one silo with localhost clustering.
--
-- The package ships no schema script. On start, a silo (and a client looking for gateways) reads
-- every row of a table named OrleansQuery, columns QueryKey and QueryText, and from then on runs
-- those texts with named parameters (@Name). It refuses to start if any of its nine keys is missing.
-- So this script creates three tables and fills the first:
--
--   OrleansQuery              the provider's named queries, written below.
--   orleans_cluster_versions  one row per cluster: its membership version. Every change to a cluster's
--                             members (a silo joining, changing status, suspecting another) must name
--                             the version it read and moves it on by one, or it fails: that is how the
--                             membership protocol tells concurrent writers apart.
--   orleans_cluster_members   one row per silo incarnation (address, port, generation).
--
-- What the provider binds (read in its 10.4.2 source, RelationalOrleansQueries and DbStoredQueries):
--   @DeploymentId  text        the cluster id (ClusterOptions.ClusterId)
--   @Address       text        a silo's IP address, as IPAddress.ToString() writes it
--   @Port, @Generation, @ProxyPort, @Status  integer   (@Status: SiloStatus, Active = 3, Dead = 6)
--   @SiloName, @HostName       text
--   @StartTime, @IAmAliveTime  timestamptz (UTC DateTime values)
--   @SuspectTimes  text, or null: "silo,time|silo,time" as the provider writes it; stored as given
--   @Version       integer     the membership version the caller read (not the one it moves to);
--                              the provider also uses it as the etag of every member row it read
-- What it reads back, by column name: Version (any integer type); Port, Generation, Status and
-- ProxyPort as 32-bit integers; Address, SiloName, HostName and SuspectTimes (or null) as text;
-- StartTime and IAmAliveTime as DateTime. A membership row whose StartTime is null means "no member
-- here, only the version". A query answering yes or no returns one row of one boolean column.
--
-- The queries, each in a single statement so that it is atomic without an explicit transaction:
--
--   InsertMembershipVersionKey      (@DeploymentId) -> one boolean: creates the cluster's version row at
--                                   version 0 if it has none; true if this call created it.
--   MembershipReadAllKey            (@DeploymentId) -> the version and every member of the cluster, read
--                                   in one snapshot: one row per member, each carrying the version, or a
--                                   single row with the version and null member columns if there are no
--                                   members. No row at all if the cluster has no version row.
--   MembershipReadRowKey            (@DeploymentId, @Address, @Port, @Generation) -> the same, for that
--                                   one silo only: one row with the version and the member, or with the
--                                   version and null member columns.
--   InsertMembershipKey             (@DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName,
--                                   @Status, @ProxyPort, @StartTime, @IAmAliveTime, @Version) -> one
--                                   boolean: if the cluster is still at @Version and the silo is not a
--                                   member yet, adds it and moves the version on, and says true;
--                                   otherwise changes nothing and says false.
--   UpdateMembershipKey             (@DeploymentId, @Address, @Port, @Generation, @Status, @SuspectTimes,
--                                   @IAmAliveTime, @Version) -> one boolean: if the cluster is still at
--                                   @Version and the silo is a member, sets its status, suspicions and
--                                   last sign of life, moves the version on, and says true; otherwise
--                                   changes nothing and says false.
--   UpdateIAmAlivetimeKey           (@DeploymentId, @Address, @Port, @Generation, @IAmAliveTime) -> no
--                                   result: records a silo's last sign of life. A heartbeat is not a
--                                   membership change, so it leaves the version alone.
--   GatewaysQueryKey                (@DeploymentId, @Status) -> Address, ProxyPort, Generation of every
--                                   member of the cluster with that status (the client asks for Active)
--                                   that accepts clients (ProxyPort above 0).
--   DeleteMembershipTableEntriesKey (@DeploymentId) -> no result: forgets the cluster, version and members.
--   CleanupDefunctSiloEntriesKey    (@DeploymentId, @IAmAliveTime) -> no result: deletes the cluster's
--                                   dead members (status 6) last seen alive before @IAmAliveTime. A dead
--                                   silo never comes back, so this changes no one's view: no new version.
--
-- Left out on purpose: the provider also looks for an optional CleanupDefunctSiloEntryKey, which
-- would delete dead silos one at a time, each only if its row is still as read; without it the
-- provider runs CleanupDefunctSiloEntriesKey, which is exact here since a dead silo's row never
-- changes again.
--
-- The version checks need no explicit lock: a writer's UPDATE of the version row waits for any other
-- writer's, and then, at READ COMMITTED, sees the version that one committed and no longer matches.

-- Unquoted on purpose: the provider's own query (SELECT QueryKey, QueryText FROM OrleansQuery) is
-- unquoted, so PostgreSQL looks for orleansquery(querykey, querytext); Npgsql finds the columns by
-- name whatever their case.
CREATE TABLE IF NOT EXISTS OrleansQuery (
    QueryKey  TEXT PRIMARY KEY,
    QueryText TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS orleans_cluster_versions (
    cluster_id TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);

-- Forgetting a cluster (DeleteMembershipTableEntriesKey) deletes its version row; its members go with it.
CREATE TABLE IF NOT EXISTS orleans_cluster_members (
    cluster_id      TEXT NOT NULL REFERENCES orleans_cluster_versions (cluster_id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    port            INTEGER NOT NULL,
    generation      INTEGER NOT NULL,
    silo_name       TEXT NOT NULL,
    host_name       TEXT NOT NULL,
    status          INTEGER NOT NULL,
    proxy_port      INTEGER NOT NULL,
    suspect_times   TEXT,
    start_time      TIMESTAMPTZ NOT NULL,
    i_am_alive_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cluster_id, address, port, generation)
);

-- Dollar-quoted so that a query may hold quotes; a second run replaces the texts with these.
INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES

('InsertMembershipVersionKey', $q$
WITH created AS (
    INSERT INTO orleans_cluster_versions (cluster_id, version, changed_at)
    VALUES (@DeploymentId, 0, now())
    ON CONFLICT (cluster_id) DO NOTHING
    RETURNING 1)
SELECT EXISTS (SELECT 1 FROM created) AS "Created";
$q$),

('MembershipReadAllKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status",
       m.proxy_port AS "ProxyPort", m.suspect_times AS "SuspectTimes",
       m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
FROM orleans_cluster_versions v
LEFT JOIN orleans_cluster_members m ON m.cluster_id = v.cluster_id
WHERE v.cluster_id = @DeploymentId;
$q$),

('MembershipReadRowKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status",
       m.proxy_port AS "ProxyPort", m.suspect_times AS "SuspectTimes",
       m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
FROM orleans_cluster_versions v
LEFT JOIN orleans_cluster_members m
       ON m.cluster_id = v.cluster_id AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
WHERE v.cluster_id = @DeploymentId;
$q$),

('InsertMembershipKey', $q$
WITH bumped AS (
    UPDATE orleans_cluster_versions
    SET version = version + 1, changed_at = now()
    WHERE cluster_id = @DeploymentId AND version = @Version
      AND NOT EXISTS (SELECT 1 FROM orleans_cluster_members
                      WHERE cluster_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
    RETURNING cluster_id),
added AS (
    INSERT INTO orleans_cluster_members
        (cluster_id, address, port, generation, silo_name, host_name, status, proxy_port, suspect_times, start_time, i_am_alive_time)
    SELECT cluster_id, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, NULL, @StartTime, @IAmAliveTime
    FROM bumped
    ON CONFLICT DO NOTHING
    RETURNING 1)
SELECT EXISTS (SELECT 1 FROM added) AS "Inserted";
$q$),

('UpdateMembershipKey', $q$
WITH bumped AS (
    UPDATE orleans_cluster_versions
    SET version = version + 1, changed_at = now()
    WHERE cluster_id = @DeploymentId AND version = @Version
      AND EXISTS (SELECT 1 FROM orleans_cluster_members
                  WHERE cluster_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
    RETURNING cluster_id),
changed AS (
    UPDATE orleans_cluster_members m
    SET status = @Status, suspect_times = @SuspectTimes, i_am_alive_time = @IAmAliveTime
    FROM bumped
    WHERE m.cluster_id = bumped.cluster_id AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
    RETURNING 1)
SELECT EXISTS (SELECT 1 FROM changed) AS "Updated";
$q$),

('UpdateIAmAlivetimeKey', $q$
UPDATE orleans_cluster_members
SET i_am_alive_time = @IAmAliveTime
WHERE cluster_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation;
$q$),

('GatewaysQueryKey', $q$
SELECT address AS "Address", proxy_port AS "ProxyPort", generation AS "Generation"
FROM orleans_cluster_members
WHERE cluster_id = @DeploymentId AND status = @Status AND proxy_port > 0;
$q$),

('DeleteMembershipTableEntriesKey', $q$
DELETE FROM orleans_cluster_versions
WHERE cluster_id = @DeploymentId;
$q$),

('CleanupDefunctSiloEntriesKey', $q$
DELETE FROM orleans_cluster_members
WHERE cluster_id = @DeploymentId AND status = 6 AND i_am_alive_time < @IAmAliveTime;
$q$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
