using LuluClaw.Tests;
using Orleans.Runtime;

using static LuluClaw.Grains.Tests.TwoSilos;

namespace LuluClaw.Grains.Tests;

/// <summary>
/// The bot grain on two silos: a change made through one silo is what turns entering through the
/// other use next, with no wait, because the bot has one activation in the cluster.
/// </summary>
[Collection(TwoSilosCollection.Name)]
public sealed class BotGrainTests(TwoSilos silos)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task UpdateAsync_ThroughSiloA_NextTurnThroughSiloBUsesTheNewPrompt()
    {
        _ = silos.Cluster; // skips without PostgreSQL
        var tenant = await silos.CreateTenantAsync("Prompt one.");
        var tag = tenant.Tag;
        var botOnA = silos.A.GetGrain<IBotGrain>(tenant.BotId);
        var sessionOnB = silos.B.GetGrain<ISessionGrain>(tenant.Session("patched"));
        Assert.Equal(ChatTurnStatus.Ok, (await sessionOnB.SendAsync(tenant.Turn($"{tag} one"), Ct)).Status);
        Assert.Equal("Prompt one.", SystemPromptSent(tenant));
        var created = await botOnA.GetAsync(Ct) ?? throw new InvalidOperationException($"bot {tenant.BotId}: gone after its first turn");

        // :: PATCH through A.
        var patched = await botOnA.UpdateAsync(tenant.WorkspaceId, new BotChanges(SystemPrompt: "Prompt two."), Ct);
        Assert.NotNull(patched);
        Assert.Equal("Prompt two.", patched.SystemPrompt);
        Assert.True(patched.Version > created.Version, $"bot {tenant.BotId}: version {patched.Version} after the PATCH, {created.Version} before");

        // :: The next turn through B, at once: the new prompt, on a bot that is running again at the new version.
        Assert.Equal(ChatTurnStatus.Ok, (await sessionOnB.SendAsync(tenant.Turn($"{tag} two"), Ct)).Status);
        Assert.Equal("Prompt two.", SystemPromptSent(tenant));
        var seenOnB = await silos.B.GetGrain<IBotGrain>(tenant.BotId).GetAsync(Ct);
        Assert.Equal((BotStatus.Running, patched.Version, "Prompt two."), (seenOnB?.Status, seenOnB?.Version, seenOnB?.SystemPrompt));
    }

    [Fact]
    public async Task RestartAsync_ThroughSiloA_NewActivationSeenThroughSiloB()
    {
        var cluster = silos.Cluster;
        var tenant = await silos.CreateTenantAsync("Restarted prompt.");
        var tag = tenant.Tag;
        var botOnA = silos.A.GetGrain<IBotGrain>(tenant.BotId);
        var botOnB = silos.B.GetGrain<IBotGrain>(tenant.BotId);
        var sessionOnB = silos.B.GetGrain<ISessionGrain>(tenant.Session("restarted"));
        Assert.Equal(ChatTurnStatus.Ok, (await sessionOnB.SendAsync(tenant.Turn($"{tag} one"), Ct)).Status);
        var before = await botOnB.GetAsync(Ct) ?? throw new InvalidOperationException($"bot {tenant.BotId}: gone after its first turn");
        Assert.Equal(0, before.RestartCount);

        // :: Restart through A: the answer counts it, and the activation is torn down after it.
        var tornDown = cluster.WaitForDeactivationAsync(botOnA.GetGrainId());
        Assert.False(tornDown.IsCompleted, $"bot {tenant.BotId}: no activation to restart");
        var restarted = await botOnA.RestartAsync(tenant.WorkspaceId, Ct);
        Assert.NotNull(restarted);
        Assert.Equal((BotStatus.Restarting, 1L), (restarted.Status, restarted.RestartCount));
        Assert.True(restarted.Version > before.Version, $"bot {tenant.BotId}: version {restarted.Version} after the restart, {before.Version} before");
        await Within(tornDown, $"bot {tenant.BotId}: the old activation's teardown after RestartAsync");

        // :: Through B: a new activation, running, with the count and version the restart wrote; turns go on.
        var seenOnB = await botOnB.GetAsync(Ct);
        Assert.Equal((BotStatus.Running, 1L, restarted.Version), (seenOnB?.Status, seenOnB?.RestartCount, seenOnB?.Version));
        Assert.Equal(ChatTurnStatus.Ok, (await sessionOnB.SendAsync(tenant.Turn($"{tag} two"), Ct)).Status);
        Assert.Equal("Restarted prompt.", SystemPromptSent(tenant));

        // A second restart, through A again, reaches that new activation: the count grows on.
        var again = await botOnA.RestartAsync(tenant.WorkspaceId, Ct);
        Assert.Equal(2L, again?.RestartCount);
        Assert.True(again!.Version > restarted.Version, $"bot {tenant.BotId}: version {again.Version} after the second restart, {restarted.Version} before");
        Assert.Equal(2L, (await botOnB.GetAsync(Ct))?.RestartCount);
    }

    /// <summary>The system prompt of the last model request for <paramref name="tenant"/>'s turns.</summary>
    private string SystemPromptSent(Tenant tenant)
    {
        var request = silos.ModelRequests(tenant)[^1];
        Assert.Equal("system", request.Messages[0].Role);
        return request.Messages[0].Content;
    }
}
