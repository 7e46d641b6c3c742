using System.Collections.Concurrent;
using LuluClaw.Actors;
using LuluClaw.Silo.Runtime;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.Silo.Tests.Runtime;

public interface ICounterGrain : IGrainWithStringKey
{
    Task<int> RecordAsync(int value, CancellationToken cancellationToken);

    Task<IReadOnlyList<int>> GetRecordedAsync(CancellationToken cancellationToken);

    Task FailAsync(CancellationToken cancellationToken);

    Task<int> ActivationNumberAsync(CancellationToken cancellationToken);

    /// <summary>The same, without waiting for its turn.</summary>
    [AlwaysInterleave]
    Task<int> PeekActivationNumberAsync(CancellationToken cancellationToken);

    Task LeaveAsync(CancellationToken cancellationToken);

    /// <summary>Yields 1..<paramref name="count"/>, recording each; records -1 when its enumeration is cancelled.</summary>
    IAsyncEnumerable<int> CountAsync(int count, CancellationToken cancellationToken);
}

/// <summary>What the test grains tell the tests: activations, deactivations, overlap.</summary>
public sealed class Probe
{
    public int Activations;
    public int Deactivations;
    public int InFlight;
    public int MaxInFlight;
    public ConcurrentDictionary<string, int> FailActivationsLeft { get; } = new();
}

public sealed class CounterGrain(IGrainContext context, Probe probe) : ICounterGrain, IGrainBase
{
    private readonly List<int> _recorded = [];
    private int _activationNumber;

    public async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (probe.FailActivationsLeft.TryGetValue(context.Key, out var left) && left > 0)
        {
            probe.FailActivationsLeft[context.Key] = left - 1;
            throw new InvalidOperationException($"activation of {context.Key} failed on purpose");
        }

