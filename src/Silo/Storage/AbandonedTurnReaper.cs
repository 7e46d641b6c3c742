using LuluClaw.Grains;
using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Gives back turns whose process died between admission and commit (a kill -9 mid model call):
/// once a pending turn has been silent for longer than the model timeout plus a minute (since its
/// admission, or since the last time its stream said it was alive), no live turn can still commit
/// it, so it leaves the window and its credits return. Any node may do this; it is one transaction.
/// The same sweep deletes settled turns older than the longest rate window (and an hour more, for
/// nodes whose clocks differ): they count in no window, and the table would otherwise keep a row for
/// every turn ever taken.
/// </summary>
internal sealed partial class AbandonedTurnReaper(
    ITurnLedger ledger, IOptionsMonitor<ModelCallOptions> models, TimeProvider time, ILogger<AbandonedTurnReaper> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        do
        {
            try
            {
                var now = time.GetUtcNow();
                var cutoff = now - TimeSpan.FromSeconds(models.CurrentValue.TimeoutSeconds) - Period;
                if (await ledger.RefundAbandonedAsync(cutoff, stoppingToken) is > 0 and var count)
                {
                    Log.Refunded(logger, count);
                }

                await ledger.ForgetSettledAsync(now - PlanOptions.LongestWindow - TimeSpan.FromHours(1), stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.Failed(logger, e);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Refunded {Count} turns abandoned between admission and commit")]
        public static partial void Refunded(ILogger logger, int count);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Refunding abandoned turns or pruning old ones failed; will try again")]
        public static partial void Failed(ILogger logger, Exception exception);
    }
}
