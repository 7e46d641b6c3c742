using System.Reflection;
using System.Threading.Channels;
using LuluClaw.Actors;

namespace LuluClaw.Silo.Runtime;

/// <summary>
/// A call to a grain method that returns <see cref="IAsyncEnumerable{T}"/>, as Orleans allows: the
/// caller enumerates, and the grain's enumeration runs as one turn of the activation, from the first
/// item to the last. Items cross over a small bounded channel, so each reaches the caller as soon as
/// the grain yields it and a slow reader slows only its own call.
/// </summary>
/// <remarks>
/// The call is enqueued when the caller starts enumerating. If the caller stops early (it disposes
/// its enumerator, or its token is cancelled), the grain's enumeration is cancelled through the
/// token it was given; the turn ends only when the grain has finished its own cleanup.
/// </remarks>
internal sealed class GrainStream<T>(GrainRuntime runtime, GrainId id, MethodInfo method, object?[] args) : IAsyncEnumerable<T>
{
    public async IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(16) { SingleReader = true, SingleWriter = true });
        var call = new GrainStreamCall(method, args, channel.Writer, stop.Token);
        runtime.Enqueue(id, call);
        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var item))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            // Stopped early or done: either way the grain's enumeration ends and its turn is released.
            await stop.CancelAsync().ConfigureAwait(false);
            await call.Completion.ConfigureAwait(false);
        }
    }

    private sealed class GrainStreamCall(MethodInfo method, object?[] args, ChannelWriter<T> writer, CancellationToken stop) : IGrainCall
    {
        private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes when the call has run (or failed to start); never faults.</summary>
        public Task Completion => _completion.Task;

        public async Task RunAsync(IGrainBase instance)
        {
            Exception? error = null;
            try
            {
                var source = (IAsyncEnumerable<T>)method.Invoke(instance, BindingFlags.DoNotWrapExceptions, binder: null, args, culture: null)!;
                await foreach (var item in source.WithCancellation(stop))
                {
                    await writer.WriteAsync(item, stop);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // The caller went away: nobody reads what is left.
            }
            catch (Exception e)
            {
                error = e;
            }
            finally
            {
                writer.TryComplete(error);
                _completion.TrySetResult();
            }
        }

        public void Fail(Exception error)
        {
            writer.TryComplete(error);
            _completion.TrySetResult();
        }

        public void Answer(bool inline)
        {
            // The caller reads the items as they come and learns the end from the channel: nothing is left to hand over.
        }
    }
}
