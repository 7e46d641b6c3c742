using System.Collections.Concurrent;
using LuluClaw.Silo.Models;
using LuluClaw.Silo.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace LuluClaw.Silo.Cluster;

/// <summary>Settings of the change feed (<c>Cluster</c> section, beside the Orleans settings); they matter on PostgreSQL only, where several silos share the database.</summary>
public sealed class ChangeFeedOptions
{
    /// <summary>Whether to <c>LISTEN</c> for other nodes' changes (default true). Off behind a pooler that cannot carry LISTEN (PgBouncer in transaction mode).</summary>
    public bool Listen { get; set; } = true;

    /// <summary>How often to read the changes table, catching any notification that was missed (default 2 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How far back each poll reads (default 1 minute): longer than any write transaction takes to commit.</summary>
    public TimeSpan Lookback { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long changes are kept in the table (default 1 hour).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// Applies other silos' changes to this silo's caches: a workspace's changed provider keys. Each change arrives by PostgreSQL <c>NOTIFY</c> at the commit
/// that made it, within milliseconds; a poll of the <c>cluster_changes</c> table every
/// <see cref="ClusterOptions.PollInterval"/> applies any that was missed (the listening connection
/// dropped, a notification lost), so every node converges either way. Each change is applied once.
/// </summary>
/// <remarks>
/// Grains need none of this: a bot, a key or a session has one activation in the cluster, so a
/// PATCH, a restart, a revocation or a delete reaches the only copy, and a bot's model client is
/// rebuilt on every silo when its version changes. What stays per silo is the model-client cache's
/// view of a workspace's provider keys (BYOK): a client built with the old key does not know it was
/// replaced, so every other silo drops the workspace's clients when the keys change. Credits, plans
/// and rate windows are never cached: each admission decides them in the database.
/// </remarks>
public sealed partial class ClusterChangeFeed(
    Database database, ClusterChangeLog log, ChatClientProvider models, IOptionsMonitor<ChangeFeedOptions> options, ILogger<ClusterChangeFeed> logger)
    : BackgroundService
{
    private readonly ConcurrentDictionary<string, long> _applied = new();
    private int _listenFailures;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        !log.Shared
            ? Task.CompletedTask // one process owns the database (SQLite): nobody else changes it
            : Task.WhenAll(options.CurrentValue.Listen ? ListenAsync(stoppingToken) : Task.CompletedTask, PollAsync(stoppingToken));

    /// <summary>Applies a change unless it is this node's own or was applied already.</summary>
    internal void Apply(ClusterChange change)
    {
        if (change.Node == log.NodeId || !_applied.TryAdd(change.Id, change.At))
        {
            return;
        }

        switch (change.Kind)
        {
            case ClusterChange.ProviderKeys when Guid.TryParse(change.Subject, out var workspaceId):
                models.EvictWorkspace(workspaceId);
                break;
            default:
                Log.UnknownChange(logger, change.Kind, change.Subject);
                break;
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = (NpgsqlConnection)await database.OpenAsync(stoppingToken);
                connection.Notification += (_, e) =>
                {
                    if (ClusterChange.Parse(e.Payload) is { } change)
                    {
                        Apply(change);
                    }
                };
                await Statements.ExecuteAsync(connection, null, $"LISTEN {ClusterChange.Channel}", stoppingToken);
                if (Interlocked.Exchange(ref _listenFailures, 0) > 0)
                {
                    Log.ListeningAgain(logger);
                }

                // Whatever was announced while this node was not listening is in the table.
                await PollOnceAsync(stoppingToken);
                while (true)
                {
                    if (!await connection.WaitAsync(TimeSpan.FromSeconds(15), stoppingToken))
                    {
                        // Quiet for a while: make sure the connection is still alive, so a dead one is noticed.
                        await Statements.ExecuteAsync(connection, null, "SELECT 1", stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (Interlocked.Increment(ref _listenFailures) == 1)
                {
                    Log.ListenFailed(logger, e);
                }

                await Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    private async Task PollAsync(CancellationToken stoppingToken)
    {
        var lastPrune = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            await Delay(options.CurrentValue.PollInterval, stoppingToken);
            try
            {
                await PollOnceAsync(stoppingToken);
                if (DateTimeOffset.UtcNow - lastPrune > TimeSpan.FromMinutes(10))
                {
                    lastPrune = DateTimeOffset.UtcNow;
                    await log.PruneAsync((DateTimeOffset.UtcNow - options.CurrentValue.Retention).ToUnixTimeMilliseconds(), stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.PollFailed(logger, e.Message);
            }
        }
    }

    private async Task PollOnceAsync(CancellationToken cancellationToken)
    {
        var since = (DateTimeOffset.UtcNow - options.CurrentValue.Lookback).ToUnixTimeMilliseconds();
        foreach (var change in await log.SinceAsync(since, cancellationToken))
        {
            Apply(change);
        }

        // Forget what has left the lookback: it cannot come back from the table.
        foreach (var (id, at) in _applied)
        {
            if (at <= since)
            {
                _applied.TryRemove(id, out _);
            }
        }
    }

    private static async Task Delay(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Not listening for other nodes' changes; retrying every second, and polling meanwhile")]
        public static partial void ListenFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Listening for other nodes' changes again")]
        public static partial void ListeningAgain(ILogger logger);

        [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Could not read other nodes' changes: {Reason}")]
        public static partial void PollFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Ignoring a cluster change of unknown kind {Kind} ({Subject})")]
        public static partial void UnknownChange(ILogger logger, string kind, string subject);
    }
}
