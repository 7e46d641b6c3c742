using System.Threading.Channels;

namespace LuluClaw.Silo.Storage;

/// <summary>
/// Calls that wait to go to the database together: up to <c>MaxBatch</c> at a time, in arrival
/// order, by one of a few lanes; a call whose caller gave up before its batch left is dropped.
/// </summary>
internal sealed class Batcher<TItem, TResult> : IAsyncDisposable
{
    private const int MaxBatch = 256;

    private readonly Channel<Waiting> _queue = Channel.CreateUnbounded<Waiting>();
    private readonly Func<IReadOnlyList<Waiting>, Task> _run;
    private readonly Task[] _lanes;

    /// <param name="run">Runs a batch and answers each of its calls; if it throws, every call it left unanswered gets the error.</param>
    /// <param name="lanes">How many batches may be in flight at once.</param>
    public Batcher(Func<IReadOnlyList<Waiting>, Task> run, int lanes)
    {
        _run = run;
        _lanes = [.. Enumerable.Range(0, lanes).Select(_ => Task.Run(LaneAsync))];
    }

    public Task<TResult> Add(TItem item, CancellationToken cancellationToken)
    {
        var waiting = new Waiting(item, new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously), cancellationToken);
        return _queue.Writer.TryWrite(waiting) ? waiting.Answer.Task : Task.FromException<TResult>(new ObjectDisposedException(nameof(Batcher<TItem, TResult>)));
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAll(_lanes).ConfigureAwait(false);
    }

    private async Task LaneAsync()
    {
        var batch = new List<Waiting>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
            {
                if (next.CancellationToken.IsCancellationRequested)
                {
                    next.Answer.TrySetCanceled(next.CancellationToken); // gave up before its batch left: never sent
                }
                else
                {
                    batch.Add(next);
                }
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                await _run(batch).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                foreach (var waiting in batch)
                {
                    waiting.Answer.TrySetException(e);
                }
            }
        }
    }

    /// <summary>A call waiting for its batch.</summary>
    public sealed record Waiting(TItem Item, TaskCompletionSource<TResult> Answer, CancellationToken CancellationToken);
}
