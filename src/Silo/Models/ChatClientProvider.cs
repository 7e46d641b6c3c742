using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Models;

/// <summary>Settings of model providers (<c>Llm</c> section).</summary>
public sealed class LlmOptions
{
    /// <summary>
    /// <c>echo</c> forces the echo model for every bot; empty (the default) picks by the bot's model
    /// among the configured providers, with echo when none is configured.
    /// </summary>
    public string? Provider { get; set; }

    /// <summary>The echo model's settings (<c>Llm:Echo</c>).</summary>
    public EchoOptions Echo { get; set; } = new();
}

/// <summary>Settings of the echo model.</summary>
public sealed class EchoOptions
{
    /// <summary>Simulated model latency before each answer, in milliseconds (default 0).</summary>
    public int DelayMilliseconds { get; set; }
}

/// <summary>
/// Picks the <see cref="IChatClient"/> for a bot's model. Only the echo provider exists so far; a
/// provider named in configuration that is not available makes its bots' turns fail with 503.
/// </summary>
public sealed class ChatClientProvider(IOptionsMonitor<LlmOptions> options) : IChatClientProvider
{
    private readonly EchoChatClient _echo = new(TimeSpan.FromMilliseconds(options.CurrentValue.Echo.DelayMilliseconds));

    /// <inheritdoc />
    public IChatClient GetClient(BotInfo bot)
    {
        var provider = options.CurrentValue.Provider?.Trim().ToLowerInvariant();
        return provider switch
        {
            null or "" or EchoChatClient.ProviderName => _echo,
            _ => throw new ModelUnavailableException($"model provider '{provider}' (Llm:Provider) is not available in this build; bot '{bot.Id}' cannot answer"),
        };
    }
}
