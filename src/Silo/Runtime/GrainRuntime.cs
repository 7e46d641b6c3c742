using System.Collections.Concurrent;
using System.Reflection;
using LuluClaw.Actors;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Runtime;

/// <summary>Settings of the actor host (<c>Actors</c> section).</summary>
public sealed class ActorRuntimeOptions
{
    /// <summary>How long an activation may stay idle before it is collected (<c>Actors:IdleTimeout</c>, default 10 minutes).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often idle activations are looked for; by default a quarter of <see cref="IdleTimeout"/>, at most a minute.</summary>
    public TimeSpan? CollectionPeriod { get; set; }
}

/// <summary>Which class implements which actor contract.</summary>
public sealed class GrainTypeMap(IEnumerable<GrainRegistration> registrations)
{
    private readonly Dictionary<Type, Type> _implementations = registrations.ToDictionary(r => r.Interface, r => r.Implementation);

    internal Type Resolve(Type grainInterface) =>
        _implementations.TryGetValue(grainInterface, out var type)
            ? type
            : throw new InvalidOperationException($"No actor implements {grainInterface.Name}; register it with AddGrain.");
}

/// <summary>
/// The in-process actor host: one activation per contract and key, calls to it run one at a time in
/// arrival order, idle activations are collected.
/// </summary>
/// <remarks>
/// A call goes: proxy (<see cref="GrainProxy"/>) → <see cref="InvokeAsync{T}"/>, which finds or
/// creates the activation and enqueues the call → the activation's loop runs it when the calls before
/// it are done. A collected activation refuses new calls, and the caller creates a fresh one.
/// </remarks>
public sealed class GrainRuntime : IGrainFactory, IAsyncDisposable
{
    private readonly ConcurrentDictionary<GrainId, Activation> _activations = new();
    private readonly ConcurrentDictionary<MethodInfo, Func<GrainRuntime, GrainId, MethodInfo, object?[], object>> _invokers = new();
    private readonly ConcurrentDictionary<MethodInfo, bool> _interleaved = new();
    private readonly ConcurrentDictionary<Type, GrainProxy> _proxyTemplates = new();
    private readonly IServiceProvider _services;
    private readonly GrainTypeMap _types;
    private readonly IOptionsMonitor<ActorRuntimeOptions> _options;

    public GrainRuntime(IServiceProvider services, GrainTypeMap types, IOptionsMonitor<ActorRuntimeOptions> options, TimeProvider time)
    {
        _services = services;
        _types = types;
        _options = options;
        Time = time;
    }

    internal TimeProvider Time { get; }

    /// <summary>How many activations exist now.</summary>
    public int ActivationCount => _activations.Count;

    /// <inheritdoc />
    public TGrain Get<TGrain>(string key) where TGrain : class, IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(key);

