using LuluClaw.Actors;
using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LuluClaw.Grains;

/// <summary>
/// One conversation thread. Its activation holds the history; turns run one at a time, so the
/// thread has one order.
/// </summary>
/// <remarks>
/// A turn:
/// 1. resolves the bot (the thread's, the one named, or the workspace's primary bot) and its model client;
/// 2. asks the workspace to admit the turn and debit its credits (one database transaction);
/// 3. sends the system prompt, the history and the new message to the model;
/// 4. on failure refunds the admission: nothing is charged and nothing is stored;
/// 5. appends both messages and settles the admission in one transaction, and only then answers.
/// </remarks>
public sealed partial class SessionGrain(
    IGrainContext context,
    IConversationStore conversations,
    IChatClientProvider models,
    IOptionsMonitor<ModelCallOptions> modelOptions,
    TimeProvider time,
    ILogger<SessionGrain> logger) : ISessionGrain, IGrainBase
{
    private readonly (Guid WorkspaceId, string SessionId) _key = SessionKey.Parse(context.Key);
    private SessionRecord? _session;
    private List<SessionMessage> _history = [];

    public async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _session = await conversations.GetSessionAsync(_key.WorkspaceId, _key.SessionId, cancellationToken);
        _history = _session is null ? [] : [.. await conversations.GetMessagesAsync(_key.WorkspaceId, _key.SessionId, cancellationToken)];
    }

    public Task OnDeactivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<SessionMessage>> GetHistoryAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<SessionMessage>>(_history.ToArray());

    public async Task<ChatTurnResult> SendAsync(ChatTurnRequest request, CancellationToken cancellationToken)
    {
        var workspace = context.GrainFactory.Get<IWorkspaceGrain>(_key.WorkspaceId.ToString("D"));

        // :: Step 1: the bot and its model client. Nothing is charged yet.
        if (_session is not null && request.BotId is not null && request.BotId != _session.BotId)
        {
            return ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId,
                $"session '{_key.SessionId}' belongs to bot '{_session.BotId}'; start a new session to talk to bot '{request.BotId}'");
        }

        var botId = _session?.BotId ?? request.BotId
            ?? ((await workspace.GetAsync(cancellationToken))?.PrimaryBotId is { Length: > 0 } primary ? primary : null);
        var bot = botId is null ? null : await context.GrainFactory.Get<IBotGrain>(botId).GetAsync(cancellationToken);
        if (bot is null || bot.WorkspaceId != _key.WorkspaceId)
        {
            return ChatTurnResult.Failed(ChatTurnStatus.NotFound, _key.SessionId, (request.BotId, _session?.BotId) switch
            {
                (_, { } sessionBot) => $"bot '{sessionBot}' of session '{_key.SessionId}' no longer exists; start a new session",
                ({ } named, _) => $"bot '{named}' not found",
                _ => "the workspace has no bot to answer; create one with POST /api/v1/bots",
            });
        }

        if (bot.Status == BotStatus.Error)
        {
            return ChatTurnResult.Failed(ChatTurnStatus.ModelUnavailable, _key.SessionId, $"bot '{bot.Id}' cannot answer: {bot.StatusReason}");
        }

        IChatClient client;
        try
        {
            client = await models.GetClientAsync(bot, cancellationToken);
        }
        catch (ModelUnavailableException e)
        {
            return ChatTurnResult.Failed(ChatTurnStatus.ModelUnavailable, _key.SessionId, e.Message, e.RetryAfter);
        }

        // :: Step 2: admission and debit, decided by the database.
        var turnId = Ids.New("turn");
        var admission = await workspace.AdmitTurnAsync(new AdmitTurnRequest(turnId, request.KeyId, _key.SessionId), cancellationToken);
        switch (admission.Status)
        {
            case AdmissionStatus.RateLimited:
                return ChatTurnResult.Failed(ChatTurnStatus.RateLimited, _key.SessionId, admission.Detail ?? "rate limit reached", admission.RetryAfter);
            case AdmissionStatus.KeyRevoked:
                return ChatTurnResult.Failed(ChatTurnStatus.Unauthorized, _key.SessionId, "invalid API key");
            case AdmissionStatus.InsufficientCredits:
                return ChatTurnResult.Failed(ChatTurnStatus.InsufficientCredits, _key.SessionId, "credit balance exhausted; top up or upgrade the plan");
            case AdmissionStatus.NotFound:
                return ChatTurnResult.Failed(ChatTurnStatus.NotFound, _key.SessionId, "workspace not found");
        }

        // :: Step 3: the model call, bounded by the configured timeout.
        ChatResponse response;
        try
        {
            response = await CallModelAsync(client, bot, request.Message, cancellationToken);
        }
        catch (Exception e)
        {
            // :: Step 4: a failed or abandoned call is not charged and leaves nothing behind.
            await workspace.RefundTurnAsync(turnId, CancellationToken.None);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            var unavailable = e as ModelUnavailableException;
            Log.ModelCallFailed(logger, bot.Id, bot.Model, e);
            return ChatTurnResult.Failed(ChatTurnStatus.ModelUnavailable, _key.SessionId,
                unavailable?.Message ?? "the assistant's model is temporarily unavailable; retry after a short delay", unavailable?.RetryAfter);
        }

        // :: Step 5: append durably, then answer.
        var now = time.GetStoredNow();
        var reply = response.Text;
        var next = _history.Count == 0 ? 1 : _history[^1].Seq + 1;
        SessionMessage[] turnMessages = [new(next, "user", request.Message, now), new(next + 1, "assistant", reply, now)];
        try
        {
            await conversations.CommitTurnAsync(
                new CommittedTurn(_key.WorkspaceId, _key.SessionId, bot.Id, request.Channel, turnId, _session is null, turnMessages), now, CancellationToken.None);
        }
        catch (StaleStateException)
        {
            // Another process appended to this thread first: give the turn back, catch up, let the client retry.
            await workspace.RefundTurnAsync(turnId, CancellationToken.None);
            await OnActivateAsync(CancellationToken.None);
            return ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId, "the session was written concurrently elsewhere; retry the message");
        }
        catch
        {
            await workspace.RefundTurnAsync(turnId, CancellationToken.None);
            throw;
        }

        _session ??= new SessionRecord(_key.WorkspaceId, _key.SessionId, bot.Id, request.Channel, now, now);
        _history.AddRange(turnMessages);
        return new ChatTurnResult
        {
            Status = ChatTurnStatus.Ok,
            SessionId = _key.SessionId,
            Reply = reply,
            CreditsUsed = admission.CreditsUsed,
            CreditsRemaining = admission.CreditsRemaining,
            Usage = response.Usage is { } u ? new TokenUsage(u.InputTokenCount ?? 0, u.OutputTokenCount ?? 0) : null,
        };
    }

    private async Task<ChatResponse> CallModelAsync(IChatClient client, BotInfo bot, string message, CancellationToken cancellationToken)
    {
        var prompt = new List<ChatMessage>(_history.Count + 2) { new(ChatRole.System, bot.SystemPrompt) };
        prompt.AddRange(_history.Select(m => new ChatMessage(m.Role == "assistant" ? ChatRole.Assistant : ChatRole.User, m.Content)));
        prompt.Add(new ChatMessage(ChatRole.User, message));

        var timeout = TimeSpan.FromSeconds(modelOptions.CurrentValue.TimeoutSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await client.GetResponseAsync(prompt, new ChatOptions { ModelId = bot.Model }, deadline.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelUnavailableException($"the model did not answer within {timeout.TotalSeconds:0.#} s", inner: e);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Model call for bot {BotId} (model {Model}) failed")]
        public static partial void ModelCallFailed(ILogger logger, string botId, string model, Exception exception);
    }
}
