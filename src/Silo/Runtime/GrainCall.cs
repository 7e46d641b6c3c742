using System.Reflection;
using LuluClaw.Actors;

namespace LuluClaw.Silo.Runtime;

/// <summary>A call waiting in an activation's mailbox.</summary>
internal interface IGrainCall
{
    /// <summary>Runs the call on the instance and completes its task; never throws.</summary>
    Task RunAsync(IGrainBase instance);

    /// <summary>Completes the call's task with <paramref name="error"/> without running it.</summary>
    void Fail(Exception error);
}

internal sealed class GrainCall<T>(MethodInfo method, object?[] args) : IGrainCall
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _completion.Task;

    public async Task RunAsync(IGrainBase instance)
    {
        try
        {
            var task = (Task)method.Invoke(instance, BindingFlags.DoNotWrapExceptions, binder: null, args, culture: null)!;
            await task;
            _completion.TrySetResult(task is Task<T> typed ? typed.Result : default!);
        }
        catch (OperationCanceledException e)
        {
            _completion.TrySetCanceled(e.CancellationToken);
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
        }
    }

    public void Fail(Exception error) => _completion.TrySetException(error);
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
}

/// <summary>The object behind an actor reference: turns each interface call into a mailbox entry.</summary>
public class GrainProxy : DispatchProxy
{
    private GrainRuntime? _runtime;
    private GrainId _id;

    internal void Bind(GrainRuntime runtime, GrainId id)
    {
        _runtime = runtime;
        _id = id;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.DeclaringType == typeof(object))
        {
            return targetMethod.Name switch
            {
                nameof(ToString) => _id.ToString(),
                nameof(GetHashCode) => _id.GetHashCode(),
                _ => throw new NotSupportedException(targetMethod.Name),
            };
        }

        return _runtime!.Dispatch(_id, targetMethod, args ?? []);
    }
}
