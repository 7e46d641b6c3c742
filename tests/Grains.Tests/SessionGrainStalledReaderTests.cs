using LuluClaw.Tests;
using Microsoft.Extensions.Time.Testing;
using static LuluClaw.Grains.Tests.TwoSilos;

namespace LuluClaw.Grains.Tests;

/// <summary>Two silos on a clock the test moves.</summary>
public sealed class TwoSilosOnFakeTime() : TwoSilos(responseTimeout: null, time: Clock)
{
    /// <summary>The silos' clock.</summary>
    public static FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
}

/// <summary>
/// A stream whose reader stops reading without ever disposing it, as when the silo that called it is
/// killed: nobody tells the session grain, so its own buffer and stall timeout must free the session.
/// </summary>
public sealed class SessionGrainStalledReaderTests(TwoSilosOnFakeTime silos) : IClassFixture<TwoSilosOnFakeTime>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StreamAsync_ReaderStopsWithoutDisposing_TurnIsCutShortAfterTheStall_AndTheNextTurnRuns()
    {
        _ = silos.Cluster; // skips without PostgreSQL
        var tenant = await silos.CreateTenantAsync();
        var key = tenant.Session("stalled");
        var words = string.Join(' ', Enumerable.Range(1, 400).Select(i => $"w{i}"));
        silos.Stub.Reply = request => request.LastUserContent.EndsWith("long", StringComparison.Ordinal) ? words : StubModelServer.DefaultReply(request);
        try
        {
            // :: Turn 1 streams through A; its reader takes the first step and then never reads again, nor disposes.
            var stalled = silos.A.GetGrain<ISessionGrain>(key).StreamAsync(tenant.Turn($"{tenant.Tag} long"), CancellationToken.None).GetAsyncEnumerator(CancellationToken.None);
            Assert.True(await Within(stalled.MoveNextAsync().AsTask(), $"session {key}: turn 1's first step"));

            // :: Turn 2 through B waits at the gate: the model's 400 pieces overflow the grain's buffer, so turn 1 cannot finish.
            var second = silos.B.GetGrain<ISessionGrain>(key).SendAsync(tenant.Turn($"{tenant.Tag} after"), Ct);
            await Within(silos.Calls.WaitForEntryAsync(silos.B.GetGrain<ISessionGrain>(key), nameof(ISessionGrain.SendAsync), 1), $"session {key}: turn 2 entering");
            Assert.False(second.IsCompleted, $"session {key}: turn 2 finished while turn 1 held the gate");

            // :: Past the stall timeout (30 s on the silos' clock) turn 1 is settled with what was produced, and turn 2 runs.
            for (var i = 0; i < 3 && !second.IsCompleted; i++)
            {
                TwoSilosOnFakeTime.Clock.Advance(TimeSpan.FromSeconds(31));
                await Task.WhenAny(second, Task.Delay(TimeSpan.FromSeconds(5), Ct));
            }

            var result = await Within(second, $"session {key}: turn 2 after the stall");
            Assert.Equal(ChatTurnStatus.Ok, result.Status);
            var history = await silos.A.GetGrain<ISessionGrain>(key).GetHistoryAsync(Ct);
            Assert.Equal(["user", "assistant", "user", "assistant"], history.Select(m => m.Role));
            Assert.True(history[1].CutShort, $"session {key}: the stalled reply was not marked cut short");
            Assert.True(history[1].Content.Length is > 0 && history[1].Content.Length < words.Length, $"session {key}: the stalled reply kept {history[1].Content.Length} of {words.Length} characters");
            Assert.False(history[3].CutShort);
        }
        finally
        {
            silos.Stub.Reply = StubModelServer.DefaultReply;
        }
    }
}
