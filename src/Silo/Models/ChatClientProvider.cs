using System.Collections.Concurrent;
using System.Security.Cryptography;
using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Models;

/// <summary>Settings of model providers (<c>Llm</c> section).</summary>
public sealed class LlmOptions
{
    /// <summary>
    /// Empty (the default) picks the provider by the bot's model: <c>claude-*</c> → Anthropic,
    /// <c>echo*</c> → echo, anything else → OpenAI-compatible; with no provider configured at all,
    /// every bot uses echo. <c>echo</c>, <c>openai</c> or <c>anthropic</c> forces that provider for every bot.
    /// </summary>
    public string? Provider { get; set; }

    /// <summary>The echo model's settings (<c>Llm:Echo</c>).</summary>
    public EchoOptions Echo { get; set; } = new();

    /// <summary>The platform's OpenAI-compatible server (<c>Llm:OpenAI</c>).</summary>
    public ProviderEndpointOptions OpenAI { get; set; } = new();

    /// <summary>The platform's Anthropic account (<c>Llm:Anthropic</c>).</summary>
    public ProviderEndpointOptions Anthropic { get; set; } = new();

    /// <summary>Whether the platform configured any real provider.</summary>
    public bool AnyProviderConfigured =>
        !string.IsNullOrWhiteSpace(OpenAI.ApiKey) || !string.IsNullOrWhiteSpace(OpenAI.BaseUrl) || !string.IsNullOrWhiteSpace(Anthropic.ApiKey);
}

/// <summary>Settings of the echo model.</summary>
public sealed class EchoOptions
{
    /// <summary>Simulated model latency before each answer, in milliseconds (default 0).</summary>
    public int DelayMilliseconds { get; set; }
}

/// <summary>Where a provider is and the platform's key for it.</summary>
public sealed class ProviderEndpointOptions
{
    /// <summary>The server's base URL; empty for the provider's public API. OpenAI-compatible: up to <c>/v1</c>.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>The platform's key; a workspace's own key (BYOK) is used instead when it stored one.</summary>
    public string? ApiKey { get; set; }
}

/// <summary>
/// Builds and keeps the model client of each bot: picks the provider by the bot's model and the
/// configuration, and the key: the workspace's own (BYOK, decrypted here and nowhere else) or the
/// platform's. Every client, echo included, is built by <see cref="ModelClientPipeline"/> with the app's
/// logging.
/// </summary>
/// <remarks>
/// A client is built for one bot version and kept until the bot reloads, restarts or is deleted, or
/// its workspace's provider keys or the <c>Llm</c> configuration change. A replaced client is not
/// disposed: a turn already in flight finishes on it.
/// </remarks>
public sealed class ChatClientProvider : IChatClientProvider
{
    private readonly ConcurrentDictionary<string, Entry> _clients = new(StringComparer.Ordinal);
    private readonly IOptionsMonitor<LlmOptions> _options;
    private readonly IOptionsMonitor<ModelCallOptions> _calls;
    private readonly ITenantStore _tenants;
    private readonly IProviderKeyProtector _protector;
    private readonly ILoggerFactory _loggerFactory;
    private IChatClient _echo;
    private long _built;

    /// <summary>Reads <c>Llm</c> from <paramref name="options"/> and <paramref name="calls"/> and follows its changes; model calls log through <paramref name="loggerFactory"/>.</summary>
    public ChatClientProvider(
        IOptionsMonitor<LlmOptions> options,
        IOptionsMonitor<ModelCallOptions> calls,
        ITenantStore tenants,
        IProviderKeyProtector protector,
        ILoggerFactory loggerFactory)
    {
        _options = options;
        _calls = calls;
        _tenants = tenants;
        _protector = protector;
        _loggerFactory = loggerFactory;
        _echo = Echo(options.CurrentValue);
        options.OnChange(o =>
        {
            _echo = Echo(o);
            _clients.Clear();
        });
    }

    /// <summary>How many clients this process has built (a restart shows as one more).</summary>
    public long ClientsBuilt => Interlocked.Read(ref _built);

    /// <inheritdoc />
    public async ValueTask<IChatClient> GetClientAsync(BotInfo bot, CancellationToken cancellationToken)
    {
        if (_clients.TryGetValue(bot.Id, out var entry) && entry.Version == bot.Version)
        {
            return entry.Client;
        }

        var client = await BuildAsync(bot, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _built);
        _clients[bot.Id] = new Entry(bot.Version, bot.WorkspaceId, client);
        return client;
    }

    /// <inheritdoc />
    public void Evict(string botId) => _clients.TryRemove(botId, out _);

    /// <inheritdoc />
    public void EvictWorkspace(Guid workspaceId)
    {
        foreach (var (botId, entry) in _clients)
        {
            if (entry.WorkspaceId == workspaceId)
            {
                _clients.TryRemove(new KeyValuePair<string, Entry>(botId, entry));
            }
        }
    }

