using System.ClientModel;
using System.ClientModel.Primitives;
using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAIChat = OpenAI.Chat;

namespace LuluClaw.Silo.Models;

/// <summary>
/// Builds <see cref="IChatClient"/>s for OpenAI-compatible servers (OpenAI, Ollama, vLLM, llama.cpp...):
/// the official OpenAI SDK's chat completions client, adapted by Microsoft.Extensions.AI.OpenAI's
/// <c>AsIChatClient()</c>, inside <see cref="ModelClientPipeline"/>.
/// </summary>
internal static class OpenAIChatClients
{
    /// <summary>Where requests go when no base URL is configured.</summary>
    public static readonly Uri DefaultBaseUrl = new("https://api.openai.com/v1");

    /// <summary>
    /// The credential sent when no API key is configured: local servers ignore it, and the SDK refuses an
    /// empty one.
    /// </summary>
    public const string PlaceholderApiKey = "no-key";

    /// <summary>
    /// An <see cref="IChatClient"/> for <paramref name="model"/> on the OpenAI-compatible server at
    /// <paramref name="baseUrl"/> (for example <c>http://127.0.0.1:1234/v1</c>; requests go to
    /// <c>{baseUrl}/chat/completions</c>; <see langword="null"/> means <see cref="DefaultBaseUrl"/>).
    /// The SDK does not retry, and gives up on a request (or, while streaming, on a read) after
    /// <paramref name="timeout"/>. Failures surface as <see cref="ModelUnavailableException"/>.
    /// </summary>
    public static IChatClient Create(Uri? baseUrl, string? apiKey, string model, TimeSpan timeout, ILoggerFactory loggerFactory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        ModelProviderFailures.ThrowIfInvalidTimeout(timeout);
        var endpoint = baseUrl ?? DefaultBaseUrl;
        var key = string.IsNullOrEmpty(apiKey) ? PlaceholderApiKey : apiKey;
        var options = new OpenAIClientOptions
        {
            Endpoint = endpoint,
            // One attempt per call: the grain decides what a failure means for the turn, and an SDK
            // retrying a 429 behind its back would hold the turn for the whole backoff.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = timeout,
        };
        // Without a transport of our own, every client shares System.ClientModel's process-wide HttpClient:
        // nothing to dispose when a bot's client is replaced. A call's ChatOptions.ModelId overrides the model.
        var sdk = new OpenAIChat.ChatClient(model, new ApiKeyCredential(key), options).AsIChatClient();
        var failures = new ModelProviderFailures("OpenAI-compatible provider", endpoint, apiKey, timeout);
        return ModelClientPipeline.Build(sdk, failures, loggerFactory);
    }
}
