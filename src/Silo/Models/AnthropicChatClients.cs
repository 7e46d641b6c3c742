using Anthropic;
using Anthropic.Core;
using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Silo.Models;

/// <summary>
/// Builds <see cref="IChatClient"/>s for Anthropic's Messages API: the Anthropic SDK's own adapter, inside
/// <see cref="ModelClientPipeline"/>.
/// </summary>
/// <remarks>
/// The SDK's <see cref="IChatClient"/> sends leading system messages as the top-level <c>system</c> and the
/// rest of the history in order. Its exceptions carry the status and body of a failed response but not its
/// headers, so a <see cref="FailedResponseRecorder"/> in the SDK's HTTP chain notes the <c>Retry-After</c> of
/// the failed response for the call that is waiting on it.
/// </remarks>
internal static class AnthropicChatClients
{
    /// <summary>The answer length asked for when the caller sets no <see cref="ChatOptions.MaxOutputTokens"/>.</summary>
    public const int DefaultMaxOutputTokens = 1024;

    /// <summary>
    /// An <see cref="IChatClient"/> for <paramref name="model"/>. <paramref name="baseUrl"/> is the server root
    /// without <c>/v1</c> (requests go to <c>{baseUrl}/v1/messages</c>); <see langword="null"/> means
    /// <c>https://api.anthropic.com</c>, whatever <c>ANTHROPIC_BASE_URL</c> says. The SDK does not retry and
    /// gives up on a request after <paramref name="timeout"/> (until the response headers arrive; a stream
    /// then runs as long as the server sends). Failures surface as <see cref="ModelUnavailableException"/>.
    /// </summary>
    public static IChatClient Create(Uri? baseUrl, string apiKey, string model, TimeSpan timeout, ILoggerFactory loggerFactory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        ModelProviderFailures.ThrowIfInvalidTimeout(timeout);
        var endpoint = baseUrl ?? new Uri(EnvironmentUrl.Production);
        var client = new AnthropicClient(new ClientOptions
        {
            BaseUrl = endpoint.AbsoluteUri,
            // Both set explicitly, so that the SDK neither falls back to ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN
            // nor goes looking for a credentials profile: this client uses the configured key or none.
            ApiKey = string.IsNullOrEmpty(apiKey) ? null : apiKey,
            AuthToken = null,
            // One attempt per call, as for OpenAI; MaxRetries = 0 also ignores the server's x-should-retry.
            MaxRetries = 0,
            Timeout = timeout,
            Handlers = [new FailedResponseRecorder()],
        });
        var sdk = new OwningChatClient(client.AsIChatClient(model, DefaultMaxOutputTokens), client);
        var failures = new ModelProviderFailures("Anthropic provider", endpoint, apiKey, timeout);
        return ModelClientPipeline.Build(sdk, failures, loggerFactory);
    }

    /// <summary>
    /// Owns the <see cref="AnthropicClient"/> (and so its HttpClient), which the SDK's <see cref="IChatClient"/>
    /// does not dispose: disposing the pipeline disposes it.
    /// </summary>
    private sealed class OwningChatClient(IChatClient inner, AnthropicClient owned) : DelegatingChatClient(inner)
    {
        /// <inheritdoc />
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                owned.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
