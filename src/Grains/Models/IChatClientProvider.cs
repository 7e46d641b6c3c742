using Microsoft.Extensions.AI;

namespace LuluClaw.Grains.Models;

/// <summary>
/// Gives the <see cref="IChatClient"/> that serves a bot's model: built once per bot version (the
/// bot's "model client") and kept until the bot changes, restarts or is deleted.
/// </summary>
public interface IChatClientProvider
{
    /// <summary>
    /// The client for <paramref name="bot"/> at its <see cref="BotInfo.Version"/>, built now if this
    /// process has none for that version. Throws <see cref="ModelUnavailableException"/> when the
    /// provider the model needs is missing or misconfigured; the message says what is wrong.
    /// </summary>
    ValueTask<IChatClient> GetClientAsync(BotInfo bot, CancellationToken cancellationToken);

    /// <summary>Tears down the bot's client; the next <see cref="GetClientAsync"/> builds a new one.</summary>
    void Evict(string botId);

    /// <summary>Tears down the clients of every bot of the workspace (its provider keys changed).</summary>
    void EvictWorkspace(Guid workspaceId);
}

/// <summary>The model cannot answer: not configured, unreachable, failing or too slow.</summary>
public sealed class ModelUnavailableException(string message, TimeSpan? retryAfter = null, Exception? inner = null, bool requestRefused = false)
    : Exception(message, inner)
{
    /// <summary>When the provider said to try again, if it did.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>
    /// The provider refused the request as it was made (its 400 or 422: a parameter it does not take, a value
    /// out of its range), so the caller's request is what must change: the caller's 400, not a 503.
    /// </summary>
    public bool RequestRefused { get; } = requestRefused;
}

/// <summary>Settings of model calls (<c>Llm</c> section).</summary>
public sealed class ModelCallOptions
{
    /// <summary>How long one model call may take before the turn fails with 503 (<c>Llm:TimeoutSeconds</c>).</summary>
    public double TimeoutSeconds { get; set; } = 60;
}
