using LuluClaw.Grains.Models;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Silo.Models;

/// <summary>
/// The one place where a model client is put together: every provider's <see cref="IChatClient"/> (echo, the
/// OpenAI SDK's, the Anthropic SDK's) goes through the same <see cref="ChatClientBuilder"/> layers.
/// </summary>
/// <remarks>
/// From the caller inwards:
/// <list type="number">
/// <item><see cref="LoggingChatClient"/>: each call at Debug, failures at Error. Messages, options and answers
/// only at Trace (Microsoft.Extensions.AI logs contents at no other level); never the key, which no layer
/// above the SDK sees.</item>
/// <item><see cref="OpenTelemetryChatClient"/> (source and meter <see cref="TelemetrySourceName"/>): a
/// <c>chat {model}</c> activity per call and the gen_ai duration and token metrics. Message contents are
/// recorded only if the operator opts in with <c>OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true</c>.</item>
/// <item><see cref="ProviderFailureChatClient"/> for real providers: SDK exceptions become
/// <see cref="ModelUnavailableException"/>s. It is inside the two above so that they record the translated
/// exception, whose message is masked, and never an SDK message quoting a response body.</item>
/// <item>The provider's own client.</item>
/// </list>
/// </remarks>
internal static class ModelClientPipeline
{
    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/> and <see cref="System.Diagnostics.Metrics.Meter"/> name of model calls.</summary>
    public const string TelemetrySourceName = "LuluClaw.Models";

    /// <summary>
    /// <paramref name="provider"/> inside the layers every model client has; <paramref name="failures"/> words its
    /// failures, or <see langword="null"/> for a client that has no provider to fail (echo).
    /// </summary>
    public static IChatClient Build(IChatClient provider, ModelProviderFailures? failures, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var builder = new ChatClientBuilder(provider)
            .UseLogging(loggerFactory)
            // No logger here: LoggingChatClient already logs each failure, and the telemetry layer would log it again.
            .UseOpenTelemetry(loggerFactory: null, sourceName: TelemetrySourceName);
        if (failures is not null)
        {
            builder.Use(inner => new ProviderFailureChatClient(inner, failures));
        }

        return builder.Build();
    }
}
