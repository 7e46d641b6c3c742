namespace LuluClaw;

/// <summary>
/// One conversation thread, keyed by <see cref="SessionKey"/> (workspace and session id). It owns
/// the history: every turn is appended durably before its reply is returned.
/// </summary>
[Alias("luluclaw.ISessionGrain")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>Runs one chat turn: admit and debit, call the model, append the turn, answer.</summary>
    [Alias("SendAsync")]
    Task<ChatTurnResult> SendAsync(ChatTurnRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Runs one chat turn as a stream. A turn refused before it was admitted (not found, rate limited,
    /// out of credits, ...) is one event, its failed <see cref="ChatTurnResult"/>. A turn that goes
    /// ahead starts with <see cref="ChatTurnEvent.Admitted"/>, as soon as it is admitted and before
    /// the model is called; then a <see cref="ChatTurnEvent"/> with a delta for each piece of text as
    /// the model yields it, then one with the <see cref="ChatTurnResult"/> (a failure before any delta
    /// means nothing was charged or stored). If the caller stops reading, the model call is cancelled
    /// and what it produced is stored, marked <see cref="SessionMessage.CutShort"/>.
    /// </summary>
    /// <remarks>
    /// Orleans does not hold the grain's turn across the steps of an <see cref="IAsyncEnumerable{T}"/>
    /// (other calls run between them), so the session keeps its own order: a turn that arrives while a
    /// stream runs waits for it.
    /// </remarks>
    [Alias("StreamAsync")]
    IAsyncEnumerable<ChatTurnEvent> StreamAsync(ChatTurnRequest request, CancellationToken cancellationToken);

    /// <summary>The stored history of the thread, oldest first; empty for a thread never used.</summary>
    [Alias("GetHistoryAsync")]
    Task<IReadOnlyList<SessionMessage>> GetHistoryAsync(CancellationToken cancellationToken);

    /// <summary>Deletes the thread and its history; false if it did not exist.</summary>
    [Alias("DeleteAsync")]
    Task<bool> DeleteAsync(CancellationToken cancellationToken);
}

/// <summary>Formats and parses session grain keys: a session id is only unique within its workspace.</summary>
public static class SessionKey
{
    /// <summary>The grain key for session <paramref name="sessionId"/> of workspace <paramref name="workspaceId"/>.</summary>
    public static string Of(Guid workspaceId, string sessionId) => $"{workspaceId:D}/{sessionId}";

    /// <summary>Splits a key made by <see cref="Of"/>.</summary>
    public static (Guid WorkspaceId, string SessionId) Parse(string key)
    {
        var slash = key.IndexOf('/');
        if (slash <= 0 || !Guid.TryParse(key.AsSpan(0, slash), out var workspaceId))
        {
            throw new ArgumentException($"'{key}' is not a session key.", nameof(key));
        }

        return (workspaceId, key[(slash + 1)..]);
    }
}

/// <summary>One user message to send in a thread.</summary>
/// <param name="Message">
/// The user's text. Empty only for a stateless turn whose <paramref name="Transcript"/> ends in
/// <c>tool</c> results: the model then answers those.
/// </param>
/// <param name="KeyId">The API key the request came with (per-key limits and audit).</param>
/// <param name="Channel">The surface that started the thread: <c>gateway</c>, <c>api</c>, …</param>
/// <param name="BotId">The bot to answer; null for the thread's bot, or the workspace's primary bot for a new thread.</param>
/// <param name="Transcript">
/// For a stateless caller (an OpenAI-style request carries its whole conversation): the messages
/// before <paramref name="Message"/>, used instead of the thread's history. Such a turn is admitted
/// and charged like any other, but its messages are not stored.
/// </param>
/// <param name="Options">How the model is to sample and shape its answer; null for the provider's defaults.</param>
/// <param name="Instructions">Extra system instructions for this turn only (OpenAI's <c>instructions</c>), after the bot's system prompt; not stored.</param>
/// <param name="AfterSeq">
/// The thread's last message (<see cref="SessionMessage.Seq"/>, 0 for a new thread) that this turn continues
/// (OpenAI's <c>previous_response_id</c>): a thread that has moved past it is refused as
/// <see cref="ChatTurnStatus.Conflict"/>, and nothing is charged. Null for any point.
/// </param>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnRequest")]
public sealed record ChatTurnRequest(
    [property: Id(0)] string Message,
    [property: Id(1)] string? KeyId,
    [property: Id(2)] string Channel,
    [property: Id(3)] string? BotId = null,
    [property: Id(4)] IReadOnlyList<SessionMessage>? Transcript = null,
    [property: Id(5)] ChatTurnOptions? Options = null,
    [property: Id(6)] string? Instructions = null,
    [property: Id(7)] long? AfterSeq = null);

/// <summary>
/// The sampling and output options a caller gave for one turn, passed to the model provider as they
/// are (a provider that has no such option ignores it; one that refuses a value answers 400).
/// </summary>
/// <param name="MaxOutputTokens">The most tokens the answer may have.</param>
/// <param name="StopSequences">Texts that end the answer where they would begin.</param>
/// <param name="ResponseFormat"><c>text</c>, <c>json_object</c> or <c>json_schema</c> (with <paramref name="JsonSchema"/>).</param>
/// <param name="JsonSchema">The JSON schema of a <c>json_schema</c> answer, as JSON text.</param>
/// <param name="JsonSchemaName">The schema's name.</param>
/// <param name="Tools">Functions the model may call; LuluClaw declares them and never runs them: a call comes back to the caller.</param>
/// <param name="ToolChoice">Whether and which of <paramref name="Tools"/> the model must call; null for the provider's default.</param>
/// <param name="ParallelToolCalls">Whether the model may call more than one tool in one answer; null for the provider's default.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnOptions")]
public sealed record ChatTurnOptions(
    [property: Id(0)] float? Temperature = null,
    [property: Id(1)] float? TopP = null,
    [property: Id(2)] int? MaxOutputTokens = null,
    [property: Id(3)] IReadOnlyList<string>? StopSequences = null,
    [property: Id(4)] long? Seed = null,
    [property: Id(5)] float? FrequencyPenalty = null,
    [property: Id(6)] float? PresencePenalty = null,
    [property: Id(7)] string? ResponseFormat = null,
    [property: Id(8)] string? JsonSchema = null,
    [property: Id(9)] string? JsonSchemaName = null,
    [property: Id(10)] IReadOnlyList<ChatTurnTool>? Tools = null,
    [property: Id(11)] ChatTurnToolChoice? ToolChoice = null,
    [property: Id(12)] bool? ParallelToolCalls = null);

/// <summary>A function the model may call, declared by the caller.</summary>
/// <param name="Parameters">The JSON schema of its arguments, as JSON text; null for none.</param>
/// <param name="Strict">Whether the provider is to hold the arguments to the schema exactly (where it can).</param>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnTool")]
public sealed record ChatTurnTool(
    [property: Id(0)] string Name,
    [property: Id(1)] string? Description = null,
    [property: Id(2)] string? Parameters = null,
    [property: Id(3)] bool? Strict = null);

/// <summary>Whether the model must call a tool: <see cref="Mode"/> <c>none</c>, <c>auto</c> or <c>required</c>, or the one function named.</summary>
/// <param name="FunctionName">With <see cref="Mode"/> <c>required</c>, the function the model must call; null for any.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnToolChoice")]
public sealed record ChatTurnToolChoice([property: Id(0)] string Mode, [property: Id(1)] string? FunctionName = null);

/// <summary>A function call the model made: the caller runs it and sends back its result (a <c>tool</c> message with <see cref="Id"/>).</summary>
/// <param name="Arguments">The arguments, as the JSON object text the model wrote.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.ToolCall")]
public sealed record ToolCall([property: Id(0)] string Id, [property: Id(1)] string Name, [property: Id(2)] string Arguments);

/// <summary>How a chat turn ended.</summary>
[GenerateSerializer, Alias("luluclaw.ChatTurnStatus")]
public enum ChatTurnStatus
{
    /// <summary>Answered and stored.</summary>
    Ok,
    /// <summary>A rolling window is full; see <see cref="ChatTurnResult.RetryAfter"/>.</summary>
    RateLimited,
    /// <summary>The workspace's credits do not cover the turn.</summary>
    InsufficientCredits,
    /// <summary>The model could not answer; nothing was charged or stored.</summary>
    ModelUnavailable,
    /// <summary>The workspace or bot does not exist (or no longer does).</summary>
    NotFound,
    /// <summary>The request contradicts the thread (for example, another bot for an existing session).</summary>
    Conflict,
    /// <summary>The key the request came with is no longer valid (revoked, perhaps on another node).</summary>
    Unauthorized,
    /// <summary>The model provider refused the request as made (a parameter or value it does not take); nothing was charged or stored.</summary>
    InvalidRequest,
}

/// <summary>The outcome of <see cref="ISessionGrain.SendAsync"/>.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnResult")]
public sealed record ChatTurnResult
{
    /// <summary>How the turn ended.</summary>
    [Id(0)]
    public required ChatTurnStatus Status { get; init; }

    /// <summary>The session id (not the grain key).</summary>
    [Id(1)]
    public required string SessionId { get; init; }

    /// <summary>The assistant's reply, when <see cref="Status"/> is <see cref="ChatTurnStatus.Ok"/>.</summary>
    [Id(2)]
    public string? Reply { get; init; }

    /// <summary>Credits debited for this turn.</summary>
    [Id(3)]
    public long CreditsUsed { get; init; }

    /// <summary>The workspace balance right after this turn's debit.</summary>
    [Id(4)]
    public long? CreditsRemaining { get; init; }

    /// <summary>A message for the client when the turn did not succeed.</summary>
    [Id(5)]
    public string? Error { get; init; }

    /// <summary>When to try again, for <see cref="ChatTurnStatus.RateLimited"/> (and a model that said so).</summary>
    [Id(6)]
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Token usage the model reported.</summary>
    [Id(7)]
    public TokenUsage? Usage { get; init; }

    /// <summary>The model that answered (the bot's model).</summary>
    [Id(8)]
    public string? Model { get; init; }

    /// <summary>Why the model stopped: <c>stop</c>, <c>length</c> (its token limit), <c>tool_calls</c> or <c>content_filter</c>.</summary>
    [Id(9)]
    public string? FinishReason { get; init; }

    /// <summary>The functions the model called instead of (or beside) its reply, for the caller to run; null for none.</summary>
    [Id(10)]
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>
    /// Where the caller's tightest rolling window stands after this turn (for a rate-limited turn, the
    /// full window it waits for); null when no window counts the turn.
    /// </summary>
    [Id(12)]
    public WindowStanding? Window { get; init; }

    /// <summary>The <see cref="SessionMessage.Seq"/> of the stored reply; null for a failed or stateless turn.</summary>
    [Id(11)]
    public long? ReplySeq { get; init; }

    /// <summary>The knowledge sources the reply was given (<see cref="SessionMessage.Sources"/>); null when none was.</summary>
    [Id(13)]
    public IReadOnlyList<MessageSource>? Sources { get; init; }

    /// <summary>A failed turn.</summary>
    public static ChatTurnResult Failed(ChatTurnStatus status, string sessionId, string error, TimeSpan? retryAfter = null, WindowStanding? window = null) =>
        new() { Status = status, SessionId = sessionId, Error = error, RetryAfter = retryAfter, Window = window };
}

/// <summary>A thread as a list shows it.</summary>
/// <param name="Channel">The surface that started it: <c>gateway</c>, <c>api</c>, <c>openai</c>, <c>openclaw</c>.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.SessionSummary")]
public sealed record SessionSummary(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string BotId,
    [property: Id(2)] string Channel,
    [property: Id(3)] DateTimeOffset CreatedAt,
    [property: Id(4)] DateTimeOffset LastActivity,
    [property: Id(5)] long MessageCount);

/// <summary>Token counts of one model call.</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.TokenUsage")]
public sealed record TokenUsage([property: Id(0)] long InputTokens, [property: Id(1)] long OutputTokens);

/// <summary>One step of a streamed turn: the admission (first), a piece of the reply, tool calls, or the outcome (always last).</summary>
[GenerateSerializer, Immutable, Alias("luluclaw.ChatTurnEvent")]
public sealed record ChatTurnEvent([property: Id(0)] string? Delta, [property: Id(1)] ChatTurnResult? Result)
{
    /// <summary>
    /// The turn was admitted and debited, and the model is about to be called: from here on the turn
    /// is answered, in text or in a failed outcome, so a caller can start its response without
    /// waiting for the model's first token.
    /// </summary>
    public static ChatTurnEvent Admitted { get; } = new(null, null) { IsAdmission = true };

    /// <summary>Whether this is an admission (<see cref="Admitted"/>, <see cref="AdmittedIn"/>): it carries neither text nor an outcome.</summary>
    [Id(2)]
    public bool IsAdmission { get; init; }

    /// <summary>For an admission: where the caller's tightest rolling window stands with this turn in it.</summary>
    [Id(4)]
    public WindowStanding? Window { get; init; }

    /// <summary>The admission of a turn that <paramref name="window"/> counts (<see cref="Admitted"/> if none does).</summary>
    public static ChatTurnEvent AdmittedIn(WindowStanding? window) => window is null ? Admitted : new(null, null) { IsAdmission = true, Window = window };

    /// <summary>Function calls the model made, each whole, as soon as the model has finished writing them.</summary>
    [Id(3)]
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>A piece of the reply.</summary>
    public static ChatTurnEvent Text(string delta) => new(delta, null);

    /// <summary>Function calls of the reply.</summary>
    public static ChatTurnEvent Calls(IReadOnlyList<ToolCall> calls) => new(null, null) { ToolCalls = calls };

    /// <summary>The outcome.</summary>
    public static ChatTurnEvent Done(ChatTurnResult result) => new(null, result);
}

/// <summary>One stored message of a thread.</summary>
/// <param name="Seq">Position in the thread, from 1, without gaps.</param>
/// <param name="Role"><c>user</c> or <c>assistant</c> (a stateless transcript may also carry <c>system</c>, and <c>tool</c> results).</param>
/// <param name="CutShort">An assistant reply whose stream the client left before it ended: what the model had produced by then.</param>
/// <param name="ToolCalls">In a stateless transcript: the function calls of an assistant message.</param>
/// <param name="ToolCallId">In a stateless transcript: the call a <c>tool</c> message answers.</param>
/// <param name="Sources">For an assistant reply: the knowledge sources its prompt carried, in the order it was shown them; null for none.</param>
[GenerateSerializer, Immutable, Alias("luluclaw.SessionMessage")]
public sealed record SessionMessage(
    [property: Id(0)] long Seq,
    [property: Id(1)] string Role,
    [property: Id(2)] string Content,
    [property: Id(3)] DateTimeOffset CreatedAt,
    [property: Id(4)] bool CutShort = false,
    [property: Id(5)] IReadOnlyList<ToolCall>? ToolCalls = null,
    [property: Id(6)] string? ToolCallId = null,
    [property: Id(7)] IReadOnlyList<MessageSource>? Sources = null);

/// <summary>
/// A knowledge source a reply used: the source, the page of it (a website's page URL; null for a
/// document or a manual source) and the chunks of it that went into the prompt.
/// </summary>
[GenerateSerializer, Immutable, Alias("luluclaw.MessageSource")]
public sealed record MessageSource(
    [property: Id(0)] string Id,
    [property: Id(1)] string Name,
    [property: Id(2)] string? Url,
    [property: Id(3)] IReadOnlyList<long> ChunkIds);
