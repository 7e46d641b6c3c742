using LuluClaw.Tests;
using Orleans.Runtime;

using static LuluClaw.Grains.Tests.TwoSilos;

namespace LuluClaw.Grains.Tests;

/// <summary>
/// The session grain on two silos: one activation per thread whichever silo a call comes in by, one
/// order of turns (a held stream included), and a thread that outlives its activation.
/// </summary>
[Collection(TwoSilosCollection.Name)]
public sealed class SessionGrainTests(TwoSilos silos)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>How a caller leaves a stream it no longer reads.</summary>
    public enum Leave
    {
        /// <summary>Disposes the enumerator between two events.</summary>
        Dispose,
        /// <summary>Cancels the enumeration's token while it waits for the next event.</summary>
        Cancel,
    }

    [Fact]
    public async Task SendAsync_ConcurrentTurnsThroughBothSilos_OneActivationAndGaplessHistory()
    {
        const int Turns = 16;
        _ = silos.Cluster; // skips without PostgreSQL
        var tenant = await silos.CreateTenantAsync();
        var key = tenant.Session("concurrent");
        var tag = tenant.Tag;

        // Every turn and as many reads of the bot at once, alternating between the silos they enter through.
        var turns = Enumerable.Range(1, Turns)
            .Select(i => Via(i).GetGrain<ISessionGrain>(key).SendAsync(tenant.Turn($"{tag} message {i}"), Ct))
            .ToArray();
        var reads = Enumerable.Range(1, Turns).Select(i => Via(i + 1).GetGrain<IBotGrain>(tenant.BotId).GetAsync(Ct)).ToArray();
        var results = await Within(Task.WhenAll(turns), $"session {key}: {Turns} concurrent turns");
        var bots = await Within(Task.WhenAll(reads), $"bot {tenant.BotId}: {Turns} concurrent reads");
        Assert.All(results, r => Assert.Equal(ChatTurnStatus.Ok, r.Status));
        Assert.All(bots, b => Assert.Equal(tenant.BotId, b?.Id));

        // One activation of each in the whole cluster.
        Assert.Single(await silos.ActivationsAsync(silos.A.GetGrain<ISessionGrain>(key)));
        Assert.Single(await silos.ActivationsAsync(silos.A.GetGrain<IBotGrain>(tenant.BotId)));

        // One order, read through either silo: 1..2N without gaps, each reply right after its message.
        foreach (var via in new[] { silos.A, silos.B })
        {
            var history = await via.GetGrain<ISessionGrain>(key).GetHistoryAsync(Ct);
            Assert.Equal(Enumerable.Range(1, 2 * Turns).Select(i => (long)i), history.Select(m => m.Seq));
            for (var i = 0; i < history.Count; i += 2)
            {
                Assert.Equal("user", history[i].Role);
                Assert.Equal(("assistant", $"Stub reply to: {history[i].Content}"), (history[i + 1].Role, history[i + 1].Content));
            }

            Assert.Equal(
                Enumerable.Range(1, Turns).Select(i => $"{tag} message {i}").Order(StringComparer.Ordinal),
                history.Where(m => m.Role == "user").Select(m => m.Content).Order(StringComparer.Ordinal));
        }

        // Each turn was sent to the model after the whole thread before it: prompts of 2, 4, …, 2N messages (the system prompt included).
        Assert.Equal(Enumerable.Range(1, Turns).Select(i => 2 * i), silos.ModelRequests(tenant).Select(r => r.Messages.Count).Order());

        IGrainFactory Via(int i) => i % 2 == 0 ? silos.A : silos.B;
    }

    [Fact]
    public async Task StreamAsync_HeldThroughSiloA_TurnsThroughSiloBWaitAndSeeIt()
    {
        _ = silos.Cluster;
        var tenant = await silos.CreateTenantAsync("Streaming prompt.");
        var key = tenant.Session("held");
        var tag = tenant.Tag;
        var onA = silos.A.GetGrain<ISessionGrain>(key);
        var onB = silos.B.GetGrain<ISessionGrain>(key);
        var requestsBefore = silos.Stub.Requests.Count;

        silos.Stub.HoldReplies(StubHold.AfterFirstChunk);
        try
        {
            // :: Turn 1 streams through A; the model holds it after its first piece.
            await using var first = onA.StreamAsync(tenant.Turn($"{tag} one"), Ct).GetAsyncEnumerator(Ct);
            Assert.True(await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's first event"));
            Assert.True(first.Current.IsAdmission, $"session {key}: turn 1's first event is not its admission");
            Assert.True(await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's first piece"));
            Assert.Equal("Stub", first.Current.Delta);

            // :: Turn 2 (whole) and turn 3 (streamed) come in through B: they reach the grain, and wait there.
            var second = onB.SendAsync(tenant.Turn($"{tag} two"), Ct);
            await Within(silos.Calls.WaitForEntryAsync(onB, nameof(ISessionGrain.SendAsync), 1), $"session {key}: turn 2 entering the grain");
            var third = ReadToEndAsync(onB.StreamAsync(tenant.Turn($"{tag} three"), Ct));
            await Within(silos.Calls.WaitForEntryAsync(onB, "StartEnumeration", 2), $"session {key}: turn 3 entering the grain"); // turn 1 was the first

            // Neither may reach the model while turn 1 holds the thread. (A bounded look for something
            // that must not happen: with the gate broken, turn 2 would be there in milliseconds.)
            await Assert.ThrowsAsync<TimeoutException>(() => silos.Stub.WaitForRequestsAsync(requestsBefore + 2, Ct).WaitAsync(TimeSpan.FromSeconds(1), Ct));
            Assert.Single(silos.ModelRequests(tenant));
            Assert.False(second.IsCompleted, $"session {key}: turn 2 answered while turn 1 was held");
            Assert.False(third.IsCompleted, $"session {key}: turn 3 answered while turn 1 was held");

            // :: Released: turn 1 ends before turn 2 answers, and turn 2 before turn 3.
            silos.Stub.ReleaseReplies();
            List<ChatTurnEvent> firstEvents = [first.Current];
            while (await Within(first.MoveNextAsync().AsTask(), $"session {key}: turn 1's stream after the release"))
            {
                firstEvents.Add(first.Current);
                Assert.False(second.IsCompleted, $"session {key}: turn 2 answered before turn 1's stream ended");
            }

            Assert.Equal(ChatTurnStatus.Ok, firstEvents[^1].Result?.Status);
            Assert.Equal($"Stub reply to: {tag} one", string.Concat(firstEvents.Select(e => e.Delta)));
            Assert.Equal(ChatTurnStatus.Ok, (await Within(second, $"session {key}: turn 2 after the release")).Status);
            var thirdEvents = await Within(third, $"session {key}: turn 3 after the release");
            Assert.Equal(ChatTurnStatus.Ok, thirdEvents[^1].Result?.Status);

            // One thread, in the order the turns came: [user1, assistant1, user2, assistant2, user3, assistant3].
            var history = await onA.GetHistoryAsync(Ct);
            Assert.Equal(
                [
                    (1L, "user", $"{tag} one"), (2L, "assistant", $"Stub reply to: {tag} one"),
                    (3L, "user", $"{tag} two"), (4L, "assistant", $"Stub reply to: {tag} two"),
                    (5L, "user", $"{tag} three"), (6L, "assistant", $"Stub reply to: {tag} three"),
                ],
                history.Select(m => (m.Seq, m.Role, m.Content)));
            Assert.DoesNotContain(history, m => m.CutShort);

            // And each later turn was sent to the model with the whole turn before it.
            var prompts = silos.ModelRequests(tenant);
            Assert.Equal(3, prompts.Count);
            Assert.Equal(
                [("system", "Streaming prompt."), ("user", $"{tag} one"), ("assistant", $"Stub reply to: {tag} one"), ("user", $"{tag} two")],
                prompts[1].Messages.Select(m => (m.Role, m.Content)));
            Assert.Equal(
                [.. history.Take(4).Select(m => (m.Role, m.Content)), ("user", $"{tag} three")],
                prompts[2].Messages.Skip(1).Select(m => (m.Role, m.Content)));
        }
        finally
        {
            silos.Stub.ReleaseReplies();
        }
    }

    [Theory]
    [InlineData(Leave.Dispose)]
    [InlineData(Leave.Cancel)]
    public async Task StreamAsync_CallerLeavesHeldStream_GateOpensAndReplyIsStoredCutShort(Leave leave)
    {
        _ = silos.Cluster;
        var tenant = await silos.CreateTenantAsync();
        var key = tenant.Session($"left-{leave}");
        var tag = tenant.Tag;
        var onA = silos.A.GetGrain<ISessionGrain>(key);
        var onB = silos.B.GetGrain<ISessionGrain>(key);
        var abandonedBefore = silos.Stub.Abandoned;

        silos.Stub.HoldReplies(StubHold.AfterFirstChunk);
        try
        {
            // :: Turn 1 streams through A and is held after its first piece; turn 2 waits for it in the grain.
            using var reading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var stream = onA.StreamAsync(tenant.Turn($"{tag} one"), reading.Token).GetAsyncEnumerator(reading.Token);
            Assert.True(await Within(stream.MoveNextAsync().AsTask(), $"session {key}: turn 1's first event"));
            Assert.True(stream.Current.IsAdmission, $"session {key}: turn 1's first event is not its admission");
            Assert.True(await Within(stream.MoveNextAsync().AsTask(), $"session {key}: turn 1's first piece"));
            Assert.Equal("Stub", stream.Current.Delta);
            var second = onB.SendAsync(tenant.Turn($"{tag} two"), Ct);
            await Within(silos.Calls.WaitForEntryAsync(onB, nameof(ISessionGrain.SendAsync), 1), $"session {key}: turn 2 entering the grain");
            Assert.False(second.IsCompleted, $"session {key}: turn 2 answered while turn 1 was held");

            // :: The caller of turn 1 leaves, the model still holding.
            if (leave == Leave.Dispose)
            {
                await Within(stream.DisposeAsync().AsTask(), $"session {key}: disposing turn 1's stream");
            }
            else
            {
                var waiting = stream.MoveNextAsync().AsTask();
                await reading.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(waiting, $"session {key}: turn 1's cancelled read"));
                await stream.DisposeAsync();
            }

            // The grain gives up its model call and opens the thread: turn 2 goes through, with the model still holding streams.
            await Within(silos.Stub.WaitForAbandonedAsync(abandonedBefore + 1, Ct), $"session {key}: turn 1's model call being cancelled");
            Assert.Equal(ChatTurnStatus.Ok, (await Within(second, $"session {key}: turn 2 after turn 1 was left")).Status);

            // What the model had said is kept, marked as cut short, and turn 2 was sent it.
            var history = await onA.GetHistoryAsync(Ct);
            Assert.Equal(
                [
                    (1L, "user", $"{tag} one", false), (2L, "assistant", "Stub", true),
                    (3L, "user", $"{tag} two", false), (4L, "assistant", $"Stub reply to: {tag} two", false),
                ],
                history.Select(m => (m.Seq, m.Role, m.Content, m.CutShort)));
            Assert.Equal(
                [("user", $"{tag} one"), ("assistant", "Stub"), ("user", $"{tag} two")],
                silos.ModelRequests(tenant)[^1].Messages.Skip(1).Select(m => (m.Role, m.Content)));
        }
        finally
        {
            silos.Stub.ReleaseReplies();
        }
    }

    [Fact]
    public async Task GetHistoryAsync_AfterIdleCollection_NewActivationReadsTheStoredThread()
    {
        var cluster = silos.Cluster;
        var tenant = await silos.CreateTenantAsync();
        var key = tenant.Session("collected");
        var tag = tenant.Tag;
        var onA = silos.A.GetGrain<ISessionGrain>(key);
        var onB = silos.B.GetGrain<ISessionGrain>(key);
        Assert.Equal(ChatTurnStatus.Ok, (await onA.SendAsync(tenant.Turn($"{tag} one"), Ct)).Status);
        Assert.Equal(ChatTurnStatus.Ok, (await onB.SendAsync(tenant.Turn($"{tag} two"), Ct)).Status);
        var before = await onA.GetHistoryAsync(Ct);
        Assert.Equal(4, before.Count);
        Assert.Single(await silos.ActivationsAsync(onA));
        Assert.True(cluster.TryGetGrainContext(onA.GetGrainId(), out var old), $"session {key}: no activation found after its turns");

        // :: Collect every idle activation in the cluster: the session's goes.
        var deactivated = cluster.WaitForDeactivationAsync(onA.GetGrainId());
        await cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero, Ct);
        await Within(deactivated, $"session {key}: deactivation by the forced collection");
        Assert.Empty(await silos.ActivationsAsync(onA));

        // :: The next call activates it again, from the database: the same thread, and the next turn continues it.
        Assert.Equal(before, await onB.GetHistoryAsync(Ct));
        Assert.True(cluster.TryGetGrainContext(onA.GetGrainId(), out var fresh), $"session {key}: no activation after GetHistoryAsync");
        Assert.NotEqual(old.ActivationId, fresh.ActivationId);
        Assert.Single(await silos.ActivationsAsync(onA));
        Assert.Equal(ChatTurnStatus.Ok, (await onA.SendAsync(tenant.Turn($"{tag} three"), Ct)).Status);
        Assert.Equal(
            [.. before.Select(m => (m.Role, m.Content)), ("user", $"{tag} three")],
            silos.ModelRequests(tenant)[^1].Messages.Skip(1).Select(m => (m.Role, m.Content)));
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), (await onB.GetHistoryAsync(Ct)).Select(m => m.Seq));
    }

    private static async Task<List<ChatTurnEvent>> ReadToEndAsync(IAsyncEnumerable<ChatTurnEvent> stream)
    {
        List<ChatTurnEvent> events = [];
        await foreach (var e in stream.WithCancellation(Ct))
        {
            events.Add(e);
        }

        return events;
    }
}
