using System.Collections.Concurrent;
using System.Diagnostics;
using LuluClaw.Grains.Models;
using LuluClaw.Silo.Models;
using LuluClaw.Tests;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace LuluClaw.Silo.Tests.Models;

/// <summary>
/// The layers every model client is built with (<see cref="ModelClientPipeline"/>): what the logs and the
/// traces show of a model call, and that the failure translation sits below both.
/// </summary>
public sealed class ModelClientPipelineTests : IAsyncLifetime
{
    private const string ApiKey = "sk-test-pipeline-0123456789abcdef";
    private const string Question = "What is the capital of Italy?";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly CapturingLoggerFactory _logs = new(LogLevel.Debug);
    private StubModelServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await StubModelServer.StartAsync(Ct);

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _logs.Dispose();
    }

    private static List<ChatMessage> Conversation() =>
    [
        new(ChatRole.System, "You are a terse assistant."),
        new(ChatRole.User, Question),
    ];

    private IChatClient Client(string provider, string model) => provider switch
    {
        "openai" => OpenAIChatClients.Create(_server.OpenAIBaseUrl, ApiKey, model, Timeout, _logs),
        "anthropic" => AnthropicChatClients.Create(_server.BaseUrl, ApiKey, model, Timeout, _logs),
        _ => ModelClientPipeline.Build(new EchoChatClient(), failures: null, _logs),
    };

    /// <summary>A model name no other test uses, so that activities of tests running alongside are told apart.</summary>
    private static string UniqueModel(string provider) => $"{(provider == "echo" ? "echo" : "stub")}-{Guid.NewGuid():N}";

    [Theory]
    [InlineData("openai")]
    [InlineData("anthropic")]
    [InlineData("echo")]
    public async Task AnyCall_EveryProvider_LoggedAtDebug_WithoutKeyOrContents(string provider)
    {
        var model = UniqueModel(provider);
        using var client = Client(provider, model);

        var whole = await client.GetResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct);
        await foreach (var update in client.GetStreamingResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct))
        {
            Assert.NotNull(update);
        }

        Assert.IsType<LoggingChatClient>(client);
        var entries = _logs.Entries;
        Assert.Contains(entries, e => e.Level == LogLevel.Debug && e.Message == "GetResponseAsync invoked.");
        Assert.Contains(entries, e => e.Level == LogLevel.Debug && e.Message == "GetStreamingResponseAsync completed.");
        Assert.All(entries, e => Assert.True(e.Level < LogLevel.Information, $"{e.Level}: {e.Message}"));
        Assert.All(entries, e =>
        {
            Assert.DoesNotContain(ApiKey, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Question, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(whole.Text, e.Message, StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData("openai", false)]
    [InlineData("openai", true)]
    [InlineData("anthropic", false)]
    [InlineData("anthropic", true)]
    public async Task AnyCall_ProviderFails_LoggedOnceAtError_AsTheTranslatedException(string provider, bool streaming)
    {
        _server.FailNext(429, retryAfter: "3");
        var model = UniqueModel(provider);
        using var client = Client(provider, model);

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => streaming
            ? DrainAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct))
            : client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);
        // With no model in the options, the message names the one the client was built for.
        Assert.Contains($"for model '{model}'", error.Message, StringComparison.Ordinal);
        var failure = Assert.Single(_logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Equal(LogLevel.Error, failure.Level);
        Assert.Same(error, failure.Exception);
        Assert.All(_logs.Entries, e => Assert.DoesNotContain(ApiKey, e.Message + e.Exception, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("openai", false)]
    [InlineData("openai", true)]
    [InlineData("anthropic", false)]
    [InlineData("anthropic", true)]
    [InlineData("echo", false)]
    [InlineData("echo", true)]
    public async Task AnyCall_EveryProvider_TracedAsAChatActivityWithUsage(string provider, bool streaming)
    {
        var model = UniqueModel(provider);
        using var activities = new ActivityCollector(ModelClientPipeline.TelemetrySourceName, model);
        using var client = Client(provider, model);

        if (streaming)
        {
            await DrainAsync(client.GetStreamingResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct));
        }
        else
        {
            await client.GetResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct);
        }

        var activity = Assert.Single(activities.Stopped);
        Assert.Equal($"chat {model}", activity.DisplayName);
        Assert.Equal(ActivityStatusCode.Unset, activity.Status);
        // Both the stub and echo count words: 5 + 6 in; "Stub reply to: …" is 9 words out, "Echo: …" 7.
        Assert.Equal(11, Convert.ToInt32(activity.GetTagItem("gen_ai.usage.input_tokens"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(provider == "echo" ? 7 : 9, Convert.ToInt32(activity.GetTagItem("gen_ai.usage.output_tokens"), System.Globalization.CultureInfo.InvariantCulture));
        // Message contents are recorded only when the operator opts in.
        Assert.DoesNotContain(activity.TagObjects, tag => tag.Value?.ToString()?.Contains(Question, StringComparison.Ordinal) == true);
    }

    [Theory]
    [InlineData("openai", false)]
    [InlineData("anthropic", true)]
    public async Task AnyCall_ProviderFails_ActivityRecordsTheTranslatedError(string provider, bool streaming)
    {
        _server.FailNext(401);
        var model = UniqueModel(provider);
        using var activities = new ActivityCollector(ModelClientPipeline.TelemetrySourceName, model);
        using var client = Client(provider, model);

        await Assert.ThrowsAsync<ModelUnavailableException>(() => streaming
            ? DrainAsync(client.GetStreamingResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct))
            : client.GetResponseAsync(Conversation(), new ChatOptions { ModelId = model }, Ct));

        var activity = Assert.Single(activities.Stopped);
        Assert.Equal(ActivityStatusCode.Error, activity.Status);
        Assert.Equal(typeof(ModelUnavailableException).FullName, activity.GetTagItem("error.type"));
        Assert.Contains("401 Unauthorized", activity.StatusDescription, StringComparison.Ordinal);
        Assert.DoesNotContain(ApiKey, activity.StatusDescription, StringComparison.Ordinal);
    }

    private static async Task DrainAsync(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        await foreach (var update in updates)
        {
            Assert.NotNull(update);
        }
    }

    /// <summary>Collects the stopped activities of one source whose requested model is <c>model</c>.</summary>
    private sealed class ActivityCollector : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly ConcurrentQueue<Activity> _stopped = new();

        public ActivityCollector(string sourceName, string model)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == sourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = activity =>
                {
                    // Other tests run alongside on the same source: only this test's model counts.
                    if (Equals(activity.GetTagItem("gen_ai.request.model"), model))
                    {
                        _stopped.Enqueue(activity);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public IReadOnlyList<Activity> Stopped => [.. _stopped];

        public void Dispose() => _listener.Dispose();
    }

    private sealed record LogEntry(LogLevel Level, string Category, string Message, Exception? Exception);

    /// <summary>Keeps every entry at <c>minimum</c> or above, as a host's logging configured at that level would write it.</summary>
    private sealed class CapturingLoggerFactory(LogLevel minimum) : ILoggerFactory
    {
        private readonly LogLevel _minimum = minimum;
        private readonly ConcurrentQueue<LogEntry> _entries = new();

        public IReadOnlyList<LogEntry> Entries => [.. _entries];

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerFactory factory, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= factory._minimum;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    factory._entries.Enqueue(new LogEntry(logLevel, category, formatter(state, exception), exception));
                }
            }
        }
    }
}
