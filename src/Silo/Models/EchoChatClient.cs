using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace LuluClaw.Silo.Models;

/// <summary>
/// The embedded default model: offline and deterministic. It answers <c>Echo: </c> followed by the
/// last user message, streams that reply word by word and reports usage in whitespace-separated
/// words (the input counts every message it was sent, the system prompt included). It honours the
/// options it can, so that tests see them arrive: <see cref="ChatOptions.MaxOutputTokens"/> cuts the
/// reply to that many words (finish reason <c>length</c>), and <see cref="ChatOptions.StopSequences"/>
/// end it just before the first one.
/// </summary>
/// <remarks>
/// <see cref="Delay"/> (<c>Llm:Echo:DelayMilliseconds</c>) makes it wait before answering, to stand in
/// for a model's latency in benchmarks and in tests of slow models.
/// </remarks>
public sealed class EchoChatClient(TimeSpan delay = default) : IChatClient
{
    /// <summary>How long it waits before it answers.</summary>
    public TimeSpan Delay { get; } = delay;

    /// <summary>The provider name in metadata.</summary>
    public const string ProviderName = "echo";

    private static readonly ChatClientMetadata Metadata = new(ProviderName, defaultModelId: "echo");

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        await WaitAsync(cancellationToken).ConfigureAwait(false);
        var (reply, usage, finish) = Answer(messages, options);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, reply))
        {
            ModelId = options?.ModelId ?? "echo",
            Usage = usage,
            FinishReason = finish,
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await WaitAsync(cancellationToken).ConfigureAwait(false);
        var (reply, usage, finish) = Answer(messages, options);
        var start = 0;
        while (start < reply.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = reply.IndexOf(' ', start + 1);
            var end = next < 0 ? reply.Length : next;
            yield return new ChatResponseUpdate(ChatRole.Assistant, reply[start..end]) { ModelId = options?.ModelId ?? "echo" };
            start = end;
            await Task.Yield();
        }

        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            FinishReason = finish,
            Contents = [new UsageContent(usage)],
        };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? Metadata
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private Task WaitAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Delay > TimeSpan.Zero ? Task.Delay(Delay, cancellationToken) : Task.CompletedTask;
    }

    private static (string Reply, UsageDetails Usage, ChatFinishReason Finish) Answer(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        long input = 0;
        string last = "";
        foreach (var message in messages)
        {
            input += Words(message.Text);
            if (message.Role == ChatRole.User)
            {
                last = message.Text;
            }
        }

        var reply = $"Echo: {last}";
        var finish = ChatFinishReason.Stop;
        foreach (var stop in options?.StopSequences ?? [])
        {
            if (stop.Length > 0 && reply.IndexOf(stop, StringComparison.Ordinal) is >= 0 and var at)
            {
                reply = reply[..at];
            }
        }

        if (options?.MaxOutputTokens is { } most && Words(reply) > most)
        {
            reply = string.Join(' ', reply.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(Math.Max(0, most)));
            finish = ChatFinishReason.Length;
        }

        var output = Words(reply);
        return (reply, new UsageDetails { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output }, finish);
    }

    /// <summary>Whitespace-separated words, counted without splitting the text (this runs on every turn).</summary>
    private static long Words(string text)
    {
        long words = 0;
        var inWord = false;
        foreach (var c in text)
        {
            var space = char.IsWhiteSpace(c);
            words += !space && !inWord ? 1 : 0;
            inWord = !space;
        }

        return words;
    }
}