    /// <summary>Which provider serves <paramref name="model"/> when configuration does not force one.</summary>
    public static string ProviderFor(string model) =>
        model.StartsWith("claude", StringComparison.OrdinalIgnoreCase) ? ModelProviders.Anthropic
        : model.StartsWith("echo", StringComparison.OrdinalIgnoreCase) ? EchoChatClient.ProviderName
        : ModelProviders.OpenAI;

    private async Task<IChatClient> BuildAsync(BotInfo bot, CancellationToken cancellationToken)
    {
        var options = _options.CurrentValue;
        var forced = options.Provider?.Trim().ToLowerInvariant();
        var provider = forced switch
        {
            null or "" => ProviderFor(bot.Model),
            EchoChatClient.ProviderName or ModelProviders.OpenAI or ModelProviders.Anthropic => forced,
            _ => throw new ModelUnavailableException(
                $"model provider '{forced}' (Llm:Provider) is not available in this build; use 'echo', 'openai' or 'anthropic', or leave it empty"),
        };
        if (provider == EchoChatClient.ProviderName)
        {
            return _echo;
        }

        var endpoint = provider == ModelProviders.Anthropic ? options.Anthropic : options.OpenAI;
        var section = provider == ModelProviders.Anthropic ? "Llm:Anthropic" : "Llm:OpenAI";
        var apiKey = await WorkspaceKeyAsync(bot.WorkspaceId, provider, cancellationToken).ConfigureAwait(false) ?? endpoint.ApiKey;
        var configured = !string.IsNullOrWhiteSpace(apiKey) || (provider == ModelProviders.OpenAI && !string.IsNullOrWhiteSpace(endpoint.BaseUrl));
        if (!configured)
        {
            // Nothing configured anywhere: the embedded default answers, so a fresh clone runs.
            if (string.IsNullOrEmpty(forced) && !options.AnyProviderConfigured)
            {
                return _echo;
            }

            throw new ModelUnavailableException(provider == ModelProviders.Anthropic
                ? $"model '{bot.Model}' needs an Anthropic key: set {section}:ApiKey, or store the workspace's own with PUT /api/v1/provider-keys/anthropic"
                : $"model '{bot.Model}' needs an OpenAI-compatible provider: set {section}:BaseUrl and/or {section}:ApiKey, or store the workspace's own key with PUT /api/v1/provider-keys/openai");
        }

        Uri? baseUrl = null;
        if (!string.IsNullOrWhiteSpace(endpoint.BaseUrl)
            && (!Uri.TryCreate(endpoint.BaseUrl.Trim(), UriKind.Absolute, out baseUrl) || baseUrl.Scheme is not ("http" or "https")))
        {
            throw new ModelUnavailableException($"{section}:BaseUrl '{endpoint.BaseUrl}' is not an absolute http(s) URL");
        }

        var timeout = TimeSpan.FromSeconds(_calls.CurrentValue.TimeoutSeconds);
        return provider == ModelProviders.Anthropic
            ? AnthropicChatClients.Create(ServerRoot(baseUrl), apiKey!.Trim(), bot.Model, timeout, _loggerFactory)
            : OpenAIChatClients.Create(baseUrl, apiKey?.Trim(), bot.Model, timeout, _loggerFactory);
    }

    /// <summary>
    /// The echo client every echo bot shares (it keeps nothing per bot), in the same pipeline as the others; it
    /// has no provider to fail, so no failure translation.
    /// </summary>
    private IChatClient Echo(LlmOptions options) =>
        ModelClientPipeline.Build(new EchoChatClient(TimeSpan.FromMilliseconds(options.Echo.DelayMilliseconds)), failures: null, _loggerFactory);

    /// <summary>
    /// The Anthropic SDK appends <c>/v1/messages</c> to its base URL; accept the <c>…/v1</c> form too,
    /// as OpenAI-compatible base URLs are written that way.
    /// </summary>
    private static Uri? ServerRoot(Uri? baseUrl) =>
        baseUrl is not null && baseUrl.AbsolutePath.TrimEnd('/').EndsWith("/v1", StringComparison.Ordinal)
            ? new Uri(baseUrl, baseUrl.AbsolutePath.TrimEnd('/')[..^3] + "/")
            : baseUrl;

    /// <summary>The workspace's own key for <paramref name="provider"/>, decrypted; null if it stored none.</summary>
    private async Task<string?> WorkspaceKeyAsync(Guid workspaceId, string provider, CancellationToken cancellationToken)
    {
        if (await _tenants.GetProviderKeyAsync(workspaceId, provider, cancellationToken).ConfigureAwait(false) is not { } stored)
        {
            return null;
        }

        try
        {
            return _protector.Unprotect(workspaceId, stored.Ciphertext);
        }
        catch (CryptographicException e)
        {
            throw new ModelUnavailableException(
                $"the workspace's stored {provider} key ({stored.Hint}) cannot be decrypted on this node (is the Data Protection key ring shared?); " +
                $"store it again with PUT /api/v1/provider-keys/{provider}", inner: e);
        }
    }

    private sealed record Entry(long Version, Guid WorkspaceId, IChatClient Client);
}
