using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using LuluClaw.Grains.Knowledge;
using LuluClaw.Grains.Models;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;

namespace LuluClaw.Grains;

/// <summary>
/// One conversation thread. Its activation holds the history; turns run one at a time, so the
/// thread has one order.
/// </summary>
/// <remarks>
/// <para>
/// The turn gate: Orleans runs a grain's calls one at a time, but not across the steps of an
/// <see cref="IAsyncEnumerable{T}"/> method (each batch of a stream is its own call, and other calls
/// run between them). A grain that waited for a stream inside Orleans' own turn would deadlock: the
/// stream's next step could not get in. So the grain is <see cref="ReentrantAttribute">reentrant</see>
/// and keeps its own order with <c>_gate</c>: every call that reads or writes the thread takes it
/// (first come, first served), a streamed turn from its first step until it is settled, whether the
/// caller read it to the end, left it or cancelled it.
/// </para>
/// <para>
/// Placement: a session is activated on the silo its first call entered (<see cref="PreferLocalPlacementAttribute"/>),
/// so a load balancer that keeps a session's requests on one node (hashing on the session id) keeps
/// every call of its turns on that silo; with any other balancer it is no worse than a random silo.
/// </para>
/// <para>A turn:</para>
/// 1. resolves the bot (the thread's, the one named, or the workspace's primary bot) and its model client;
/// 2. admits the turn into the workspace's windows and debits its credits (<see cref="WorkspaceTurns"/>: one database transaction);
///    a turn that continues a given point of the thread (<see cref="ChatTurnRequest.AfterSeq"/>) is refunded and refused
///    here if the thread has moved past it; a stream then tells its caller at once (<see cref="ChatTurnEvent.Admitted"/>),
///    before the model is called;
/// 3. sends the system prompt, the history and the new message to the model (whole, or streamed
///    piece by piece to the caller);
/// 4. on failure refunds the admission: nothing is charged and nothing is stored;
/// 5. appends both messages and settles the admission in one transaction, and only then answers.
///    A stream the caller leaves is settled the same way with what the model had produced, marked
///    as cut short (or refunded if it had produced nothing).
/// </remarks>
[Reentrant]
[PreferLocalPlacement]
public sealed partial class SessionGrain(
    IConversationStore conversations,
    WorkspaceTurns admissions,
    IChatClientProvider models,
    IOptionsMonitor<ModelCallOptions> modelOptions,
    TimeProvider time,
    ILogger<SessionGrain> logger,
    IKnowledgeLookup? knowledge = null) : Grain, ISessionGrain, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (Guid WorkspaceId, string SessionId) _key;
    private SessionRecord? _session;
    private List<SessionMessage> _history = [];
    private BotInfo? _bot;
    private bool _oneOff;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = SessionKey.Parse(this.GetPrimaryKeyString());
        return LoadAsync(cancellationToken);
    }

    public void Dispose() => _gate.Dispose();

    public async Task<IReadOnlyList<SessionMessage>> GetHistoryAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // Read through: a turn's commit may have been decided by the database after this activation read it.
            await LoadAsync(cancellationToken);
            return _history.ToArray();
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<bool> DeleteAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var deleted = await conversations.DeleteSessionAsync(_key.WorkspaceId, _key.SessionId, cancellationToken);
            _session = null;
            _history = [];
            DeactivateOnIdle();
            return deleted;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<ChatTurnResult> SendAsync(ChatTurnRequest request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return await SendInTurnAsync(request, cancellationToken);
        }
        finally
        {
            _gate.Release();
            CollectIfOneOff();
        }
    }

    private async Task<ChatTurnResult> SendInTurnAsync(ChatTurnRequest request, CancellationToken cancellationToken)
    {
        // :: Steps 1 and 2.
        var (turn, refused) = await BeginTurnAsync(request, cancellationToken);
        if (turn is null)
        {
            return refused!;
        }

        // :: Step 3: the model call, bounded by the configured timeout.
        ChatResponse response;
        KnowledgeFindings knowledge;
        using (var deadline = Deadline(cancellationToken))
        {
            try
            {
                (var prompt, knowledge) = await PromptAsync(turn.Bot, request, deadline.Token);
                response = knowledge.GateAnswer is { } words
                    ? new ChatResponse(new ChatMessage(ChatRole.Assistant, words)) { FinishReason = ChatFinishReason.Stop }
                    : await turn.Client.GetResponseAsync(prompt, Options(turn.Bot, request), deadline.Token);
            }
            catch (Exception e)
            {
                // :: Step 4: a failed or abandoned call is not charged and leaves nothing behind.
                await RefundAsync(turn);
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                return ModelFailed(turn, e, deadline);
            }
        }

        // :: Step 5.
        var calls = ToolCalls(response.Messages.SelectMany(m => m.Contents));
        return await CommitAsync(turn, request, response.Text, Usage(response.Usage), cutShort: false, Finish(response.FinishReason), calls, knowledge.Sources());
    }

    public async IAsyncEnumerable<ChatTurnEvent> StreamAsync(ChatTurnRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The turn runs in its own task (RunStreamedTurnAsync), which holds the gate from its first step until it is
        // settled and hands each step over a bounded channel; this method only reads it. A caller that stops reading
        // without telling (its silo was killed, so nobody disposes this enumerator) then costs the session a stalled
        // write, not the gate until Orleans expires the enumerator a minute and a half or more later.
        var steps = Channel.CreateBounded<ChatTurnEvent>(new BoundedChannelOptions(StreamBuffer) { SingleReader = true, SingleWriter = true });
        using var readerGone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var turn = RunStreamedTurnAsync(request, steps.Writer, readerGone.Token);
        try
        {
            // Not cancelled here: a cancelled caller cancels the turn, which then settles and completes the channel.
            await foreach (var step in steps.Reader.ReadAllAsync(CancellationToken.None))
            {
                yield return step;
            }
        }
        finally
        {
            // Read to the end, left or cancelled: a turn still running is cut short, and settled before this returns.
            await readerGone.CancelAsync();
            await turn;
            CollectIfOneOff();
        }
    }

    /// <summary>How many steps of a stream may wait for a reader that is slower than the model.</summary>
    private const int StreamBuffer = 64;

    /// <summary>How long a full buffer may wait for its reader before the stream is taken for abandoned and cut short.</summary>
    private static readonly TimeSpan ReaderStall = TimeSpan.FromSeconds(30);

    /// <summary>A streamed turn, inside the gate: its steps go to <paramref name="steps"/> until it is settled.</summary>
    private async Task RunStreamedTurnAsync(ChatTurnRequest request, ChannelWriter<ChatTurnEvent> steps, CancellationToken readerGone)
    {
        try
        {
            await _gate.WaitAsync(readerGone);
        }
        catch (OperationCanceledException)
        {
            steps.TryComplete(); // the caller left before the turn began: nothing to settle
            return;
        }

        Exception? error = null;
        try
        {
            await foreach (var step in StreamInTurnAsync(request, readerGone))
            {
                using var stall = new CancellationTokenSource(ReaderStall, time);
                using var stalledOrGone = CancellationTokenSource.CreateLinkedTokenSource(readerGone, stall.Token);
                try
                {
                    await steps.WriteAsync(step, stalledOrGone.Token);
                }
                catch (OperationCanceledException)
                {
                    // The reader left, or stopped reading: leaving the loop disposes the turn, which settles it.
                    Log.StreamAbandoned(logger, _key.SessionId, readerGone.IsCancellationRequested ? "the caller left" : "the caller stopped reading");
                    break;
                }
            }
        }
        catch (Exception e) when (!readerGone.IsCancellationRequested)
        {
            error = e;
        }
        catch (OperationCanceledException)
        {
            // The caller left while the turn was starting: it was settled (or never admitted) on the way out.
        }
        finally
        {
            steps.TryComplete(error);
            _gate.Release();
        }
    }

    private async IAsyncEnumerable<ChatTurnEvent> StreamInTurnAsync(ChatTurnRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // :: Steps 1 and 2: a refusal is the only event, before any text, so the caller can still pick its status code.
        var (turn, refused) = await BeginTurnAsync(request, cancellationToken);
        if (turn is null)
        {
            yield return ChatTurnEvent.Done(refused!);
            yield break;
        }

        // Admitted: the caller may send its status line and headers now rather than with the model's first token,
        // which a slow model can take seconds to write. Anything that goes wrong from here is the stream's last event.
        yield return ChatTurnEvent.AdmittedIn(turn.Admission.Window);

        // :: Step 3, streamed: each piece goes out as the model yields it. The timeout bounds each wait for the next piece.
        var reply = new StringBuilder();
        var calls = new List<ToolCall>();
        TokenUsage? usage = null;
        ChatFinishReason? finish = null;
        ChatTurnResult? failed = null;
        var settled = false;
        var aliveAt = time.GetUtcNow();
        using var deadline = Deadline(cancellationToken);
        var (prompt, knowledge) = await PromptAsync(turn.Bot, request, deadline.Token);
        var sources = knowledge.Sources();
        var updates = (knowledge.GateAnswer is { } words
            ? GateAnswer(words)
            : turn.Client.GetStreamingResponseAsync(prompt, Options(turn.Bot, request), deadline.Token)).GetAsyncEnumerator(deadline.Token);

        try
        {
            while (true)
            {
                ChatResponseUpdate update;
                try
                {
                    if (!await updates.MoveNextAsync())
                    {
                        break;
                    }

                    update = updates.Current;
                }
                catch (Exception) when (cancellationToken.IsCancellationRequested)
                {
                    break; // the caller left: settled below as cut short
                }
                catch (Exception e)
                {
                    failed = ModelFailed(turn, e, deadline);
                    break;
                }

                deadline.CancelAfter(ModelTimeout);
                aliveAt = await KeepAliveAsync(turn, aliveAt);
                usage = update.Contents.OfType<UsageContent>().Select(u => Usage(u.Details)).LastOrDefault() ?? usage;
                finish = update.FinishReason ?? finish;
                if (update.Text is { Length: > 0 } text)
                {
                    reply.Append(text);
                    yield return ChatTurnEvent.Text(text);
                }

                if (ToolCalls(update.Contents) is { } made)
                {
                    calls.AddRange(made);
                    yield return ChatTurnEvent.Calls(made);
                }
            }

            // :: Steps 4 and 5, as for a whole answer.
            if (!cancellationToken.IsCancellationRequested)
            {
                settled = true;
                if (failed is not null)
                {
                    await RefundAsync(turn);
                }

                yield return ChatTurnEvent.Done(
                    failed ?? await CommitAsync(turn, request, reply.ToString(), usage, cutShort: false, Finish(finish), calls is [] ? null : calls, sources));
            }
        }
        finally
        {
            await updates.DisposeAsync();
            if (!settled)
            {
                // The caller stopped reading: keep what the model produced, marked; if it produced nothing, give the turn back.
                if (reply.Length > 0)
                {
                    await CommitAsync(turn, request, reply.ToString(), usage, cutShort: true, sources: sources);
                }
                else
                {
                    await RefundAsync(turn);
                }
            }
        }
    }

    /// <summary>
    /// Collects a one-off (stateless) thread once its turn has answered, not inside the turn: a
    /// stream's last step must still find the grain that runs it.
    /// </summary>
    private void CollectIfOneOff()
    {
        if (_oneOff)
        {
            DeactivateOnIdle();
        }
    }

    /// <summary>Reads the thread and its history from the store.</summary>
    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        _session = await conversations.GetSessionAsync(_key.WorkspaceId, _key.SessionId, cancellationToken);
        _history = _session is null ? [] : [.. await conversations.GetMessagesAsync(_key.WorkspaceId, _key.SessionId, cancellationToken)];
    }

    /// <summary>How often a streamed turn tells the store it is alive.</summary>
    private static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(30);

    private long LastSeq => _history.Count == 0 ? 0 : _history[^1].Seq;

    private TimeSpan ModelTimeout => TimeSpan.FromSeconds(modelOptions.CurrentValue.TimeoutSeconds);

    /// <summary>Steps 1 and 2: the bot and its model client, then admission and debit. Null and the refusal if the turn cannot go ahead.</summary>
    private async Task<(Turn? Turn, ChatTurnResult? Refused)> BeginTurnAsync(ChatTurnRequest request, CancellationToken cancellationToken)
    {
        // :: Step 1: the bot and its model client. Nothing is charged yet.
        if (_session is not null && request.BotId is not null && request.BotId != _session.BotId)
        {
            return (null, ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId,
                $"session '{_key.SessionId}' belongs to bot '{_session.BotId}'; start a new session to talk to bot '{request.BotId}'"));
        }

        var botId = _session?.BotId ?? request.BotId
            ?? ((await GrainFactory.GetGrain<IWorkspaceGrain>(_key.WorkspaceId.ToString("D")).GetAsync(cancellationToken))?.PrimaryBotId is { Length: > 0 } primary ? primary : null);
        // The bot this activation remembers from its last turn, if it is that bot, stands in for a call to
        // the bot's grain: the admission reads the bot row's version, and a changed bot is asked again below.
        var bot = _bot is { } remembered && remembered.Id == botId ? remembered : null;
        IChatClient? client = null;
        ChatTurnResult? refused;
        if (bot is null)
        {
            (bot, client, refused) = await PrepareBotAsync(botId, known: null, request, cancellationToken);
            if (bot is null || client is null)
            {
                return (null, refused);
            }
        }

        // :: Step 2: admission and debit, decided by the database.
        var turnId = Ids.NewOrdered("turn", time.GetUtcNow());
        var admission = await admissions.AdmitAsync(_key.WorkspaceId, new AdmitTurnRequest(turnId, request.KeyId, _key.SessionId, bot.Id), cancellationToken);
        if (admission.Status != AdmissionStatus.Admitted)
        {
            return (null, admission.Status switch
            {
                AdmissionStatus.RateLimited => ChatTurnResult.Failed(ChatTurnStatus.RateLimited, _key.SessionId, admission.Detail ?? "rate limit reached", admission.RetryAfter, admission.Window),
                AdmissionStatus.InsufficientCredits => ChatTurnResult.Failed(ChatTurnStatus.InsufficientCredits, _key.SessionId, "credit balance exhausted; top up or upgrade the plan"),
                AdmissionStatus.KeyRevoked => ChatTurnResult.Failed(ChatTurnStatus.Unauthorized, _key.SessionId, "invalid API key"),
                _ => ChatTurnResult.Failed(ChatTurnStatus.NotFound, _key.SessionId, "workspace not found"),
            });
        }

        if (client is null || admission.BotVersion != bot.Version)
        {
            // The remembered bot's model client, or, if the bot changed (a PATCH, a restart) or went since,
            // as its row says under the admission's lock, the bot as its grain has it now.
            var (botIdNow, known) = (bot.Id, admission.BotVersion == bot.Version ? bot : null);
            (bot, client, refused) = await PrepareBotAsync(botIdNow, known, request, cancellationToken);
            if (bot is null || client is null)
            {
                await admissions.RefundAsync(turnId, CancellationToken.None);
                return (null, refused);
            }
        }

        if (request.Transcript is null && admission.SessionLastSeq != LastSeq)
        {
            // Another node has written this thread since this activation read it: catch up, so the
            // model sees the whole thread and the turn appends after it.
            await LoadAsync(cancellationToken);
            if (_session is not null && _session.BotId != bot.Id)
            {
                await admissions.RefundAsync(turnId, CancellationToken.None);
                return (null, ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId,
                    $"session '{_key.SessionId}' was started elsewhere with bot '{_session.BotId}'; retry the message"));
            }
        }

        if (request.AfterSeq is { } after && after != LastSeq)
        {
            // The caller continues a point of the thread that another turn has moved past: threads are linear.
            await admissions.RefundAsync(turnId, CancellationToken.None);
            return (null, ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId,
                $"session '{_key.SessionId}' has moved on past message {after}; continue from its latest reply"));
        }

        return (new Turn(turnId, bot, client, admission), null);
    }

    /// <summary>
    /// Step 1 for bot <paramref name="botId"/>: its configuration (<paramref name="known"/>, or else
    /// from the bot's grain) and its model client, or the refusal. The bot is remembered for the next
    /// turn, whose admission reads the bot row's version, so a PATCH or a restart is seen by the next
    /// turn all the same without a grain call on every turn.
    /// </summary>
    private async Task<(BotInfo? Bot, IChatClient? Client, ChatTurnResult? Refused)> PrepareBotAsync(
        string? botId, BotInfo? known, ChatTurnRequest request, CancellationToken cancellationToken)
    {
        var bot = known ?? (botId is null ? null : await GrainFactory.GetGrain<IBotGrain>(botId).GetAsync(cancellationToken));
        _bot = null;
        if (bot is null || bot.WorkspaceId != _key.WorkspaceId)
        {
            return (null, null, ChatTurnResult.Failed(ChatTurnStatus.NotFound, _key.SessionId, (request.BotId, _session?.BotId) switch
            {
                (_, { } sessionBot) => $"bot '{sessionBot}' of session '{_key.SessionId}' no longer exists; start a new session",
                ({ } named, _) => $"bot '{named}' not found",
                _ => "the workspace has no bot to answer; create one with POST /api/v1/bots",
            }));
        }

        if (bot.Status == BotStatus.Error)
        {
            return (null, null, ChatTurnResult.Failed(ChatTurnStatus.ModelUnavailable, _key.SessionId, $"bot '{bot.Id}' cannot answer: {bot.StatusReason}"));
        }

        try
        {
            var client = await models.GetClientAsync(bot, cancellationToken);
            _bot = bot;
            return (bot, client, null);
        }
        catch (ModelUnavailableException e)
        {
            return (null, null, ChatTurnResult.Failed(ChatTurnStatus.ModelUnavailable, _key.SessionId, e.Message, e.RetryAfter));
        }
    }

    /// <summary>Step 5: appends both messages and settles the admission in one transaction; only then is the turn answered.</summary>
    private async Task<ChatTurnResult> CommitAsync(
        Turn turn, ChatTurnRequest request, string reply, TokenUsage? usage, bool cutShort, string? finishReason = null, IReadOnlyList<ToolCall>? toolCalls = null,
        IReadOnlyList<MessageSource>? sources = null)
    {
        var now = time.GetStoredNow();
        var next = LastSeq + 1;
        var stateless = request.Transcript is not null;
        SessionMessage[] turnMessages = stateless
            ? []
            : [new(next, "user", request.Message, now), new(next + 1, "assistant", reply, now, cutShort, Sources: sources)];
        try
        {
            // A stateless turn only settles its admission: nothing of the conversation is kept.
            await conversations.CommitTurnAsync(
                new CommittedTurn(_key.WorkspaceId, _key.SessionId, turn.Bot.Id, request.Channel, turn.Id, _session is null && !stateless, turnMessages), now,
                CancellationToken.None);
        }
        catch (StaleStateException)
        {
            // Another process appended to this thread first: give the turn back, catch up, let the client retry.
            await RefundAsync(turn);
            await LoadAsync(CancellationToken.None);
            return ChatTurnResult.Failed(ChatTurnStatus.Conflict, _key.SessionId, "the session was written concurrently elsewhere; retry the message");
        }
        catch
        {
            await RefundAsync(turn);
            throw;
        }

        if (stateless)
        {
            _oneOff = true; // nothing to keep in memory either: collected once the turn has answered (CollectIfOneOff)
        }
        else
        {
            _session ??= new SessionRecord(_key.WorkspaceId, _key.SessionId, turn.Bot.Id, request.Channel, now, now);
            _history.AddRange(turnMessages);
        }

        return new ChatTurnResult
        {
            Status = ChatTurnStatus.Ok,
            SessionId = _key.SessionId,
            Reply = reply,
            CreditsUsed = turn.Admission.CreditsUsed,
            CreditsRemaining = turn.Admission.CreditsRemaining,
            Usage = usage,
            Model = turn.Bot.Model,
            FinishReason = finishReason ?? (toolCalls is null ? "stop" : "tool_calls"),
            ToolCalls = toolCalls,
            Window = turn.Admission.Window,
            ReplySeq = stateless ? null : next + 1,
            Sources = sources,
        };
    }

    private Task RefundAsync(Turn turn) => admissions.RefundAsync(turn.Id, CancellationToken.None);

    /// <summary>The model call's options: the bot's model and whatever the caller asked of this turn.</summary>
    private static ChatOptions Options(BotInfo bot, ChatTurnRequest request)
    {
        var options = new ChatOptions { ModelId = bot.Model };
        if (request.Options is not { } asked)
        {
            return options;
        }

        options.Temperature = asked.Temperature;
        options.TopP = asked.TopP;
        options.MaxOutputTokens = asked.MaxOutputTokens;
        options.StopSequences = asked.StopSequences is { Count: > 0 } stop ? [.. stop] : null;
        options.Seed = asked.Seed;
        options.FrequencyPenalty = asked.FrequencyPenalty;
        options.PresencePenalty = asked.PresencePenalty;
        options.ResponseFormat = asked.ResponseFormat switch
        {
            "json_object" => ChatResponseFormat.Json,
            "json_schema" when asked.JsonSchema is { } schema =>
                ChatResponseFormat.ForJsonSchema(System.Text.Json.JsonDocument.Parse(schema).RootElement.Clone(), asked.JsonSchemaName),
            "text" => ChatResponseFormat.Text,
            _ => null,
        };
        options.Tools = asked.Tools is { Count: > 0 } tools ? [.. tools.Select(ToolDeclaration.Of)] : null;
        options.ToolMode = asked.ToolChoice switch
        {
            { Mode: "none" } => ChatToolMode.None,
            { Mode: "auto" } => ChatToolMode.Auto,
            { Mode: "required", FunctionName: { } name } => ChatToolMode.RequireSpecific(name),
            { Mode: "required" } => ChatToolMode.RequireAny,
            _ => null,
        };
        options.AllowMultipleToolCalls = asked.ParallelToolCalls;
        return options;
    }

    /// <summary>The function calls among <paramref name="contents"/>, their arguments as JSON text; null for none.</summary>
    private static List<ToolCall>? ToolCalls(IEnumerable<AIContent> contents)
    {
        var calls = contents.OfType<FunctionCallContent>()
            .Select(call => new ToolCall(call.CallId, call.Name, JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions)))
            .ToList();
        return calls is [] ? null : calls;
    }

    /// <summary>A finish reason in the words the surfaces use.</summary>
    private static string? Finish(ChatFinishReason? reason) =>
        reason == ChatFinishReason.Length ? "length"
        : reason == ChatFinishReason.ToolCalls ? "tool_calls"
        : reason == ChatFinishReason.ContentFilter ? "content_filter"
        : reason is null ? null
        : "stop";

    /// <summary>
    /// A streamed reply may run for longer than the model timeout (the timeout bounds each wait for
    /// the next piece): every <see cref="KeepAliveEvery"/> it tells the store its turn is alive, so the
    /// reaper, which refunds turns silent for the model timeout plus a minute, leaves it alone. A
    /// piece comes at least once per model timeout, so the turn is never silent for that long.
    /// </summary>
    private async Task<DateTimeOffset> KeepAliveAsync(Turn turn, DateTimeOffset aliveAt)
    {
        var now = time.GetUtcNow();
        if (now - aliveAt < KeepAliveEvery)
        {
            return aliveAt;
        }

        try
        {
            await admissions.KeepAliveAsync(turn.Id, CancellationToken.None);
        }
        catch (Exception e)
        {
            Log.KeepAliveFailed(logger, turn.Id, e); // the stream goes on; its commit says whether the turn held
        }

        return now;
    }

    /// <summary>A token that fires when the caller gives up or the model has been silent for longer than the timeout.</summary>
    private CancellationTokenSource Deadline(CancellationToken cancellationToken)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(ModelTimeout);
        return deadline;
    }

    private ChatTurnResult ModelFailed(Turn turn, Exception error, CancellationTokenSource deadline)
    {
        Log.ModelCallFailed(logger, turn.Bot.Id, turn.Bot.Model, error);
        var unavailable = error as ModelUnavailableException;
        var message = unavailable?.Message
            ?? (deadline.IsCancellationRequested
                ? $"the model did not answer within {ModelTimeout.TotalSeconds:0.#} s"
                : "the assistant's model is temporarily unavailable; retry after a short delay");
        return ChatTurnResult.Failed(
            unavailable?.RequestRefused == true ? ChatTurnStatus.InvalidRequest : ChatTurnStatus.ModelUnavailable, _key.SessionId, message, unavailable?.RetryAfter);
    }

    /// <summary>
    /// The prompt, with the workspace's knowledge that bears on the new message right after the bot's
    /// system prompt (<see cref="KnowledgePrompt.Format"/>), unless the bot has knowledge off; and
    /// what was found, whose <see cref="KnowledgeFindings.GateAnswer"/> the bot answers instead of
    /// calling the model when the evidence gate holds. The gate does not hold for a turn that
    /// declares tools or asks for JSON: words would break what the caller expects back, so the model
    /// answers (without passages, none being close enough). Knowledge that cannot be read leaves the
    /// prompt without it, logged: the turn still answers.
    /// </summary>
    private async Task<(List<ChatMessage> Prompt, KnowledgeFindings Knowledge)> PromptAsync(BotInfo bot, ChatTurnRequest request, CancellationToken cancellationToken)
    {
        var prompt = Prompt(bot, request);
        var settings = bot.Knowledge ?? BotKnowledge.Default;
        if (knowledge is null || !settings.Enabled || string.IsNullOrWhiteSpace(request.Message))
        {
            return (prompt, KnowledgeFindings.None);
        }

        try
        {
            var found = await knowledge.FindAsync(_key.WorkspaceId, request.Message, settings, cancellationToken);
            if (found.GateAnswer is not null && request.Options is { Tools.Count: > 0 } or { ResponseFormat: "json_object" or "json_schema" })
            {
                return (prompt, KnowledgeFindings.None);
            }

            if (found.Passages.Count > 0)
            {
                prompt.Insert(1, new ChatMessage(ChatRole.System, KnowledgePrompt.Format(found.Passages)));
            }

            return (prompt, found);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the caller left or the model timeout ran out: the model call that follows says so
        }
        catch (Exception e)
        {
            Log.KnowledgeFailed(logger, _key.WorkspaceId, e);
        }

        return (prompt, KnowledgeFindings.None);
    }

    /// <summary>The evidence gate's words as the one piece of a streamed reply.</summary>
    private static async IAsyncEnumerable<ChatResponseUpdate> GateAnswer(string words)
    {
        await Task.CompletedTask;
        yield return new ChatResponseUpdate(ChatRole.Assistant, words) { FinishReason = ChatFinishReason.Stop };
    }

    private List<ChatMessage> Prompt(BotInfo bot, ChatTurnRequest request)
    {
        // The turn's own instructions (OpenAI's), right after the bot's system prompt, ahead of the thread: not stored.
        IReadOnlyList<SessionMessage> before = request.Instructions is { Length: > 0 } instructions
            ? [new SessionMessage(0, "system", instructions, DateTimeOffset.UnixEpoch), .. request.Transcript ?? _history]
            : request.Transcript ?? _history;
        var prompt = new List<ChatMessage>(before.Count + 2) { new(ChatRole.System, bot.SystemPrompt) };
        prompt.AddRange(before.Select(PromptMessage));
        if (request.Transcript is null || request.Message.Length > 0)
        {
            prompt.Add(new ChatMessage(ChatRole.User, request.Message)); // a stateless turn that ends in tool results has no new user text
        }

        return prompt;
    }

    /// <summary>A message of the thread as the model is sent it: tool calls and their results as function contents.</summary>
    private static ChatMessage PromptMessage(SessionMessage message)
    {
        switch (message)
        {
            case { Role: "tool" }:
                return new ChatMessage(ChatRole.Tool, [new FunctionResultContent(message.ToolCallId ?? "", message.Content)]);
            case { Role: "assistant", ToolCalls: { Count: > 0 } calls }:
                List<AIContent> contents = message.Content.Length > 0 ? [new TextContent(message.Content)] : [];
                contents.AddRange(calls.Select(call => new FunctionCallContent(call.Id, call.Name, ToolDeclaration.Arguments(call.Arguments))));
                return new ChatMessage(ChatRole.Assistant, contents);
            default:
                return new ChatMessage(message.Role switch { "assistant" => ChatRole.Assistant, "system" => ChatRole.System, _ => ChatRole.User }, message.Content);
        }
    }

    private static TokenUsage? Usage(UsageDetails? usage) =>
        usage is null ? null : new TokenUsage(usage.InputTokenCount ?? 0, usage.OutputTokenCount ?? 0);

    /// <summary>An admitted turn: what steps 3 to 5 need.</summary>
    private sealed record Turn(string Id, BotInfo Bot, IChatClient Client, AdmissionResult Admission);

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Model call for bot {BotId} (model {Model}) failed")]
        public static partial void ModelCallFailed(ILogger logger, string botId, string model, Exception exception);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Could not tell the store that streamed turn {TurnId} is alive")]
        public static partial void KeepAliveFailed(ILogger logger, string turnId, Exception exception);

        [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Knowledge of workspace {WorkspaceId} could not be read; the turn answers without it")]
        public static partial void KnowledgeFailed(ILogger logger, Guid workspaceId, Exception exception);

        [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "Stream of session {SessionId} ended early: {Reason}; its turn is settled with what was produced")]
        public static partial void StreamAbandoned(ILogger logger, string sessionId, string reason);
    }
}