        // DispatchProxy.Create binds the generated type's constructor by reflection on every call
        // (arrays of types, constructors and arguments): once per contract is enough, and each
        // reference after that is a copy of the first.
        var template = _proxyTemplates.GetOrAdd(typeof(TGrain), static _ => (GrainProxy)(object)DispatchProxy.Create<TGrain, GrainProxy>());
        return (TGrain)(object)template.CopyFor(this, new GrainId(typeof(TGrain), key));
    }

    /// <summary>
    /// Drops the activation of <typeparamref name="TGrain"/> with <paramref name="key"/>, if there is
    /// one, as soon as the calls already in its mailbox are done, so that the next call loads its
    /// state afresh (another node changed it). False if there was no activation.
    /// </summary>
    public bool Reset<TGrain>(string key) where TGrain : class, IGrainWithStringKey
    {
        if (!_activations.TryGetValue(new GrainId(typeof(TGrain), key), out var activation))
        {
            return false;
        }

        // A closed activation is on its way out already: the next call gets a fresh one either way.
        activation.TryEnqueue(new ResetCall(activation));
        return true;
    }

    /// <summary>Collects every activation idle for longer than the idle timeout; returns how many went.</summary>
    public async Task<int> CollectIdleActivationsAsync(CancellationToken cancellationToken = default)
    {
        var cutoff = Time.GetUtcNow() - _options.CurrentValue.IdleTimeout;
        var collected = 0;
        foreach (var (_, activation) in _activations)
        {
            if (activation.TryClose(cutoff))
            {
                await DeactivateAsync(activation, cancellationToken);
                collected++;
            }
        }

        return collected;
    }

    internal TimeSpan CollectionPeriod =>
        _options.CurrentValue.CollectionPeriod
        ?? TimeSpan.FromTicks(Math.Min(_options.CurrentValue.IdleTimeout.Ticks / 4, TimeSpan.FromMinutes(1).Ticks));

    internal object Dispatch(GrainId id, MethodInfo method, object?[] args) =>
        _invokers.GetOrAdd(method, CreateInvoker)(this, id, method, args);

    private static Func<GrainRuntime, GrainId, MethodInfo, object?[], object> CreateInvoker(MethodInfo method)
    {
        var returnType = method.ReturnType;
        var generic = returnType.IsGenericType ? returnType.GetGenericTypeDefinition() : null;
        var (invoker, resultType) = returnType == typeof(Task) ? (nameof(InvokeAsync), typeof(object))
            : generic == typeof(Task<>) ? (nameof(InvokeAsync), returnType.GetGenericArguments()[0])
            : generic == typeof(IAsyncEnumerable<>) ? (nameof(InvokeStream), returnType.GetGenericArguments()[0])
            : throw new NotSupportedException($"{method.DeclaringType?.Name}.{method.Name} must return Task, Task<T> or IAsyncEnumerable<T>.");
        var typed = typeof(GrainRuntime).GetMethod(invoker, BindingFlags.NonPublic | BindingFlags.Instance)!.MakeGenericMethod(resultType);
        return typed.CreateDelegate<Func<GrainRuntime, GrainId, MethodInfo, object?[], object>>();
    }

    private object InvokeStream<T>(GrainId id, MethodInfo method, object?[] args) => new GrainStream<T>(this, id, method, args);

    private object InvokeAsync<T>(GrainId id, MethodInfo method, object?[] args)
    {
        if (_interleaved.GetOrAdd(method, static m => m.IsDefined(typeof(AlwaysInterleaveAttribute), inherit: true))
            && _activations.TryGetValue(id, out var activation))
        {
            try
            {
                if (activation.TryRunInterleaved(method, args) is { } running)
                {
                    return running;
                }
            }
            catch (Exception e)
            {
                // Thrown before the method returned its task: the caller still gets it through the task, as from the mailbox.
                var failed = new TaskCompletionSource<T>();
                failed.SetOutcome(default!, e);
                return failed.Task;
            }
        }

        // Not interleaved, or no live activation yet: the mailbox activates it first.
        var call = new GrainCall<T>(method, args);
        Enqueue(id, call);
        return call.Task;
    }

    internal void Enqueue(GrainId id, IGrainCall call)
    {
        var activation = _activations.GetOrAdd(id, static (key, runtime) => new Activation(key, runtime), this);
        if (!activation.TryEnqueue(call))
        {
            _ = EnqueueAfterDeactivationAsync(activation, call);
        }
    }

    /// <summary>
    /// The activation was closed between the lookup and the enqueue: the call waits until it has
    /// finished deactivating, so that a new activation never loads state while the old one writes it.
    /// </summary>
    private async Task EnqueueAfterDeactivationAsync(Activation closed, IGrainCall call)
    {
        await closed.Deactivated;
        _activations.TryRemove(KeyValuePair.Create(closed.Id, closed));
        Enqueue(closed.Id, call);
    }

    internal IGrainBase CreateInstance(Activation activation)
    {
        var type = _types.Resolve(activation.Id.Interface);
        return (IGrainBase)Microsoft.Extensions.DependencyInjection.ActivatorUtilities.CreateInstance(_services, type, activation);
    }

    internal async Task DeactivateAsync(Activation activation, CancellationToken cancellationToken)
    {
        try
        {
            await activation.RunDeactivationAsync(cancellationToken);
        }
        finally
        {
            _activations.TryRemove(KeyValuePair.Create(activation.Id, activation));
            activation.MarkDeactivated();
        }
    }

    /// <summary>Deactivates every activation (host shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (_, activation) in _activations)
        {
            if (activation.TryClose(DateTimeOffset.MaxValue))
            {
                await DeactivateAsync(activation, CancellationToken.None);
            }
        }
    }
}

/// <summary>One actor contract and the class that implements it.</summary>
public sealed record GrainRegistration(Type Interface, Type Implementation);

/// <summary>An actor's identity: its contract and key.</summary>
public readonly record struct GrainId(Type Interface, string Key)
{
    public override string ToString() => $"{Interface.Name}/{Key}";
}