        _activationNumber = Interlocked.Increment(ref probe.Activations);
    }

    public Task OnDeactivateAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref probe.Deactivations);
        return Task.CompletedTask;
    }

    public async Task<int> RecordAsync(int value, CancellationToken cancellationToken)
    {
        var inFlight = Interlocked.Increment(ref probe.InFlight);
        InterlockedMax(ref probe.MaxInFlight, inFlight);
        await Task.Yield(); // give any overlapping call the chance to show itself
        _recorded.Add(value);
        Interlocked.Decrement(ref probe.InFlight);
        return _recorded.Count;
    }

    public Task<IReadOnlyList<int>> GetRecordedAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<int>>(_recorded.ToArray());

    public Task FailAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("boom");

    public Task<int> ActivationNumberAsync(CancellationToken cancellationToken) => Task.FromResult(_activationNumber);

    public Task<int> PeekActivationNumberAsync(CancellationToken cancellationToken) => Task.FromResult(_activationNumber);

    public Task LeaveAsync(CancellationToken cancellationToken)
    {
        context.DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<int> CountAsync(int count, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (var i = 1; i <= count; i++)
        {
            try
            {
                await Task.Delay(i == 3 ? Timeout.InfiniteTimeSpan : TimeSpan.Zero, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                _recorded.Add(-1); // the turn's cleanup, before any later call runs
                throw;
            }

            _recorded.Add(i);
            yield return i;
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}

public sealed class GrainRuntimeTests : IAsyncDisposable
{
    private readonly ManualTimeProvider _time = new();
    private readonly Probe _probe = new();
    private readonly ServiceProvider _services;
    private readonly GrainRuntime _runtime;

    public GrainRuntimeTests()
    {
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(_probe);
        services.AddOptions<ActorRuntimeOptions>().Configure(o => o.IdleTimeout = TimeSpan.FromMinutes(10));
        services.AddActorRuntime().AddGrain<ICounterGrain, CounterGrain>();
        _services = services.BuildServiceProvider();
        _runtime = _services.GetRequiredService<GrainRuntime>();
    }

    public ValueTask DisposeAsync() => _services.DisposeAsync();

    [Fact]
    public async Task Calls_ThousandConcurrent_RunOneAtATimeInArrivalOrder()
    {
        var grain = _runtime.Get<ICounterGrain>("one");

        // Issued in order from one thread, awaited together: the mailbox must keep that order.
        var calls = Enumerable.Range(0, 1000).Select(i => grain.RecordAsync(i, TestContext.Current.CancellationToken)).ToArray();
        var counts = await Task.WhenAll(calls);

        Assert.Equal(Enumerable.Range(0, 1000), await grain.GetRecordedAsync(TestContext.Current.CancellationToken));
        Assert.Equal(Enumerable.Range(1, 1000), counts);
        Assert.Equal(1, _probe.MaxInFlight);
        Assert.Equal(1, _probe.Activations);
    }

    [Fact]
    public async Task Stream_ItemsArriveAsYielded_StoppingEarlyCancelsTheGrain_AndLaterCallsWaitForItsCleanup()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("stream");
        var received = new List<int>();

        // The grain yields 1 and 2, then waits forever before 3: the reader sees 1 and 2 while the turn is still open.
        await using (var items = grain.CountAsync(5, ct).GetAsyncEnumerator(ct))
        {
            Assert.True(await items.MoveNextAsync());
            received.Add(items.Current);
            var queued = grain.RecordAsync(100, ct); // waits: the stream's turn is not over
            Assert.True(await items.MoveNextAsync());
            received.Add(items.Current);
            Assert.False(queued.IsCompleted);
        }

        // Disposing the enumerator cancelled the grain's enumeration; its cleanup ran before the queued call.
        Assert.Equal([1, 2], received);
        Assert.Equal([1, 2, -1, 100], await grain.GetRecordedAsync(ct));
        Assert.Equal(1, _probe.Activations);
    }

    [Fact]
    public async Task Stream_ReadToTheEnd_YieldsEveryItemInOrder()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("short");

        var received = new List<int>();
        await foreach (var item in grain.CountAsync(2, ct))
        {
            received.Add(item);
        }

        Assert.Equal([1, 2], received);
        Assert.Equal(3, await grain.RecordAsync(7, ct));
    }

    [Fact]
    public async Task Calls_FromManyThreads_NeverOverlap()
    {
        var grain = _runtime.Get<ICounterGrain>("many");
        await Parallel.ForAsync(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, ct) => await grain.RecordAsync(i, ct));

        var recorded = await grain.GetRecordedAsync(TestContext.Current.CancellationToken);
        Assert.Equal(Enumerable.Range(0, 1000), recorded.Order());
        Assert.Equal(1, _probe.MaxInFlight);
    }

    [Fact]
    public async Task Get_SameKey_OneActivation_OtherKey_Another()
    {
        var ct = TestContext.Current.CancellationToken;
        var a = _runtime.Get<ICounterGrain>("a");
        var b = _runtime.Get<ICounterGrain>("b"); // references are copies of one per contract: each keeps its own key
        await a.RecordAsync(1, ct);
        await _runtime.Get<ICounterGrain>("a").RecordAsync(2, ct);
        await b.RecordAsync(3, ct);

        Assert.Equal(("ICounterGrain/a", "ICounterGrain/b"), (a.ToString(), b.ToString()));
        Assert.Equal([1, 2], await _runtime.Get<ICounterGrain>("a").GetRecordedAsync(ct));
        Assert.Equal([3], await _runtime.Get<ICounterGrain>("b").GetRecordedAsync(ct));
        Assert.Equal(2, _probe.Activations);
        Assert.Equal(2, _runtime.ActivationCount);
    }

    [Fact]
    public async Task Call_Throws_ExceptionReachesCaller_AndActivationStaysUsable()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("throws");
        await grain.RecordAsync(1, ct);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => grain.FailAsync(ct));
        Assert.Equal("boom", error.Message);

        await grain.RecordAsync(2, ct);
        Assert.Equal(new[] { 1, 2 }, await grain.GetRecordedAsync(ct));
        Assert.Equal(1, _probe.Activations);
    }

    [Fact]
    public async Task Activation_Fails_IsRetriedOnNextCall()
    {
        var ct = TestContext.Current.CancellationToken;
        _probe.FailActivationsLeft["flaky"] = 2;
        var grain = _runtime.Get<ICounterGrain>("flaky");

        await Assert.ThrowsAsync<InvalidOperationException>(() => grain.RecordAsync(1, ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => grain.RecordAsync(2, ct));
        Assert.Equal(1, await grain.RecordAsync(3, ct));

        Assert.Equal([3], await grain.GetRecordedAsync(ct));
        Assert.Equal(1, _probe.Activations);
    }

    [Fact]
    public async Task Collect_TenThousandIdleActivations_LeavesTableEmpty()
    {
        var ct = TestContext.Current.CancellationToken;
        await Parallel.ForAsync(0, 10_000, ct, async (i, token) => await _runtime.Get<ICounterGrain>($"g{i}").RecordAsync(i, token));
        Assert.Equal(10_000, _runtime.ActivationCount);

        Assert.Equal(0, await _runtime.CollectIdleActivationsAsync(ct)); // not idle long enough yet
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        Assert.Equal(10_000, await _runtime.CollectIdleActivationsAsync(ct));

        Assert.Equal(0, _runtime.ActivationCount);
        Assert.Equal(10_000, _probe.Deactivations);
    }

    [Fact]
    public async Task Collect_BusyOrRecentActivation_IsKept_AndCollectedOneReactivates()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("kept");
        await grain.RecordAsync(1, ct);
        _time.Advance(TimeSpan.FromMinutes(9));
        await grain.RecordAsync(2, ct); // activity resets the idle clock
        _time.Advance(TimeSpan.FromMinutes(9));

        Assert.Equal(0, await _runtime.CollectIdleActivationsAsync(ct));
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(1, await _runtime.CollectIdleActivationsAsync(ct));

        // A new call makes a fresh activation, which loads its state again.
        Assert.Equal(2, await grain.ActivationNumberAsync(ct));
        Assert.Empty(await grain.GetRecordedAsync(ct));
    }

    [Fact]
    public async Task DeactivateOnIdle_CollectsAfterTheCall()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("leaving");
        await grain.RecordAsync(1, ct);
        await grain.LeaveAsync(ct);

        // The next call may race the deactivation; either way it lands on a fresh activation.
        Assert.Equal(2, await grain.ActivationNumberAsync(ct));
        Assert.Equal(1, _probe.Deactivations);
    }

    [Fact]
    public async Task AlwaysInterleave_RunsBesideABusyTurn_WhileOrdinaryCallsWait()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("busy");

        // Not activated yet: the interleaved call queues, so the activation loads first.
        Assert.Equal(1, await grain.PeekActivationNumberAsync(ct));

        // A stream that stops at its third item holds the activation's turn until it is cancelled.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var stream = grain.CountAsync(5, stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await stream.MoveNextAsync());
        var ordinary = grain.ActivationNumberAsync(ct);

        Assert.Equal(1, await grain.PeekActivationNumberAsync(ct)); // answered while the turn is held
        Assert.False(ordinary.IsCompleted);

        await stop.CancelAsync();
        await stream.DisposeAsync(); // the caller leaves: the stream's turn ends
        Assert.Equal(1, await ordinary);
    }

    [Fact]
    public async Task Reset_DropsTheActivationAfterTheCallsQueuedBeforeIt()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("reset");
        Assert.False(_runtime.Reset<ICounterGrain>("never-activated"));
        var recorded = Enumerable.Range(1, 10).Select(i => grain.RecordAsync(i, ct)).ToArray();

        Assert.True(_runtime.Reset<ICounterGrain>("reset"));
        await Task.WhenAll(recorded); // every call queued before the reset ran on the old activation

        Assert.Equal(2, await grain.ActivationNumberAsync(ct)); // then a fresh one, with its state loaded anew
        Assert.Empty(await grain.GetRecordedAsync(ct));
        Assert.Equal(1, _probe.Deactivations);
    }

    [Fact]
    public async Task Call_ToAnIdleLiveActivation_RunsOnTheCallersThread_WithoutAHop()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("inline");
        Assert.Equal(1, await grain.ActivationNumberAsync(ct)); // activated through the mailbox

        // A method that finishes without awaiting is answered before the call returns, ordinary or interleaved.
        var ordinary = grain.ActivationNumberAsync(ct);
        var interleaved = grain.PeekActivationNumberAsync(ct);
        Assert.True(ordinary.IsCompleted);
        Assert.True(interleaved.IsCompleted);
        Assert.Equal(1, await ordinary);

        // One that awaits still keeps the one-at-a-time order for the calls that queue behind it.
        var first = grain.RecordAsync(1, ct);
        var second = grain.RecordAsync(2, ct);
        Assert.Equal(new[] { 1, 2 }, await Task.WhenAll(first, second));
        Assert.Equal(new[] { 1, 2 }, await grain.GetRecordedAsync(ct));
        Assert.Equal(1, _probe.MaxInFlight);
    }

    [Fact]
    public async Task Call_ThrowsBeforeReturningItsTask_CallerGetsTheErrorThroughTheTask()
    {
        var ct = TestContext.Current.CancellationToken;
        var grain = _runtime.Get<ICounterGrain>("throws");
        Assert.Equal(1, await grain.ActivationNumberAsync(ct));

        var failing = grain.FailAsync(ct); // runs inline and throws synchronously: still a faulted task, not a throw here
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        Assert.Equal(1, await grain.ActivationNumberAsync(ct)); // and the activation stays usable
    }
}
