using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAIChat = OpenAI.Chat;

namespace LuluClaw.Silo.Models;

/// <summary>Builds <see cref="IChatClient"/>s for OpenAI-compatible servers (OpenAI, Ollama, vLLM, llama.cpp...).</summary>
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
    public static IChatClient Create(Uri? baseUrl, string? apiKey, string model, TimeSpan timeout)
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
        var failures = new ModelProviderFailures("OpenAI-compatible provider", endpoint, apiKey, timeout);
        return new OpenAIChatClient(new OpenAIClient(new ApiKeyCredential(key), options), endpoint, model, failures);
    }
}

/// <summary>
/// <see cref="IChatClient"/> over the OpenAI SDK's chat completions (Microsoft.Extensions.AI.OpenAI is not
/// available to us). Text only: system, user and assistant messages go out in order; the answer comes back
/// with its usage, whole or streamed delta by delta as the server sends them.
/// </summary>
internal sealed class OpenAIChatClient : IChatClient
{
    private readonly OpenAIClient _openAI;
    private readonly OpenAIChat.ChatClient _defaultClient;
    private readonly string _defaultModel;
    private readonly ModelProviderFailures _failures;
    private readonly ChatClientMetadata _metadata;
    private readonly ConcurrentDictionary<string, OpenAIChat.ChatClient> _otherModels = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="openAI"/>; <paramref name="model"/> serves calls that name no model.</summary>
    public OpenAIChatClient(OpenAIClient openAI, Uri endpoint, string model, ModelProviderFailures failures)
    {
        _openAI = openAI;
        _defaultModel = model;
        _defaultClient = openAI.GetChatClient(model);
        _failures = failures;
        _metadata = new ChatClientMetadata("openai", endpoint, model);
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options);
        try
        {
            var result = await call.Client.CompleteChatAsync(call.Messages, call.Options, cancellationToken).ConfigureAwait(false);
            // Reading the completion is inside the try: a body that is not a completion fails here.
            return ToResponse(result.Value, call.Model);
        }
        catch (Exception exception) when (!IsCallerCancellation(exception, cancellationToken))
        {
            throw Translate(exception, call.Model, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options);
        IAsyncEnumerator<OpenAIChat.StreamingChatCompletionUpdate> updates;
        try
        {
            // The SDK sends the request on the first MoveNextAsync; it asks for stream_options.include_usage itself.
            updates = call.Client.CompleteChatStreamingAsync(call.Messages, call.Options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception exception) when (!IsCallerCancellation(exception, cancellationToken))
        {
            throw Translate(exception, call.Model, cancellationToken);
        }

        await using (updates.ConfigureAwait(false))
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ChatResponseUpdate? next;
                try
                {
                    if (!await updates.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }

                    next = ToUpdate(updates.Current, call.Model);
                }
                catch (Exception exception) when (!IsCallerCancellation(exception, cancellationToken))
                {
                    throw Translate(exception, call.Model, cancellationToken);
                }

                if (next is not null)
                {
                    yield return next;
                }
            }
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(ChatClientMetadata) ? _metadata
            : serviceType == typeof(OpenAIChat.ChatClient) ? _defaultClient
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        // Nothing to release: without a transport of our own, OpenAI clients share System.ClientModel's process-wide HttpClient.
    }

    private Call Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var model = string.IsNullOrWhiteSpace(options?.ModelId) ? _defaultModel : options.ModelId;
        // ChatCompletionOptions cannot name the model: each model has its own ChatClient over the same pipeline.
        var client = model == _defaultModel ? _defaultClient : _otherModels.GetOrAdd(model, _openAI.GetChatClient);

        var sdkMessages = new List<OpenAIChat.ChatMessage>();
        foreach (var message in messages)
        {
            sdkMessages.Add(ToSdkMessage(message));
        }

        if (sdkMessages.Count == 0)
        {
            throw new ArgumentException("A chat completion needs at least one message.", nameof(messages));
        }

