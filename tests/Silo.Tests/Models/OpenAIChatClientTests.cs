using System.Globalization;
using LuluClaw.Grains.Models;
using LuluClaw.Silo.Models;
using LuluClaw.Tests;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;

namespace LuluClaw.Silo.Tests.Models;

public sealed class OpenAIChatClientTests : IAsyncLifetime
{
    private const string ApiKey = "sk-test-0123456789abcdef-secret";
    private const string Model = "stub-gpt";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private StubModelServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await StubModelServer.StartAsync(Ct);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private static List<ChatMessage> Conversation() =>
    [
        new(ChatRole.System, "You are a terse assistant."),
        new(ChatRole.User, "What is the capital of France?"),
        new(ChatRole.Assistant, "Paris."),
        new(ChatRole.User, "And of Italy?"),
    ];

    private IChatClient Client(string? apiKey = ApiKey, Uri? baseUrl = null, TimeSpan? timeout = null) =>
        OpenAIChatClients.Create(baseUrl ?? _server.OpenAIBaseUrl, apiKey, Model, timeout ?? Timeout, NullLoggerFactory.Instance);

    [Fact]
    public async Task GetResponseAsync_SystemPromptAndHistory_ReachServerInOrder()
    {
        using var client = Client();

        await client.GetResponseAsync(Conversation(), cancellationToken: Ct);

        var request = Assert.Single(_server.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.False(request.Stream);
        Assert.Equal(
            [
                new StubMessage("system", "You are a terse assistant."),
                new StubMessage("user", "What is the capital of France?"),
                new StubMessage("assistant", "Paris."),
                new StubMessage("user", "And of Italy?"),
            ],
            request.Messages);
    }

    [Fact]
    public async Task GetResponseAsync_ServerAnswers_ReturnsReplyAndUsage()
    {
        using var client = Client();

        var response = await client.GetResponseAsync(Conversation(), cancellationToken: Ct);

        Assert.Equal("Stub reply to: And of Italy?", response.Text);
        Assert.Equal(ChatRole.Assistant, Assert.Single(response.Messages).Role);
        Assert.Equal(Model, response.ModelId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        // The stub counts words: 5 + 6 + 1 + 3 in, 6 out.
        Assert.NotNull(response.Usage);
        Assert.Equal(15, response.Usage.InputTokenCount);
        Assert.Equal(6, response.Usage.OutputTokenCount);
        Assert.Equal(21, response.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ServerStreams_YieldsSeveralUpdatesThatMakeTheReply()
    {
        _server.Reply = _ => "Rome is the capital of Italy.";
        using var client = Client();

        var updates = await CollectAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct));

        var request = Assert.Single(_server.Requests);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        var texts = updates.Where(update => update.Text.Length > 0).ToList();
        Assert.True(texts.Count > 1, $"expected several text updates, got {texts.Count}");
        Assert.All(texts, update => Assert.Equal(ChatRole.Assistant, update.Role));
        Assert.Equal("Rome is the capital of Italy.", string.Concat(texts.Select(update => update.Text)));
        var usage = Assert.Single(updates.SelectMany(update => update.Contents).OfType<UsageContent>()).Details;
        Assert.Equal(15, usage.InputTokenCount);
        Assert.Equal(6, usage.OutputTokenCount);
        Assert.Equal(21, usage.TotalTokenCount);
        Assert.Contains(updates, update => update.FinishReason == ChatFinishReason.Stop);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ServerStillSending_YieldsFirstDeltaBeforeTheRest()
    {
        _server.HoldReplies(StubHold.AfterFirstChunk);
        using var client = Client();
        using var safety = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        safety.CancelAfter(TimeSpan.FromSeconds(30)); // only so that a buffering client fails instead of hanging
        await using var updates = client.GetStreamingResponseAsync(Conversation(), cancellationToken: safety.Token).GetAsyncEnumerator(safety.Token);

        string first;
        do
        {
            Assert.True(await updates.MoveNextAsync());
            first = updates.Current.Text;
        }
        while (first.Length == 0);

        // The server is holding the rest of its answer: this delta can only have come as it arrived.
        Assert.Equal("Stub", first);
        _server.ReleaseReplies();
        var rest = new List<string>();
        while (await updates.MoveNextAsync())
        {
            rest.Add(updates.Current.Text);
        }

        Assert.Equal("Stub reply to: And of Italy?", first + string.Concat(rest));
    }

    [Fact]
    public async Task GetResponseAsync_ModelAndApiKey_ReachServer()
    {
        using var client = Client();

        await client.GetResponseAsync(Conversation(), cancellationToken: Ct);

        var request = Assert.Single(_server.Requests);
        Assert.Equal(Model, request.Model);
        Assert.Equal($"Bearer {ApiKey}", request.Authorization);
    }

    [Fact]
    public async Task GetResponseAsync_OptionsNameModelAndLimits_ServerGetsThem()
    {
        using var client = Client();

        var response = await client.GetResponseAsync(
            Conversation(), new ChatOptions { ModelId = "other-model", MaxOutputTokens = 42, Temperature = 0.5f }, Ct);

        var request = Assert.Single(_server.Requests);
        Assert.Equal("other-model", request.Model);
        Assert.Equal("other-model", response.ModelId);
        Assert.Equal(42, request.MaxTokens);
        Assert.Equal(0.5, request.Temperature!.Value, 3);
    }

    [Fact]
    public async Task GetResponseAsync_NoApiKey_SendsPlaceholder()
    {
        using var client = Client(apiKey: null);

        var response = await client.GetResponseAsync(Conversation(), cancellationToken: Ct);

        Assert.Equal("Stub reply to: And of Italy?", response.Text);
        Assert.Equal($"Bearer {OpenAIChatClients.PlaceholderApiKey}", Assert.Single(_server.Requests).Authorization);
    }

    [Fact]
    public async Task GetResponseAsync_RateLimitedWithRetryAfter_ThrowsModelUnavailableWithRetryAfter()
    {
        _server.FailNext(429, retryAfter: "7");
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Equal(TimeSpan.FromSeconds(7), error.RetryAfter);
        Assert.Contains("OpenAI-compatible provider at " + _server.OpenAIBaseUrl.AbsoluteUri.TrimEnd('/'), error.Message, StringComparison.Ordinal);
        Assert.Contains("429 Too Many Requests", error.Message, StringComparison.Ordinal);
        Assert.Single(_server.Requests); // the SDK did not retry
    }

    [Fact]
    public async Task GetResponseAsync_ServerError_ThrowsModelUnavailableWithoutRetrying()
    {
        _server.FailAll(500);
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Contains("500 Internal Server Error", error.Message, StringComparison.Ordinal);
        Assert.Null(error.RetryAfter);
        Assert.Single(_server.Requests);
    }

    [Fact]
    public async Task GetResponseAsync_KeyRejected_SaysSo()
    {
        _server.FailNext(401);
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Contains("401 Unauthorized", error.Message, StringComparison.Ordinal);
        Assert.Contains("API key was rejected", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetResponseAsync_ClosedPort_ThrowsModelUnavailable()
    {
        var closed = new Uri(StubModelServer.ClosedPortUrl(), "v1");
        using var client = Client(baseUrl: closed);

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Contains("could not be reached", error.Message, StringComparison.Ordinal);
        Assert.Contains(closed.Authority, error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.InnerException);
    }

    [Fact]
    public async Task GetResponseAsync_MalformedResponse_ThrowsModelUnavailable()
    {
        _server.MalformNext();
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Contains("could not be read", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetResponseAsync_ServerTooSlow_ThrowsModelUnavailable()
    {
        _server.HoldReplies();
        using var client = Client(timeout: TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.Contains("did not answer within 0.3 s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_RateLimited_ThrowsModelUnavailableWithRetryAfter()
    {
        _server.FailNext(503, retryAfter: "2");
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => CollectAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct)));

        Assert.Equal(TimeSpan.FromSeconds(2), error.RetryAfter);
        Assert.Contains("503 Service Unavailable", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_MalformedStream_ThrowsModelUnavailable()
    {
        _server.MalformNext();
        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => CollectAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct)));

        Assert.Contains("could not be read", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ClosedPort_ThrowsModelUnavailable()
    {
        using var client = Client(baseUrl: new Uri(StubModelServer.ClosedPortUrl(), "v1"));

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => CollectAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct)));

        Assert.Contains("could not be reached", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(401, false, false)]
    [InlineData(403, false, false)]
    [InlineData(429, false, false)]
    [InlineData(500, false, false)]
    [InlineData(429, true, false)]
    [InlineData(0, false, true)]
    [InlineData(0, true, true)]
    public async Task AnyCall_ProviderFails_ApiKeyInNoMessage(int status, bool streaming, bool malformed)
    {
        if (malformed)
        {
            _server.MalformNext();
        }
        else
        {
            _server.FailNext(status, retryAfter: "1");
        }

        using var client = Client();

        var error = await Assert.ThrowsAsync<ModelUnavailableException>(() => streaming
            ? CollectAsync(client.GetStreamingResponseAsync(Conversation(), cancellationToken: Ct))
            : client.GetResponseAsync(Conversation(), cancellationToken: Ct));

        Assert.DoesNotContain(ApiKey, error.ToString(), StringComparison.Ordinal);
        for (Exception? inner = error; inner is not null; inner = inner.InnerException)
        {
            Assert.DoesNotContain(ApiKey, inner.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Answered_DetailQuotesApiKey_KeyIsMasked()
    {
        // An error body that quotes the key (as a careless proxy might) must not carry it into the message.
        var failures = new ModelProviderFailures("OpenAI-compatible provider", _server.OpenAIBaseUrl, ApiKey, Timeout);

        var error = failures.Answered(Model, 400, $"bad key {ApiKey}", null);

        Assert.DoesNotContain(ApiKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("(bad key ***)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetResponseAsync_CallerCancels_ThrowsOperationCanceled()
    {
        _server.HoldReplies();
        using var client = Client();
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = client.GetResponseAsync(Conversation(), cancellationToken: cancellation.Token);
        await _server.WaitForRequestsAsync(1, Ct);
        await cancellation.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(cancellation.Token, error.CancellationToken);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_CallerCancelsMidStream_ThrowsOperationCanceled()
    {
        _server.HoldReplies(StubHold.AfterFirstChunk);
        using var client = Client();
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var updates = client.GetStreamingResponseAsync(Conversation(), cancellationToken: cancellation.Token).GetAsyncEnumerator(cancellation.Token);
        do
        {
            Assert.True(await updates.MoveNextAsync());
        }
        while (updates.Current.Text.Length == 0);

        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await updates.MoveNextAsync());
    }

    [Theory]
    [InlineData(null, "7", 7_000)]
    [InlineData(null, " 2.5 ", 2_500)]
    [InlineData("1500", "7", 1_500)]
    [InlineData(null, "Sun, 01 Nov 2026 12:00:30 GMT", 30_000)]
    [InlineData(null, "Sun, 01 Nov 2026 11:59:00 GMT", 0)]
    public void ParseRetryAfter_HeaderValues_GiveDelay(string? milliseconds, string retryAfter, int expectedMilliseconds)
    {
        var now = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

        var delay = ModelProviderFailures.ParseRetryAfter(milliseconds, retryAfter, now);

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMilliseconds), delay);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData(null, "soon")]
    [InlineData("-5", "-1")]
    public void ParseRetryAfter_MissingOrInvalid_GivesNull(string? milliseconds, string? retryAfter)
    {
        var delay = ModelProviderFailures.ParseRetryAfter(milliseconds, retryAfter, DateTimeOffset.Parse("2026-11-01T12:00:00Z", CultureInfo.InvariantCulture));

        Assert.Null(delay);
    }

    private static async Task<List<ChatResponseUpdate>> CollectAsync(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        var list = new List<ChatResponseUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }

        return list;
    }
}
