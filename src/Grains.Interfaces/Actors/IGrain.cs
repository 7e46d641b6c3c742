namespace LuluClaw.Actors;

/// <summary>
/// Marks an actor contract addressed by a string key. Every method of such an interface returns
/// <see cref="Task"/> or <see cref="Task{TResult}"/> and takes immutable arguments, as an Orleans
/// grain interface would, so that moving to Orleans later is a host swap.
/// </summary>
public interface IGrainWithStringKey;

/// <summary>Hands out references to actors by contract and key.</summary>
public interface IGrainFactory
{
    /// <summary>
    /// Returns a reference to the actor <typeparamref name="TGrain"/> with the given key. The
    /// reference is cheap; the activation is created on its first call.
    /// </summary>
    TGrain Get<TGrain>(string key) where TGrain : class, IGrainWithStringKey;
}

/// <summary>What the runtime tells an activation about itself.</summary>
public interface IGrainContext
{
    /// <summary>The actor's key.</summary>
    string Key { get; }

    /// <summary>References to other actors.</summary>
    IGrainFactory GrainFactory { get; }

    /// <summary>Asks the runtime to collect this activation as soon as its current call ends.</summary>
    void DeactivateOnIdle();
}

/// <summary>Lifecycle hooks the runtime calls on an activation, inside its turn.</summary>
public interface IGrainBase
{
    /// <summary>Called before the first call; loads state. If it throws, the call fails and the next call tries again.</summary>
    Task OnActivateAsync(CancellationToken cancellationToken);

    /// <summary>Called when the activation is collected; no other call runs at the same time.</summary>
    Task OnDeactivateAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Marks an actor method whose calls need not wait their turn: as Orleans' <c>[AlwaysInterleave]</c>,
/// it runs at once on the live activation, beside whatever call is running, and never blocks the
/// mailbox. Only for methods that read nothing the activation's other calls change, and leave the
/// deciding to the database (admissions of every session of a workspace, say, which its transaction
/// serialises anyway).
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AlwaysInterleaveAttribute : Attribute;
