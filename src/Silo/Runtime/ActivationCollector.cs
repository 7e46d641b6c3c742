using Microsoft.Extensions.Hosting;

namespace LuluClaw.Silo.Runtime;

/// <summary>Collects idle activations on a timer driven by the host's <see cref="TimeProvider"/>.</summary>
internal sealed class ActivationCollector(GrainRuntime runtime, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(runtime.CollectionPeriod, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await runtime.CollectIdleActivationsAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
