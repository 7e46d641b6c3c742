using LuluClaw.Grains.Storage;
using Microsoft.Extensions.Options;

namespace LuluClaw.Grains;

/// <summary>
/// Admits a workspace's turns into its rolling windows and debits its credits, refunds them and
/// keeps streamed ones alive: one <see cref="ITurnLedger"/> transaction each, the database deciding.
/// </summary>
/// <remarks>
/// A plain service on every silo, not a grain call: it holds no state, and the session grain, which
/// asks it for every turn, runs on the same silo, so an Orleans message per admission (and refund)
/// would be pure overhead. The workspace grain keeps the workspace's management (plans, credits,
/// keys, bots, provider keys).
/// </remarks>
public sealed class WorkspaceTurns(ITurnLedger ledger, IOptionsMonitor<PlanOptions> plans, TimeProvider time)
{
    /// <summary>Admits one turn of <paramref name="workspaceId"/> (its windows, its key's windows and its credits, atomically) or says why not.</summary>
    public Task<AdmissionResult> AdmitAsync(Guid workspaceId, AdmitTurnRequest request, CancellationToken cancellationToken)
    {
        var options = plans.CurrentValue;
        return ledger.TryAdmitAsync(
            new TurnAdmission(
                workspaceId, request.TurnId, request.KeyId, request.SessionId, options.CreditsPerTurn, time.GetStoredNow(), LimitsOf(options), request.BotId),
            cancellationToken);
    }

    /// <summary>The limits of <paramref name="options"/>, made again only when the options are (a configuration reload).</summary>
    private PlanLimits LimitsOf(PlanOptions options)
    {
        var made = Volatile.Read(ref _limits);
        if (made is null || !ReferenceEquals(made.Options, options))
        {
            made = new MadeLimits(options, options.ToLimits());
            Volatile.Write(ref _limits, made);
        }

        return made.Limits;
    }

    private MadeLimits? _limits;

    private sealed record MadeLimits(PlanOptions Options, PlanLimits Limits);

    /// <summary>Gives back a turn whose model call failed: it leaves the windows and its credits return.</summary>
    public Task RefundAsync(string turnId, CancellationToken cancellationToken) => ledger.RefundAsync(turnId, cancellationToken);

    /// <summary>Tells the ledger an admitted turn is still streaming, so it is not taken for abandoned; false if it is no longer pending.</summary>
    public Task<bool> KeepAliveAsync(string turnId, CancellationToken cancellationToken) =>
        ledger.KeepAliveAsync(turnId, time.GetStoredNow(), cancellationToken);
}
