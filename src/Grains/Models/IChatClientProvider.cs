using Microsoft.Extensions.AI;

namespace LuluClaw.Grains.Models;

/// <summary>Gives the <see cref="IChatClient"/> that serves a bot's model.</summary>
public interface IChatClientProvider
{
    /// <summary>
    /// The client for <paramref name="bot"/>. Throws <see cref="ModelUnavailableException"/> when the
    /// provider the model needs is missing or misconfigured.
    /// </summary>
    IChatClient GetClient(BotInfo bot);
}

/// <summary>The model cannot answer: not configured, unreachable, failing or too slow.</summary>
public sealed class ModelUnavailableException(string message, TimeSpan? retryAfter = null, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>When the provider said to try again, if it did.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>Settings of model calls (<c>Llm</c> section).</summary>
public sealed class ModelCallOptions
{
    /// <summary>How long one model call may take before the turn fails with 503 (<c>Llm:TimeoutSeconds</c>).</summary>
    public double TimeoutSeconds { get; set; } = 60;
}