        var sdkOptions = new OpenAIChat.ChatCompletionOptions
        {
            MaxOutputTokenCount = options?.MaxOutputTokens,
            Temperature = options?.Temperature,
        };
        return new Call(client, model, sdkMessages, sdkOptions);
    }

    private static OpenAIChat.ChatMessage ToSdkMessage(ChatMessage message)
    {
        var text = message.Text;
        if (message.Role == ChatRole.System)
        {
            return new OpenAIChat.SystemChatMessage(text);
        }

        if (message.Role == ChatRole.User)
        {
            return new OpenAIChat.UserChatMessage(text);
        }

        if (message.Role == ChatRole.Assistant)
        {
            return new OpenAIChat.AssistantChatMessage(text);
        }

        throw new NotSupportedException($"The OpenAI-compatible client sends system, user and assistant messages only, not '{message.Role}'.");
    }

    private static ChatResponse ToResponse(OpenAIChat.ChatCompletion completion, string model)
    {
        var message = new ChatMessage(ChatRole.Assistant, TextOf(completion.Content))
        {
            MessageId = completion.Id,
            CreatedAt = completion.CreatedAt,
        };
        return new ChatResponse(message)
        {
            ResponseId = completion.Id,
            ModelId = string.IsNullOrEmpty(completion.Model) ? model : completion.Model,
            CreatedAt = completion.CreatedAt,
            FinishReason = ToFinishReason(completion.FinishReason),
            Usage = ToUsage(completion.Usage),
            RawRepresentation = completion,
        };
    }

    /// <summary>One SDK chunk as one update: its text delta, its finish reason, its usage; null when it has none.</summary>
    private static ChatResponseUpdate? ToUpdate(OpenAIChat.StreamingChatCompletionUpdate update, string model)
    {
        var contents = new List<AIContent>(2);
        var text = TextOf(update.ContentUpdate);
        if (text.Length > 0)
        {
            contents.Add(new TextContent(text));
        }

        if (ToUsage(update.Usage) is { } usage)
        {
            contents.Add(new UsageContent(usage));
        }

        var finishReason = update.FinishReason is { } reason ? ToFinishReason(reason) : null;
        if (contents.Count == 0 && finishReason is null)
        {
            return null;
        }

        return new ChatResponseUpdate(ChatRole.Assistant, contents)
        {
            ResponseId = update.CompletionId,
            MessageId = update.CompletionId,
            ModelId = string.IsNullOrEmpty(update.Model) ? model : update.Model,
            CreatedAt = update.CreatedAt,
            FinishReason = finishReason,
            RawRepresentation = update,
        };
    }

    private static string TextOf(OpenAIChat.ChatMessageContent? content)
    {
        if (content is null || content.Count == 0)
        {
            return "";
        }

        if (content.Count == 1)
        {
            return content[0].Kind == OpenAIChat.ChatMessageContentPartKind.Text ? content[0].Text ?? "" : "";
        }

        var text = new StringBuilder();
        foreach (var part in content)
        {
            if (part.Kind == OpenAIChat.ChatMessageContentPartKind.Text)
            {
                text.Append(part.Text);
            }
        }

        return text.ToString();
    }

    private static UsageDetails? ToUsage(OpenAIChat.ChatTokenUsage? usage) =>
        usage is null ? null : new UsageDetails
        {
            InputTokenCount = usage.InputTokenCount,
            OutputTokenCount = usage.OutputTokenCount,
            TotalTokenCount = usage.TotalTokenCount,
            CachedInputTokenCount = usage.InputTokenDetails?.CachedTokenCount,
            ReasoningTokenCount = usage.OutputTokenDetails?.ReasoningTokenCount,
        };

    private static ChatFinishReason? ToFinishReason(OpenAIChat.ChatFinishReason reason) => reason switch
    {
        OpenAIChat.ChatFinishReason.Stop => ChatFinishReason.Stop,
        OpenAIChat.ChatFinishReason.Length => ChatFinishReason.Length,
        OpenAIChat.ChatFinishReason.ContentFilter => ChatFinishReason.ContentFilter,
        OpenAIChat.ChatFinishReason.ToolCalls or OpenAIChat.ChatFinishReason.FunctionCall => ChatFinishReason.ToolCalls,
        _ => null,
    };

    private static bool IsCallerCancellation(Exception exception, CancellationToken cancellationToken) =>
        exception is OperationCanceledException && cancellationToken.IsCancellationRequested;

    private Exception Translate(Exception exception, string model, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up and the SDK failed some other way on the way out: the caller's cancellation wins.
            return new OperationCanceledException("The model call was cancelled.", exception, cancellationToken);
        }

        return exception switch
        {
            ClientResultException { Status: > 0 } failed => _failures.Answered(
                model, failed.Status, ModelProviderFailures.ErrorDetail(BodyOf(failed.GetRawResponse())), RetryAfterOf(failed.GetRawResponse())),
            ClientResultException { InnerException: { } inner } => _failures.Unreachable(model, inner),
            HttpRequestException or IOException or SocketException => _failures.Unreachable(model, exception),
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

    private sealed record Call(OpenAIChat.ChatClient Client, string Model, List<OpenAIChat.ChatMessage> Messages, OpenAIChat.ChatCompletionOptions Options);
}
