using System.Reflection;
using LuluClaw.Actors;

namespace LuluClaw.Silo.Runtime;

/// <summary>
/// One live actor: its mailbox and, once activated, its instance. At most one call runs at a time;
/// calls start in the order they were enqueued.
/// </summary>
/// <remarks>
/// No thread is parked on an idle activation: the first call into an empty mailbox schedules a
/// loop that runs calls until the mailbox is empty, then ends. Closing (idle collection or
/// <see cref="DeactivateOnIdle"/>) happens under the same lock as enqueueing, so a call is either in
/// this mailbox or refused and sent to the next activation, never lost.
/// </remarks>
internal sealed class Activation : IGrainContext
{
    private readonly object _gate = new();
    private readonly Queue<IGrainCall> _mailbox = new();
    private readonly GrainRuntime _runtime;
    private readonly TaskCompletionSource _deactivated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IGrainBase? _instance;
    private bool _running;
    private bool _closed;
    private bool _deactivateOnIdle;
    private int _interleaving;
    private DateTimeOffset _lastActive;

    public Activation(GrainId id, GrainRuntime runtime)
    {
        Id = id;
        _runtime = runtime;
        _lastActive = runtime.Time.GetUtcNow();
    }

    public GrainId Id { get; }

    public string Key => Id.Key;

    public IGrainFactory GrainFactory => _runtime;

    /// <summary>Completes when the activation has been closed and deactivated.</summary>
    public Task Deactivated => _deactivated.Task;

    public void DeactivateOnIdle()
    {
        lock (_gate)
        {
            _deactivateOnIdle = true;
        }
    }

    /// <summary>
    /// Adds a call to the mailbox; false if this activation is closed and a new one must take it. A
    /// call to a live activation with nothing to do starts at once, on the caller's thread.
    /// </summary>
    public bool TryEnqueue(IGrainCall call)
    {
        IGrainBase? idle;
        lock (_gate)
        {
            if (_closed)
            {
                return false;
            }

            idle = _running || _deactivateOnIdle ? null : _instance; // not running: the mailbox is empty
            if (idle is null)
            {
                _mailbox.Enqueue(call);
                if (_running)
                {
                    return true;
                }
            }

            _running = true;
        }

        if (idle is not null)
        {
            _ = RunInlineAsync(call, idle);
        }
        else
        {
            ScheduleLoop();
        }

        return true;
    }

    /// <summary>
    /// Runs an <see cref="AlwaysInterleaveAttribute"/> method now, beside the mailbox, and returns
    /// its own task (the caller awaits the grain's work itself, with no call object between them);
    /// null if the activation is not live (not activated yet, or closed), and the call must queue instead.
    /// </summary>
    public Task? TryRunInterleaved(MethodInfo method, object?[] args)
    {
        IGrainBase? instance;
        lock (_gate)
        {
            instance = _instance;
            if (_closed || instance is null)
            {
                return null;
            }

            _interleaving++;
        }

        Task task;
        try
        {
            task = (Task)method.Invoke(instance, BindingFlags.DoNotWrapExceptions, binder: null, args, culture: null)!;
        }
        catch
        {
            EndInterleaved();
            throw;
        }

        if (task.IsCompleted)
        {
            EndInterleaved();
        }
        else
        {
            _ = EndInterleavedAfterAsync(task);
        }

        return task;
    }

    private async Task EndInterleavedAfterAsync(Task task)
    {
        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        EndInterleaved();
    }

    private void EndInterleaved()
    {
        lock (_gate)
        {
            _interleaving--;
            _lastActive = _runtime.Time.GetUtcNow();
        }
    }

    /// <summary>Closes the activation if it has been idle since <paramref name="idleSince"/>; the caller then deactivates it.</summary>
    public bool TryClose(DateTimeOffset idleSince)
    {
        lock (_gate)
        {
            if (_closed || _running || _interleaving > 0 || _mailbox.Count > 0 || _lastActive > idleSince)
            {
                return false;
            }

            _closed = true;
            return true;
        }
    }

    public async Task RunDeactivationAsync(CancellationToken cancellationToken)
    {
        if (_instance is { } instance)
        {
            _instance = null;
            await instance.OnDeactivateAsync(cancellationToken);
        }
    }

    public void MarkDeactivated() => _deactivated.TrySetResult();

    /// <summary>
    /// A call started on its caller's thread. If it finishes there, the calls queued meanwhile go to
    /// the thread pool rather than holding up the caller; if it awaits, the loop goes on wherever it resumes.
    /// </summary>
    private async Task RunInlineAsync(IGrainCall call, IGrainBase instance)
    {
        var run = call.RunAsync(instance);
        if (run.IsCompleted)
        {
            if (Finish(call))
            {
                ScheduleLoop();
            }

            return;
        }

        await run;
        if (Finish(call))
        {
            await RunAsync();
        }
    }

    /// <summary>
    /// After a call: if nothing else waits, releases the activation and then answers the caller on
    /// this thread (false: the loop stops); otherwise answers from the thread pool and returns true,
    /// and the loop goes on with the next call.
    /// </summary>
    private bool Finish(IGrainCall call)
    {
        lock (_gate)
        {
            if (_mailbox.Count > 0 || _deactivateOnIdle)
            {
                call.Answer(inline: false);
                return true;
            }

            _running = false;
            _lastActive = _runtime.Time.GetUtcNow();
        }

        call.Answer(inline: true);
        return false;
    }

    /// <summary>Runs the mailbox's calls on the thread pool.</summary>
    private void ScheduleLoop() => ThreadPool.UnsafeQueueUserWorkItem(static a => _ = a.RunAsync(), this, preferLocal: false);

    private async Task RunAsync()
    {
        while (true)
        {
            IGrainCall? call;
            IGrainCall[]? leftOver = null;
            lock (_gate)
            {
                if (_deactivateOnIdle)
                {
                    // The call that asked is done: close now; calls that queued behind it go to the next activation.
                    _closed = true;
                    _running = false;
                    leftOver = [.. _mailbox];
                    _mailbox.Clear();
                    call = null;
                }
                else if (!_mailbox.TryDequeue(out call))
                {
                    _running = false;
                    _lastActive = _runtime.Time.GetUtcNow();
                    return;
                }
            }

            if (leftOver is not null)
            {
                await _runtime.DeactivateAsync(this, CancellationToken.None);
                foreach (var waiting in leftOver)
                {
                    _runtime.Enqueue(Id, waiting);
                }

                return;
            }

            if (_instance is null)
            {
                try
                {
                    var instance = _runtime.CreateInstance(this);
                    await instance.OnActivateAsync(CancellationToken.None);
                    _instance = instance;
                }
                catch (Exception e)
                {
                    // Not cached broken: the next call tries to activate again.
                    lock (_gate)
                    {
                        _deactivateOnIdle = false;
                    }

                    call!.Fail(e);
                    if (!Finish(call))
                    {
                        return;
                    }

                    continue;
                }
            }

            await call!.RunAsync(_instance);
            if (!Finish(call))
            {
                return;
            }
        }
    }
}
