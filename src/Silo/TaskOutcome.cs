namespace LuluClaw.Silo;

/// <summary>Hands a kept outcome to a waiting caller.</summary>
internal static class TaskOutcome
{
    /// <summary>
    /// Completes <paramref name="completion"/> with <paramref name="result"/>, or with
    /// <paramref name="error"/> if there is one: cancelled for an <see cref="OperationCanceledException"/>
    /// (as an awaited method's own task would be), faulted otherwise.
    /// </summary>
    public static void SetOutcome<T>(this TaskCompletionSource<T> completion, T result, Exception? error)
    {
        if (error is OperationCanceledException canceled)
        {
            completion.TrySetCanceled(canceled.CancellationToken);
        }
        else if (error is not null)
        {
            completion.TrySetException(error);
        }
        else
        {
            completion.TrySetResult(result);
        }
    }
}
