namespace LuluClaw.Grains.Knowledge;

/// <summary>What a chat turn asks of the workspace's knowledge: the passages that bear on its question, and whether they are evidence enough.</summary>
public interface IKnowledgeLookup
{
    /// <summary>
    /// The passages of the workspace's ingested sources (ready, or being ingested again; not in error) that best answer <paramref name="question"/>,
    /// best first (none when it has no knowledge); or, when it has knowledge but none of it comes close
    /// enough to the question for <paramref name="bot"/>'s evidence gate, the words the bot says instead.
    /// </summary>
    Task<KnowledgeFindings> FindAsync(Guid workspaceId, string question, BotKnowledge bot, CancellationToken cancellationToken);
}

/// <summary>What a lookup found.</summary>
/// <param name="GateAnswer">Non-null when the evidence gate holds: the bot answers this, without asking the model.</param>
public sealed record KnowledgeFindings(IReadOnlyList<KnowledgePassage> Passages, string? GateAnswer = null)
{
    /// <summary>No knowledge to give.</summary>
    public static KnowledgeFindings None { get; } = new([]);

    /// <summary>The sources of <see cref="Passages"/>, one per source and page, in the order first shown, with the chunks of each; null for none.</summary>
    public IReadOnlyList<MessageSource>? Sources() =>
        Passages.Count == 0
            ? null
            : [.. Passages.GroupBy(p => (p.SourceId, p.Url)).Select(g => new MessageSource(g.Key.SourceId, g.First().SourceName, g.Key.Url, [.. g.Select(p => p.ChunkId)]))];
}

/// <summary>A passage of a knowledge source, as the model is shown it.</summary>
/// <param name="ChunkId">The chunk it is.</param>
/// <param name="Url">The page it came from, for a website; null otherwise.</param>
/// <param name="Heading">The heading it sits under (a manual entry's question, a document's section or page).</param>
public sealed record KnowledgePassage(long ChunkId, string SourceId, string SourceName, string? Url, string? Heading, string Text);

/// <summary>How passages go into the model's prompt: one system message after the bot's own, in a fixed format.</summary>
public static class KnowledgePrompt
{
    /// <summary>
    /// The message: a line that says what follows and how to use it, then each passage as
    /// <c>[n] source name — heading (url)</c> on a line of its own and its text below it, separated by blank lines.
    /// </summary>
    public static string Format(IReadOnlyList<KnowledgePassage> passages)
    {
        var text = new System.Text.StringBuilder(
            "Knowledge sources of this workspace follow. Answer from them where they cover the question, citing them as [n]; "
            + "do not invent facts they do not state.\n");
        for (var i = 0; i < passages.Count; i++)
        {
            var p = passages[i];
            text.Append('\n').Append('[').Append(i + 1).Append("] ").Append(p.SourceName);
            if (p.Heading is { Length: > 0 } heading)
            {
                text.Append(" — ").Append(heading);
            }

            if (p.Url is { Length: > 0 } url)
            {
                text.Append(" (").Append(url).Append(')');
            }

            text.Append('\n').Append(p.Text).Append('\n');
        }

        return text.ToString();
    }
}
