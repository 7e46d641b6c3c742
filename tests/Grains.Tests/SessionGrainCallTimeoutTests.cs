using LuluClaw.Tests;
using static LuluClaw.Grains.Tests.TwoSilos;

namespace LuluClaw.Grains.Tests;

/// <summary>Two silos whose grain calls time out after 3 s, so a test can make a call time out.</summary>
public sealed class TwoSilosWithShortCalls() : TwoSilos(responseTimeout: TimeSpan.FromSeconds(3));

/// <summary>
/// A turn whose call timed out while it waited for the session must not run afterwards: its caller
/// was told it failed (the HTTP surfaces answer 503 with Retry-After), so a turn stored and charged
/// later would come back as a duplicate when the client retries.
/// </summary>
public sealed class SessionGrainCallTimeoutTests(TwoSilosWithShortCalls silos) : IClassFixture<TwoSilosWithShortCalls>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SendAsync_CallTimesOutBehindHeldStream_TurnIsNeitherStoredNorCharged()
    {
        _ = silos.Cluster; // skips without PostgreSQL
        var tenant = await silos.CreateTenantAsync();
        var key = tenant.Session("timed-out");
        var tag = tenant.Tag;
        var onA = silos.A.GetGrain<ISessionGrain>(key);
        var onB = silos.B.GetGrain<ISessionGrain>(key);

        silos.Stub.HoldReplies(StubHold.AfterFirstChunk);
        try
        {
            // :: Turn 1 streams through A and is held after its first piece.
            await using var first = onA.StreamAsync(tenant.Turn($"{tag} one"), Ct).GetAsyncEnumerator(Ct);
            Assert.True(await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's admission"));
            Assert.True(await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's first piece"));

            // :: Turn 2 waits behind it, through B, until its call times out.
            var second = onB.SendAsync(tenant.Turn($"{tag} two"), Ct);
            Assert.IsType<TimeoutException>(await Within(Record.ExceptionAsync(() => second).AsTask(), $"session {key}: turn 2's call timing out"));

            // :: Released, turn 1 ends; then the grain is done with turn 2, and must not have run it.
            silos.Stub.ReleaseReplies();
            while (await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's stream after the release"))
            {
            }

            await Within(silos.Calls.WaitForExitAsync(onB, nameof(ISessionGrain.SendAsync), 1), $"session {key}: turn 2 leaving the grain");
            Assert.Equal(
                [("user", $"{tag} one"), ("assistant", $"Stub reply to: {tag} one")],
                (await onA.GetHistoryAsync(Ct)).Select(m => (m.Role, m.Content)));
            Assert.Single(silos.ModelRequests(tenant));
            Assert.Equal(Credits - 1, (await silos.A.GetGrain<IWorkspaceGrain>(tenant.WorkspaceId.ToString("D")).GetAsync(Ct))?.CreditsRemaining);
        }
        finally
        {
            silos.Stub.ReleaseReplies();
        }
    }
}
