using System.Reflection;
using LuluClaw.Actors;

namespace LuluClaw.Silo.Runtime;

/// <summary>A call waiting in an activation's mailbox.</summary>
/// <remarks>
/// The activation runs the call, then hands its outcome to the caller with <see cref="Answer"/>:
/// on its own thread once it has nothing else to run (the caller's continuation then runs there,
/// without a trip through the thread pool), or from the thread pool while more calls wait.
/// </remarks>
internal interface IGrainCall
{
    /// <summary>Runs the call on the instance and keeps its outcome; never throws.</summary>
    Task RunAsync(IGrainBase instance);

    /// <summary>Keeps <paramref name="error"/> as the call's outcome without running it.</summary>
    void Fail(Exception error);

    /// <summary>
    /// Hands the outcome to the caller: with <paramref name="inline"/> on this thread (the caller's
    /// continuation runs here, so the activation must have been released first), otherwise from the
    /// thread pool.
    /// </summary>
    void Answer(bool inline);
}

internal sealed class GrainCall<T>(MethodInfo method, object?[] args) : IGrainCall
{
    // No RunContinuationsAsynchronously: Answer decides where the caller's continuation runs.
    private readonly TaskCompletionSource<T> _completion = new();
    private T? _result;
    private Exception? _error;

    public Task<T> Task => _completion.Task;

    public async Task RunAsync(IGrainBase instance)
    {
        try
        {
            var task = (Task)method.Invoke(instance, BindingFlags.DoNotWrapExceptions, binder: null, args, culture: null)!;
            await task;
            _result = task is Task<T> typed ? typed.Result : default;
        }
        catch (Exception e)
        {
            _error = e;
        }
    }

    public void Fail(Exception error) => _error = error;

    public void Answer(bool inline)
    {
        if (inline)
        {
            SetOutcome();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(static call => call.SetOutcome(), this, preferLocal: false);
        }
    }

    private void SetOutcome() => _completion.SetOutcome(_result!, _error);
}

/// <summary>A call of the runtime's own: closes the activation once the calls queued before it are done.</summary>
internal sealed class ResetCall(IGrainContext activation) : IGrainCall
{
    public Task RunAsync(IGrainBase instance)
    {
        activation.DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public void Fail(Exception error)
    {
    }

    public void Answer(bool inline)
    {
    }
}

/// <summary>The object behind an actor reference: turns each interface call into a mailbox entry.</summary>
public class GrainProxy : DispatchProxy
{
    private GrainRuntime? _runtime;
    private GrainId _id;

    /// <summary>A reference of the same generated type (this one's copy) to the actor <paramref name="id"/>.</summary>
    internal GrainProxy CopyFor(GrainRuntime runtime, GrainId id)
    {
        var copy = (GrainProxy)MemberwiseClone();
        copy._runtime = runtime;
        copy._id = id;
        return copy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        return _runtime!.Dispatch(_id, targetMethod, args ?? []);
    }

    /// <summary>The actor's identity, such as <c>ISessionGrain/…</c>.</summary>
    public override string ToString() => _id.ToString();
}
