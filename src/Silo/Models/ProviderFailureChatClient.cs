using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Anthropic.Exceptions;
using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;

namespace LuluClaw.Silo.Models;

/// <summary>
/// The pipeline layer that turns a provider SDK's exceptions (the OpenAI SDK's and the Anthropic SDK's) into
/// <see cref="ModelUnavailableException"/>s worded by <see cref="ModelProviderFailures"/>: the status, the
/// provider's <c>Retry-After</c>, a message naming the provider and never the key. A cancellation the caller
/// asked for, and the caller's own mistakes, go through unchanged.
/// </summary>
/// <remarks>
/// It sits right above the SDK's <see cref="IChatClient"/>, below logging and telemetry, so that those record
/// the translated exception and never an SDK message that may quote a response body. The OpenAI SDK's
/// exceptions carry the failed response and its headers; the Anthropic SDK's carry no headers, so its HTTP
/// chain holds a <see cref="FailedResponseRecorder"/> that notes the <c>Retry-After</c> for the call waiting on it.
/// </remarks>
internal sealed class ProviderFailureChatClient : DelegatingChatClient
{
    private readonly ModelProviderFailures _failures;
    private readonly string _defaultModel;

    /// <summary>Translates the failures of <paramref name="inner"/>, an SDK's client, with <paramref name="failures"/>.</summary>
    public ProviderFailureChatClient(IChatClient inner, ModelProviderFailures failures)
        : base(inner)
    {
        _failures = failures;
        // Both SDK adapters publish the model they were built for; the messages name it when a call names none.
        _defaultModel = inner.GetService<ChatClientMetadata>()?.DefaultModelId ?? "(default)";
    }

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
            // Both SDKs send the request on the first MoveNextAsync, but a failure here is translated all the same.
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

    private string ModelOf(ChatOptions? options) =>
        string.IsNullOrWhiteSpace(options?.ModelId) ? _defaultModel : options.ModelId;

    /// <summary>
    /// Everything but the caller's own cancellation and the caller's mistakes: null or unsupported arguments
    /// (which the SDKs reject before they send anything) and calls on a disposed client.
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
            // OpenAI SDK (System.ClientModel): the exception holds the failed response, headers included. Neither
            // SDK exception is kept as the inner exception: its message quotes the response body, which is not ours to log.
            ClientResultException { Status: > 0 } answered => _failures.Answered(
                model, answered.Status, ModelProviderFailures.ErrorDetail(BodyOf(answered.GetRawResponse())), RetryAfterOf(answered.GetRawResponse())),
            // OpenAI SDK: no response at all; the transport's exception says why.
            ClientResultException { InnerException: { } inner } => _failures.Unreachable(model, inner),
            // Anthropic SDK: status and body on the exception, Retry-After noted by the recorder.
            AnthropicApiException answered => _failures.Answered(
                model, (int)answered.StatusCode, ModelProviderFailures.ErrorDetail(answered.ResponseBody), failed.RetryAfter),
            AnthropicSseException streamed => _failures.FailedWhileStreaming(model, streamed.Message, streamed),
            AnthropicIOException or HttpRequestException or IOException or SocketException => _failures.Unreachable(model, exception),
            // Either SDK's own timeout: a TaskCanceledException around a TimeoutException.
            OperationCanceledException => _failures.TimedOut(model, exception),
            _ => _failures.Malformed(model, exception),
        };
    }

    private static string? BodyOf(PipelineResponse? response)
    {
        if (response is null)
        {
            return null;
        }

        try
        {
            return response.Content.ToString();
        }
        catch (InvalidOperationException)
        {
            return null; // a streaming response whose body was not buffered
        }
    }

    private static TimeSpan? RetryAfterOf(PipelineResponse? response)
    {
        if (response is null)
        {
            return null;
        }

        response.Headers.TryGetValue(ModelProviderFailures.RetryAfterMsHeader, out var milliseconds);
        response.Headers.TryGetValue(ModelProviderFailures.RetryAfterHeader, out var retryAfter);
        return ModelProviderFailures.ParseRetryAfter(milliseconds, retryAfter, TimeProvider.System.GetUtcNow());
    }
}

/// <summary>What the failed response of one call said, filled in by <see cref="FailedResponseRecorder"/>.</summary>
internal sealed class FailedResponse
{
    /// <summary>The <c>Retry-After</c> (or <c>retry-after-ms</c>) of the failed response, if it had one.</summary>
    public TimeSpan? RetryAfter { get; set; }
}

/// <summary>
/// For an SDK whose exceptions carry no headers (Anthropic's): an <see cref="HttpMessageHandler"/> in its HTTP
/// chain that notes the <c>Retry-After</c> of failed responses into the <see cref="FailedResponse"/> of the call
/// that sent the request, which it finds in an <see cref="AsyncLocal{T}"/> set by
/// <see cref="ProviderFailureChatClient"/>: concurrent calls on one client each have their own.
/// </summary>
internal sealed class FailedResponseRecorder : DelegatingHandler
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
