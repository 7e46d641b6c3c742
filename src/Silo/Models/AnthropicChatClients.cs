using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Anthropic;
using Anthropic.Core;
using Anthropic.Exceptions;
using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;

namespace LuluClaw.Silo.Models;

/// <summary>Builds <see cref="IChatClient"/>s for Anthropic's Messages API, on the Anthropic SDK's own adapter.</summary>
/// <remarks>
/// The SDK's <see cref="IChatClient"/> sends leading system messages as the top-level <c>system</c> and the
/// rest of the history in order. Its exceptions carry the status and body of a failed response but not its
/// headers, so a handler in the SDK's HTTP chain notes the <c>Retry-After</c> of the failed response for the
/// call that is waiting on it (<see cref="FailedResponseRecorder"/>).
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
    public static IChatClient Create(Uri? baseUrl, string apiKey, string model, TimeSpan timeout)
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
        var failures = new ModelProviderFailures("Anthropic provider", endpoint, apiKey, timeout);
        return new FailureTranslatingChatClient(client.AsIChatClient(model, DefaultMaxOutputTokens), client, model, failures);
    }

    /// <summary>
    /// Translates the SDK's exceptions into <see cref="ModelUnavailableException"/>; a cancellation asked by the
    /// caller goes through unchanged. Owns the <see cref="AnthropicClient"/> (and so its HttpClient), which the
    /// SDK's <see cref="IChatClient"/> does not dispose.
    /// </summary>
    private sealed class FailureTranslatingChatClient(IChatClient inner, AnthropicClient owned, string defaultModel, ModelProviderFailures failures)
        : DelegatingChatClient(inner)
    {
        /// <inheritdoc />
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var failed = FailedResponseRecorder.Watch();
            try
            {
                return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (IsProviderFailure(exception, cancellationToken))
            {
                throw Translate(exception, ModelOf(options), failed, cancellationToken);
            }
        }

        /// <inheritdoc />
        public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var failed = new FailedResponse();
            IAsyncEnumerator<ChatResponseUpdate> updates;
            try
            {
                updates = base.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            }
            catch (Exception exception) when (IsProviderFailure(exception, cancellationToken))
            {
                throw Translate(exception, ModelOf(options), failed, cancellationToken);
            }

            await using (updates.ConfigureAwait(false))
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    try
                    {
                        if (!await FailedResponseRecorder.MoveNextAsync(updates, failed).ConfigureAwait(false))
                        {
                            break;
                        }
                    }
                    catch (Exception exception) when (IsProviderFailure(exception, cancellationToken))
                    {
                        throw Translate(exception, ModelOf(options), failed, cancellationToken);
                    }

                    yield return updates.Current;
                }
            }
        }

        /// <inheritdoc />
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                owned.Dispose();
            }

            base.Dispose(disposing);
        }

        private string ModelOf(ChatOptions? options) =>
            string.IsNullOrWhiteSpace(options?.ModelId) ? defaultModel : options.ModelId;

        /// <summary>
        /// Everything but the caller's own cancellation and the caller's mistakes: null or unsupported
        /// arguments (which the SDK rejects before it sends anything) and calls on a disposed client.
        /// </summary>
        private static bool IsProviderFailure(Exception exception, CancellationToken cancellationToken) =>
            !(exception is OperationCanceledException && cancellationToken.IsCancellationRequested)
            && exception is not (ArgumentException or NotSupportedException or ObjectDisposedException);

        private Exception Translate(Exception exception, string model, FailedResponse failed, CancellationToken cancellationToken)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // The caller gave up and the SDK failed some other way on the way out: the caller's cancellation wins.
                return new OperationCanceledException("The model call was cancelled.", exception, cancellationToken);
            }

            return exception switch
            {
                // Not kept as the inner exception: its message is the whole response body, which is not ours to log.
                AnthropicApiException answered => failures.Answered(
                    model, (int)answered.StatusCode, ModelProviderFailures.ErrorDetail(answered.ResponseBody), failed.RetryAfter),
                AnthropicSseException streamed => failures.FailedWhileStreaming(model, streamed.Message, streamed),
                AnthropicIOException or HttpRequestException or IOException or SocketException => failures.Unreachable(model, exception),
                // The SDK's own timeout: a TaskCanceledException around a TimeoutException.
                OperationCanceledException => failures.TimedOut(model, exception),
                _ => failures.Malformed(model, exception),
            };
        }
    }

    /// <summary>What the failed response of one call said, filled in by <see cref="FailedResponseRecorder"/>.</summary>
    private sealed class FailedResponse
    {
        /// <summary>The <c>Retry-After</c> (or <c>retry-after-ms</c>) of the failed response, if it had one.</summary>
        public TimeSpan? RetryAfter { get; set; }
    }

    /// <summary>
    /// Notes the <c>Retry-After</c> of failed responses into the <see cref="FailedResponse"/> of the call that
    /// sent the request, which it finds in an <see cref="AsyncLocal{T}"/> set by the call: concurrent calls on one
    /// client each have their own.
    /// </summary>
    private sealed class FailedResponseRecorder : DelegatingHandler
    {
        private static readonly AsyncLocal<FailedResponse?> Current = new();

        /// <summary>Starts watching for the calling (async) method and what it calls; returns what will be noted.</summary>
        public static FailedResponse Watch()
        {
            var failed = new FailedResponse();
            Current.Value = failed;
            return failed;
        }

        /// <summary>
        /// Advances <paramref name="updates"/> with <paramref name="failed"/> watched. An async iterator resumes
        /// in its consumer's execution context at each MoveNextAsync, so the watch is set anew for every step.
        /// </summary>
        public static async ValueTask<bool> MoveNextAsync(IAsyncEnumerator<ChatResponseUpdate> updates, FailedResponse failed)
        {
            Current.Value = failed;
            return await updates.MoveNextAsync().ConfigureAwait(false);
        }

        /// <inheritdoc />
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode && Current.Value is { } failed)
            {
                failed.RetryAfter = ModelProviderFailures.ParseRetryAfter(
                    HeaderOf(response, ModelProviderFailures.RetryAfterMsHeader),
                    HeaderOf(response, ModelProviderFailures.RetryAfterHeader),
                    TimeProvider.System.GetUtcNow());
            }

            return response;
        }

        private static string? HeaderOf(HttpResponseMessage response, string name) =>
            response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
    }
}
